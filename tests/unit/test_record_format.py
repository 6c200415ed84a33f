"""The entity record's wire format on ``ioc.state``: records written before the record
was typed are read, and written again byte for byte."""

from __future__ import annotations

import base64

import orjson
import pytest

from streams.entity_record import Aggregate, decode_record, encode_record

# As the worker wrote them before the record was typed (dicts through orjson): a traffic
# record with window and stuck rules' states, a hospital one, and a security camera's with
# an instant rule's open alert, its transition and a kept raw event.
TODAY = [
    (
        b'{"e":"ix-1","d":"traffic","p":0,"o":13,"t":1725696390000,"b":{"1725696000000":'
        b'{"vehicles":[2,50,10,40,40,1725696030000],"avg_speed_kmh":[2,85.0,42.5,42.5,42'
        b'.5,1725696030000],"occupancy_pct":[2,60.0,30.0,30.0,30.0,1725696030000]},"1725'
        b'696060000":{"vehicles":[2,170,70,100,100,1725696090000],"avg_speed_kmh":[2,85.'
        b'0,42.5,42.5,42.5,1725696090000],"occupancy_pct":[2,60.0,30.0,30.0,30.0,1725696'
        b'090000]},"1725696120000":{"vehicles":[2,290,130,160,160,1725696150000],"avg_sp'
        b'eed_kmh":[2,85.0,42.5,42.5,42.5,1725696150000],"occupancy_pct":[2,60.0,30.0,30'
        b'.0,30.0,1725696150000]},"1725696180000":{"vehicles":[2,410,190,220,220,1725696'
        b'210000],"avg_speed_kmh":[2,85.0,42.5,42.5,42.5,1725696210000],"occupancy_pct":'
        b'[2,60.0,30.0,30.0,30.0,1725696210000]},"1725696240000":{"vehicles":[2,530,250,'
        b'280,280,1725696270000],"avg_speed_kmh":[2,85.0,42.5,42.5,42.5,1725696270000],"'
        b'occupancy_pct":[2,60.0,30.0,30.0,30.0,1725696270000]},"1725696300000":{"vehicl'
        b'es":[2,650,310,340,340,1725696330000],"avg_speed_kmh":[2,85.0,42.5,42.5,42.5,1'
        b'725696330000],"occupancy_pct":[2,60.0,30.0,30.0,30.0,1725696330000]},"17256963'
        b'60000":{"vehicles":[2,770,370,400,400,1725696390000],"avg_speed_kmh":[2,85.0,4'
        b'2.5,42.5,42.5,1725696390000],"occupancy_pct":[2,60.0,30.0,30.0,30.0,1725696390'
        b'000]}},"c":["1725696000000","1725696060000","1725696120000","1725696180000","1'
        b'725696240000","1725696300000","1725696360000"],"i":{"1725696000000":"rAMVE8TpL'
        b'l8=lxHOcDEqcEs=","1725696060000":"tKMc+3gl2z4=/L4gKr1cZKI=","1725696120000":"Q'
        b'4IRPBNMiLQ=yiYBjnBu494=","1725696180000":"9RXSvWuXl0k=XVtZ8+8IRgE=","172569624'
        b'0000":"MFgR23+XsRk=jQAyq2u5nQE=","1725696300000":"wi2s4E995ho=jzo7FdBocJ8=","1'
        b'725696360000":"c1SwpmjGOgo=yapRMM61gak="},"k":"city.traffic.flow.v1","s":{"veh'
        b'icles":400,"avg_speed_kmh":42.5,"occupancy_pct":30.0,"interval_s":60},"a":{"tr'
        b'affic-congestion":{"f":1725696180000,"p":{"1725696240000":[42.5,30.0],"1725696'
        b'300000":[42.5,30.0],"1725696360000":[42.5,30.0]}},"traffic-sensor-stuck":{"v":'
        b'[42.5,220],"f":1725696180000,"p":{"1725696240000":[[42.5,42.5,42.5],[250,280,2'
        b'80]],"1725696300000":[[42.5,42.5,42.5],[310,340,340]],"1725696360000":[[42.5,4'
        b'2.5,42.5],[370,400,400]]}}},"j":1725696180000,"x":[],"r":[]}'
    ),
    (
        b'{"e":"h-1","d":"hospital","p":0,"o":0,"t":1725696420000,"b":{"1725696420000":{'
        b'"bed_occupancy_pct":[1,50.0,50.0,50.0,50.0,1725696420000],"icu_occupancy_pct":'
        b'[1,50.0,50.0,50.0,50.0,1725696420000],"er_waiting":[1,3,3,3,3,1725696420000],"'
        b'ambulances_available":[1,2,2,2,2,1725696420000]}},"c":["1725696420000"],"i":{"'
        b'1725696420000":"g4emu11JkbI="},"k":"city.hospital.status.v1","s":{"beds_total"'
        b':100,"beds_occupied":50,"icu_total":10,"icu_occupied":5,"er_waiting":3,"ambula'
        b'nces_available":2},"a":{"hospital-er-saturation":{"p":{"1725696420000":[50.0]}'
        b'},"hospital-icu-saturation":{"p":{"1725696420000":[50.0]}},"hospital-ambulance'
        b'-shortage":{"p":{"1725696420000":[2]}},"hospital-er-waiting-surge":{"p":{"1725'
        b'696420000":[3]}}},"j":1725696240000,"x":[],"r":[]}'
    ),
    (
        '{"e":"cam-1","d":"security","p":0,"o":0,"t":1725696000000,"b":{"1725696000000"'
        ':{"alarms":[1,1,1,1,1,1725696000000]}},"c":["1725696000000"],"i":{"17256960000'
        '00":"JhDRZdaqh60="},"k":"city.security.alarm.v1","s":{"kind":"fire","zone":"lo'
        'bby"},"a":{"alarm-fire":{"a":{"id":"4e2a6547-a379-5ac5-9ae0-80a0af2f6d7d","o":'
        '1725696000000,"l":1725696000000,"u":1725696000000,"n":1}}},"j":1725695820000,"'
        'x":[{"alert_id":"4e2a6547-a379-5ac5-9ae0-80a0af2f6d7d","rule_id":"alarm-fire",'
        '"entity_id":"cam-1","domain":"security","severity":"critical","state":"open","'
        'opened_at":"2024-09-07T08:00:00Z","since":"2024-09-07T08:00:00Z","updated_at":'
        '"2024-09-07T08:00:00Z","resolved_at":null,"values":{"kind":"fire","zone":"lobb'
        'y","matches":1.0},"title_en":"Fire alarm","title_vi":"Báo cháy","commune_id":n'
        'ull,"zone_id":null}],"r":[{"id":"cam-1-1725696000.0-fire-lobby","source":"/tes'
        'ts/alarms","type":"city.security.alarm.v1","time":1725696000000,"data":{"kind"'
        ':"fire","zone":"lobby"}}]}'
    ).encode(),
]


