"""Reading recordings chunk by chunk, checking every chunk, and saying where one broke.

The reader walks each part's records itself (opcode, length, body, as the MCAP
specification lays them out) rather than through ``mcap``'s stream reader, for two
reasons: a truncated record must be told apart from a corrupt one and located by byte
offset, and replaying at 100,000+ records/s leaves no room for a Python object per MCAP
record. ``mcap`` still parses the chunk and channel records and writes every file.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import zstandard
from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.records import Channel as McapChannel
from mcap.records import Chunk, Metadata

from recordings.frame import MESSAGE_ENCODING, FrameError, KafkaRecord, decode

MAGIC = b"\x89MCAP0\r\n"
_RECORD = struct.Struct("<BQ")
_MESSAGE = struct.Struct("<HIQQ")


class RecordingError(Exception):
    """A recording that cannot be read (further), with the place it broke."""


@dataclass(frozen=True)
class TopicInfo:
    """What a recording says about one of its topics."""

    topic: str
    base_topic: str
    namespace: str
    partitions: int


@dataclass
class Damage:
    """Where a part stopped being readable, and why."""

    part: Path
    byte: int
    chunk: int
    reason: str

    def describe(self) -> str:
        """One sentence naming the file, the chunk and the byte offset."""
        return f"{self.part}: chunk {self.chunk} at byte {self.byte}: {self.reason}"


@dataclass
class PartState:
    """What was read of one part so far."""

    path: Path
    size: int = 0
    chunks: int = 0
    records: Counter[str] = field(default_factory=Counter)
    first_ns: int | None = None
    last_ns: int | None = None
    closed: bool = False
    damage: Damage | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def parts_of(path: Path) -> list[Path]:
    """The MCAP files of a recording: the file itself, or a directory's parts in order."""
    if path.is_dir():
        parts = sorted(path.glob("*.mcap"))
        if not parts:
            raise RecordingError(f"{path}: no .mcap file in this recording")
        return parts
    if path.is_file():
        return [path]
    raise RecordingError(f"{path}: no such recording")


def _topic_info(channel: McapChannel) -> TopicInfo:
    meta = channel.metadata
    return TopicInfo(
        topic=channel.topic,
        base_topic=meta.get("base_topic", channel.topic),
        namespace=meta.get("namespace", "live"),
        partitions=int(meta.get("partitions", "0") or 0),
    )


