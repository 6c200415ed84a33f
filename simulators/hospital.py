"""Hospitals: a capacity snapshot every minute, and admissions as they arrive.

Admissions are a Poisson process proportional to beds, with late-morning and evening
peaks. Each one adds to the ER queue and partly to bed occupancy; between snapshots the
occupancy drifts slowly towards a weekly target (highest midweek), the queue drains and
ambulances come back. Scenarios scale admissions and the share of urgent cases.
"""

from __future__ import annotations

import math

import orjson

from city.model import City
from contract.hospital import HospitalAdmission, HospitalStatus
from simulators.events import Batch, Picker, Tick, noise_table, phase_buckets, poisson
from simulators.generator import DomainGenerator
from simulators.rhythms import admission_table, occupancy_target
from simulators.template import cut

#: Admissions per bed per second at the daily mean (about 6 an hour for 1,200 beds).
ADMISSION_RATE = 0.005 / 3600
URGENT_SHARE = 0.15
DRIFT_S = 6 * 3600
ER_DRAIN_S = 40 * 60
AMBULANCE_RETURN_S = 50 * 60


class HospitalGenerator(DomainGenerator):
    """Status snapshots by phase; admissions by thinning; state carried between them."""

    domain = "hospital"
    source = "/simulators/hospital"

    def __init__(self, city: City, *, seed: int, rate: float) -> None:
        super().__init__(city, seed=seed, rate=rate)
        rng = self.rng
        self.status_interval = self.interval("hospital")
        self.status_t = self.templates(HospitalStatus.event_type, "s")
        self.admission_t = self.templates(HospitalAdmission.event_type, "a")
        probe = cut(
            event_type=HospitalStatus.event_type, subject="x", source=self.source, id_prefix=""
        )
        self.status_middle = probe.middle
        self.admission_middle = cut(
            event_type=HospitalAdmission.event_type, subject="x", source=self.source, id_prefix=""
        ).middle
        self.beds = [int(e.attrs["beds"]) for e in self.entities]
        self.icu = [int(e.attrs["icu"]) for e in self.entities]
        self.bias = [rng.uniform(0.88, 1.1) for _ in self.entities]
        self.occupied = [b * 0.8 * s for b, s in zip(self.beds, self.bias, strict=True)]
        self.icu_occupied = [i * 0.7 for i in self.icu]
        self.er = [b / 200 for b in self.beds]
        self.ambulances = [max(1, b // 60) for b in self.beds]
        self.busy = [0.0 for _ in self.entities]
        self.communes = [self.commune_index[e.commune] for e in self.entities]
        self.online_draw = [rng.random() for _ in self.entities]
        self.keys = [e.id.encode() for e in self.entities]
        self.buckets = phase_buckets(len(self.entities), self.status_interval, rng)
        self.picker = Picker(self.beds) if self.entities else None
        self.noise = noise_table(rng)

    def emit(self, tick: Tick, batch: Batch) -> None:
        """Admissions arriving this second, then the snapshots whose phase is now."""
        if self.picker is None:
            return
        self._admissions(tick, batch)
        bucket = self.buckets[tick.t_s % self.status_interval]
        if bucket:
            self._status(tick, batch, bucket)

    def _admissions(self, tick: Tick, batch: Batch) -> None:
        assert self.picker is not None
        rng = self.rng
        level = admission_table()[tick.minute_of_week]
        extra = tick.factors("hospital.admission")
        urgent = tick.factors("hospital.urgent")
        top = level * (max(extra) if extra else 1.0)
        count = poisson(rng, self.picker.total * ADMISSION_RATE * top * self.rate)
        stamp = tick.suffix.encode() + self.admission_middle + tick.time_json
        seen = set()
        for _ in range(count):
            i = self.picker.pick(rng)
            commune = self.communes[i]
            if i in seen or rng.random() * top >= level * (extra[commune] if extra else 1.0):
                continue
            seen.add(i)
            share = URGENT_SHARE * (urgent[commune] if urgent else 1.0)
            if rng.random() < share / (share + 1 - URGENT_SHARE):
                triage = 1 if rng.random() < 0.2 else 2
                self.busy[i] = min(self.ambulances[i], self.busy[i] + 1)
                self.icu_occupied[i] = min(self.icu[i], self.icu_occupied[i] + 0.3)
            else:
                triage = 3 + int(rng.random() * 3)
            self.er[i] += 1
            self.occupied[i] = min(self.beds[i], self.occupied[i] + 0.3)
            t = self.admission_t[i]
            data = orjson.dumps({"triage": triage})
            batch.add(self.keys[i], b"".join((t.head, stamp, t.tail, data, t.end)), tick.time_ms)

    def _status(self, tick: Tick, batch: Batch, bucket: list[int]) -> None:
        online = tick.factors("hospital.online")
        dt = self.status_interval
        drift, drain = dt / DRIFT_S, math.exp(-dt / ER_DRAIN_S)
        back = math.exp(-dt / AMBULANCE_RETURN_S)
        target = occupancy_target(tick.minute_of_week)
        stamp = tick.suffix.encode() + self.status_middle + tick.time_json
        noise, bits = self.noise, self.rng.getrandbits
        for i in bucket:
            beds, icu = self.beds[i], self.icu[i]
            occupied = self.occupied[i]
            occupied += (target * self.bias[i] * beds - occupied) * drift
            occupied += noise[bits(12)] * 0.002 * beds * dt**0.5 / 8
            self.occupied[i] = occupied = min(float(beds), max(0.0, occupied))
            icu_occupied = self.icu_occupied[i]
            icu_occupied += (0.7 * icu - icu_occupied) * drift
            self.icu_occupied[i] = icu_occupied = min(float(icu), max(0.0, icu_occupied))
            self.er[i] *= drain
            self.busy[i] *= back
            if online is not None and self.online_draw[i] >= online[self.communes[i]]:
                continue
            data = orjson.dumps(
                {
                    "beds_total": beds,
                    "beds_occupied": int(occupied + 0.5),
                    "icu_total": icu,
                    "icu_occupied": int(icu_occupied + 0.5),
                    "er_waiting": int(self.er[i] + 0.5),
                    "ambulances_available": self.ambulances[i] - int(self.busy[i] + 0.5),
                }
            )
            t = self.status_t[i]
            batch.add(self.keys[i], b"".join((t.head, stamp, t.tail, data, t.end)), tick.time_ms)
