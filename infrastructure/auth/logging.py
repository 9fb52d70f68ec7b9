"""Keep tokens out of the logs.

Stream endpoints take ``?token=`` (EventSource cannot send headers), and uvicorn's access log
writes every request line with its query string. :class:`RedactTokensFilter` rewrites a log
record before any handler formats it: ``token=...`` query values, ``Authorization: ...``
values, ``Bearer ...`` credentials and anything shaped like a JWT become ``[REDACTED]``.

Call :func:`install_log_redaction` once at startup (app factory or lifespan). It is a logger
filter, which uvicorn's own ``dictConfig`` does not remove, and installing it twice is a
no-op.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Final

REDACTED: Final = "[REDACTED]"

_PATTERNS: Final = (
    # token=..., access_token=..., cs_token=... (query strings, cookies, form bodies).
    (re.compile(r"(?i)([a-z0-9_]*token=)[^&\s#;,'\"]*"), rf"\g<1>{REDACTED}"),
    # Authorization: <scheme> <credentials>, as a header line or a dict/JSON repr.
    (
        re.compile(
            r"""(?i)(authorization['"]?\s*[:=]\s*['"]?)"""
            r"""(?:(?:bearer|basic|digest|token)\s+)?[^\s'",}]+"""
        ),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\g<1>{REDACTED}"),
    # A JWT anywhere else: header and payload are base64url JSON, so they start with "eyJ".
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), REDACTED),
)

DEFAULT_LOGGERS: Final = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: object) -> object:
    # Only strings change: uvicorn's AccessFormatter unpacks ``args`` by position and formats
    # the status code with %d, so the shape and the other types must stay as they are.
    return redact(value) if isinstance(value, str) else value


class RedactTokensFilter(logging.Filter):
    """Rewrites ``args``, if need be the message, and a traceback's text; never drops a
    record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # 1. Each string argument on its own: this keeps the record's shape, which uvicorn's
        #    AccessFormatter relies on, and covers the access log (the token is in the path).
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redact_value(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _redact_value(v) for k, v in args.items()}
        # 2. The merged message: a secret may straddle template and argument
        #    ("token=%s" % opaque). Redacting the template alone would break its placeholders,
        #    so when the merged text still changes, the record carries that text, without args.
        try:
            message = record.getMessage()
        except Exception:  # a broken format: logging reports it itself, leave it be
            message = None
        if message is not None:
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse ``exc_text`` when it is set: format the traceback here, once,
            # redacted (an exception message may quote a URL with its query string).
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(logger_names: Iterable[str] = DEFAULT_LOGGERS) -> None:
    """Attach one :class:`RedactTokensFilter` to each named logger (uvicorn's by default).

    A logger's filters see only records logged on that very logger, not those propagated from
    its children: name every logger that may carry a token."""
    for name in logger_names:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactTokensFilter) for f in target.filters):
            target.addFilter(RedactTokensFilter())
