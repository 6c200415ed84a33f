"""The dead-letter record: the original key, bytes and headers, where they came from and
why they were refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from contract.rejection import Rejection
from streams.state import RawRecord


def header_pairs(
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None,
) -> list[tuple[str, bytes]]:
    """Kafka headers as (name, value) pairs, whichever shape the client gave them in."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def deadletter_headers(*, message: RawRecord, rejection: Rejection) -> list[tuple[str, bytes]]:
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
