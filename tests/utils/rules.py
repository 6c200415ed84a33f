"""Rule sets for tests that must not depend on the shipped rule library."""

from __future__ import annotations

from typing import Any

from streams.alerts.rules import RuleFile


def instant_rules() -> list[Any]:
    """A fire alarm rule (quiet after 10 minutes) and a smoke rule with a clear event."""
    return RuleFile.model_validate(
        {
            "rules": [
                {
                    "kind": "instant",
                    "id": "alarm-fire",
                    "domain": "security",
                    "title": {"en": "Fire alarm", "vi": "Báo cháy"},
                    "severity": "critical",
                    "match": {
                        "type": "city.security.alarm.v1",
                        "where": [{"field": "kind", "op": "in", "value": ["fire"]}],
                    },
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
