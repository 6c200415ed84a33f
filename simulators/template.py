"""Pre-encoded CloudEvents: the constant bytes of an entity's events, cut out of ``encode``.

``contract.envelope.encode`` defines the wire format. Rather than re-implement it, a
template calls it once per (entity, event type) with marker values and keeps the bytes
around the markers. Rendering an event then joins those bytes with the per-tick stamp
(id suffix and time) and the payload: byte-for-byte what ``encode`` would have produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from contract.envelope import encode

ID_MARK = "@@id@@"
DATA_MARK = {"@@data@@": 0}
PROBE_TIME = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Template:
    """One entity's event of one type: ``head`` + stamp + ``tail`` + data + ``end``."""

    head: bytes
    middle: bytes
    tail: bytes
    end: bytes


def cut(*, event_type: str, subject: str, source: str, id_prefix: str) -> Template:
    """The template of ``subject``'s events of ``event_type`` with ids ``id_prefix<suffix>``."""
    probe = encode(
        event_type=event_type,
        subject=subject,
        time=PROBE_TIME,
        data=DATA_MARK,
        event_id=id_prefix + ID_MARK,
        source=source,
    )
    head, rest = probe.split(ID_MARK.encode(), 1)
    time_json = orjson.dumps(PROBE_TIME)
    middle, after = rest.split(time_json, 1)
    tail, end = after.split(orjson.dumps(DATA_MARK), 1)
    return Template(head, middle, tail, end)


def stamp(template: Template, *, id_suffix: str, time_json: bytes) -> bytes:
    """The bytes between an entity's head and tail for one id suffix and event time."""
    return id_suffix.encode() + template.middle + time_json


def render(template: Template, stamp_bytes: bytes, data: bytes) -> bytes:
    """One complete event (for code off the hot path; generators inline this join)."""
    return b"".join((template.head, stamp_bytes, template.tail, data, template.end))
