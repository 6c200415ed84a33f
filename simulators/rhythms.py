"""Daily and weekly rhythms of the province, as tables by minute of the week (local time).

Index ``weekday * 1440 + minute`` (Monday = 0, local time UTC+7). Tables are built once
and looked up per tick, so the generators never evaluate curves per event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any

MINUTES_PER_WEEK = 7 * 1440
TRAFFIC_PROFILES = ("urban", "arterial", "rural")
SITES = ("street", "market", "residential", "industrial", "port", "border", "beach", "airport")


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-((hour - centre) ** 2) / width)


def daily_traffic(hour: float, weekday: int) -> float:
    """Urban traffic relative to the daily mean: rush hours at 07:30 and 17:30, lowest near 03:00.

    Saturdays and Sundays have weaker rush hours and a busier midday.
    """
    rush = (1.0, 1.0, 1.0, 1.0, 1.1, 0.6, 0.45)[weekday]
    midday = (1.0, 1.0, 1.0, 1.0, 1.0, 1.25, 1.15)[weekday]
    morning = 1.6 * _bump(hour, 7.5, 1.5)
    evening = 1.4 * _bump(hour, 17.5, 2.0)
    day = 0.55 * _bump(hour, 12.5, 18)
    return 0.08 + rush * (morning + evening) + midday * day


@lru_cache(maxsize=8)
def traffic_table(profile: str) -> tuple[float, ...]:
    """Traffic factor by minute of week for a profile: urban, arterial (freight) or rural."""
    out = []
    for m in range(MINUTES_PER_WEEK):
        base = daily_traffic((m % 1440) / 60, m // 1440)
        if profile == "arterial":
            base = 0.2 + 0.8 * base
        elif profile == "rural":
            base = 0.6 * base
        out.append(base)
    return tuple(out)


@lru_cache(maxsize=1)
def admission_table() -> tuple[float, ...]:
    """Admissions relative to the mean: late-morning and evening peaks, fewer on Sundays."""
    out = []
    for m in range(MINUTES_PER_WEEK):
        hour, weekday = (m % 1440) / 60, m // 1440
        day = 0.35 + 0.9 * _bump(hour, 10, 8) + 0.75 * _bump(hour, 19.5, 6)
        out.append(day * (0.85 if weekday == 6 else 1.0))
    return tuple(out)


def occupancy_target(minute_of_week: int) -> float:
    """Share of beds occupied the hospitals drift towards: highest midweek, lowest on Sunday."""
    weekday = minute_of_week // 1440
    hour = (minute_of_week % 1440) / 60
    return (0.80, 0.84, 0.86, 0.84, 0.80, 0.75, 0.72)[weekday] + 0.02 * _bump(hour, 15, 20)


@lru_cache(maxsize=16)
def site_table(site: str) -> tuple[float, ...]:
    """Camera detection rate relative to the site's mean, by minute of week.

    Beaches and markets follow people (day and evening, weekends busier); ports, border
    gates and industrial sites are watched for intrusion, so their detections peak at night.
    """
    out = []
    for m in range(MINUTES_PER_WEEK):
        hour, weekend = (m % 1440) / 60, m // 1440 >= 5
        night = 1.0 if hour >= 22 or hour < 5 else 0.0
        people = 0.1 + _bump(hour, 10, 10) + 1.2 * _bump(hour, 19.5, 6)
        if site in ("beach", "market"):
            value = people * (1.5 if weekend else 1.0)
        elif site in ("port", "border", "industrial"):
            value = 0.5 + 0.4 * people + 1.2 * night
        else:
            value = 0.3 + 0.6 * people + 0.5 * night
        out.append(value)
    return tuple(out)


#: Detection kinds and their weights by (site group, night?).
DETECTION_MIX: Mapping[tuple[str, bool], Mapping[str, float]] = {
    ("people", False): {"crowd": 0.7, "loitering": 0.15, "wrong_way": 0.1, "smoke": 0.05},
    ("people", True): {"crowd": 0.3, "loitering": 0.4, "intrusion": 0.2, "smoke": 0.1},
    ("guarded", False): {"crowd": 0.4, "loitering": 0.3, "intrusion": 0.2, "smoke": 0.1},
    ("guarded", True): {"intrusion": 0.55, "loitering": 0.35, "smoke": 0.07, "fire": 0.03},
    ("street", False): {"crowd": 0.3, "wrong_way": 0.5, "loitering": 0.15, "smoke": 0.05},
    ("street", True): {"wrong_way": 0.4, "loitering": 0.35, "intrusion": 0.2, "fire": 0.05},
}


def site_group(site: str) -> str:
    """The detection-mix group of a camera site."""
    if site in ("beach", "market", "airport"):
        return "people"
    if site in ("port", "border", "industrial"):
        return "guarded"
    return "street"


class SchoolCalendar:
    """School days (weekdays outside the summer break and holidays) and session hours."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.weekdays = frozenset(int(d) for d in spec["weekdays"])
        self.sessions = tuple((_minutes(a), _minutes(b)) for a, b in spec["sessions"])
        self.summer = tuple(spec["summer_break"])
        self.holidays = frozenset(spec["holidays"])

    def is_school_day(self, day: date) -> bool:
        """Whether pupils are expected at school on ``day``."""
        month_day = day.strftime("%m-%d")
        if day.weekday() not in self.weekdays or month_day in self.holidays:
            return False
        return not self.summer[0] <= month_day <= self.summer[1]

    def session_elapsed(self, minute_of_day: int) -> int | None:
        """Minutes since the current session began, or None outside sessions."""
        for begin, end in self.sessions:
            if begin <= minute_of_day < end:
                return minute_of_day - begin
        return None


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)
