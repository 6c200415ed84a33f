"""The dead-letter topic: the original record with where it came from and why it was refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import faust
import orjson

from streams.app import deadletter_topic
from streams.counters import DEADLETTERED
from streams.envelope import Rejection


def header_pairs(
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None,
) -> list[tuple[str, bytes]]:
    """Kafka headers as (name, value) pairs, whichever shape the client gave them in."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def deadletter_headers(
    *, message: faust.types.tuples.Message, rejection: Rejection
) -> list[tuple[str, bytes]]:
    """Original headers plus ``ioc_*`` headers naming the source and the reason."""
    return [
        *header_pairs(message.headers),
        ("ioc_reason", rejection.reason.encode()),
        ("ioc_detail", rejection.detail.encode()[:1000]),
        (
            "ioc_source",
            orjson.dumps(
                {"topic": message.topic, "partition": message.partition, "offset": message.offset}
            ),
        ),
    ]


async def dead_letter(message: faust.types.tuples.Message, rejection: Rejection) -> None:
    """Send the record's original key and bytes to ``ioc.deadletter`` with its reason."""
    DEADLETTERED.labels(rejection.reason).inc()
    await deadletter_topic.send(
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=deadletter_headers(message=message, rejection=rejection),
    )
