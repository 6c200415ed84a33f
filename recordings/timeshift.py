"""Moving a recorded CloudEvent in time: the Kafka timestamp and the event's own ``time``
(and a clock mark's time, ``streams.marks``).

The worker windows by the CloudEvent's ``time`` (the Kafka timestamp only mirrors it), so
a replay shifted to now must move both, or the two would disagree by the shift.
Structured-mode values (JSON with a ``time``) are re-encoded; binary-mode records carry
it in the ``ce_time`` header. Anything else (not JSON, no time) is left as recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson

from recordings.frame import Headers
from streams.marks import MARK_HEADER


def _shift_text(text: str, delta: timedelta) -> str | None:
    try:
        moved = datetime.fromisoformat(text) + delta
    except ValueError:
        return None
    return moved.isoformat()


def shift_value(value: bytes | None, delta_ms: int) -> bytes | None:
    """``value`` with its CloudEvent ``time`` moved by ``delta_ms`` (as is when it has none)."""
    if not value or not delta_ms or value[:1] != b"{":
        return value
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    time = event.get("time") if isinstance(event, dict) else None
    if not isinstance(time, str):
        return value
    moved = _shift_text(time, timedelta(milliseconds=delta_ms))
    if moved is None:
        return value
    event["time"] = moved
    return orjson.dumps(event)


def shift_headers(headers: Headers, delta_ms: int) -> Headers:
    """``headers`` with a binary-mode ``ce_time`` and a clock mark moved by ``delta_ms``."""
    if not headers or not delta_ms:
        return headers
    out = []
    for name, raw in headers:
        if name == "ce_time" and raw is not None:
            moved = _shift_text(raw.decode(errors="replace"), timedelta(milliseconds=delta_ms))
            if moved is not None:
                raw = moved.encode()
        elif name == MARK_HEADER and raw is not None and raw.isdigit():
            raw = str(int(raw) + delta_ms).encode()
        out.append((name, raw))
    return tuple(out)
