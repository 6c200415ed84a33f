"""Reading the hand-written base of the city model from ``seeds/quang_ninh/``."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.catalog import Domain

SEED_DIR = Path(__file__).resolve().parents[1] / "seeds" / "quang_ninh"
Kind = Literal["intersection", "road_segment", "hospital", "school", "camera"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AreaSeed(_Strict):
    """The province or a zone as written in ``zones.json``."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    name_vi: str
    lat: float = Field(ge=20, le=22)
    lon: float = Field(ge=106, le=109)
    former_kind: str | None = None


class CommuneSeed(_Strict):
    """A commune-level unit as written in ``communes.json``."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    name_vi: str
    kind: Literal["ward", "commune", "special_zone"]
    zone: str
    lat: float = Field(ge=20, le=22)
    lon: float = Field(ge=106, le=109)
    radius_km: float = Field(gt=0, le=30)
    weight: float = Field(gt=0)


class LandmarkSeed(BaseModel):
    """A real place; fields beyond the common ones are kept as the entity's attributes."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=r"^qn-[a-z]+-[a-z]+-[0-9]{3,}$")
    domain: Domain
    kind: Kind
    name: str
    name_vi: str | None = None
    commune: str
    lat: float = Field(ge=20, le=22)
    lon: float = Field(ge=106, le=109)


class TrafficMix(_Strict):
    base_vehicles_per_min: tuple[float, float]
    free_flow_kmh: dict[str, tuple[float, float]]


class HospitalMix(_Strict):
    beds: tuple[int, int]
    icu_share: tuple[float, float]


class SchoolMix(_Strict):
    levels: dict[str, tuple[int, int]]


class SecurityMix(_Strict):
    sites: dict[str, float]


class SchoolCalendar(_Strict):
    """Days and hours when schools count attendance."""

    weekdays: list[int]
    sessions: list[tuple[str, str]]
    summer_break: tuple[str, str]
    holidays: list[str]


class ModelSeed(_Strict):
    """``model.json``: how the model grows from the base, and the school calendar."""

    about: str
    version: int
    default_entities: int
    max_entities: int
    mix: dict[Kind, float]
    traffic: TrafficMix
    hospital: HospitalMix
    school: SchoolMix
    security: SecurityMix
    school_calendar: SchoolCalendar


class CityBase(BaseModel):
    """All base files, checked for consistency, with a digest of their bytes."""

    province: AreaSeed
    zones: list[AreaSeed]
    communes: list[CommuneSeed]
    landmarks: list[LandmarkSeed]
    model: ModelSeed
    digest: str


def _read(path: Path) -> dict[str, object]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


@lru_cache(maxsize=4)
def load_base(seed_dir: Path = SEED_DIR) -> CityBase:
    """Read and cross-check the base files (zones, communes, landmarks, model)."""
    names = ("zones.json", "communes.json", "landmarks.json", "model.json")
    raw = {name: _read(seed_dir / name) for name in names}
    digest = hashlib.sha256(b"".join((seed_dir / n).read_bytes() for n in names)).hexdigest()
    try:
        base = CityBase(
            province=raw["zones.json"]["province"],
            zones=raw["zones.json"]["zones"],
            communes=raw["communes.json"]["communes"],
            landmarks=raw["landmarks.json"]["entities"],
            model=raw["model.json"],
            digest=digest,
        )
    except (KeyError, ValidationError) as exc:
        raise ValueError(f"{seed_dir}: malformed city base: {exc}") from None
    zone_ids = {z.id for z in base.zones}
    commune_ids = {c.id for c in base.communes}
    problems = [
        f"commune {c.id}: unknown zone {c.zone}" for c in base.communes if c.zone not in zone_ids
    ]
    problems += [
        f"landmark {m.id}: unknown commune {m.commune}"
        for m in base.landmarks
        if m.commune not in commune_ids
    ]
    if len(commune_ids) != len(base.communes):
        problems.append("duplicate commune ids")
    if problems:
        raise ValueError(f"{seed_dir}: " + "; ".join(problems))
    return base
