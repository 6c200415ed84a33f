"""SQL that reads the stored aggregates, the same on TimescaleDB and plain PostgreSQL.

Both flavours hold minutes in ``metric_minute`` and hour and day rollups in
``metric_hour`` and ``metric_day`` with the same columns (continuous aggregates on
TimescaleDB, tables refreshed by ``refresh_rollups`` otherwise), so one query text serves
both. Hour and day buckets start at local midnight in Quang Ninh (UTC+07:00).
"""

from __future__ import annotations

from typing import Final

#: The table holding each bucket width the rollups provide.
SERIES_TABLES: Final = {"1m": "metric_minute", "1h": "metric_hour", "1d": "metric_day"}

_SERIES = """
SELECT bucket AS t, count, sum, min, max, last
FROM {table}
WHERE entity_id = $1 AND metric = $2 AND bucket >= $3 AND bucket < $4
ORDER BY bucket
"""


def series_query(bucket: str) -> str:
    """SQL for one entity's metric per bucket of width ``bucket`` ("1m", "1h" or "1d").

    Parameters: ``$1`` entity id, ``$2`` metric, ``$3`` and ``$4`` the range of bucket
    starts, ``[$3, $4)``. Rows: ``t, count, sum, min, max, last``, oldest first. A bucket
    is returned whole when it starts inside the range, so align the range to the bucket.
    Hour and day rows are as fresh as the last refresh of the rollups: an hour is rolled
    up once it is final (``streams.sink.rollup_window``).
    """
    try:
        table = SERIES_TABLES[bucket]
    except KeyError:
        known = ", ".join(SERIES_TABLES)
        raise ValueError(f"no stored series for bucket {bucket!r}; known: {known}") from None
    return _SERIES.format(table=table)


#: The area rollup view of each bucket width (``0006_areas.sql``).
AREA_SERIES_VIEWS: Final = {
    "1m": "area_metric_minute",
    "1h": "area_metric_hour",
    "1d": "area_metric_day",
}

_AREA_SERIES = """
SELECT bucket AS t, entities, count, sum, min, max, last_sum
FROM {view}
WHERE area_id = $1 AND metric = $2 AND bucket >= $3 AND bucket < $4
ORDER BY bucket
"""


def area_series_query(bucket: str) -> str:
    """SQL for one area's metric (province, zone or commune) per bucket of width ``bucket``.

    Parameters as ``series_query``, with ``$1`` an area id. Rows: ``t, entities, count,
    sum, min, max, last_sum``, oldest first, summed over the area's registered entities
    that reported in the bucket. No average is returned on purpose: for a quantity that
    adds up (vehicles, admissions) the area value is ``sum``; for a rate or level (speed,
    occupancy %) it is ``sum / count``, the mean of every reading; for a gauge
    (``er_waiting``) the area's level is ``last_sum``, the sum of each entity's last value.
    """
    try:
        view = AREA_SERIES_VIEWS[bucket]
    except KeyError:
        known = ", ".join(AREA_SERIES_VIEWS)
        raise ValueError(f"no stored area series for bucket {bucket!r}; known: {known}") from None
    return _AREA_SERIES.format(view=view)


#: Every bucket width a series can be read in, smallest first.
SERIES_WIDTHS: Final = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "3h": 3 * 3600,
    "6h": 6 * 3600,
    "12h": 12 * 3600,
    "1d": 86400,
    "7d": 7 * 86400,
}

_MIXED_SERIES = """
WITH parts AS (
    SELECT bucket, count, sum, min, max, last FROM {rollup}
    WHERE entity_id = $1 AND metric = $2
      AND bucket >= $3 AND bucket < least($4::timestamptz, $6::timestamptz)
    UNION ALL
    SELECT bucket, count, sum, min, max, last FROM metric_minute
    WHERE entity_id = $1 AND metric = $2
      AND bucket >= greatest($3::timestamptz, $6::timestamptz) AND bucket < $4
)
SELECT date_bin($5::interval, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+07') AS t,
       sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max,
       (array_agg(last ORDER BY bucket DESC))[1] AS last
FROM parts
GROUP BY 1
ORDER BY 1
"""

_ROLLUP_EDGE = """
SELECT max(bucket) FROM {rollup}
WHERE entity_id = $1 AND metric = $2 AND bucket >= $3 AND bucket < $4
"""


def rollup_for(width_s: int) -> str:
    """The stored bucket width a series of ``width_s`` seconds is built from: "1m",
    "1h" or "1d", the widest that divides it."""
    if width_s % 86400 == 0:
        return "1d"
    if width_s % 3600 == 0:
        return "1h"
    return "1m"


def rollup_edge_query(rollup: str) -> str:
    """SQL for the start of the newest ``rollup`` bucket of a series in ``[$3, $4)``
    (parameters as ``series_query``); NULL when the rollup holds none."""
    return _ROLLUP_EDGE.format(rollup=SERIES_TABLES[rollup])


def mixed_series_query(rollup: str) -> str:
    """SQL for one entity's metric in buckets of ``$5`` (an interval) aligned to local
    midnight, read from ``rollup``'s table before ``$6`` and from minutes from ``$6`` on.

    The sink rolls up an hour once it is final, so ``$6`` is the start of the newest
    rollup bucket (``rollup_edge_query``): older buckets come from the rollup; that one,
    which may be open or refreshed before its last minutes came, and the rest (the
    current hour or day) from ``metric_minute``. With ``$6 = $3`` every row comes from
    minutes. ``$1`` entity, ``$2`` metric, ``[$3, $4)`` aligned to ``$5``.
    """
    return _MIXED_SERIES.format(rollup=SERIES_TABLES[rollup])
