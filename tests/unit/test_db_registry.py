"""The registry's rows from the city model, and area_series_query per bucket width."""

from __future__ import annotations

import dataclasses
import re

import orjson
import pytest

from city.model import City, build_city
from ioc.db.queries import area_series_query, series_query
from ioc.db.registry import (
    UPSERT_AREAS,
    UPSERT_ENTITIES,
    area_columns,
    batches,
    boundary_json,
    entity_columns,
)


@pytest.fixture(scope="module")
def city() -> City:
    return build_city(120, seed=2)


def placeholders(sql: str) -> int:
    return max(int(n) for n in re.findall(r"\$(\d+)", sql))


def test_areas_come_parents_first_with_their_place_in_the_hierarchy(city: City) -> None:
    ids, kinds, levels, parents = area_columns(city)[:4]
    assert len(ids) == 1 + 13 + 54
    assert (ids[0], kinds[0], parents[0]) == (city.province.id, "province", None)
    assert kinds[1:14] == ["zone"] * 13
    assert set(parents[1:14]) == {city.province.id}
    assert kinds[14:] == ["commune"] * 54
    assert set(levels[14:]) == {"ward", "commune", "special_zone"}
    assert set(parents[14:]) <= set(ids[1:14])


def test_every_column_array_has_one_value_per_row_and_fits_the_statement(city: City) -> None:
    areas, entities = area_columns(city), entity_columns(city)
    assert len(areas) == placeholders(UPSERT_AREAS)
    assert len(entities) == placeholders(UPSERT_ENTITIES)
    assert {len(c) for c in areas} == {68}
    assert {len(c) for c in entities} == {120}


def test_entities_carry_their_commune_zone_and_attributes_as_json(city: City) -> None:
    columns = entity_columns(city)
    landmark = city.entities[0]
    row = [c[0] for c in columns]
    assert row[:10] == [
        landmark.id,
        landmark.domain,
        landmark.kind,
        landmark.name,
        landmark.name_vi,
        landmark.commune,
        landmark.zone,
        landmark.lat,
        landmark.lon,
        True,
    ]
    assert orjson.loads(row[10]) == dict(landmark.attrs)
    assert columns[9][-1] is False  # generated entities are not landmarks


def test_attributes_serialise_the_same_whatever_their_key_order(city: City) -> None:
    entity = city.entities[0]
    flipped = dataclasses.replace(entity, attrs=dict(reversed(list(entity.attrs.items()))))
    again = dataclasses.replace(city, entities=(flipped,))
    assert entity_columns(again)[10] == [entity_columns(city)[10][0]]


def test_a_boundary_is_a_json_list_of_lat_lon_pairs() -> None:
    polygon = ((21.0, 107.5), (21.25, 107.0), (20.75, 107.0))
    assert orjson.loads(boundary_json(polygon)) == [[21.0, 107.5], [21.25, 107.0], [20.75, 107.0]]


def test_an_area_id_used_on_two_levels_is_refused(city: City) -> None:
    clash = dataclasses.replace(city.communes[0], id=city.zones[0].id)
    bad = dataclasses.replace(city, communes=(clash, *city.communes[1:]))
    with pytest.raises(ValueError, match=f"more than once across levels: \\['{clash.id}'\\]"):
        area_columns(bad)


def test_an_unknown_level_is_refused(city: City) -> None:
    odd = dataclasses.replace(city.communes[0], level="district")
    bad = dataclasses.replace(city, communes=(odd, *city.communes[1:]))
    with pytest.raises(ValueError, match="unknown level 'district'"):
        area_columns(bad)


def test_batches_cut_the_columns_into_consecutive_slices() -> None:
    columns: list[list[object]] = [list(range(7)), list("abcdefg")]
    cut = list(batches(columns, size=3))
    assert cut == [[[0, 1, 2], list("abc")], [[3, 4, 5], list("def")], [[6], ["g"]]]
    assert list(batches([[], []], size=3)) == []


@pytest.mark.parametrize(
    ("bucket", "view"),
    [("1m", "area_metric_minute"), ("1h", "area_metric_hour"), ("1d", "area_metric_day")],
)
def test_each_bucket_reads_its_area_view(bucket: str, view: str) -> None:
    sql = area_series_query(bucket)
    assert re.search(rf"\bFROM {view}\b", sql)
    assert "area_id = $1" in sql
    assert placeholders(sql) == 4


def test_area_series_give_one_column_set_and_no_average() -> None:
    selects = {re.sub(r"\bFROM \w+", "", area_series_query(b)) for b in ("1m", "1h", "1d")}
    assert len(selects) == 1
    (select,) = selects
    assert "entities, count, sum, min, max, last_sum" in select
    assert "avg" not in select


def test_series_query_is_unchanged_beside_it() -> None:
    assert "FROM metric_minute" in series_query("1m")
    assert "entity_id = $1" in series_query("1m")


@pytest.mark.parametrize("bucket", ["5m", "1w", "", "area_metric_hour"])
def test_a_bucket_without_an_area_view_is_refused(bucket: str) -> None:
    with pytest.raises(ValueError, match="no stored area series"):
        area_series_query(bucket)
