"""Security cameras: analytics detections and alarms, with day and night patterns.

Detections are a Poisson process per camera whose rate follows its site: beaches and
markets follow people (crowds by day and evening, busier at weekends), ports, border
gates and industrial sites peak at night (intrusion, loitering). Scenarios scale
detections, crowds (carnival) and alarms (typhoon power losses) per commune.
"""

from __future__ import annotations

import orjson

from city.model import City
from contract.security import SecurityAlarm, SecurityDetection
from simulators.events import Batch, Picker, Tick, poisson
from simulators.generator import DomainGenerator
from simulators.rhythms import DETECTION_MIX, SITES, site_group, site_table
from simulators.template import cut

#: Detections per hour at each kind of site, at the site's mean.
SITE_RATES = {
    "street": 12.0,
    "market": 30.0,
    "residential": 6.0,
    "industrial": 8.0,
    "port": 20.0,
    "border": 30.0,
    "beach": 30.0,
    "airport": 20.0,
}
ALARM_RATE = 1 / (10 * 86400)
ALARM_KINDS = ("tamper", "intrusion", "power_loss", "panic", "fire")
ALARM_WEIGHTS = Picker((0.35, 0.3, 0.15, 0.1, 0.1))
ALARM_ZONES = ("gate", "perimeter", "hall", "dock", "parking")


class SecurityGenerator(DomainGenerator):
    """Detections and alarms by thinning over the cameras."""

    domain = "security"
    source = "/simulators/security"

    def __init__(self, city: City, *, seed: int, rate: float) -> None:
        super().__init__(city, seed=seed, rate=rate)
        self.detection_t = self.templates(SecurityDetection.event_type, "d")
        self.alarm_t = self.templates(SecurityAlarm.event_type, "al")
        self.detection_middle = cut(
            event_type=SecurityDetection.event_type, subject="x", source=self.source, id_prefix=""
        ).middle
        self.alarm_middle = cut(
            event_type=SecurityAlarm.event_type, subject="x", source=self.source, id_prefix=""
        ).middle
        self.sites = [SITES.index(str(e.attrs["site"])) for e in self.entities]
        self.groups = [site_group(str(e.attrs["site"])) for e in self.entities]
        self.communes = [self.commune_index[e.commune] for e in self.entities]
        self.keys = [e.id.encode() for e in self.entities]
        weights = [SITE_RATES[str(e.attrs["site"])] * rate / 3600 for e in self.entities]
        self.picker = Picker(weights) if weights else None
        self.mix = {
            key: (tuple(kinds), Picker(list(kinds.values())))
            for key, kinds in DETECTION_MIX.items()
        }

    def emit(self, tick: Tick, batch: Batch) -> None:
        """Detections and alarms happening this second."""
        if self.picker is None:
            return
        self._detections(tick, batch)
        self._alarms(tick, batch)

    def _detections(self, tick: Tick, batch: Batch) -> None:
        assert self.picker is not None
        rng, mow = self.rng, tick.minute_of_week
        levels = [site_table(s)[mow] for s in SITES]
        extra = tick.factors("security.detection")
        crowd = tick.factors("security.crowd")
        top = max(levels) * (max(extra) if extra else 1.0) * (max(crowd) if crowd else 1.0)
        count = poisson(rng, self.picker.total * top)
        night = tick.minute_of_day >= 22 * 60 or tick.minute_of_day < 5 * 60
        stamp = tick.suffix.encode() + self.detection_middle + tick.time_json
        seen = set()
        for _ in range(count):
            i = self.picker.pick(rng)
            commune, group = self.communes[i], self.groups[i]
            boost = crowd[commune] if crowd and group == "people" else 1.0
            level = levels[self.sites[i]] * (extra[commune] if extra else 1.0) * boost
            if i in seen or rng.random() * top >= level:
                continue
            seen.add(i)
            kinds, picker = self.mix[(group, night)]
            kind = "crowd" if rng.random() < 1 - 1 / boost else kinds[picker.pick(rng)]
            confidence = int((0.3 + 0.7 * rng.random() ** 0.6) * 100) / 100
            if kind == "crowd":
                size = int(15 + 120 * rng.random() ** 2 * boost)
            else:
                size = 1 + int(rng.random() * rng.random() * 4)
            data = orjson.dumps({"kind": kind, "confidence": confidence, "count": size})
            t = self.detection_t[i]
            batch.add(self.keys[i], b"".join((t.head, stamp, t.tail, data, t.end)), tick.time_ms)

    def _alarms(self, tick: Tick, batch: Batch) -> None:
        rng = self.rng
        extra = tick.factors("security.alarm")
        top = max(extra) if extra else 1.0
        count = poisson(rng, len(self.entities) * ALARM_RATE * top * self.rate)
        stamp = tick.suffix.encode() + self.alarm_middle + tick.time_json
        seen = set()
        for _ in range(count):
            i = int(rng.random() * len(self.entities))
            boost = extra[self.communes[i]] if extra else 1.0
            if i in seen or rng.random() * top >= boost:
                continue
            seen.add(i)
            # Storms and outages show up as power losses more than anything else.
            if rng.random() < 1 - 1 / max(1.0, boost):
                kind = "power_loss"
            else:
                kind = ALARM_KINDS[ALARM_WEIGHTS.pick(rng)]
            data = orjson.dumps({"kind": kind, "zone": ALARM_ZONES[int(rng.random() * 5)]})
            t = self.alarm_t[i]
            batch.add(self.keys[i], b"".join((t.head, stamp, t.tail, data, t.end)), tick.time_ms)
