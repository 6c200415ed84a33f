"""Recording files without Kafka: frames, parts, damage found and located, names refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioc.settings import Settings
from recordings.frame import FrameError, KafkaRecord, decode, encode
from recordings.reader import RecordingError
from recordings.recording import Recording
from recordings.store import NameError_, RecordingStore, check_name
from recordings.writer import RecordingWriter

TOPIC = "t_x.ioc.traffic.events"


def _records(n: int) -> list[KafkaRecord]:
    return [
        KafkaRecord(
            TOPIC,
            i % 4,
            i // 4,
            1_725_670_800_000 + i * 7,
            None if i % 50 == 0 else f"qn-ix-{i % 97:03d}".encode(),
            None if i % 77 == 0 else (f'{{"n": {i}, "pad": "' + "x" * (i % 300) + '"}').encode(),
            (("trace", f"{i}".encode()), ("empty", b""), ("none", None)) if i % 3 else (),
            i % 2,
        )
        for i in range(n)
    ]


def _write(directory: Path, records: list[KafkaRecord], **kw: int) -> RecordingWriter:
    writer = RecordingWriter(
        directory,
        chunk_bytes=kw.get("chunk_bytes", 16 * 1024),
        split_bytes=kw.get("split_bytes", 1024 * 1024),
        split_s=3600,
        metadata={"name": directory.name},
    )
    writer.add_topic(
        TOPIC, {"namespace": "t_x", "base_topic": "ioc.traffic.events", "partitions": "4"}
    )
    for record in records:
        writer.write(record)
    writer.close()
    return writer


def test_frame_round_trip_keeps_nulls_empties_and_headers() -> None:
    for record in _records(200):
        data = encode(
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=record.headers,
            timestamp_type=record.timestamp_type,
        )
        assert (
            decode(data, 0, len(data), topic=TOPIC, log_time_ns=record.timestamp_ms * 10**6)
            == record
        )


def test_frame_refuses_trailing_bytes_and_other_versions() -> None:
    data = encode(partition=0, offset=1, key=b"k", value=b"v")
    with pytest.raises(FrameError, match="its fields"):
        decode(data + b"!", 0, len(data) + 1, topic=TOPIC, log_time_ns=0)
    with pytest.raises(FrameError, match="version 9"):
        decode(b"\x09" + data[1:], 0, len(data), topic=TOPIC, log_time_ns=0)


def test_parts_split_by_size_and_read_back_in_order(tmp_path: Path) -> None:
    records = _records(20_000)
    writer = _write(tmp_path / "rec", records, split_bytes=64 * 1024)
    assert len(writer.parts) >= 2
    recording = Recording(tmp_path / "rec")
    assert list(recording.records()) == records
    report = recording.scan()
    assert report.damage is None
    assert report.records == {TOPIC: 20_000}
    assert report.first_ms == records[0].timestamp_ms
    assert report.last_ms == records[-1].timestamp_ms
    assert report.topics[TOPIC].partitions == 4


def test_truncated_part_is_readable_up_to_its_last_whole_chunk(tmp_path: Path) -> None:
    records = _records(5_000)
    writer = _write(tmp_path / "rec", records)
    part = writer.parts[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) * 2 // 3])
    recording = Recording(tmp_path / "rec")
    with pytest.raises(RecordingError, match=r"part-00000\.mcap: chunk \d+ at byte \d+: truncated"):
        list(recording.records())
    report = Recording(tmp_path / "rec").scan()
    assert report.damage is not None
    recovered = report.records[TOPIC]
    assert 0 < recovered < 5_000
    assert list(Recording(tmp_path / "rec").records(partial=True)) == records[:recovered]


def test_corrupt_chunk_names_its_chunk_and_reason(tmp_path: Path) -> None:
    writer = _write(tmp_path / "rec", _records(5_000))
    part = writer.parts[0]
    data = bytearray(part.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    part.write_bytes(bytes(data))
    report = Recording(tmp_path / "rec").scan()
    assert report.damage is not None
    assert any(word in report.damage.reason for word in ("zstd", "CRC", "unreadable", "truncated"))
    assert report.damage.chunk > 0
    assert "recoverable" not in report.damage.describe()


def test_not_an_mcap_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.mcap"
    path.write_bytes(b"hello, this is not a recording")
    report = Recording(path).scan()
    assert report.damage is not None
    assert "bad magic" in report.damage.describe()


@pytest.mark.parametrize(
    "name",
    ["..", "../etc", "a/b", "a\\b", "/abs", ".hidden", "a..b", "x" * 65, "nul\x00", "é", "", "a b"],
)
def test_hostile_names_are_refused(tmp_path: Path, name: str) -> None:
    store = RecordingStore(Settings(state_dir=tmp_path), seeds=tmp_path / "seeds")
    with pytest.raises(NameError_):
        check_name(name)
    with pytest.raises(NameError_):
        store.find(name)
    with pytest.raises(NameError_):
        store.new_path(name)
    assert not (tmp_path.parent / "etc").exists()


def test_store_lists_recorded_and_seed_recordings(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "storm.mcap").write_bytes(b"")
    store = RecordingStore(Settings(state_dir=tmp_path), seeds=seeds)
    _write(store.new_path("drill-1"), _records(10))
    assert [(e.name, e.source) for e in store.list()] == [
        ("drill-1", "recorded"),
        ("storm", "seed"),
    ]
    with pytest.raises(FileExistsError):
        store.new_path("drill-1")
