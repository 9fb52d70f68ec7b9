"""``python -m infrastructure.tokens ROLE SUBJECT [--ttl N]`` prints a signed token.

The module name is the one the security issue gives; the code lives in
:mod:`infrastructure.auth.tokens`, re-exported here for convenience.
"""

from __future__ import annotations

from infrastructure.auth.tokens import (
    InvalidToken,
    Principal,
    Role,
    issue_token,
    main,
    verify_token,
)

__all__ = ["InvalidToken", "Principal", "Role", "issue_token", "main", "verify_token"]

if __name__ == "__main__":
    raise SystemExit(main())
