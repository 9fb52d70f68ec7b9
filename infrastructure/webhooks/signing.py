"""Signatures of webhook deliveries (Stripe's scheme).

Each delivery carries ``X-CS-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the hook's secret, of ``"<t>.<raw body>"``. A receiver:

1. splits the header on ``,`` and takes ``t`` and every ``v1`` (more than one may come
   while a secret is rotated);
2. computes HMAC-SHA256(secret, f"{t}." + raw body bytes) in hex;
3. accepts when it equals one of the ``v1`` values (compared in constant time) **and**
   ``t`` is within its tolerance of its own clock (5 minutes is usual), which stops a
   captured delivery from being replayed later.

The timestamp is that of the attempt, not of the event: a retry a day later still signs
fresh. :func:`verify` is that procedure, for receivers written in Python and for tests.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final

SIGNATURE_HEADER: Final = "X-CS-Signature"
DEFAULT_TOLERANCE_SECONDS: Final = 300


class SignatureError(ValueError):
    pass


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header's value for ``body`` sent at ``timestamp`` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a delivery as a receiver would; return its timestamp or raise
    :class:`SignatureError` saying what is wrong."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"timestamp {value!r} is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("header has no t= or no v1=")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"timestamp {timestamp} is outside the tolerance of {tolerance} s")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no v1 signature matches")
    return timestamp
