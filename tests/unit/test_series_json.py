"""The series route's JSON, encoded from rows without a model per point, is the model's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from api.routes.series import Series, SeriesPoint, series_json

pytestmark = pytest.mark.timeout(10)

T0 = datetime(2024, 9, 6, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("end_zone", [UTC, timezone(timedelta(hours=7))])
def test_rows_encode_to_the_same_bytes_as_the_documented_model(end_zone: timezone) -> None:
    rows = [
        (T0, 6, 120.0, 17.0, 23.0, 20.0),
        (T0 + timedelta(minutes=1, milliseconds=250), 3, 4.5, 0.5, 3.0, 1.0),
        (T0 + timedelta(minutes=2), 0, 0.0, 0.0, 0.0, 0.0),  # no readings: avg 0, not a crash
    ]
    end = (T0 + timedelta(minutes=3)).astimezone(end_zone)
    fields = {"entity_id": "ix-1", "domain": "traffic", "metric": "vehicles", "bucket": "1m"}
    encoded = series_json(**fields, source="minute", start=T0, end=end, rows=rows)
    model = Series(
        **fields,
        source="minute",
        start=T0,
        end=end,
        points=[
            SeriesPoint(t=t, count=c, sum=s, min=lo, max=hi, avg=s / c if c else 0.0, last=la)
            for t, c, s, lo, hi, la in rows
        ],
    )
    assert encoded == model.model_dump_json(by_alias=True).encode()
    assert orjson.loads(encoded)["points"][1]["avg"] == 1.5


def test_the_openapi_document_still_describes_the_series() -> None:
    from api.main import create_app
    from ioc.settings import Settings

    document = create_app(Settings(_env_file=None)).openapi()
    ok = document["paths"]["/v1/{domain}/entities/{entity_id}/series"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Series"}
