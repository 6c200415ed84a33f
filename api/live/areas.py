"""Live area tiles: per area (the province, its zones, their communes) and domain, what the
area's registered entities report now, kept up to date one update at a time. Pure.

An entity the registry places nowhere (an integrator's camera not yet registered) still
reports to the centre: it counts in the province only, as ``unplaced`` (included in the
province's ``entities`` and ``reporting``), with its readings and its open alerts, so
the province's tile is the whole city; zones and communes hold registered entities.

An entity's readings are the metrics (``contract.catalog``) of its latest event of each
periodic type (a flow, a hospital status, an attendance count), and those of its current
state when that is a happening (an incident, an admission, a detection, an alarm, a safety
report: a happening counts while it is the entity's latest event). An area reads each
metric as the area series do (``METRIC_READINGS``): ``sum`` and ``last_sum`` add the
entities' latest values, ``mean`` averages them. Open alerts count per severity in the
areas of their entity; open incidents in their area and the areas above it.

An entity update changes the tiles of its commune, its zone and the province only: the
old readings come off, the new ones go on. Each changed area is due again
``interval_s`` after it was last sent, and is sent only if its tile differs from that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from api.live.messages import epoch_ms, iso_ms
from contract.catalog import DOMAINS, METRIC_READINGS, PAYLOAD_MODELS
from contract.envelope import read_payload
from contract.rejection import Rejection
from streams.alerts.rules import Severity

SEVERITIES: tuple[str, ...] = get_args(Severity)
#: Order of the area kinds, province first (the order tiles are sent in).
AREA_KINDS = ("province", "zone", "commune")


@dataclass(frozen=True, slots=True)
class Place:
    """One area of the registry."""

    area_id: str
    kind: str
    name: str
    name_vi: str
    parent_id: str | None


@dataclass(frozen=True)
class Registry:
    """The registry's areas and where it places each entity."""

    #: Areas by id, province first, then zones, then communes.
    places: Mapping[str, Place] = field(default_factory=dict)
    #: entity id -> (its registered domain, the areas that hold it: commune, zone, province)
    entities: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def of(cls, places: Iterable[Place], placements: Iterable[tuple[str, str, str]]) -> Registry:
        """From the ``area`` rows and the (area id, entity id, domain) rows of ``area_entity``."""
        ordered = sorted(places, key=lambda p: (AREA_KINDS.index(p.kind), p.area_id))
        holders: dict[str, tuple[str, list[str]]] = {}
        for area_id, entity_id, domain in placements:
            holders.setdefault(entity_id, (domain, []))[1].append(area_id)
        return cls(
            {p.area_id: p for p in ordered},
            {e: (domain, tuple(sorted(set(areas)))) for e, (domain, areas) in holders.items()},
        )

    @property
    def province(self) -> str | None:
        return next((p.area_id for p in self.places.values() if p.kind == "province"), None)

    def above(self, area_id: str) -> list[str]:
        """The area and every area above it (an incident counts in all of them)."""
        chain: list[str] = []
        place = self.places.get(area_id)
        while place is not None and place.area_id not in chain:
            chain.append(place.area_id)
            place = self.places.get(place.parent_id) if place.parent_id else None
        return chain


def readings_of(event_type: str | None, state: Mapping[str, Any]) -> tuple[dict[str, float], bool]:
    """The metrics of a state (an event's data) and whether its event is a happening."""
    model = PAYLOAD_MODELS.get(event_type or "")
    if model is None:
        return {}, False
    try:
        return read_payload(model, state).metrics(), model.keep_raw
    except Rejection:
        return {}, False


@dataclass(slots=True)
class _Entity:
    domain: str | None = None
    time_ms: int | None = None
    periodic: dict[str, float] = field(default_factory=dict)
    #: What the tiles count for it now: the periodic readings and a current happening's.
    counted: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Domain:
    entities: int = 0
    reporting: int = 0
    unplaced: int = 0
    alerts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    #: metric -> [entities with it, sum of their latest values]
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def add(self, readings: Mapping[str, float], sign: int) -> None:
        self.apply([(name, sign, sign * value) for name, value in readings.items()])

    def apply(self, delta: list[tuple[str, int, float]]) -> None:
        """Add (metric, entities, value) changes."""
        for name, count, value in delta:
            entry = self.metrics.get(name)
            if entry is None:
                entry = self.metrics[name] = [0, 0]
            entry[0] += count
            entry[1] += value
            if not entry[0]:
                del self.metrics[name]  # no float residue left behind


