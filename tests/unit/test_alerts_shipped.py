"""Each shipped rule opens on its case and stays quiet on the cases next to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest

from streams.alerts.engine import evaluate_rule
from streams.alerts.rules import Rule, load_rules
from streams.alerts.track import TrackJson
from streams.alerts.transitions import AlertTransition
from streams.entity_record import BUCKET_MS

T0 = 1_725_696_000_000  # 2024-09-07T08:00:00Z = 15:00 in Quang Ninh
NINE_LOCAL = T0 - 6 * 3_600_000  # 2024-09-07T09:00:00+07:00
HOUR = 60

Minute = dict[str, float] | None


def _rule(rule_id: str) -> Rule:
    return cast(Rule, next(rule for rule in load_rules() if rule.id == rule_id))


def feed(
    rule_id: str, minutes: list[Minute], *, start: int = T0, state: TrackJson | None = None
) -> tuple[list[AlertTransition], TrackJson | None]:
    """One minute per call, one sample per metric, each minute final right after it."""
    rule = _rule(rule_id)
    out: list[AlertTransition] = []
    for i, metrics in enumerate(minutes):
        minute = start + i * BUCKET_MS
        buckets = {
            str(minute): {name: [1, v, v, v, v, minute] for name, v in (metrics or {}).items()}
        }
        state, found = evaluate_rule(
            rule, state, entity_id="e-1", buckets=buckets, last_final_ms=minute
        )
        out += found
    return out, state


def _local(hhmm: str) -> datetime:
    hours, minutes = int(hhmm[:2]), int(hhmm[3:])
    return datetime.fromtimestamp(
        (NINE_LOCAL + ((hours - 9) * HOUR + minutes) * BUCKET_MS) / 1000, tz=UTC
    )


JAM = {"avg_speed_kmh": 9.0, "occupancy_pct": 88.0}
FREE = {"avg_speed_kmh": 50.0, "occupancy_pct": 20.0}


@pytest.mark.parametrize(
    ("rule_id", "minutes", "start", "expected"),
    [
        ("traffic-congestion", [JAM, JAM, JAM], T0, ["open"]),
        ("traffic-congestion", [JAM, JAM, FREE, JAM, JAM], T0, []),
        ("hospital-er-saturation", [{"bed_occupancy_pct": 92.0}], T0, ["open"]),
        ("hospital-er-saturation", [{"bed_occupancy_pct": 90.0}] * 5, T0, []),
        ("school-low-attendance", [{"attendance_pct": 62.0}], NINE_LOCAL + 5 * BUCKET_MS, ["open"]),
        ("school-low-attendance", [{"attendance_pct": 62.0}] * 20, NINE_LOCAL - 30 * BUCKET_MS, []),
        ("school-low-attendance", [{"attendance_pct": 81.0}], NINE_LOCAL + 5 * BUCKET_MS, []),
        ("school-low-attendance", [{"attendance_pct": 40.0}], NINE_LOCAL + 160 * BUCKET_MS, []),
        ("security-intrusion", [{"intrusion_confidence": 0.85}], T0, ["open"]),
        ("security-intrusion", [{"intrusion_confidence": 0.8}], T0, ["open"]),
        ("security-intrusion", [{"intrusion_confidence": 0.79}] * 3, T0, []),
        ("security-intrusion", [{"detections": 1, "confidence": 0.99}] * 3, T0, []),
    ],
)
def test_shipped_rule_cases(
    rule_id: str, minutes: list[Minute], start: int, expected: list[str]
) -> None:
    transitions, _ = feed(rule_id, minutes, start=start)
    assert [t.state for t in transitions] == expected


def test_er_saturation_does_not_flap_between_its_open_and_clear_thresholds() -> None:
    beds = [92.0, 89.0, 91.0, 86.0, 93.0, 88.0] * 3
    transitions, _ = feed("hospital-er-saturation", [{"bed_occupancy_pct": b} for b in beds])
    assert [t.state for t in transitions] == ["open", "update"]  # update 15 minutes later
    assert transitions[0].severity == "critical"


def test_er_saturation_resolves_on_sparse_reports_below_the_clear_threshold() -> None:
    quiet: list[Minute] = [None] * 4
    report: Minute = {"bed_occupancy_pct": 80.0}
    minutes = [{"bed_occupancy_pct": 95.0}, *quiet, report, *quiet, report, *quiet, report]
    transitions, _ = feed("hospital-er-saturation", minutes)
    assert [t.state for t in transitions] == ["open", "resolve"]
    assert transitions[1].resolved_at == datetime.fromtimestamp(
        (T0 + 16 * BUCKET_MS) / 1000, tz=UTC
    )


def test_low_attendance_counts_from_nine_and_ends_with_the_morning_window() -> None:
    every_five: list[Minute] = []
    for _ in range(8):  # 08:40 to 09:19, a report every five minutes
        every_five += [{"attendance_pct": 64.0}, None, None, None, None]
    transitions, state = feed("school-low-attendance", every_five, start=NINE_LOCAL - 20 * 60_000)
    [opened] = transitions
    assert opened.opened_at == _local("09:01")  # the 09:00 report, judged as that minute ends
    assert opened.values == {"last(attendance_pct)": 64.0}
    rule = _rule("school-low-attendance")
    _, found = evaluate_rule(
        rule, state, entity_id="e-1", buckets={}, last_final_ms=NINE_LOCAL + 4 * HOUR * BUCKET_MS
    )
    assert [(t.state, t.resolved_at) for t in found] == [("resolve", _local("11:31"))]


def test_intrusion_resolves_after_ten_quiet_minutes_and_reopens_on_a_new_detection() -> None:
    transitions, state = feed("security-intrusion", [{"intrusion_confidence": 0.93}])
    rule = _rule("security-intrusion")
    _, early = evaluate_rule(
        rule, state, entity_id="e-1", buckets={}, last_final_ms=T0 + 9 * BUCKET_MS
    )
    assert early == []
    state, found = evaluate_rule(
        rule, state, entity_id="e-1", buckets={}, last_final_ms=T0 + 24 * 60 * BUCKET_MS
    )
    assert [(t.state, t.updated_at) for t in found] == [
        ("resolve", datetime.fromtimestamp((T0 + 11 * BUCKET_MS) / 1000, tz=UTC))
    ]
    again, _ = feed(
        "security-intrusion",
        [{"intrusion_confidence": 0.81}],
        start=T0 + 25 * 60 * BUCKET_MS,
        state=state,
    )
    assert [t.state for t in again] == ["open"]
    assert again[0].alert_id != transitions[0].alert_id
