"""Schools: attendance counted during sessions on school days, and rare safety reports.

Attendance is reported every five minutes (rate 1) while a session runs, only on school
days of the calendar in ``seeds/quang_ninh/model.json``. Pupils arrive over the first
twenty minutes of a session; each school has its own usual attendance; Mondays and
Fridays are a little lower. A scenario can close schools (``school.open`` below 0.5) or
lower attendance per commune.
"""

from __future__ import annotations

import orjson

from city.model import City
from contract.school import SchoolAttendance, SchoolSafety
from simulators.events import Batch, Picker, Tick, noise_table, phase_buckets, poisson
from simulators.generator import DomainGenerator
from simulators.rhythms import SchoolCalendar
from simulators.template import cut

#: Safety reports per school per second of school time (about one a term).
SAFETY_RATE = 1 / (60 * 8 * 3600)
SAFETY_KINDS = ("injury", "fire_drill", "intruder", "flooding", "fire")
SAFETY_WEIGHTS = Picker((0.6, 0.25, 0.05, 0.05, 0.05))
WEEKDAY_FACTOR = (0.97, 0.985, 0.985, 0.985, 0.965, 0.95, 0.95)


class SchoolGenerator(DomainGenerator):
    """Attendance by phase during sessions; safety reports by thinning."""

    domain = "school"
    source = "/simulators/school"

    def __init__(self, city: City, *, seed: int, rate: float) -> None:
        super().__init__(city, seed=seed, rate=rate)
        rng = self.rng
        self.calendar = SchoolCalendar(city.calendar)
        self.interval_s = self.interval("school")
        self.attendance_t = self.templates(SchoolAttendance.event_type, "att")
        self.safety_t = self.templates(SchoolSafety.event_type, "saf")
        self.attendance_middle = cut(
            event_type=SchoolAttendance.event_type, subject="x", source=self.source, id_prefix=""
        ).middle
        self.safety_middle = cut(
            event_type=SchoolSafety.event_type, subject="x", source=self.source, id_prefix=""
        ).middle
        self.enrolled = [int(e.attrs["enrolled"]) for e in self.entities]
        self.usual = [rng.uniform(0.9, 0.985) for _ in self.entities]
        self.communes = [self.commune_index[e.commune] for e in self.entities]
        self.online_draw = [rng.random() for _ in self.entities]
        self.keys = [e.id.encode() for e in self.entities]
        self.buckets = phase_buckets(len(self.entities), self.interval_s, rng)
        self.noise = noise_table(rng)
        self._day: object = None
        self._school_day = False

    def in_session(self, tick: Tick) -> int | None:
        """Minutes since the current session began, or None when schools are not in session."""
        if tick.day != self._day:
            self._day, self._school_day = tick.day, self.calendar.is_school_day(tick.day)
        if not self._school_day:
            return None
        return self.calendar.session_elapsed(tick.minute_of_day)

    def emit(self, tick: Tick, batch: Batch) -> None:
        """Attendance of the schools whose phase is now, and safety reports, in session only."""
        elapsed = self.in_session(tick) if self.entities else None
        if elapsed is None:
            return
        is_open = tick.factors("school.open")
        bucket = self.buckets[tick.t_s % self.interval_s]
        if bucket:
            self._attendance(tick, batch, bucket, elapsed, is_open)
        self._safety(tick, batch, is_open)

    def _attendance(
        self, tick: Tick, batch: Batch, bucket: list[int], elapsed: int, is_open: list[float] | None
    ) -> None:
        presence = tick.factors("school.attendance")
        online = tick.factors("school.online")
        arrived = min(1.0, 0.3 + 0.7 * elapsed / 20)
        if tick.minute_of_day >= 12 * 60:
            arrived *= 0.92  # some pupils attend the morning session only
        day = WEEKDAY_FACTOR[tick.day.weekday()] * arrived
        stamp = tick.suffix.encode() + self.attendance_middle + tick.time_json
        noise, bits = self.noise, self.rng.getrandbits
        for i in bucket:
            commune = self.communes[i]
            if is_open is not None and is_open[commune] < 0.5:
                continue
            if online is not None and self.online_draw[i] >= online[commune]:
                continue
            enrolled = self.enrolled[i]
            share = self.usual[i] * day * (presence[commune] if presence else 1.0)
            share += 0.01 * noise[bits(12)]
            present = min(enrolled, max(0, int(enrolled * share + 0.5)))
            data = orjson.dumps({"enrolled": enrolled, "present": present})
            t = self.attendance_t[i]
            batch.add(self.keys[i], b"".join((t.head, stamp, t.tail, data, t.end)), tick.time_ms)

    def _safety(self, tick: Tick, batch: Batch, is_open: list[float] | None) -> None:
        extra = tick.factors("school.safety")
        top = max(extra) if extra else 1.0
        rng = self.rng
        count = poisson(rng, len(self.entities) * SAFETY_RATE * top * self.rate)
        stamp = tick.suffix.encode() + self.safety_middle + tick.time_json
        seen = set()
        for _ in range(count):
            i = int(rng.random() * len(self.entities))
            commune = self.communes[i]
            if i in seen or (is_open is not None and is_open[commune] < 0.5):
                continue
            if rng.random() * top >= (extra[commune] if extra else 1.0):
                continue
            seen.add(i)
            data = orjson.dumps({"kind": SAFETY_KINDS[SAFETY_WEIGHTS.pick(rng)]})
            t = self.safety_t[i]
            batch.add(self.keys[i], b"".join((t.head, stamp, t.tail, data, t.end)), tick.time_ms)
