"""What every series route shares: bucket widths and their alignment to local midnight, the
metric and range parameters and their defaults, and the point limit."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query

from api.params import TIME_RANGE, Instant
from api.problems import Problem
from ioc.db.queries import (
    SERIES_WIDTHS,
)

#: Local midnight in Quang Ninh: the origin of every bucket, as in the rollups.
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC) - timedelta(hours=7)


#: ``bucket=auto`` picks the finest width giving at most this many points.
AUTO_POINTS = 1440


JSON = "application/json"


#: The query parameters every series route takes: the metric and the range.
MetricParam = Annotated[str, Query(min_length=1, max_length=64, examples=["vehicles"])]


StartParam = Annotated[
    Instant | None, Query(alias="from", description=f"Default: 24 h before `to`. {TIME_RANGE}")
]


EndParam = Annotated[Instant | None, Query(alias="to", description=f"Default: now. {TIME_RANGE}")]


def series_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The range asked for, with its defaults (the 24 h up to now); a 422 problem when it
    ends before it starts."""
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=24)
    if start >= end:
        raise Problem(422, "invalid-request", "Invalid request", "from must be before to")
    return start, end


def align(at: datetime, width_s: int) -> datetime:
    """``at`` floored to a bucket of ``width_s`` seconds from local midnight."""
    steps = math.floor((at - ORIGIN).total_seconds() / width_s)
    return ORIGIN + timedelta(seconds=steps * width_s)


def choose_width(start: datetime, end: datetime, bucket: str, max_points: int) -> str:
    """The bucket width to read: the one asked for, or for ``auto`` the finest width
    that gives at most ``AUTO_POINTS`` points; a 400 problem when there would be too many."""
    span = (end - start).total_seconds()
    if bucket == "auto":
        for name, width in SERIES_WIDTHS.items():
            if span / width <= min(AUTO_POINTS, max_points):
                return name
        bucket = "7d"
    points = math.ceil(span / SERIES_WIDTHS[bucket])
    if points > max_points:
        wider = next(
            (n for n, w in SERIES_WIDTHS.items() if span / w <= max_points),
            None,
        )
        hint = f"use bucket={wider} or a shorter range" if wider else "use a shorter range"
        raise Problem(
            400,
            "too-many-points",
            "Too many points",
            f"{points} buckets of {bucket} requested; at most {max_points}: {hint}",
            max_points=max_points,
        )
    return bucket
