"""Per-connection filters of the live feeds, from query parameters.

Each parameter may be repeated or comma-separated (``?domain=traffic,hospital``); values
within one parameter are alternatives, parameters combine with "and". ``severity`` filters
alert transitions and incidents: entity updates have no severity. ``area`` is resolved to
the entities the registry places in it (commune, zone or province) and to the area and the
areas inside it (for incidents, which are placed in a commune or a zone) when the client
connects. Incidents span entities and domains: a client that names a ``domain`` or an
``entity`` gets none (a drill-down follows its entities; it did not ask for incidents).
An operator's action on an incident whose severity the hub never saw passes a severity
filter: a message too many (the client ignores an incident it does not hold) rather than
an acknowledgement or a resolve missed.

Area tiles (kind ``area``): ``area`` admits the areas named and those inside them (the
province's tile passes only with no area filter or the province named); ``domain`` keeps
the tiles but narrows each to the domains named (a hospital screen sees its areas'
hospitals; the tile's open incidents stay, they are the area's); ``severity`` does not
apply (a tile counts every severity, like an entity update it has none); a client that
names an ``entity`` gets none (a drill-down, like incidents).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import get_args

from api.live.messages import Kind, Message
from api.problems import Problem
from contract.catalog import DOMAINS
from streams.alerts.rules import Severity

SEVERITIES: tuple[str, ...] = get_args(Severity)
KINDS: tuple[Kind, ...] = ("entity", "alert", "incident", "area")
MAX_VALUES = 1_000
MAX_VALUE_LENGTH = 128


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """What one client wants; ``None`` means "any"."""

    kinds: frozenset[str] = frozenset(KINDS)
    domains: frozenset[str] | None = None
    entities: frozenset[str] | None = None
    severities: frozenset[str] | None = None
    #: Area ids asked for, and the entities the registry places in them.
    areas: frozenset[str] | None = None
    area_entities: frozenset[str] | None = None
    #: The areas asked for and every area inside them (incidents are placed in one).
    area_ids: frozenset[str] | None = None

    def accepts(
        self,
        *,
        kind: str,
        domain: str,
        entity_id: str,
        severity: str | None,
        area_id: str | None = None,
    ) -> bool:
        """True when an update with these attributes goes to this client."""
        if kind not in self.kinds:
            return False
        if kind == "incident":
            return self._accepts_incident(severity=severity, area_id=area_id)
        if kind == "area":
            return self._accepts_area(area_id)
        if self.domains is not None and domain not in self.domains:
            return False
        if self.entities is not None and entity_id not in self.entities:
            return False
        if self.area_entities is not None and entity_id not in self.area_entities:
            return False
        return not (
            kind == "alert" and self.severities is not None and severity not in self.severities
        )

    def _accepts_incident(self, *, severity: str | None, area_id: str | None) -> bool:
        if self.domains is not None or self.entities is not None:
            return False
        inside = self.area_ids if self.area_ids is not None else self.areas
        if inside is not None and area_id not in inside:
            return False
        return self.severities is None or severity is None or severity in self.severities

    def _accepts_area(self, area_id: str | None) -> bool:
        if self.entities is not None:
            return False
        inside = self.area_ids if self.area_ids is not None else self.areas
        return inside is None or area_id in inside

    def matches(self, message: Message) -> bool:
        return self.accepts(
            kind=message.kind,
            domain=message.domain,
            entity_id=message.entity_id,
            severity=message.severity,
            area_id=message.area_id,
        )


def _values(name: str, raw: Iterable[str] | None) -> frozenset[str] | None:
    if raw is None:
        return None
    values = {v.strip() for item in raw for v in item.split(",") if v.strip()}
    if not values:
        return None
    if len(values) > MAX_VALUES:
        raise invalid(f"{name}: at most {MAX_VALUES} values")
    too_long = next((v for v in values if len(v) > MAX_VALUE_LENGTH), None)
    if too_long is not None:
        raise invalid(f"{name}: values are at most {MAX_VALUE_LENGTH} characters")
    return frozenset(values)


def _known(name: str, values: frozenset[str] | None, known: Iterable[str]) -> None:
    allowed = tuple(known)
    unknown = sorted(values - set(allowed)) if values is not None else []
    if unknown:
        raise invalid(
            f"{name}: unknown {', '.join(map(repr, unknown))}; known: {', '.join(allowed)}"
        )


def invalid(detail: str) -> Problem:
    return Problem(422, "invalid-request", "Invalid request", detail)


def parse_filter(
    *,
    kind: Iterable[str] | None = None,
    domain: Iterable[str] | None = None,
    area: Iterable[str] | None = None,
    entity: Iterable[str] | None = None,
    severity: Iterable[str] | None = None,
) -> LiveFilter:
    """A filter from query parameters; a Problem (422) names the first bad one."""
    kinds = _values("kind", kind)
    domains = _values("domain", domain)
    severities = _values("severity", severity)
    _known("kind", kinds, KINDS)
    _known("domain", domains, DOMAINS)
    _known("severity", severities, SEVERITIES)
    return LiveFilter(
        kinds=kinds if kinds is not None else frozenset(KINDS),
        domains=domains,
        entities=_values("entity", entity),
        severities=severities,
        areas=_values("area", area),
    )
