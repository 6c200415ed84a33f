"""Traffic: flow readings at intersections and road segments, and the odd incident.

Each sensor reports every ``interval`` seconds (10 s at rate 1) at its own phase.
Volume follows its road's profile (urban rush hours, flatter arterial freight, rural),
a per-sensor capacity decides occupancy and the speed that collapses near capacity, and
scenarios scale volume, speed, incidents and the share of sensors online per commune.
"""

from __future__ import annotations

import orjson

from city.model import City
from contract.traffic import TrafficFlow, TrafficIncident
from simulators.events import Batch, Picker, Tick, noise_table, phase_buckets, poisson
from simulators.generator import DomainGenerator
from simulators.rhythms import TRAFFIC_PROFILES, traffic_table
from simulators.template import cut

#: Incidents per second per vehicle-per-minute of base volume (about one every two days
#: at a 60 vehicles/min intersection).
INCIDENT_RATE = 1 / (2 * 86400 * 60)
INCIDENT_KINDS = ("crash", "breakdown", "roadworks", "flooding")
INCIDENT_WEIGHTS = Picker((0.5, 0.35, 0.1, 0.05))
#: head, tail, key, factor slot, commune index, vehicles per interval, capacity, free-flow
#: speed, and the draw that decides whether the sensor is online under an outage.
Sensor = tuple[bytes, bytes, bytes, int, int, float, float, float, float]


def profile_of(road: str, commune_kind: str, kind: str) -> str:
    """Traffic profile of a sensor: arterial roads carry freight, rural communes less."""
    if road == "expressway" or road.startswith("QL") or kind == "road_segment":
        return "arterial"
    if commune_kind == "commune":
        return "rural"
    return "urban"


class TrafficGenerator(DomainGenerator):
    """Flow every interval per sensor; incidents as a thinned Poisson process."""

    domain = "traffic"
    source = "/simulators/traffic"

    def __init__(self, city: City, *, seed: int, rate: float) -> None:
        super().__init__(city, seed=seed, rate=rate)
        rng = self.rng
        self.flow_interval = self.interval("intersection")
        levels = {c.id: c.level for c in city.communes}
        flows = self.templates(TrafficFlow.event_type, "f")
        self.incident_templates = self.templates(TrafficIncident.event_type, "i")
        self.flow_middle = flows[0].middle if flows else b""
        self.incident_middle = cut(
            event_type=TrafficIncident.event_type, subject="x", source=self.source, id_prefix=""
        ).middle
        self.sensors: list[Sensor] = []
        weights = []
        for e, t in zip(self.entities, flows, strict=True):
            profile = profile_of(str(e.attrs.get("road", "")), levels[e.commune], e.kind)
            commune = self.commune_index[e.commune]
            per_interval = float(e.attrs["base_vehicles_per_min"]) * self.flow_interval / 60
            self.sensors.append(
                (
                    t.head,
                    t.tail,
                    e.id.encode(),
                    TRAFFIC_PROFILES.index(profile) * self.n_communes + commune,
                    commune,
                    per_interval,
                    per_interval * rng.uniform(1.6, 2.6),
                    float(e.attrs["free_flow_kmh"]) * rng.uniform(0.9, 1.1),
                    rng.random(),
                )
            )
            weights.append(float(e.attrs["base_vehicles_per_min"]))
        self.buckets = [
            [self.sensors[i] for i in b]
            for b in phase_buckets(len(self.sensors), self.flow_interval, rng)
        ]
        self.picker = Picker(weights) if weights else None
        self.noise = noise_table(rng)

    def _volume_factors(self, tick: Tick, flow: list[float] | None) -> list[float]:
        base = [traffic_table(p)[tick.minute_of_week] for p in TRAFFIC_PROFILES]
        if flow is None:
            return [b for b in base for _ in range(self.n_communes)]
        return [b * x for b in base for x in flow]

    def emit(self, tick: Tick, batch: Batch) -> None:
        """Flow readings of the sensors whose phase is now, then any incidents."""
        bucket = self.buckets[tick.t_s % self.flow_interval] if self.sensors else []
        flow = tick.factors("traffic.flow")
        factors = self._volume_factors(tick, flow)
        if bucket:
            self._flow(tick, batch, bucket, factors)
        if self.picker is not None:
            self._incidents(tick, batch, factors)

    def _flow(self, tick: Tick, batch: Batch, bucket: list[Sensor], factors: list[float]) -> None:
        speed_f = tick.factors("traffic.speed")
        online = tick.factors("traffic.online")
        stamp = tick.suffix.encode() + self.flow_middle + tick.time_json
        interval = self.flow_interval
        noise, bits, dumps = self.noise, self.rng.getrandbits, orjson.dumps
        keys, values, times, now = batch.keys, batch.values, batch.times, tick.time_ms
        for head, tail, key, slot, commune, per_interval, capacity, free_flow, u in bucket:
            if online is not None and u >= online[commune]:
                continue
            mean = per_interval * factors[slot]
            vehicles = int(mean + noise[bits(12)] * (mean**0.5 + 0.05 * mean) + 0.5)
            if vehicles < 0:
                vehicles = 0
            load = vehicles / capacity
            occupancy = min(99.0, int(850 * load + 0.5) / 10)
            speed = free_flow * max(0.06, 1 - 0.9 * load * load * load) + 2 * noise[bits(12)]
            if speed_f is not None:
                speed *= speed_f[commune]
            speed = int(max(2.0, speed) * 10 + 0.5) / 10
            data = dumps(
                {
                    "vehicles": vehicles,
                    "avg_speed_kmh": speed,
                    "occupancy_pct": occupancy,
                    "interval_s": interval,
                }
            )
            keys.append(key)
            values.append(b"".join((head, stamp, tail, data, b"}")))
            times.append(now)

    def _incidents(self, tick: Tick, batch: Batch, factors: list[float]) -> None:
        assert self.picker is not None
        extra = tick.factors("traffic.incident")
        top = max(factors) * (max(extra) if extra else 1.0)
        rng = self.rng
        count = poisson(rng, self.picker.total * INCIDENT_RATE * top * self.rate)
        stamp = tick.suffix.encode() + self.incident_middle + tick.time_json
        seen = set()
        for _ in range(count):
            i = self.picker.pick(rng)
            if i in seen:  # one incident per sensor and second keeps event ids unique
                continue
            seen.add(i)
            sensor = self.sensors[i]
            level = factors[sensor[3]] * (extra[sensor[4]] if extra else 1.0)
            if rng.random() * top >= level:
                continue
            kind = INCIDENT_KINDS[INCIDENT_WEIGHTS.pick(rng)]
            severity = 1 + min(4, int(rng.expovariate(1.2)))
            lanes = min(4, int(rng.random() * (severity + 1) / 2))
            data = orjson.dumps({"kind": kind, "severity": severity, "lanes_blocked": lanes})
            t = self.incident_templates[i]
            batch.add(sensor[2], b"".join((t.head, stamp, t.tail, data, t.end)), tick.time_ms)
