"""The Quang Ninh city model: administrative facts, landmarks, scale and determinism."""

from __future__ import annotations

from collections import Counter

import pytest

from city.model import build_city, contains

ZONES = {
    "halong", "campha", "uongbi", "mongcai", "dongtrieu", "quangyen", "vandon",
    "tienyen", "damha", "haiha", "binhlieu", "bache", "coto",
}  # fmt: skip


def test_the_province_has_13_zones_and_54_communes_of_the_2025_reform() -> None:
    city = build_city(100)
    assert {z.id for z in city.zones} == ZONES
    assert len(city.communes) == 54
    kinds = Counter(c.level for c in city.communes)
    assert kinds == {"ward": 30, "commune": 22, "special_zone": 2}
    special = {c.name for c in city.communes if c.level == "special_zone"}
    assert special == {"Van Don", "Co To"}
    assert all(c.parent in ZONES for c in city.communes)


def test_every_area_has_an_ascii_id_a_vietnamese_name_and_a_polygon_around_its_centre() -> None:
    city = build_city(100)
    for area in (*city.zones, *city.communes):
        assert area.id.isascii()
        assert area.name_vi
        assert len(area.polygon) >= 6
        assert contains(area.polygon, area.lat, area.lon), area.id


def test_landmarks_come_first_and_include_the_real_places() -> None:
    city = build_city(2000)
    assert city.entities[0].id == "qn-ix-halong-001"
    assert city.by_id["qn-ix-halong-001"].domain == "traffic"
    names = {e.name for e in city.entities if e.landmark}
    for place in (
        "Quang Ninh Provincial General Hospital",
        "Bai Chay Hospital",
        "Viet Nam - Sweden Uong Bi Hospital",
        "Cam Pha General Hospital",
        "Mong Cai General Hospital",
        "Bai Chay bridge",
        "Mong Cai international border gate",
        "Bai Chay beach",
        "Cai Lan port",
    ):
        assert place in names
    roads = {e.attrs.get("road") for e in city.entities if e.landmark}
    assert {"QL18", "QL279", "expressway", "bridge"} <= roads
    assert city.by_id["qn-hosp-uongbi-001"].name_vi == "Bệnh viện Việt Nam - Thụy Điển Uông Bí"


def test_the_default_scale_is_about_2000_entities_in_every_domain() -> None:
    city = build_city()
    assert len(city.entities) == 2000
    per_domain = Counter(e.domain for e in city.entities)
    assert per_domain["traffic"] > 800
    assert per_domain["security"] > 500
    assert per_domain["school"] > 300
    assert per_domain["hospital"] > 50
    assert len({e.id for e in city.entities}) == 2000


def test_generated_entities_lie_inside_their_commune() -> None:
    city = build_city(3000)
    generated = [e for e in city.entities if not e.landmark]
    assert generated
    for entity in generated:
        assert entity.id.isascii()
        assert contains(city.areas[entity.commune].polygon, entity.lat, entity.lon), entity.id
        assert city.areas[entity.commune].parent == entity.zone


def test_the_model_scales_to_100000_entities_with_unique_ids() -> None:
    city = build_city(100_000)
    assert len(city.entities) == 100_000
    assert len(city.by_id) == 100_000


def test_the_same_arguments_give_the_same_model_and_version() -> None:
    first, second = build_city(500, seed=3), build_city(500, seed=3)
    assert first.entities == second.entities
    assert first.version == second.version
    other = build_city(500, seed=4)
    assert other.version != first.version
    assert other.entities != first.entities


def test_out_of_range_scales_are_refused() -> None:
    with pytest.raises(ValueError, match="entities must be between 1 and 100000"):
        build_city(100_001)
    with pytest.raises(ValueError, match="entities must be between"):
        build_city(0)
