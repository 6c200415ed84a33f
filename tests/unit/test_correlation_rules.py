"""Correlation rule files: the shipped rules load and name shipped alert rules and SOPs;
a bad file names the file and the field at fault."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.alerts import load_rules
from streams.incidents.rules import (
    CORRELATION_DIR,
    CorrelationError,
    CorrelationRule,
    load_correlation_rules,
)
from streams.incidents.sops import load_sops

SHIPPED = {
    "flooding",
    "landslide",
    "storm",
    "crash-casualties",
    "crowd-crush",
    "fire",
    "mass-admissions",
    "sensor-outage",
    "alarm-with-incident",
}


def _rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "fire",
        "title": {"en": "Fire", "vi": "Cháy"},
        "level": "commune",
        "sop": "fire",
        "severity": "critical",
        "within_minutes": 15,
        "quiet_minutes": 30,
        "requires": [{"rules": ["security-alarm-fire"]}],
    }
    rule.update(changes)
    return rule


def _write(directory: Path, *rules: dict[str, Any], name: str = "rules.json") -> Path:
    path = directory / name
    path.write_bytes(orjson.dumps({"rules": list(rules)}))
    return path


def _named_patterns(rule: CorrelationRule) -> list[str]:
    joins = () if rule.joins == "any" else rule.joins
    return [p for match in (*rule.requires, *joins) for p in match.rules]


def test_the_shipped_rules_load() -> None:
    rules = load_correlation_rules()
    assert {rule.id for rule in rules} == SHIPPED
    assert load_correlation_rules(CORRELATION_DIR) == rules
    assert {rule.level for rule in rules} == {"commune", "zone"}


@pytest.mark.parametrize("rule", load_correlation_rules(), ids=lambda r: r.id)
def test_every_alert_rule_a_shipped_rule_names_exists(rule: CorrelationRule) -> None:
    alert_rules = [r.id for r in load_rules()]
    for pattern in _named_patterns(rule):
        assert any(fnmatchcase(a, pattern) for a in alert_rules), (
            f"{rule.id}: {pattern!r} matches no shipped alert rule"
        )


@pytest.mark.parametrize("rule", load_correlation_rules(), ids=lambda r: r.id)
def test_every_shipped_rule_names_a_shipped_sop(rule: CorrelationRule) -> None:
    assert rule.sop in load_sops(), f"{rule.id}: no SOP {rule.sop!r}"


def test_a_requirement_matches_by_pattern_domain_and_severity() -> None:
    rule = CorrelationRule.model_validate(
        _rule(
            requires=[{"rules": ["traffic-crash*"], "domains": ["traffic"]}],
            joins=[{"severities": ["critical"]}],
        )
    )
    need = rule.requires[0]
    assert need.matches(rule_id="traffic-crash", domain="traffic", severity="warning")
    assert need.matches(rule_id="traffic-crash-serious", domain="traffic", severity="critical")
    assert not need.matches(rule_id="traffic-closure", domain="traffic", severity="warning")
    assert not need.matches(rule_id="traffic-crash", domain="security", severity="warning")
    # Joins relate alerts too; "any" relates every alert of the place.
    assert rule.relates(rule_id="school-fire", domain="school", severity="critical")
    assert not rule.relates(rule_id="school-injury", domain="school", severity="warning")
    anything = CorrelationRule.model_validate(_rule(joins="any"))
    assert anything.relates(rule_id="school-injury", domain="school", severity="warning")


def test_rules_of_several_files_load_in_file_name_order(tmp_path: Path) -> None:
    _write(tmp_path, _rule(id="second"), name="b.json")
    _write(tmp_path, _rule(id="first"), _rule(id="also-first"), name="a.json")
    (tmp_path / "notes.txt").write_text("not a rule file")
    assert [r.id for r in load_correlation_rules(tmp_path)] == ["first", "also-first", "second"]


def test_a_directory_without_rule_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorrelationError, match="no correlation rule files") as caught:
        load_correlation_rules(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"rules": [')
    with pytest.raises(CorrelationError) as caught:
        load_correlation_rules(tmp_path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "line 1" in str(caught.value)


@pytest.mark.parametrize(
    ("rule", "field", "why"),
    [
        pytest.param(
            _rule(colour="red"),
            "rules[1].colour",
            "Extra inputs are not permitted",
            id="unknown field",
        ),
        pytest.param(
            _rule(requires=[{"rules": ["x"], "colour": "red"}]),
            "rules[1].requires[0].colour",
            "Extra inputs are not permitted",
            id="unknown field of a requirement",
        ),
        pytest.param(_rule(id="Fire_1"), "rules[1].id", "should match pattern", id="bad id"),
        pytest.param(_rule(sop="Fire SOP"), "rules[1].sop", "should match pattern", id="bad sop"),
        pytest.param(_rule(requires=[]), "rules[1].requires", "at least 1 item", id="no requires"),
        pytest.param(
            _rule(requires=[{"rules": ["x"], "count": 0}]),
            "rules[1].requires[0].count",
            "greater than or equal to 1",
            id="count 0",
        ),
        pytest.param(_rule(level="city"), "rules[1].level", "'commune' or 'zone'", id="level"),
        pytest.param(
            _rule(requires=[{"domains": ["weather"]}]),
            "rules[1].requires[0].domains[0]",
            "'traffic'",
            id="domain",
        ),
        pytest.param(
            _rule(severity="fatal"),
            "rules[1].severity",
            "'info', 'warning' or 'critical'",
            id="severity",
        ),
        pytest.param(
            _rule(within_minutes=0),
            "rules[1].within_minutes",
            "greater than or equal to 1",
            id="empty window",
        ),
        pytest.param(
            _rule(joins="all"), "rules[1].joins.literal['any']", "should be 'any'", id="joins"
        ),
    ],
)
def test_a_bad_rule_names_the_file_and_the_field(
    tmp_path: Path, rule: dict[str, Any], field: str, why: str
) -> None:
    # The good file before it loads; the bad rule is the second of its file.
    _write(tmp_path, _rule(id="good"), name="a.json")
    path = _write(tmp_path, _rule(id="other"), rule, name="b.json")
    with pytest.raises(CorrelationError) as caught:
        load_correlation_rules(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert f"{field}: " in message
    assert why in message


def test_an_empty_file_of_rules_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(orjson.dumps({"rules": []}))
    with pytest.raises(CorrelationError) as caught:
        load_correlation_rules(tmp_path)
    assert (
        str(caught.value)
        == f"{path}: rules: List should have at least 1 item after validation, not 0"
    )


def test_a_rule_id_repeated_across_files_names_both_files(tmp_path: Path) -> None:
    first = _write(tmp_path, _rule(id="fire"), name="a.json")
    second = _write(tmp_path, _rule(id="flood"), _rule(id="fire"), name="b.json")
    with pytest.raises(CorrelationError) as caught:
        load_correlation_rules(tmp_path)
    assert str(caught.value) == f"{second}: rule id 'fire' already in {first}"


def test_a_rule_id_repeated_in_one_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _rule(id="fire"), _rule(id="fire"))
    with pytest.raises(CorrelationError) as caught:
        load_correlation_rules(tmp_path)
    assert str(caught.value) == f"{path}: rule id 'fire' already in {path}"