class PartReader:
    """Records of one MCAP file in the order they were written."""

    def __init__(self, path: Path, topics: dict[str, TopicInfo]) -> None:
        self.path = path
        self.topics = topics
        self.channels: dict[int, TopicInfo] = {}
        self.state = PartState(path)

    def _broken(self, byte: int, reason: str) -> Damage:
        return Damage(self.path, byte, self.state.chunks, reason)

    def chunks(self) -> Iterator[list[KafkaRecord]]:
        """Yield each chunk's records; stop at the end of the data section, or at damage,
        recorded in ``state.damage``."""
        with self.path.open("rb") as file:
            if self.path.stat().st_size == 0:
                self.state.damage = self._broken(0, "empty file")
                return
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                yield from self._walk(data)

    def _walk(self, data: mmap.mmap) -> Iterator[list[KafkaRecord]]:
        state = self.state
        state.size = len(data)
        if data[:8] != MAGIC:
            state.damage = self._broken(0, "not an MCAP file (bad magic)")
            return
        state.closed = len(data) >= 16 and data[-8:] == MAGIC
        pos = 8
        end = len(data)
        while pos < end:
            if end - pos < _RECORD.size:
                state.damage = self._broken(pos, "truncated record header (file ends mid-way)")
                return
            opcode, length = _RECORD.unpack_from(data, pos)
            body_start = pos + _RECORD.size
            if body_start + length > end:
                what = "chunk" if opcode == Opcode.CHUNK else f"record (opcode {opcode:#x})"
                state.damage = self._broken(
                    pos,
                    f"truncated {what}: {length} bytes declared, "
                    f"{end - body_start} left in the file",
                )
                return
            body = data[body_start : body_start + length]
            try:
                if opcode == Opcode.CHUNK:
                    yield self._chunk(body)
                    state.chunks += 1
                elif opcode == Opcode.CHANNEL:
                    self._channel(McapChannel.read(ReadDataStream(BytesIO(body))))
                elif opcode == Opcode.METADATA:
                    meta = Metadata.read(ReadDataStream(BytesIO(body)))
                    if meta.name == "ioc.recording":
                        state.metadata = dict(meta.metadata)
                elif opcode == Opcode.DATA_END:
                    return
                elif opcode == Opcode.MESSAGE:
                    raise _ChunkBroken("message outside a chunk (not written by ioc)")
            except _ChunkBroken as exc:
                state.damage = self._broken(pos, str(exc))
                return
            pos = body_start + length
        if not state.closed:
            state.damage = self._broken(pos, "file ends without its summary (not closed)")

    def _channel(self, channel: McapChannel) -> None:
        if channel.message_encoding != MESSAGE_ENCODING:
            raise _ChunkBroken(
                f"channel {channel.topic!r} has encoding {channel.message_encoding!r}, "
                f"not {MESSAGE_ENCODING!r}"
            )
        info = _topic_info(channel)
        self.channels[channel.id] = info
        self.topics.setdefault(info.topic, info)

    def _chunk(self, body: bytes) -> list[KafkaRecord]:
        try:
            chunk = Chunk.read(ReadDataStream(BytesIO(body)))
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise _ChunkBroken(f"unreadable chunk header ({exc})") from None
        if chunk.compression == "zstd":
            try:
                raw = zstandard.ZstdDecompressor().decompress(
                    chunk.data, max_output_size=chunk.uncompressed_size
                )
            except zstandard.ZstdError as exc:
                raise _ChunkBroken(f"zstd error: {exc}") from None
        elif chunk.compression == "":
            raw = chunk.data
        else:
            raise _ChunkBroken(f"unsupported compression {chunk.compression!r}")
        if chunk.uncompressed_crc and zlib.crc32(raw) != chunk.uncompressed_crc:
            raise _ChunkBroken(
                f"CRC mismatch (expected {chunk.uncompressed_crc:#010x}, "
                f"computed {zlib.crc32(raw):#010x})"
            )
        try:
            return self._messages(raw)
        except (struct.error, FrameError) as exc:
            raise _ChunkBroken(f"malformed message: {exc}") from None

    def _messages(self, raw: bytes) -> list[KafkaRecord]:
        out: list[KafkaRecord] = []
        append = out.append
        counts: Counter[str] = Counter()
        unpack_record, unpack_message = _RECORD.unpack_from, _MESSAGE.unpack_from
        channels = self.channels
        pos, end = 0, len(raw)
        lo, hi = 1 << 64, -1
        while pos < end:
            opcode, length = unpack_record(raw, pos)
            start = pos + 9
            pos = start + length
            if opcode == Opcode.MESSAGE:
                channel_id, _, log_time, _ = unpack_message(raw, start)
                info = channels.get(channel_id)
                if info is None:
                    raise _ChunkBroken(f"message on unknown channel {channel_id}")
                topic = info.topic
                counts[topic] += 1
                if log_time < lo:
                    lo = log_time
                if log_time > hi:
                    hi = log_time
                append(decode(raw, start + 22, pos, topic=topic, log_time_ns=log_time))
            elif opcode == Opcode.CHANNEL:
                self._channel(McapChannel.read(ReadDataStream(BytesIO(raw[start:pos]))))
        state = self.state
        state.records.update(counts)
        if hi >= 0:
            state.first_ns = lo if state.first_ns is None else min(state.first_ns, lo)
            state.last_ns = hi if state.last_ns is None else max(state.last_ns, hi)
        return out


class _ChunkBroken(Exception):
    """Raised inside a chunk; the part reader turns it into a :class:`Damage`."""
