"""Writing recordings: MCAP files with zstd chunks, indexes and a summary, split in parts.

A recording is a directory ``<name>/`` holding ``part-00000.mcap``, ``part-00001.mcap``
... (a new part past ``split_bytes`` or ``split_s``); a single ``.mcap`` file written by
:class:`PartWriter` is a recording too. Each Kafka topic is one MCAP channel (topic =
the full topic name; metadata ``namespace``, ``base_topic``, ``partitions``), each record
one message (``log_time`` = Kafka timestamp in ns, data = :mod:`recordings.frame`).

Chunks go to the operating system as soon as they are complete, so a recorder killed
mid-way leaves a file readable up to its last complete chunk.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mcap.writer import CompressionType, Writer

from recordings.frame import MESSAGE_ENCODING, KafkaRecord, encode

PROFILE = "ioc-kafka"
LIBRARY = "smart-city-ioc recordings"
PART_PATTERN = "part-{:05d}.mcap"


class _DirectFile:
    """A write-only file without a user-space buffer: every write reaches the OS at once,
    so a crash loses nothing the MCAP writer has emitted (it emits whole chunks)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.position = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        """Nothing is buffered here."""

    def close(self) -> None:
        os.close(self.fd)


class PartWriter:
    """One MCAP file: channels made on first use, records appended in arrival order."""

    def __init__(
        self, path: Path, *, chunk_bytes: int, metadata: dict[str, str] | None = None
    ) -> None:
        self.path = path
        self.file = _DirectFile(path)
        self.writer = Writer(
            self.file,  # type: ignore[arg-type]
            chunk_size=chunk_bytes,
            compression=CompressionType.ZSTD,
        )
        self.writer.start(profile=PROFILE, library=LIBRARY)
        if metadata:
            self.writer.add_metadata("ioc.recording", metadata)
        self.channels: dict[str, int] = {}
        self.records = 0
        self.started = time.monotonic()

    def channel(self, topic: str, metadata: dict[str, str]) -> int:
        """The channel id of ``topic``, registering it with ``metadata`` the first time."""
        channel_id = self.channels.get(topic)
        if channel_id is None:
            channel_id = self.writer.register_channel(
                topic=topic, message_encoding=MESSAGE_ENCODING, schema_id=0, metadata=metadata
            )
            self.channels[topic] = channel_id
        return channel_id

    def write(self, channel_id: int, record: KafkaRecord, *, publish_time_ns: int = 0) -> None:
        """Append one record to the channel (``publish_time``: when it was recorded)."""
        log_time = record.timestamp_ms * 1_000_000
        self.writer.add_message(
            channel_id=channel_id,
            log_time=log_time,
            publish_time=publish_time_ns or log_time,
            # MCAP's sequence is 32 bits; the frame keeps the full offset.
            sequence=record.offset & 0xFFFFFFFF,
            data=encode(
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
                timestamp_type=record.timestamp_type,
            ),
        )
        self.records += 1

    @property
    def size(self) -> int:
        """Bytes written to the file so far (complete chunks)."""
        return self.file.tell()

    def close(self) -> None:
        """Write the last chunk, the indexes and the summary, and close the file."""
        self.writer.finish()  # type: ignore[no-untyped-call]
        self.file.close()


class RecordingWriter:
    """A recording directory whose parts roll over by size or age."""

    def __init__(
        self,
        directory: Path,
        *,
        chunk_bytes: int,
        split_bytes: int,
        split_s: float,
        metadata: dict[str, str],
    ) -> None:
        directory.mkdir(parents=True, exist_ok=False)
        self.directory = directory
        self.chunk_bytes, self.split_bytes, self.split_s = chunk_bytes, split_bytes, split_s
        self.metadata = metadata
        self.topics: dict[str, dict[str, str]] = {}
        self.parts: list[Path] = []
        self.records = 0
        self.part: PartWriter | None = None

    def add_topic(self, topic: str, metadata: dict[str, str]) -> None:
        """Declare a topic before writing its records (its channel metadata)."""
        self.topics[topic] = metadata

    def _current(self) -> PartWriter:
        part = self.part
        if part is not None and (
            part.size >= self.split_bytes or time.monotonic() - part.started >= self.split_s
        ):
            part.close()
            part = self.part = None
        if part is None:
            path = self.directory / PART_PATTERN.format(len(self.parts))
            meta = {**self.metadata, "part": str(len(self.parts))}
            part = self.part = PartWriter(path, chunk_bytes=self.chunk_bytes, metadata=meta)
            self.parts.append(path)
        return part

    def write(self, record: KafkaRecord, *, publish_time_ns: int = 0) -> None:
        """Append one record of a declared topic."""
        part = self._current()
        channel_id = part.channel(record.topic, self.topics[record.topic])
        part.write(channel_id, record, publish_time_ns=publish_time_ns)
        self.records += 1

    def close(self) -> None:
        """Finish the current part (a recording with no record keeps one empty part)."""
        if self.part is None and not self.parts:
            self._current()
        if self.part is not None:
            self.part.close()
            self.part = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
