"""The city model of Quang Ninh: province -> zones -> commune-level units -> entities.

A small hand-written base (``seeds/quang_ninh/*.json``) names the 13 operational zones,
the 54 commune-level units in force since 1 July 2025 and real landmarks; generated
entities fill the model up to the requested scale. The model is a pure function of the
base files, the entity count and the seed, and carries a version fingerprint of all three.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from city.seeds import SEED_DIR, CityBase, CommuneSeed, Kind, load_base

Point = tuple[float, float]
KIND_CODES = {
    "intersection": "ix",
    "road_segment": "rs",
    "hospital": "hosp",
    "school": "sch",
    "camera": "cam",
}
KIND_DOMAINS = {
    "intersection": "traffic",
    "road_segment": "traffic",
    "hospital": "hospital",
    "school": "school",
    "camera": "security",
}
#: Seconds between two periodic reports of each kind at rate 1 (None: it reports only
#: when something happens). The generators report at these intervals (divided by the
#: rate), and the registry gives them to the health rules (``streams.alerts.health``).
#: Schools report attendance only while a session runs.
REPORT_INTERVAL_S: dict[str, int | None] = {
    "intersection": 10,
    "road_segment": 10,
    "hospital": 60,
    "school": 300,
    "camera": None,
}
KM_PER_DEGREE = 111.32


@dataclass(frozen=True, slots=True)
class Area:
    """The province, a zone or a commune-level unit, with a simple boundary polygon."""

    id: str
    name: str
    name_vi: str
    level: str  # province, zone, ward, commune or special_zone
    parent: str | None
    lat: float
    lon: float
    polygon: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Entity:
    """One thing that emits events: an intersection, road segment, hospital, school or camera."""

    id: str
    domain: str
    kind: str
    name: str
    name_vi: str | None
    commune: str
    zone: str
    lat: float
    lon: float
    landmark: bool
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class City:
    """The whole model, with lookups by id and by domain."""

    version: str
    province: Area
    zones: tuple[Area, ...]
    communes: tuple[Area, ...]
    entities: tuple[Entity, ...]
    calendar: Mapping[str, Any]

    @cached_property
    def areas(self) -> dict[str, Area]:
        """Every area by id."""
        return {a.id: a for a in (self.province, *self.zones, *self.communes)}

    @cached_property
    def by_id(self) -> dict[str, Entity]:
        """Every entity by id."""
        return {e.id: e for e in self.entities}

    def in_domain(self, domain: str) -> list[Entity]:
        """The entities that emit one domain's events, in model order."""
        return [e for e in self.entities if e.domain == domain]


def hexagon(lat: float, lon: float, radius_km: float) -> tuple[Point, ...]:
    """A regular hexagon of ``radius_km`` around a centre, as (lat, lon) vertices."""
    dlat = radius_km / KM_PER_DEGREE
    dlon = radius_km / (KM_PER_DEGREE * math.cos(math.radians(lat)))
    return tuple(
        (
            round(lat + dlat * math.sin(math.radians(a)), 6),
            round(lon + dlon * math.cos(math.radians(a)), 6),
        )
        for a in range(0, 360, 60)
    )


