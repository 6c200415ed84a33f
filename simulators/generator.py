"""What every domain generator shares: its entities, random stream and event templates."""

from __future__ import annotations

import random
from typing import ClassVar

from city.model import REPORT_INTERVAL_S, City, Entity
from simulators.events import Batch, Tick
from simulators.template import Template, cut


class DomainGenerator:
    """Emits one domain's events, one simulated second at a time.

    Each domain draws from its own random stream (seeded by domain and seed), so choosing
    which domains run never changes the events of the others.
    """

    domain: ClassVar[str]
    source: ClassVar[str]

    def __init__(self, city: City, *, seed: int, rate: float) -> None:
        self.city = city
        self.seed = seed
        self.rate = rate
        self.entities: list[Entity] = city.in_domain(self.domain)
        self.rng = random.Random(f"{self.domain}/{seed}")
        self.commune_index = {c.id: i for i, c in enumerate(city.communes)}
        self.n_communes = len(city.communes)

    def interval(self, kind: str) -> int:
        """The reporting interval of an entity kind (``REPORT_INTERVAL_S``) scaled by the
        rate, in whole seconds (at least 1)."""
        base_s = REPORT_INTERVAL_S[kind]
        assert base_s is not None, f"{kind} has no periodic reports"
        return max(1, round(base_s / self.rate))

    def templates(self, event_type: str, code: str) -> list[Template]:
        """One template per entity for ``event_type``; ids are ``<entity>:<code>:<seed>:<t>``."""
        return [
            cut(
                event_type=event_type,
                subject=e.id,
                source=self.source,
                id_prefix=f"{e.id}:{code}:{self.seed}:",
            )
            for e in self.entities
        ]

    def emit(self, tick: Tick, batch: Batch) -> None:
        """Append this second's events to ``batch``."""
        raise NotImplementedError
