"""The registry as the worker sees it: what each entity is and where, by id.

The ``entity`` table (``ioc seed`` loads the city model into it) says, for each entity,
its domain, kind, commune, zone and expected reporting interval. The aggregator keeps a
copy in memory (:class:`Registry`) and refreshes it from the database: fully at start,
then the rows changed since (``updated_at``). Health rules read the interval and kind
(``streams.alerts.health``). An entity missing from it is simply unknown: its events are
processed as any other's, and the rules that need a registry entry do not judge it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Registered:
    """One entity's entry: domain, kind, commune and zone ids, and the seconds between two
    of its periodic reports (None: it reports only when something happens)."""

    domain: str
    kind: str
    commune: str
    zone: str
    interval_s: float | None


class Registry:
    """Registry entries by entity id."""

    def __init__(self, entries: Iterable[tuple[str, Registered]] = ()) -> None:
        self._entries: dict[str, Registered] = dict(entries)

    def get(self, entity_id: str) -> Registered | None:
        return self._entries.get(entity_id)

    def update(self, entries: Iterable[tuple[str, Registered]]) -> int:
        """Add or replace entries; returns how many were given."""
        count = 0
        for entity_id, entry in entries:
            self._entries[entity_id] = entry
            count += 1
        return count

    def __len__(self) -> int:
        return len(self._entries)
