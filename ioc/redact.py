"""Keeping credentials out of the logs, whatever their encoding.

Browsers cannot set headers on a WebSocket or EventSource, so the live feeds accept the
API key as ``?api_key=``, and uvicorn's access log writes every request line with its
query string, refused requests included. A URL can spell a parameter's name and value in
many ways (``api%5Fkey``, ``k%65y``, ``api_key%00``, a doubly encoded ``ioc%255F...``), so
redaction does not look for names as written. It decodes each query parameter and blanks
its value when the decoded name is a credential's name (ignoring case and everything but
letters and digits), or when the decoded value looks like a credential: an API key
(``ioc_`` and at least 16 URL-safe characters) or a JWT. Keys and JWTs are blanked
anywhere else in a line too (a path, a header echoed in an error).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

#: Query parameters that may carry a credential, as written in documentation.
SECRET_PARAMS = ("api_key", "key", "token", "access_token")
_SECRET_NAMES = frozenset(re.sub(r"[^a-z0-9]", "", name) for name in SECRET_PARAMS)
REDACTED = "[redacted]"

#: A query string in a log line: from ``?`` to a space, quote or the end.
_QUERY = re.compile(r"\?([^\s\"']*)")
#: An API key or a JWT, once decoded.
_CREDENTIAL = re.compile(
    r"ioc_[A-Za-z0-9_-]{16,}"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    re.IGNORECASE,
)
#: A stretch of URL characters holding a percent-escape, to decode and look into.
_ENCODED = re.compile(r"[\w.~+%-]*%[0-9A-Fa-f]{2}[\w.~+%-]*")
#: Percent-decoding more times than this gains an attacker nothing but our CPU.
_MAX_DECODES = 4


def _decoded(text: str) -> str:
    """``text`` percent-decoded until it no longer changes (a bounded number of times)."""
    for _ in range(_MAX_DECODES):
        plain = unquote(text.replace("+", " "))
        if plain == text:
            break
        text = plain
    return text


def _secret_name(name: str) -> bool:
    return re.sub(r"[^a-z0-9]", "", _decoded(name).lower()) in _SECRET_NAMES


def _redact_query(match: re.Match[str]) -> str:
    pairs = []
    for pair in match.group(1).split("&"):
        name, eq, value = pair.partition("=")
        if eq and (_secret_name(name) or _CREDENTIAL.search(_decoded(value))):
            value = REDACTED
        pairs.append(name + eq + value)
    return "?" + "&".join(pairs)


def redact(text: str) -> str:
    """``text`` with every credential it holds replaced by ``[redacted]``."""
    if "?" in text:
        text = _QUERY.sub(_redact_query, text)
    if "%" in text:
        text = _ENCODED.sub(_redact_encoded, text)
    return _CREDENTIAL.sub(REDACTED, text)


def _redact_encoded(match: re.Match[str]) -> str:
    return REDACTED if _CREDENTIAL.search(_decoded(match.group())) else match.group()


class RedactCredentials(logging.Filter):
    """Blanks credentials in a log record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


def _scrub(record: logging.LogRecord) -> None:
    if not record.args:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return
    # Arguments one by one, so the record keeps its shape (uvicorn's access formatter
    # unpacks them); a credential written into the format itself flattens the record.
    if isinstance(record.args, tuple):
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
    if isinstance(record.msg, str) and redact(record.msg) != record.msg:
        record.msg, record.args = redact(record.getMessage()), ()


def install_log_redaction() -> None:
    """Scrub every log record of this process as it is made (once).

    A record factory rather than filters: filters belong to loggers and handlers, which
    uvicorn's and the launcher's logging configuration replace, and a logger's filter
    misses the records its children propagate; every record passes the factory.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub(record)
        return record

    make.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
