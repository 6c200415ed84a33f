"""The dashboard's coastline (api/dashboard/static/coastline.json): what deploy/geo/build.mjs
makes from the pinned Natural Earth package, well-formed GeoJSON inside the province's box,
with the mainland, the islands operators know and the Chinese side apart."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.utils.node import node_harness

ROOT = Path(__file__).resolve().parents[2]
COASTLINE = ROOT / "api" / "dashboard" / "static" / "coastline.json"
BUILD = ROOT / "deploy" / "geo"
BOX = (106.4, 20.6, 108.2, 21.7)

Ring = list[list[float]]

#: (lat, lon) well inside each piece of land at 1:10m, and what it is.
VIETNAM_MAINLAND = {
    "Dong Trieu": (21.09, 106.52),
    "Uong Bi": (21.04, 106.77),
    "Hoanh Bo (Ha Long)": (21.10, 107.10),
    "Tien Yen": (21.33, 107.40),
    "Mong Cai": (21.52, 107.95),
}
ISLANDS = {
    "Cai Bau (Van Don)": (21.15, 107.47),
    "Quan Lan": (20.88, 107.48),
    "Thanh Lan": (21.01, 107.835),
    "Co To": (20.98, 107.765),
    "Cat Ba": (20.80, 107.00),
    "Vinh Thuc": (21.375, 107.91),
    "Cai Chien": (21.33, 107.76),
}
SEA = {
    "Bai Tu Long Bay": (20.95, 107.35),
    "Gulf of Tonkin": (20.70, 107.80),
    "off Co To": (20.90, 108.00),
}
CHINA = {"Dongxing": (21.62, 107.90)}


@pytest.fixture(scope="module")
def coastline() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(COASTLINE.read_text())
    return data


def polygons(collection: dict[str, Any], country: str) -> list[list[Ring]]:
    feature = next(f for f in collection["features"] if f["id"] == country)
    result: list[list[Ring]] = feature["geometry"]["coordinates"]
    return result


def signed_area(ring: Ring) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring)) / 2


def inside(ring: Ring, lat: float, lon: float) -> bool:
    """Ray casting, as city.model.contains, on [lon, lat] vertices."""
    hit = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def containing(collection: dict[str, Any], country: str, lat: float, lon: float) -> int | None:
    """Index of the country's polygon holding the point (outside its holes), or None."""
    for index, (outer, *holes) in enumerate(polygons(collection, country)):
        if inside(outer, lat, lon) and not any(inside(h, lat, lon) for h in holes):
            return index
    return None


def test_the_vendored_file_is_what_the_script_makes_from_the_pinned_package(
    tmp_path: Path,
) -> None:
    node = node_harness(BUILD, "world-atlas")
    out = tmp_path / "coastline.json"
    done = subprocess.run(
        [node, "build.mjs", "--out", str(out)],
        cwd=BUILD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == COASTLINE.read_bytes(), "run `node build.mjs` in deploy/geo"
    lock = json.loads((BUILD / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/world-atlas"]["version"]
    assert json.loads(out.read_text())["source"]["version"] == pinned


def test_it_is_well_formed_geojson_inside_the_province_box(coastline: dict[str, Any]) -> None:
    assert coastline["type"] == "FeatureCollection"
    assert coastline["bbox"] == list(BOX)
    assert coastline["source"]["package"] == "world-atlas"
    assert "public domain" in coastline["source"]["licence"]
    assert [f["id"] for f in coastline["features"]] == ["VN", "CN"]
    west, south, east, north = BOX
    for feature in coastline["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "MultiPolygon"
        for outer, *holes in feature["geometry"]["coordinates"]:
            # RFC 7946: closed rings, outer counter-clockwise, holes clockwise.
            for ring, wound in [(outer, 1), *((h, -1) for h in holes)]:
                assert len(ring) >= 4
                assert ring[0] == ring[-1]
                assert signed_area(ring) * wound > 0
                for lon, lat in ring:
                    assert west <= lon <= east
                    assert south <= lat <= north
    # Small enough to send with the page.
    assert COASTLINE.stat().st_size < 50_000


def test_mainland_islands_sea_and_china_are_where_they_are(coastline: dict[str, Any]) -> None:
    mainland = {containing(coastline, "VN", *p) for p in VIETNAM_MAINLAND.values()}
    assert mainland == {0}, "the mainland is one polygon, the largest"
    islands = {name: containing(coastline, "VN", *p) for name, p in ISLANDS.items()}
    assert all(index is not None and index > 0 for index in islands.values()), islands
    assert len(set(islands.values())) == len(ISLANDS), "each island a polygon of its own"
    for name, point in SEA.items():
        assert containing(coastline, "VN", *point) is None, name
        assert containing(coastline, "CN", *point) is None, name
    for name, point in CHINA.items():
        assert containing(coastline, "CN", *point) is not None, name
        assert containing(coastline, "VN", *point) is None, name
