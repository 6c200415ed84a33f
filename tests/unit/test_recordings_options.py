"""Replay options, topic selection and the time shift: pure logic."""

from __future__ import annotations

import orjson
import pytest

from recordings.options import OptionsError, ReplayOptions, parse_remap, parse_time_ms
from recordings.recorder import base_name, select_topics
from recordings.timeshift import shift_headers, shift_value


def test_speed_range_and_bad_options_are_refused_with_reasons() -> None:
    assert ReplayOptions(namespace="sandbox", speed=0.1).speed == 0.1
    assert ReplayOptions(namespace="sandbox", speed=1000).speed == 1000
    with pytest.raises(OptionsError, match="out of range"):
        ReplayOptions(namespace="sandbox", speed=1001)
    with pytest.raises(OptionsError, match="out of range"):
        ReplayOptions(namespace="sandbox", speed=0.05)
    with pytest.raises(OptionsError, match="must match"):
        ReplayOptions(namespace="Bad-NS")
    with pytest.raises(OptionsError, match="not after"):
        ReplayOptions(namespace="sandbox", start_index=10, end_index=10)
    with pytest.raises(OptionsError, match="SOURCE=TARGET"):
        parse_remap(["ioc.traffic.events"])
    with pytest.raises(OptionsError, match="time zone"):
        parse_time_ms("2024-09-07T08:00:00")


def test_filter_remap_and_live_guard() -> None:
    options = ReplayOptions(
        namespace="drill",
        topics=("ioc.traffic.*", "ioc.school.events"),
        remap={"ioc.traffic.events": "ioc.traffic.replayed"},
    )
    assert options.wants("ioc.traffic.events")
    assert options.wants("ioc.school.events")
    assert not options.wants("ioc.hospital.events")
    assert options.target_base("ioc.traffic.events") == "ioc.traffic.replayed"
    assert options.target_base("ioc.school.events") == "ioc.school.events"
    assert not options.touches_live("live")
    assert ReplayOptions(namespace="live").touches_live("live")
    assert ReplayOptions(namespace="t_home").touches_live("t_home")
    assert parse_time_ms("2024-09-07T08:00:00+07:00") == 1_725_670_800_000


def test_topics_of_a_namespace_are_selected_by_glob() -> None:
    names = [
        "ioc.traffic.events",
        "ioc.state",
        "drill.ioc.traffic.events",
        "__consumer_offsets",
        "vendor.feed",
    ]
    assert select_topics(names, "live", ["ioc.*.events"]) == {
        "ioc.traffic.events": "ioc.traffic.events"
    }
    assert select_topics(names, "live", ["*"]) == {
        "ioc.state": "ioc.state",
        "ioc.traffic.events": "ioc.traffic.events",
        "vendor.feed": "vendor.feed",
    }
    assert select_topics(names, "drill", ["*"]) == {
        "drill.ioc.traffic.events": "ioc.traffic.events"
    }
    assert base_name("__consumer_offsets", "live") is None


def test_time_shift_moves_the_event_time_in_value_and_header() -> None:
    value = orjson.dumps({"id": "1", "time": "2024-09-07T08:00:00+07:00", "data": {"vehicles": 3}})
    shifted = orjson.loads(shift_value(value, 90_000) or b"")
    assert shifted["time"] == "2024-09-07T08:01:30+07:00"
    assert shifted["data"] == {"vehicles": 3}
    assert shift_value(b"not json", 1000) == b"not json"
    assert shift_value(None, 1000) is None
    headers = (("ce_time", b"2024-09-07T01:00:00+00:00"), ("ce_id", b"x"))
    assert shift_headers(headers, -3_600_000) == (
        ("ce_time", b"2024-09-07T00:00:00+00:00"),
        ("ce_id", b"x"),
    )