def convex_hull(points: list[Point]) -> tuple[Point, ...]:
    """The convex hull of points, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return tuple(pts)

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    upper: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return tuple(lower[:-1] + upper[:-1])


def contains(polygon: tuple[Point, ...], lat: float, lon: float) -> bool:
    """Whether a point lies inside a polygon (ray casting)."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (y1, x1), (y2, x2) = polygon[i], polygon[(i + 1) % n]
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _allocate(total: int, shares: Mapping[Kind, float]) -> dict[Kind, int]:
    """Split ``total`` by shares with the largest-remainder method (deterministic)."""
    weight = sum(shares.values())
    exact = {k: total * v / weight for k, v in shares.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def _generated_attrs(kind: str, base: CityBase, rng: random.Random) -> dict[str, Any]:
    model = base.model
    if kind in ("intersection", "road_segment"):
        lo, hi = model.traffic.base_vehicles_per_min
        flo, fhi = model.traffic.free_flow_kmh[kind]
        road = "urban" if kind == "intersection" else "provincial"
        return {
            "road": road,
            "base_vehicles_per_min": round(rng.uniform(lo, hi), 1),
            "free_flow_kmh": round(rng.uniform(flo, fhi)),
        }
    if kind == "hospital":
        beds = rng.randint(*model.hospital.beds)
        return {"beds": beds, "icu": int(beds * rng.uniform(*model.hospital.icu_share))}
    if kind == "school":
        levels = sorted(model.school.levels)
        level = rng.choice(levels)
        return {"level": level, "enrolled": rng.randint(*model.school.levels[level])}
    sites = sorted(model.security.sites)
    return {"site": rng.choices(sites, [model.security.sites[s] for s in sites])[0]}


_NAMES = {
    "intersection": ("junction", "Nút giao"),
    "road_segment": ("road segment", "Đoạn đường"),
    "hospital": ("health centre", "Cơ sở y tế"),
    "school": ("school", "Trường"),
    "camera": ("camera", "Camera"),
}


def _generate(base: CityBase, count: int, seed: int) -> list[Entity]:
    rng = random.Random(f"quang-ninh-city/{seed}")
    communes = base.communes
    cum: list[float] = []
    acc = 0.0
    for c in communes:
        acc += c.weight
        cum.append(acc)
    numbers: Counter[str] = Counter()
    out: list[Entity] = []
    for kind, n in sorted(_allocate(count, base.model.mix).items()):
        for _ in range(n):
            commune: CommuneSeed = rng.choices(communes, cum_weights=cum)[0]
            prefix = f"qn-{KIND_CODES[kind]}-{commune.zone}"
            numbers[prefix] += 1
            number = 100 + numbers[prefix]
            reach = 0.8 * commune.radius_km * math.sqrt(rng.random())
            angle = rng.uniform(0, 2 * math.pi)
            lat = commune.lat + reach * math.sin(angle) / KM_PER_DEGREE
            lon = commune.lon + reach * math.cos(angle) / (
                KM_PER_DEGREE * math.cos(math.radians(commune.lat))
            )
            name, name_vi = _NAMES[kind]
            out.append(
                Entity(
                    id=f"{prefix}-{number:03d}",
                    domain=KIND_DOMAINS[kind],
                    kind=kind,
                    name=f"{commune.name} {name} {number}",
                    name_vi=f"{name_vi} {commune.name_vi} {number}",
                    commune=commune.id,
                    zone=commune.zone,
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    landmark=False,
                    attrs=_generated_attrs(kind, base, rng),
                )
            )
    return out


def build_city(entities: int | None = None, *, seed: int = 0, seed_dir: Path = SEED_DIR) -> City:
    """The city model with ``entities`` entities (landmarks first), generated from the base."""
    base = load_base(seed_dir)
    count = base.model.default_entities if entities is None else entities
    if not 1 <= count <= base.model.max_entities:
        raise ValueError(f"entities must be between 1 and {base.model.max_entities}, got {count}")
    zone_of = {c.id: c.zone for c in base.communes}
    landmarks = [
        Entity(
            id=m.id,
            domain=m.domain,
            kind=m.kind,
            name=m.name,
            name_vi=m.name_vi,
            commune=m.commune,
            zone=zone_of[m.commune],
            lat=m.lat,
            lon=m.lon,
            landmark=True,
            attrs=dict(m.model_extra or {}),
        )
        for m in base.landmarks
    ]
    chosen = landmarks[:count] + _generate(base, max(0, count - len(landmarks)), seed)
    ids = Counter(e.id for e in chosen)
    duplicated = [i for i, n in ids.items() if n > 1]
    if duplicated:
        raise ValueError(f"duplicate entity ids in the city model: {duplicated[:5]}")
    communes = tuple(
        Area(
            c.id,
            c.name,
            c.name_vi,
            c.kind,
            c.zone,
            c.lat,
            c.lon,
            hexagon(c.lat, c.lon, c.radius_km),
        )
        for c in base.communes
    )
    zones = tuple(
        Area(
            z.id,
            z.name,
            z.name_vi,
            "zone",
            base.province.id,
            z.lat,
            z.lon,
            convex_hull([p for c in communes if c.parent == z.id for p in c.polygon]),
        )
        for z in base.zones
    )
    province = Area(
        base.province.id,
        base.province.name,
        base.province.name_vi,
        "province",
        None,
        base.province.lat,
        base.province.lon,
        convex_hull([p for z in zones for p in z.polygon]),
    )
    digest = hashlib.sha256(base.digest.encode() + f"/{count}/{seed}".encode()).hexdigest()
    version = f"qn-v{base.model.version}-{digest[:12]}"
    calendar = base.model.school_calendar.model_dump()
    return City(version, province, zones, communes, tuple(chosen), calendar)
