"""Credential query parameters are blanked in log lines."""

from __future__ import annotations

import logging

from api.redact import RedactCredentials, redact


def test_credential_parameters_are_blanked_and_others_kept() -> None:
    line = '127.0.0.1:5 - "GET /v1/live/sse?domain=traffic&api_key=ioc_secret-1&since=3 HTTP/1.1"'
    assert redact(line) == (
        '127.0.0.1:5 - "GET /v1/live/sse?domain=traffic&api_key=[redacted]&since=3 HTTP/1.1"'
    )
    assert redact("/v1/live?TOKEN=abc") == "/v1/live?TOKEN=[redacted]"
    assert redact("/v1/alerts?monkey=1") == "/v1/alerts?monkey=1"


def test_the_filter_rewrites_a_uvicorn_access_record() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/v1/live?api_key=ioc_secret-2", "1.1", 200),
        None,
    )
    assert RedactCredentials().filter(record)
    assert "ioc_secret-2" not in record.getMessage()
