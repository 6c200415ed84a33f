"""Scenarios as data: effects that shape rates in some areas, and injected events.

A scenario file (``seeds/scenarios/<name>.json``) lists *effects* (a signal such as
``traffic.flow`` multiplied by a factor in some areas between two times, with linear ramps)
and *injections* (one event of a given type and payload sent to selected entities at a
time). Times are hours relative to the simulation's start.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from city.model import City
from city.seeds import load_base
from contract.catalog import PAYLOAD_MODELS
from contract.envelope import read_payload
from contract.rejection import Rejection

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "seeds" / "scenarios"
Signal = Literal[
    "traffic.flow",
    "traffic.speed",
    "traffic.incident",
    "traffic.online",
    "hospital.admission",
    "hospital.urgent",
    "hospital.online",
    "school.open",
    "school.attendance",
    "school.safety",
    "school.online",
    "security.detection",
    "security.crowd",
    "security.alarm",
    "security.online",
]


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the file and the problem named."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Effect(_Strict):
    """Multiply ``signal`` by ``factor`` in ``areas`` from ``from_h`` to ``to_h``."""

    signal: Signal
    areas: list[str] = Field(default_factory=lambda: ["quang-ninh"], min_length=1)
    factor: float = Field(ge=0, le=1000)
    from_h: float = Field(ge=0)
    to_h: float = Field(gt=0)
    ramp_h: float = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Effect:
        if self.to_h <= self.from_h:
            raise ValueError(f"to_h ({self.to_h}) must be after from_h ({self.from_h})")
        return self


class Selector(_Strict):
    """Which entities an injection goes to: explicit ids, or a filter and a count."""

    ids: list[str] = Field(default_factory=list)
    areas: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)
    roads: list[str] = Field(default_factory=list)
    count: int | None = Field(default=None, ge=1)


class Injection(_Strict):
    """One event of type ``city.<event>.v1`` with payload ``data`` for the selected entities."""

    at_h: float = Field(ge=0)
    event: str = Field(pattern=r"^[a-z]+\.[a-z_]+$")
    select: Selector
    data: dict[str, Any]

    @model_validator(mode="after")
    def _valid_payload(self) -> Injection:
        model = PAYLOAD_MODELS.get(f"city.{self.event}.v1")
        if model is None:
            raise ValueError(f"unknown event {self.event!r}; known: {sorted(PAYLOAD_MODELS)}")
        try:
            read_payload(model, self.data)
        except Rejection as exc:
            raise ValueError(exc.detail) from None
        return self


class Scenario(_Strict):
    """A named scenario file."""

    name: str = Field(pattern=r"^[a-z0-9-]+$")
    about: str
    version: int = Field(ge=1)
    suggested_start: AwareDatetime | None = None
    duration_h: float = Field(gt=0)
    effects: list[Effect] = Field(default_factory=list)
    injections: list[Injection] = Field(default_factory=list)


def scenario_names() -> list[str]:
    """The scenarios shipped in ``seeds/scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and check a scenario by name (``typhoon-yagi``) or path; raise ScenarioError."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ScenarioError(
            f"scenario {str(name_or_path)!r} not found (known: {', '.join(scenario_names())})"
        )
    try:
        scenario = Scenario.model_validate(orjson.loads(path.read_bytes()))
    except orjson.JSONDecodeError as exc:
        raise ScenarioError(f"scenario file {path}: not valid JSON: {exc}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ScenarioError(f"scenario file {path}: {where}: {first['msg']}") from None
    base = load_base()
    known = {base.province.id} | {z.id for z in base.zones} | {c.id for c in base.communes}
    areas = [a for e in scenario.effects for a in e.areas]
    areas += [a for i in scenario.injections for a in i.select.areas]
    unknown = sorted(set(areas) - known)
    if unknown:
        raise ScenarioError(f"scenario file {path}: unknown areas {unknown}")
    return scenario


class ScenarioRuntime:
    """A scenario placed on a city and a start time: factors per tick and due injections."""

    def __init__(self, scenario: Scenario, city: City, *, start_s: int, seed: int) -> None:
        self.scenario = scenario
        self.start_s = start_s
        index = {c.id: i for i, c in enumerate(city.communes)}
        self.n_communes = len(index)
        members: dict[str, list[int]] = {city.province.id: list(index.values())}
        for c in city.communes:
            members.setdefault(c.parent or "", []).append(index[c.id])
            members[c.id] = [index[c.id]]
        self._effects: dict[str, list[tuple[Effect, list[int]]]] = {}
        for effect in scenario.effects:
            idx = sorted({i for a in effect.areas for i in members[a]})
            self._effects.setdefault(effect.signal, []).append((effect, idx))
        rng = random.Random(f"{scenario.name}/{seed}")
        due: list[tuple[int, int, str, str, Mapping[str, Any]]] = []
        for n, injection in enumerate(scenario.injections):
            at = start_s + round(injection.at_h * 3600)
            for entity in _select(city, injection, rng):
                due.append((at, n, injection.event, entity, injection.data))
        due.sort(key=lambda d: (d[0], d[1], d[3]))
        self._due = due
        self._next = 0

    def factors(self, signal: str, t_s: int) -> list[float] | None:
        """Multipliers of ``signal`` per commune at ``t_s``, or None when no effect applies."""
        effects = self._effects.get(signal)
        if not effects:
            return None
        rel_h = (t_s - self.start_s) / 3600
        out: list[float] | None = None
        for effect, idx in effects:
            if not effect.from_h <= rel_h < effect.to_h:
                continue
            weight = 1.0
            if effect.ramp_h > 0:
                weight = min(
                    1.0,
                    (rel_h - effect.from_h) / effect.ramp_h,
                    (effect.to_h - rel_h) / effect.ramp_h,
                )
            value = 1 + (effect.factor - 1) * weight
            if out is None:
                out = [1.0] * self.n_communes
            for i in idx:
                out[i] *= value
        return out

    def due(self, t_s: int) -> list[tuple[str, str, Mapping[str, Any]]]:
        """Injections due at or before ``t_s`` not yet returned: (event, entity id, data)."""
        out = []
        while self._next < len(self._due) and self._due[self._next][0] <= t_s:
            _, _, event, entity, data = self._due[self._next]
            out.append((event, entity, data))
            self._next += 1
        return out


def _select(city: City, injection: Injection, rng: random.Random) -> list[str]:
    select, domain = injection.select, injection.event.split(".")[0]
    chosen = [i for i in select.ids if i in city.by_id and city.by_id[i].domain == domain]
    if select.areas or select.kinds or select.sites or select.roads or not select.ids:
        areas = set(select.areas)
        candidates = [
            e.id
            for e in city.in_domain(domain)
            if (not areas or {e.zone, e.commune, city.province.id} & areas)
            and (not select.kinds or e.kind in select.kinds)
            and (not select.sites or e.attrs.get("site") in select.sites)
            and (not select.roads or e.attrs.get("road") in select.roads)
            and e.id not in chosen
        ]
        if select.count is not None and select.count < len(candidates):
            candidates = rng.sample(candidates, select.count)
        chosen += candidates
    return chosen
