"""The simulation: a city, one generator per domain, a scenario and faults, tick by tick.

Everything here is pure: the same configuration gives the same batches, byte for byte,
whatever consumes them and however fast. Pacing and Kafka live in ``producer.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import get_args

import orjson

from city.model import City, build_city
from city.seeds import load_base
from contract.catalog import Domain
from contract.envelope import encode
from simulators.clock import VIETNAM
from simulators.events import Batch, SimEvent, Tick
from simulators.faults import Faults, FaultStage
from simulators.generator import DomainGenerator
from simulators.hospital import HospitalGenerator
from simulators.scenario import Scenario, ScenarioRuntime
from simulators.school import SchoolGenerator
from simulators.security import SecurityGenerator
from simulators.traffic import TrafficGenerator

GENERATORS: dict[str, type[DomainGenerator]] = {
    generator.domain: generator
    for generator in (HospitalGenerator, SchoolGenerator, SecurityGenerator, TrafficGenerator)
}
#: The domains in the order they run each tick: the contract's ``Domain`` order (a
#: simulation's bytes depend on it), every one with its generator.
DOMAINS: tuple[str, ...] = get_args(Domain)
if set(DOMAINS) != set(GENERATORS):
    raise RuntimeError(f"generators for {sorted(GENERATORS)}, domains {list(DOMAINS)}")
INJECTED_SOURCE = "/simulators/scenario"


#: Simulated seconds between two clock marks on every partition (one a minute: a quiet
#: partition's minutes become final at most a minute later than a busy one's).
MARK_INTERVAL_S = 60


class ConfigError(ValueError):
    """A simulation configuration that cannot run, with the problem named."""


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Same configuration, same event stream."""

    start: datetime
    domains: tuple[str, ...] = DOMAINS
    entities: int = 2000
    seed: int = 0
    rate: float = 1.0
    duration_s: float | None = None
    scenario: Scenario | None = None
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        unknown = [d for d in self.domains if d not in GENERATORS]
        if unknown:
            raise ConfigError(f"unknown domain {unknown[0]!r}; choose from {', '.join(DOMAINS)}")
        if not self.domains:
            raise ConfigError("no domain to simulate")
        if not self.rate > 0:
            raise ConfigError(f"rate must be positive, got {self.rate}")
        limit = load_base().model.max_entities
        if not 1 <= self.entities <= limit:
            raise ConfigError(f"entities must be between 1 and {limit}, got {self.entities}")
        if self.duration_s is not None and self.duration_s < 0:
            raise ConfigError(f"duration must not be negative, got {self.duration_s}")
        if self.start.tzinfo is None:
            raise ConfigError("start time needs a time zone")
        # Domains run in the canonical order, whatever order they were asked in.
        object.__setattr__(self, "domains", tuple(d for d in DOMAINS if d in self.domains))


class Simulation:
    """Generates the configured event stream as batches (one per domain and second)."""

    def __init__(self, config: SimConfig, *, city: City | None = None) -> None:
        self.config = config
        self.city = city or build_city(config.entities, seed=config.seed)
        self.start_s = int(config.start.timestamp())
        self.generators = [
            GENERATORS[d](self.city, seed=config.seed, rate=config.rate) for d in config.domains
        ]
        self.scenario = (
            ScenarioRuntime(config.scenario, self.city, start_s=self.start_s, seed=config.seed)
            if config.scenario
            else None
        )
        self.faults = {
            d: FaultStage(config.faults, domain=d, seed=config.seed)
            for d in config.domains
            if config.faults.active
        }

    def tick(self, t_s: int) -> Tick:
        """The context of simulated second ``t_s`` (seconds since the epoch)."""
        at = datetime.fromtimestamp(t_s, UTC)
        local = at.astimezone(VIETNAM)
        minute = local.hour * 60 + local.minute
        return Tick(
            t_s=t_s,
            at=at,
            time_ms=t_s * 1000,
            time_json=orjson.dumps(at),
            suffix=str(t_s),
            minute_of_week=local.weekday() * 1440 + minute,
            minute_of_day=minute,
            day=local.date(),
            scenario=self.scenario,
        )

    def batches(self) -> Iterator[Batch]:
        """Non-empty batches in event-time order (domains in canonical order within a
        second), and a clock mark per domain every :data:`MARK_INTERVAL_S` simulated
        seconds."""
        duration = self.config.duration_s
        seconds = itertools.count() if duration is None else range(int(duration))
        for offset in seconds:
            tick = self.tick(self.start_s + offset)
            injected = self.scenario.due(tick.t_s) if self.scenario else []
            for generator in self.generators:
                batch = Batch(generator.domain, tick.time_ms)
                generator.emit(tick, batch)
                for n, (event, entity, data) in enumerate(injected):
                    if event.split(".")[0] == generator.domain:
                        batch.add(
                            entity.encode(),
                            self._injected(tick, n, event, entity, data),
                            tick.time_ms,
                        )
                if self.faults:
                    batch = self.faults[generator.domain].apply(batch, tick.t_s)
                if batch.values:
                    yield batch
            if offset and tick.t_s % MARK_INTERVAL_S == 0:
                # The simulated clock in the log (streams.marks): partitions that get no
                # event of this simulation still see their minutes become final.
                for generator in self.generators:
                    yield Batch(generator.domain, tick.time_ms, mark=True)

    def _injected(self, tick: Tick, n: int, event: str, entity: str, data: object) -> bytes:
        return encode(
            event_type=f"city.{event}.v1",
            subject=entity,
            time=tick.at,
            data=data,  # type: ignore[arg-type]
            event_id=f"{entity}:x{n}:{self.config.seed}:{tick.t_s}",
            source=INJECTED_SOURCE,
        )

    def events(self) -> Iterator[SimEvent]:
        """The same stream's events one at a time, without clock marks (convenient for
        tests, slower)."""
        for batch in self.batches():
            for key, value, time_ms in zip(batch.keys, batch.values, batch.times, strict=True):
                yield SimEvent(batch.domain, key, time_ms, value)


def start_of(value: str | None, *, now: datetime | None = None) -> datetime:
    """Parse a start time (ISO 8601; local Vietnam time when it has no zone), or now."""
    if value is None:
        return (now or datetime.now(UTC)).replace(microsecond=0)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VIETNAM)
    return parsed.astimezone(UTC)


__all__ = ["DOMAINS", "ConfigError", "SimConfig", "Simulation", "start_of"]