def _delta(before: Mapping[str, float], after: Mapping[str, float]) -> list[tuple[str, int, float]]:
    """What changes in an area's sums when an entity's readings go from before to after."""
    delta = []
    for name, value in after.items():
        old = before.get(name)
        if old is None:
            delta.append((name, 1, value))
        elif old != value:
            delta.append((name, 0, value - old))
    delta += [(name, -1, -value) for name, value in before.items() if name not in after]
    return delta


@dataclass(slots=True)
class _Tile:
    at_ms: int | None = None
    incidents: int = 0
    domains: dict[str, _Domain] = field(default_factory=lambda: {d: _Domain() for d in DOMAINS})


def _value(domain: str, name: str, entry: list[float]) -> float:
    reading = METRIC_READINGS.get(domain, {}).get(name, "mean")
    value = entry[1] / entry[0] if reading == "mean" else entry[1]
    return round(value, 6) if isinstance(value, float) else value


class AreaTiles:
    """Every area's tile, the entities' readings, open alerts and incidents behind them."""

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self.registry = Registry()
        self._entities: dict[str, _Entity] = {}
        #: open alert -> (entity, severity, its domain if the transition named it)
        self._alerts: dict[str, tuple[str, str, str | None]] = {}
        self._incidents: dict[str, str] = {}  # open incident -> its area
        self._tiles: dict[str, _Tile] = {}
        self._dirty: set[str] = set()
        self._sent: dict[str, tuple[float, dict[str, Any]]] = {}

    def entity(self, view: Mapping[str, Any]) -> None:
        """An entity view (``messages.entity_view``); one older than the counted is ignored."""
        entity_id, time = view["entity_id"], view.get("event_time")
        time_ms = epoch_ms(time) if time else None
        known = self._entities.get(entity_id)
        fresh = known is None
        if known is None:
            known = self._entities[entity_id] = _Entity()
        elif time_ms is not None and known.time_ms is not None and time_ms < known.time_ms:
            return
        metrics, happening = readings_of(view.get("event_type"), view.get("state") or {})
        if not happening:
            known.periodic = {**known.periodic, **metrics}
        before, known.time_ms = known.counted, time_ms
        known.counted = {**known.periodic, **metrics} if happening else known.periodic
        if known.domain is None and view.get("domain") in DOMAINS:
            known.domain = str(view["domain"])
        placed = self._placement(entity_id)
        if placed is None:
            return
        domain, areas, unplaced = placed
        delta = _delta(before, known.counted)
        for area_id in areas:
            tile = self._tiles[area_id]
            counts = tile.domains[domain]
            counts.reporting += fresh
            if unplaced and fresh:
                counts.unplaced += 1
                counts.entities += 1
            counts.apply(delta)
            if time_ms is not None and (tile.at_ms is None or time_ms > tile.at_ms):
                tile.at_ms = time_ms
            self._dirty.add(area_id)

    def alert(
        self,
        alert_id: str,
        *,
        entity_id: str,
        severity: str,
        open: bool,
        domain: str | None = None,
    ) -> None:
        """An alert's transition: open (or still open) or no longer."""
        previous = self._alerts.pop(alert_id, None)
        if previous is not None:
            self._count_alert(*previous, -1)
        if open:
            self._alerts[alert_id] = (entity_id, severity, domain)
            self._count_alert(entity_id, severity, domain, 1)

    def _placement(
        self, entity_id: str, domain: str | None = None
    ) -> tuple[str, tuple[str, ...], bool] | None:
        """The entity's domain, the areas that count it, and whether the registry places
        it nowhere (then the province alone counts it, once its domain is known: from its
        state, or from the alert that names it)."""
        placed = self.registry.entities.get(entity_id)
        if placed is not None:
            return placed[0], placed[1], False
        known = self._entities.get(entity_id)
        if known is not None and known.domain is not None:
            domain = known.domain
        province = self.registry.province
        if domain is None or domain not in DOMAINS or province is None:
            return None
        return domain, (province,), True

    def _count_alert(self, entity_id: str, severity: str, domain: str | None, sign: int) -> None:
        placed = self._placement(entity_id, domain)
        if placed is None or severity not in SEVERITIES:
            return
        domain, areas, _ = placed
        for area_id in areas:
            self._tiles[area_id].domains[domain].alerts[severity] += sign
            self._dirty.add(area_id)

    def incident(self, incident_id: str, *, area_id: str, open: bool) -> None:
        """An incident on operators' screens (open or acknowledged), or no longer."""
        previous = self._incidents.pop(incident_id, None)
        if previous is not None:
            self._count_incident(previous, -1)
        if open:
            self._incidents[incident_id] = area_id
            self._count_incident(area_id, 1)

    def _count_incident(self, area_id: str, sign: int) -> None:
        for above in self.registry.above(area_id):
            self._tiles[above].incidents += sign
            self._dirty.add(above)

    def rebuild(self, registry: Registry) -> None:
        """Count everything again over a new registry (it changes rarely); every area is
        then due, and sent if its tile changed."""
        self.registry = registry
        self._tiles = {area_id: _Tile() for area_id in registry.places}
        for domain, areas in registry.entities.values():
            for area_id in areas:
                self._tiles[area_id].domains[domain].entities += 1
        for entity_id in self._entities:
            placed = self._placement(entity_id)
            if placed is None:
                continue
            domain, areas, unplaced = placed
            known = self._entities[entity_id]
            for area_id in areas:
                tile = self._tiles[area_id]
                if unplaced:
                    tile.domains[domain].unplaced += 1
                    tile.domains[domain].entities += 1
                tile.domains[domain].reporting += 1
                tile.domains[domain].add(known.counted, 1)
                if known.time_ms is not None and (tile.at_ms is None or known.time_ms > tile.at_ms):
                    tile.at_ms = known.time_ms
        for entity_id, severity, named in self._alerts.values():
            self._count_alert(entity_id, severity, named, 1)
        for area_id in self._incidents.values():
            self._count_incident(area_id, 1)
        self._sent = {a: sent for a, sent in self._sent.items() if a in registry.places}
        self._dirty = set(registry.places)

    def tile(self, area_id: str) -> dict[str, Any]:
        """The area message's payload (contract B)."""
        place, tile = self.registry.places[area_id], self._tiles[area_id]
        return {
            "area_id": area_id,
            "kind": place.kind,
            "name": place.name,
            "name_vi": place.name_vi,
            "at": iso_ms(tile.at_ms),
            "domains": {
                domain: {
                    "entities": counts.entities,
                    "reporting": counts.reporting,
                    "unplaced": counts.unplaced,
                    "alerts_open": dict(counts.alerts),
                    "metrics": {
                        name: {
                            "value": _value(domain, name, entry),
                            "reading": METRIC_READINGS.get(domain, {}).get(name, "mean"),
                            "entities": int(entry[0]),
                        }
                        for name, entry in sorted(counts.metrics.items())
                    },
                }
                for domain, counts in tile.domains.items()
            },
            "incidents_open": tile.incidents,
        }

    def due(self, now: float) -> list[dict[str, Any]]:
        """The tiles to send at ``now`` (a monotonic clock): changed areas whose last send
        is ``interval_s`` old, province first; each only if it differs from the last sent."""
        out = []
        for area_id in [a for a in self.registry.places if a in self._dirty]:
            sent = self._sent.get(area_id)
            if sent is not None and now - sent[0] < self.interval_s:
                continue
            self._dirty.discard(area_id)
            payload = self.tile(area_id)
            if sent is not None and sent[1] == payload:
                continue
            self._sent[area_id] = (now, payload)
            out.append(payload)
        return out


def narrow(tile: dict[str, Any], domains: frozenset[str] | None) -> dict[str, Any]:
    """A tile with only the named domains (a client's ``domain`` filter)."""
    if domains is None:
        return tile
    return {**tile, "domains": {d: v for d, v in tile["domains"].items() if d in domains}}
