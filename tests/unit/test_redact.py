"""Credential query parameters are blanked in log lines."""

from __future__ import annotations

import logging

import pytest

from ioc.redact import RedactCredentials, install_log_redaction, redact


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


KEY = "ioc_" + "Zx9-" * 10 + "abc"


@pytest.mark.parametrize(
    "query",
    [
        f"api_key={KEY}",
        f"api%5Fkey={KEY}",
        f"API%5fKEY={KEY}",
        f"k%65y={KEY}",
        f"api_key%00={KEY}",
        f"api%255Fkey={KEY}",
        f"access-token={KEY}",
        f"api_key={KEY.replace('_', '%5F')}",
        f"api_key={KEY.replace('_', '%255F')}",
        f"x=1&whatever={KEY}",
        f"whatever={KEY.replace('i', '%69')}",
        "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkaXNwYXRjaCJ9.c2lnbmF0dXJl",
    ],
)
def test_a_credential_is_blanked_however_the_url_spells_it(query: str) -> None:
    line = f'127.0.0.1:5 - "GET /v1/live/sse?domain=traffic&{query} HTTP/1.1" 200'
    redacted = redact(line)
    assert "[redacted]" in redacted
    for form in (KEY, KEY[4:], KEY.replace("_", "%5F")[6:], "c2lnbmF0dXJl"):
        assert form not in redacted
    assert "domain=traffic" in redacted


def test_keys_are_blanked_outside_query_strings_too() -> None:
    assert redact(f"refused /v1/{KEY}/x") == "refused /v1/[redacted]/x"
    encoded = KEY.replace("_", "%5F")
    assert redact(f"GET /v1/{encoded}") == "GET /v1/[redacted]"
    assert redact("GET /v1/traffic/entities/qn-ix-halong-001%20x") == (
        "GET /v1/traffic/entities/qn-ix-halong-001%20x"
    )


def test_every_record_of_the_process_is_scrubbed_once_installed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    install_log_redaction()  # twice changes nothing
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything.at.all").info("key %s in %s", KEY, "x")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/v1?api%5Fkey={KEY}", "1.1", 200
        )
        logging.getLogger("launcher").warning(f"board /?key={KEY} took %d s", 3)
    assert len(caplog.records) == 3
    assert all(KEY not in r.getMessage() for r in caplog.records)
