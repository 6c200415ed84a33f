"""Keeping credentials out of the access log.

Browsers cannot set headers on a WebSocket or EventSource, so the live feeds accept the
API key as ``?api_key=``, and uvicorn's access log writes every request line with its
query string. This filter blanks credential parameters before the line is formatted.
"""

from __future__ import annotations

import logging
import re

#: Query parameters that may carry a credential.
SECRET_PARAMS = ("api_key", "key", "token", "access_token")
_SECRET_QUERY = re.compile(
    r"(?P<name>(?:^|[?&])(?:" + "|".join(SECRET_PARAMS) + r")=)[^&\s\"]*", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with the values of credential query parameters replaced."""
    return _SECRET_QUERY.sub(r"\g<name>[redacted]", text)


class RedactCredentials(logging.Filter):
    """Blanks credential query parameters in a log record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    """Attach the filter to uvicorn's access and error loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
