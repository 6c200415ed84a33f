"""One Kafka record as the data of one MCAP message (the recording's message encoding).

MCAP gives each message a channel (here: the Kafka topic) and a ``log_time`` (here: the
Kafka timestamp in nanoseconds). Everything else Kafka knows about the record travels in
the message data, little-endian like MCAP itself:

====  =========  ==========================================================
size  field      meaning
====  =========  ==========================================================
1     version    1
1     ts_type    0 CreateTime, 1 LogAppendTime
4     partition  int32
8     offset     int64, the record's offset in its partition when recorded
4     key_len    int32, -1 for a null key
4     value_len  int32, -1 for a null value (a tombstone)
2     headers    uint16, how many headers follow the value
...   key, value, then per header: uint16 name length, UTF-8 name,
      int32 value length (-1 null), value bytes
====  =========  ==========================================================
"""

from __future__ import annotations

import struct
from typing import NamedTuple

MESSAGE_ENCODING = "ioc.kafka-record.v1"
VERSION = 1
_HEAD = struct.Struct("<BBiqiiH")
_HEAD_SIZE = _HEAD.size
_NAME = struct.Struct("<H")
_LEN = struct.Struct("<i")

Headers = tuple[tuple[str, bytes | None], ...]


class FrameError(ValueError):
    """Message data that is not a recorded Kafka record."""


class KafkaRecord(NamedTuple):
    """A Kafka record as recorded: where it was, and exactly what it held."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp_type: int = 0


def encode(
    *,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers | list[tuple[str, bytes | None]] = (),
    timestamp_type: int = 0,
) -> bytes:
    """The message data of one record."""
    parts = [
        _HEAD.pack(
            VERSION,
            timestamp_type,
            partition,
            offset,
            -1 if key is None else len(key),
            -1 if value is None else len(value),
            len(headers),
        )
    ]
    if key is not None:
        parts.append(key)
    if value is not None:
        parts.append(value)
    for name, header_value in headers:
        raw = name.encode()
        parts.append(_NAME.pack(len(raw)))
        parts.append(raw)
        parts.append(_LEN.pack(-1 if header_value is None else len(header_value)))
        if header_value is not None:
            parts.append(header_value)
    return b"".join(parts)


def decode(data: bytes, start: int, end: int, *, topic: str, log_time_ns: int) -> KafkaRecord:
    """The record held by ``data[start:end]`` (one message's data); :class:`FrameError`
    when it is malformed."""
    try:
        version, ts_type, partition, offset, key_len, value_len, count = _HEAD.unpack_from(
            data, start
        )
        if version != VERSION:
            raise FrameError(f"frame version {version}, expected {VERSION}")
        pos = start + _HEAD_SIZE
        if key_len < 0:
            key = None
        else:
            key = data[pos : pos + key_len]
            pos += key_len
        if value_len < 0:
            value = None
        else:
            value = data[pos : pos + value_len]
            pos += value_len
        headers: Headers = ()
        if count:
            found: list[tuple[str, bytes | None]] = []
            for _ in range(count):
                (name_len,) = _NAME.unpack_from(data, pos)
                pos += _NAME.size
                name = data[pos : pos + name_len].decode()
                pos += name_len
                (length,) = _LEN.unpack_from(data, pos)
                pos += _LEN.size
                found.append((name, None if length < 0 else data[pos : pos + length]))
                pos += max(length, 0)
            headers = tuple(found)
    except (struct.error, UnicodeDecodeError) as exc:
        raise FrameError(f"malformed record frame: {exc}") from None
    if pos != end:
        raise FrameError(f"record frame is {end - start} bytes, its fields {pos - start}")
    return KafkaRecord(
        topic, partition, offset, log_time_ns // 1_000_000, key, value, headers, ts_type
    )
