"""Alert rule files: the shipped rules load, malformed files name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.alerts.rules import RULES_DIR, RuleError, load_rule_file, load_rules


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
    assert set(rules) == {
        "traffic-congestion",
        "hospital-er-saturation",
        "school-low-attendance",
        "security-intrusion",
    }
    congestion = rules["traffic-congestion"]
    assert congestion.for_minutes == 3
    assert [(c.metric, c.comparison, c.threshold) for c in congestion.condition.clauses] == [
        ("avg_speed_kmh", "<", 15),
        ("occupancy_pct", ">", 80),
    ]
    assert rules["school-low-attendance"].windows[0].start == "09:00"
    assert all(rule.title.vi and rule.title.en for rule in rules.values())


def test_a_valid_file_gives_its_rules_with_defaults(tmp_path: Path) -> None:
    [rule] = load_rule_file(_write(tmp_path / "a.json", _rule()))
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
