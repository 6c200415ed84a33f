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


#: The materialised area rollup of each stored bucket width (migration 0012).
AREA_TABLES: Final = {"1m": "area_minute", "1h": "area_hour", "1d": "area_day"}

_AREA_MIXED_SERIES = """
WITH parts AS (
    SELECT bucket, entities, count, sum, min, max, last_sum FROM {rollup}
    WHERE area_id = $1 AND domain = $2 AND metric = $3
      AND bucket >= $4 AND bucket < least($5::timestamptz, $7::timestamptz)
    UNION ALL
    SELECT bucket, entities, count, sum, min, max, last_sum FROM area_minute
    WHERE area_id = $1 AND domain = $2 AND metric = $3
      AND bucket >= greatest($4::timestamptz, $7::timestamptz) AND bucket < $5
)
SELECT date_bin($6::interval, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+07') AS t,
       max(entities)::bigint AS entities, sum(count)::bigint AS count, sum(sum) AS sum,
       min(min) AS min, max(max) AS max,
       (array_agg(last_sum ORDER BY bucket DESC))[1] AS last_sum
FROM parts
GROUP BY 1
ORDER BY 1
"""

_AREA_MINUTES = """
SELECT bucket AS t, entities, count, sum, min, max, last_sum FROM area_minute
WHERE area_id = $1 AND domain = $2 AND metric = $3 AND bucket >= $4 AND bucket < $5
ORDER BY bucket
"""

_AREA_EDGE = """
SELECT max(bucket) FROM {rollup}
WHERE area_id = $1 AND domain = $2 AND metric = $3 AND bucket >= $4 AND bucket < $5
"""


def area_minutes_query() -> str:
    """SQL for one area's metric per stored minute: ``$1`` area, ``$2`` domain, ``$3``
    metric, ``[$4, $5)`` the minutes. Rows: ``t, entities, count, sum, min, max,
    last_sum``, oldest first, from ``area_minute``."""
    return _AREA_MINUTES


def area_edge_query(rollup: str) -> str:
    """SQL for the newest bucket of the area rollup ``rollup`` ("1h" or "1d") in
    ``[$4, $5)`` (parameters as :func:`area_minutes_query`); NULL when it holds none."""
    return _AREA_EDGE.format(rollup=AREA_TABLES[rollup])


def area_mixed_series_query(rollup: str) -> str:
    """SQL for one area's metric in buckets of ``$6`` (an interval) aligned to local
    midnight: from the area rollup ``rollup`` before ``$7``, from ``area_minute`` on.

    As :func:`mixed_series_query` for one entity: ``$7`` is the newest rollup bucket
    (:func:`area_edge_query`), which may be open, so it and what follows are read from
    the minutes. A point made of several stored buckets adds ``count`` and ``sum``, takes
    the ``min`` and ``max``, the newest bucket's ``last_sum`` (the area's level at the
    point's end) and the largest ``entities`` of its buckets (the entities reporting in
    its busiest stored bucket). ``$1`` area, ``$2`` domain, ``$3`` metric, ``[$4, $5)``.
    """
    return _AREA_MIXED_SERIES.format(rollup=AREA_TABLES[rollup])


_ACTIVITY_SERIES = """
SELECT date_bin($4::interval, hour, TIMESTAMPTZ '2000-01-01 00:00:00+07') AS t,
       sum({column})::bigint AS n
FROM area_activity_hour
WHERE area_id = ANY($1::text[]) AND hour >= $2 AND hour < $3
GROUP BY 1
HAVING sum({column}) > 0
ORDER BY 1
"""

#: The operations centre's own hourly series of an area (kept by the incident agents,
#: ``area_activity_hour``): metric -> column.
ACTIVITY_METRICS: Final = {"alerts": "alerts", "incidents": "incidents"}


def activity_series_query(metric: str) -> str:
    """SQL for alerts or incidents opened per bucket of ``$4`` (an interval of whole
    hours) in the places ``$1`` (an array of area ids), hours in ``[$2, $3)``. Rows:
    ``t, n``, oldest first; buckets with none are left out."""
    return _ACTIVITY_SERIES.format(column=ACTIVITY_METRICS[metric])
