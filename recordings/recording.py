"""A recording as a whole: its parts in order, its topics, its records, and a report.

``Recording.records()`` is what replays read; ``Recording.scan()`` is ``ioc recording
info`` and ``verify``: it reads every chunk (zstd and CRC checked) and reports counts per
topic, the time range, and, for a damaged recording, where it broke and what before that
point can still be replayed (``partial=True``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recordings.frame import KafkaRecord
from recordings.reader import Damage, PartReader, PartState, RecordingError, TopicInfo, parts_of


@dataclass
class Report:
    """What ``scan`` found: per part and in total."""

    path: Path
    parts: list[PartState] = field(default_factory=list)
    topics: dict[str, TopicInfo] = field(default_factory=dict)

    @property
    def damage(self) -> Damage | None:
        """The first damage met (reading stops there)."""
        return next((p.damage for p in self.parts if p.damage), None)

    @property
    def records(self) -> Counter[str]:
        """Readable records per topic (up to the damage, if any)."""
        total: Counter[str] = Counter()
        for part in self.parts:
            total.update(part.records)
        return total

    @property
    def first_ms(self) -> int | None:
        """Earliest Kafka timestamp, ms."""
        times = [p.first_ns for p in self.parts if p.first_ns is not None]
        return min(times) // 1_000_000 if times else None

    @property
    def last_ms(self) -> int | None:
        """Latest Kafka timestamp, ms."""
        times = [p.last_ns for p in self.parts if p.last_ns is not None]
        return max(times) // 1_000_000 if times else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the API's recording info)."""

        def iso(ms: int | None) -> str | None:
            return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()

        damage = self.damage
        return {
            "parts": len(self.parts),
            "bytes": sum(p.size for p in self.parts),
            "chunks": sum(p.chunks for p in self.parts),
            "records": sum(self.records.values()),
            "topics": {
                topic: {
                    "records": self.records[topic],
                    "base_topic": info.base_topic,
                    "namespace": info.namespace,
                    "partitions": info.partitions,
                }
                for topic, info in sorted(self.topics.items())
            },
            "first_time": iso(self.first_ms),
            "last_time": iso(self.last_ms),
            "ok": damage is None,
            "damage": None if damage is None else damage.describe(),
            "metadata": self.parts[0].metadata if self.parts else {},
        }


class Recording:
    """A recording on disk: one ``.mcap`` file or a directory of parts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parts = parts_of(path)
        self.topics: dict[str, TopicInfo] = {}

    def records(self, *, partial: bool = False) -> Iterator[KafkaRecord]:
        """Every record in recorded order (see :meth:`chunks`)."""
        for chunk in self.chunks(partial=partial):
            yield from chunk

    def chunks(self, *, partial: bool = False) -> Iterator[list[KafkaRecord]]:
        """The records of each chunk in recorded order. Damage raises
        :class:`RecordingError` naming where it broke, unless ``partial``: then reading
        just stops there."""
        for part in self.parts:
            reader = PartReader(part, self.topics)
            yield from reader.chunks()
            damage = reader.state.damage
            if damage is not None:
                if partial:
                    return
                raise RecordingError(
                    f"{damage.describe()}; {sum(reader.state.records.values())} records of "
                    "this part precede it (`ioc recording verify` tells what can be recovered; "
                    "replay with partial to use them)"
                )

    def scan(self) -> Report:
        """Read every chunk of every part (up to the first damage) and report."""
        report = Report(self.path, topics=self.topics)
        for part in self.parts:
            reader = PartReader(part, self.topics)
            for _ in reader.chunks():
                pass
            report.parts.append(reader.state)
            if reader.state.damage is not None:
                break
        return report
