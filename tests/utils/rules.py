"""Rule sets for tests that must not depend on the shipped rule library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from streams.alerts.rules import RULES_DIR, RuleFile

#: An instant rule: a fire alarm opens a critical alert (rule files as written).
FIRE_ALARM: dict[str, Any] = {
    "kind": "instant",
    "id": "alarm-fire",
    "domain": "security",
    "title": {"en": "Fire alarm", "vi": "Báo cháy"},
    "severity": "critical",
    "match": {
        "type": "city.security.alarm.v1",
        "where": [{"field": "kind", "op": "in", "value": ["fire"]}],
    },
}


def instant_rules() -> list[Any]:
    """A fire alarm rule (quiet after 10 minutes) and a smoke rule with a clear event."""
    return RuleFile.model_validate(
        {
            "rules": [
                {
                    **FIRE_ALARM,
                    "clear_minutes": 10,
                    "update_minutes": 5,
                    "report": ["kind", "zone"],
                },
                {
                    "kind": "instant",
                    "id": "smoke",
                    "domain": "security",
                    "title": {"en": "Smoke", "vi": "Khói"},
                    "severity": "warning",
                    "match": {
                        "type": "city.security.detection.v1",
                        "where": [
                            {"field": "kind", "op": "==", "value": "smoke"},
                            {"field": "confidence", "op": ">=", "value": 0.7},
                        ],
                    },
                    "clear": {
                        "type": "city.security.alarm.v1",
                        "where": [{"field": "zone", "op": "==", "value": "all-clear"}],
                    },
                },
            ]
        }
    ).rules


def shipped_rules_dir(folder: Path, *rule_ids: str) -> Path:
    """A rules folder (for IOC_STREAMS__RULES_DIR) holding only these rules of the
    shipped library: tests of other layers keep their alerts to the ones they look at as
    the library grows."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(RULES_DIR.glob("*.json")):
        rules = [r for r in orjson.loads(path.read_bytes())["rules"] if r["id"] in rule_ids]
        if rules:
            (folder / path.name).write_bytes(orjson.dumps({"rules": rules}))
    return folder
