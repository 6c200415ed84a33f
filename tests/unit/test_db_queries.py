"""series_query reads each bucket width from its own table with one result shape."""

from __future__ import annotations

import re

import pytest

from ioc.db.queries import series_query


@pytest.mark.parametrize(
    ("bucket", "table"), [("1m", "metric_minute"), ("1h", "metric_hour"), ("1d", "metric_day")]
)
def test_each_bucket_reads_its_table(bucket: str, table: str) -> None:
    sql = series_query(bucket)
    assert re.search(rf"\bFROM {table}\b", sql)
    assert "$4" in sql
    assert "$5" not in sql


def test_every_bucket_gives_the_same_columns() -> None:
    selects = {re.sub(r"\bFROM \w+", "", series_query(b)) for b in ("1m", "1h", "1d")}
    assert len(selects) == 1


@pytest.mark.parametrize("bucket", ["5m", "1w", "", "metric_hour"])
def test_a_bucket_without_a_stored_series_is_refused(bucket: str) -> None:
    with pytest.raises(ValueError, match="no stored series"):
        series_query(bucket)
