from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from infrastructure.auth.logging import (
    REDACTED,
    RedactTokensFilter,
    install_log_redaction,
    redact,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzMSJ9.c2lnbmF0dXJl"


@pytest.fixture
def clean_loggers() -> Iterator[None]:
    names = ("uvicorn.access", "uvicorn.error", "app.test")
    saved = {n: list(logging.getLogger(n).filters) for n in names}
    yield
    for name, filters in saved.items():
        logger = logging.getLogger(name)
        for f in list(logger.filters):
            logger.removeFilter(f)
        for f in filters:
            logger.addFilter(f)


def access_record(path: str) -> logging.LogRecord:
    # What uvicorn's httptools/h11 protocols log, argument by argument.
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )


def test_access_log_query_token_is_redacted() -> None:
    record = access_record(f"/api/sessions/s1/events?last_event_id=e1.1-0&token={JWT}&x=1")
    assert RedactTokensFilter().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert JWT not in line
    assert f"token={REDACTED}" in line
    assert "last_event_id=e1.1-0" in line
    assert "&x=1" in line
    assert "200" in line


@pytest.mark.parametrize(
    "text",
    [
        f"GET /x?token={JWT}",
        "GET /x?token=opaque-value",
        f"GET /x?a=1&access_token={JWT}#frag",
        f"Authorization: Bearer {JWT}",
        f"{{'authorization': 'Bearer {JWT}'}}",
        f'{{"Authorization": "Bearer {JWT}"}}',
        "authorization=Basic dXNlcjpwYXNz",
        f"cookie: cs_token={JWT}; other=1",
        f"failed to verify {JWT} for s1",
        f"bearer {JWT}",
    ],
)
def test_redact(text: str) -> None:
    redacted = redact(text)
    assert JWT not in redacted
    assert "opaque-value" not in redacted
    assert "dXNlcjpwYXNz" not in redacted
    assert REDACTED in redacted


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "GET /api/sessions/s1/events?last_event_id=e1.5-0 HTTP/1.1 200"
    assert redact(text) == text


def test_mapping_args_and_tracebacks_are_redacted() -> None:
    try:
        raise RuntimeError(f"bad request /x?token={JWT}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "uvicorn.error",
        logging.ERROR,
        __file__,
        1,
        "%(url)s",
        ({"url": f"/y?token={JWT}"},),
        exc_info,
    )
    RedactTokensFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert JWT not in formatted
    assert "RuntimeError" in formatted


def test_install_attaches_once_to_uvicorn_loggers(
    clean_loggers: None, caplog: pytest.LogCaptureFixture
) -> None:
    install_log_redaction()
    install_log_redaction()
    for name in ("uvicorn.access", "uvicorn.error"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RedactTokensFilter) for f in filters) == 1
    with caplog.at_level(logging.INFO):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/e?token={JWT}", "1.1", 200
        )
        logging.getLogger("uvicorn.error").warning("Authorization: Bearer %s", JWT)
    assert JWT not in caplog.text
    assert caplog.text.count(REDACTED) == 2


def test_install_on_other_loggers(clean_loggers: None, caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction(["app.test"])
    with caplog.at_level(logging.INFO):
        logging.getLogger("app.test").info("token=%s", JWT)
    assert JWT not in caplog.text


def test_secret_split_between_template_and_argument(
    clean_loggers: None, caplog: pytest.LogCaptureFixture
) -> None:
    install_log_redaction(["app.test"])
    with caplog.at_level(logging.INFO):
        logging.getLogger("app.test").info("GET /x?token=%s&page=%d", "opaque-value", 2)
    assert "opaque-value" not in caplog.text
    assert f"token={REDACTED}&page=2" in caplog.text


def test_access_record_keeps_its_shape_for_uvicorn() -> None:
    record = access_record("/plain/path")
    RedactTokensFilter().filter(record)
    assert record.args == ("127.0.0.1:5000", "GET", "/plain/path", "1.1", 200)
