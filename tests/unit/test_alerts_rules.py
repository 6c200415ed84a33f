"""Alert rule files: the shipped rules load, malformed files name the file and the field."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from contract.payload import Payload, payload_fields
from contract.school import SchoolSafety
from contract.security import SecurityAlarm
from contract.traffic import TrafficIncident
from streams.alerts import Rule, RuleEngine
from streams.alerts.rules import RULES_DIR, RuleError, load_rule_file, load_rules
from tests.utils.rules import FIRE_ALARM


def _rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "slow-road",
        "domain": "traffic",
        "title": {"en": "Slow road", "vi": "Đường chậm"},
        "severity": "warning",
        "condition": {
            "clauses": [
                {"metric": "avg_speed_kmh", "statistic": "avg", "comparison": "<", "threshold": 15}
            ]
        },
        "for_minutes": 2,
    }
    rule.update(changes)
    return rule


def _write(path: Path, *rules: dict[str, Any]) -> Path:
    path.write_bytes(orjson.dumps({"rules": list(rules)}))
    return path


def test_the_shipped_rules_load_and_cover_the_design() -> None:
    rules = {rule.id: rule for rule in load_rules()}
    assert set(rules) >= {
        "traffic-congestion",
        "hospital-er-saturation",
        "hospital-icu-saturation",
        "hospital-ambulance-shortage",
        "hospital-er-waiting-surge",
        "hospital-admission-surge",
        "school-low-attendance",
        "security-intrusion",
    }
    # Every alarm, incident and safety kind of the contract raises an alert at once, and
    # so do the detections an operator must see: fire, smoke, wrong way, dense crowds,
    # and resuscitation cases at a hospital.
    engine = RuleEngine(list(rules.values()))
    samples: list[tuple[str, dict[str, Any]]] = [
        *[("city.security.alarm.v1", {"kind": k, "zone": "z"}) for k in _kinds(SecurityAlarm)],
        *[
            ("city.traffic.incident.v1", {"kind": k, "severity": 4, "lanes_blocked": 1})
            for k in _kinds(TrafficIncident)
        ],
        *[("city.school.safety.v1", {"kind": k}) for k in _kinds(SchoolSafety)],
        *[
            ("city.security.detection.v1", {"kind": k, "confidence": 0.95, "count": 2500})
            for k in ("fire", "smoke", "wrong_way", "crowd")
        ],
        ("city.hospital.admission.v1", {"triage": 1}),
    ]
    for event_type, data in samples:
        opened = engine.on_event(
            {},
            entity_id="e",
            event_type=event_type,
            data=data,
            time_ms=0,
            watermark_ms=None,
            lateness_ms=120_000,
        )
        assert [t.state for t in opened][:1] == ["open"], (event_type, data)
    congestion = cast(Rule, rules["traffic-congestion"])
    assert congestion.for_minutes == 3
    assert [(c.metric, c.comparison, c.threshold) for c in congestion.condition.clauses] == [
        ("avg_speed_kmh", "<", 15),
        ("occupancy_pct", ">", 80),
    ]
    assert cast(Rule, rules["school-low-attendance"]).windows[0].start == "09:00"
    assert all(rule.title.vi and rule.title.en for rule in rules.values())


def _kinds(model: type[Payload]) -> tuple[str, ...]:
    return typing.get_args(payload_fields(model)["kind"])


def test_a_valid_file_gives_its_rules_with_defaults(tmp_path: Path) -> None:
    [loaded] = load_rule_file(_write(tmp_path / "a.json", _rule()))
    rule = cast(Rule, loaded)
    assert (rule.clear_minutes, rule.max_gap_minutes, rule.windows) == (1, 0, [])
    assert rule.condition.combine == "all"
    assert rule.condition.clauses[0].label == "avg(avg_speed_kmh)"


def test_json_that_does_not_parse_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"rules": [')
    with pytest.raises(RuleError, match=r"broken\.json"):
        load_rule_file(path)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"severity": "urgent"}, r"rules\[0\]\(slow-road\)\.severity"),
        ({"for_minute": 3}, r"rules\[0\]\(slow-road\)\.for_minute: Extra inputs"),
        ({"for_minutes": 0}, r"rules\[0\]\(slow-road\)\.for_minutes"),
        ({"title": {"en": "Slow"}}, r"rules\[0\]\(slow-road\)\.title\.vi: Field required"),
        ({"windows": [{"start": "9:00", "end": "11:00"}]}, r"windows\[0\]\.start"),
        ({"windows": [{"start": "09:00", "end": "09:00"}]}, r"windows\[0\]: .*empty"),
        (
            {
                "condition": {
                    "clauses": [
                        {"metric": "x", "statistic": "median", "comparison": "<", "threshold": 1}
                    ]
                }
            },
            r"condition\.clauses\[0\]\.statistic",
        ),
        (
            {
                "condition": {
                    "clauses": [
                        {
                            "metric": "occupancy_pct",
                            "statistic": "avg",
                            "comparison": ">",
                            "threshold": 80,
                            "clear_threshold": 85,
                        }
                    ]
                }
            },
            r"condition\.clauses\[0\]: .*clear_threshold 85.0 must not be stricter",
        ),
        ({"condition": {"clauses": []}}, r"condition\.clauses: List should have at least 1"),
    ],
)
def test_a_malformed_rule_names_the_file_and_the_field(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    path = _write(tmp_path / "bad-rules.json", _rule(id="fine"), _rule(**changes))
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert caught.match(field.replace("rules\\[0\\]", "rules\\[1\\]"))


def test_a_file_without_rules_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(b'{"rules": []}')
    with pytest.raises(RuleError, match=r"empty\.json: rules: List should have at least 1"):
        load_rule_file(path)


def test_rule_ids_are_unique_across_files(tmp_path: Path) -> None:
    _write(tmp_path / "a.json", _rule())
    _write(tmp_path / "b.json", _rule(domain="hospital"))
    with pytest.raises(
        RuleError, match=r"b\.json: rule id 'slow-road' already defined in .*a\.json"
    ):
        load_rules(tmp_path)


def test_a_directory_without_rule_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no rule files"):
        load_rules(tmp_path)


def test_rules_load_in_file_name_order(tmp_path: Path) -> None:
    _write(tmp_path / "b.json", _rule(id="second"))
    _write(tmp_path / "a.json", _rule(id="first"))
    assert [rule.id for rule in load_rules(tmp_path)] == ["first", "second"]
    assert RULES_DIR.is_dir()


@pytest.mark.parametrize(
    ("change", "where", "why"),
    [
        ({"match": {"type": "city.security.alarm.v9"}}, "match", "no event type"),
        (
            {
                "match": {
                    "type": "city.security.alarm.v1",
                    "where": [{"field": "kinds", "op": "==", "value": "fire"}],
                }
            },
            "match",
            "has no field 'kinds'",
        ),
        (
            {
                "match": {
                    "type": "city.security.alarm.v1",
                    "where": [{"field": "kind", "op": "in", "value": ["fyre"]}],
                }
            },
            "match",
            "'kind' is never 'fyre'",
        ),
        (
            {
                "match": {
                    "type": "city.security.detection.v1",
                    "where": [{"field": "kind", "op": ">", "value": 1}],
                }
            },
            "match",
            "is not a number",
        ),
        (
            {
                "match": {
                    "type": "city.security.detection.v1",
                    "where": [{"field": "confidence", "op": "==", "value": 1.5}],
                }
            },
            "match",
            "'confidence' is never 1.5; it is from 0 to 1",
        ),
        (
            {
                "match": {
                    "type": "city.security.detection.v1",
                    "where": [{"field": "confidence", "op": "in", "value": 1}],
                }
            },
            "match.where[0]",
            "non-empty list",
        ),
        (
            {"match": {"type": "city.traffic.incident.v1"}},
            "",
            "is not an event of domain 'security'",
        ),
        ({"report": ["zone", "floor"]}, "", "has no field floor"),
        ({"severity": "urgent"}, "severity", "'info', 'warning' or 'critical'"),
        ({"clear_minutes": 0}, "clear_minutes", "greater than or equal to 1"),
    ],
)
def test_a_bad_instant_rule_names_its_file_rule_and_field(
    tmp_path: Path, change: dict[str, Any], where: str, why: str
) -> None:
    path = _write(tmp_path / "security.json", {**FIRE_ALARM, **change})
    with pytest.raises(RuleError) as refused:
        load_rule_file(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: rules[0](alarm-fire){'.' + where if where else ''}:")
    assert why in message