@pytest.mark.parametrize("value", TODAY, ids=["traffic", "hospital", "security"])
def test_todays_records_are_read_and_written_again_byte_for_byte(value: bytes) -> None:
    record = decode_record(value)
    assert encode_record(record) == value
    assert record.entity_id == orjson.loads(value)["e"]


def test_aggregates_are_named_and_keep_integers_as_integers() -> None:
    record = decode_record(TODAY[1])
    waiting = record.buckets["1725696420000"]["er_waiting"]
    assert waiting == Aggregate(1, 3, 3, 3, 3, 1725696420000)
    assert isinstance(waiting.sum, int)
    assert record.buckets["1725696420000"]["bed_occupancy_pct"].max == 50.0
    assert b'"er_waiting":[1,3,3,3,3,1725696420000]' in encode_record(record)


def test_the_live_feeds_view_finds_the_open_alerts() -> None:
    [(rule, alert)] = decode_record(TODAY[2]).open_alerts()
    assert (rule, alert) == ("alarm-fire", "4e2a6547-a379-5ac5-9ae0-80a0af2f6d7d")
    assert decode_record(TODAY[0]).open_alerts() == []


def test_a_record_with_its_keys_in_another_order_is_the_same_record() -> None:
    """A record whose first event reached no instant or silent rule had ``j`` written
    before ``a``; its keys come back in the one order, every value the same."""
    wire = orjson.loads(TODAY[2])
    reordered = {k: wire[k] for k in [*(k for k in wire if k != "a"), "a"]}
    value = orjson.dumps(reordered)
    assert value != TODAY[2]
    assert encode_record(decode_record(value)) == TODAY[2]


def test_older_shapes_are_read() -> None:
    """Records written before ``i``, ``a``, ``j``, ``x`` and ``r`` existed, or with
    identities as lists of 64-bit integers, read as the code read them: absent keys at
    their empty values, identities as the same hashes' tokens."""
    wire = orjson.loads(TODAY[0])
    tokens = wire["i"]["1725696000000"]
    hashes = [int.from_bytes(base64.b64decode(tokens[n : n + 12]), "big") for n in (0, 12)]
    as_integers = {**wire, "i": {**wire["i"], "1725696000000": hashes}}
    assert encode_record(decode_record(orjson.dumps(as_integers))) == TODAY[0]
    oldest = {k: v for k, v in wire.items() if k not in ("i", "a", "j", "x", "r")}
    record = decode_record(orjson.dumps(oldest))
    assert (record.identities, record.rules, record.judged) == ({}, {}, None)
    assert (record.transitions, record.raw) == ([], [])
    again = orjson.loads(encode_record(record))
    assert {k: again[k] for k in oldest} == oldest  # every key it had, unchanged


def test_floats_keep_their_value_and_text_below_1e16() -> None:
    """msgspec writes a float of magnitude 1e16 or more as ``1e16`` where orjson wrote
    ``1e+16``: the same number to every JSON reader. Below that the text is the same."""
    wire = orjson.loads(TODAY[1])
    for value in (0.1 + 0.2, 12.5, -3.25e-9, 1e-7, 123456789.125, 1e15):
        wire["s"] = {"v": value}
        assert encode_record(decode_record(orjson.dumps(wire))) == orjson.dumps(wire)
    wire["s"] = {"v": 1e20}
    assert orjson.loads(encode_record(decode_record(orjson.dumps(wire)))) == wire


def test_a_value_that_is_no_record_is_refused() -> None:
    with pytest.raises(ValueError, match="missing required field"):
        decode_record(b'{"e": "ix-1"}')
