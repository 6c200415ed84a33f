"""Alerts and incidents opened per place and hour, as absolute counts (issue 21).

The incident agents (``streams.incidents.app``) keep, beside each place's correlation
state, the ids of what opened there in each hour of event time: the alerts placed in the
commune (or zone) by their ``opened_at`` hour, and the incidents of the place's level by
their opening hour. Ids, never increments: Faust processes some records twice, and a set
of ids seen twice is the same set. The counts are derived from the ids, so they are a
function of the alerts, whatever the arrival order, the replay speed or a restart; each
change is published as an absolute count (:class:`HourCount`, on ``ioc.area-activity``)
that the sink upserts into ``area_activity_hour`` (``streams.incidents.activity_store``).

What counts:

- an alert once it has a final transition (``open``, ``update``, ``resolve``): a
  provisional one counts once it opens, not before; a retracted one never (the engine
  retracts only forecasts their final minutes did not bear out, and a ``retract`` vetoes
  the id whatever arrives before or after it);
- an incident while the correlation holds it (``Place.emitted``), in the hour it opened;
  one withdrawn (``retract``) stops counting. Incidents the correlation forgot (closed
  long ago, past its bound) stay counted.

The table stays bounded by event time: once a place's clock (the latest event time of
the alert transitions it heard) is :data:`RETAIN_MS` past the end of an hour, the hour is
dropped from the table. Its last published counts stay in the database; a late alert for
a dropped hour is ignored for counting, so that a count made of part of the ids is never
published over the whole one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.alerts.transitions import FINAL_STATES
from streams.incidents.events import IncidentTransition

HOUR_MS = 3_600_000
#: How long past its end an hour is kept: later alerts for it are ignored.
RETAIN_MS = 48 * HOUR_MS


def hour_of(ms: int) -> int:
    """Start of the UTC hour holding ``ms`` (the local hour too: Vietnam is UTC+07)."""
    return ms - ms % HOUR_MS


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class HourCount:
    """What one place opened in one hour, as published on ``ioc.area-activity``.
    ``version`` grows with every change of the hour's counts: the sink keeps the
    highest."""

    area_id: str
    level: str
    hour_ms: int
    alerts: int
    incidents: int
    version: int

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "area_id": self.area_id,
                "level": self.level,
                "hour": datetime.fromtimestamp(self.hour_ms / 1000, tz=UTC).isoformat(),
                "alerts": self.alerts,
                "incidents": self.incidents,
                "version": self.version,
            }
        )


class _Hour:
    """The table value of one place's hour: ``{"alerts": [ids], "retracted": [ids],
    "incidents": [ids], "published": [alerts, incidents] | null, "version": n}``."""

    def __init__(self, value: Mapping[str, Any] | None = None) -> None:
        value = value or {}
        self.alerts: set[str] = set(value.get("alerts", ()))
        self.retracted: set[str] = set(value.get("retracted", ()))
        self.incidents: set[str] = set(value.get("incidents", ()))
        published = value.get("published")
        self.published: tuple[int, int] | None = (
            (int(published[0]), int(published[1])) if published else None
        )
        self.version = int(value.get("version", 0))

    def counts(self) -> tuple[int, int]:
        return len(self.alerts - self.retracted), len(self.incidents)

    def to_value(self) -> dict[str, Any]:
        return {
            "alerts": sorted(self.alerts),
            "retracted": sorted(self.retracted),
            "incidents": sorted(self.incidents),
            "published": list(self.published) if self.published else None,
            "version": self.version,
        }


def place_key(area_id: str) -> bytes:
    """The table key of a place's clock and hours held."""
    return area_id.encode()


def hour_key(area_id: str, hour_ms: int) -> bytes:
    """The table key of a place's hour: ``<place>|<hour ms>``."""
    return f"{area_id}|{hour_ms}".encode()


class PlaceActivity:
    """One place's hours as the activity table holds them: the place's value
    (``{"clock": ms, "hours": [hour ms, ...], "incidents": {id: hour ms}}``) and one
    value per hour held, read only when a change concerns it.

    Changes are made in memory; :meth:`settle` says what to publish and what to write
    back (publish first, then write: a crash in between publishes the same counts, with
    the same version, again)."""

    def __init__(
        self, area_id: str, level: str, get: Callable[[bytes], Mapping[str, Any] | None]
    ) -> None:
        self.area_id, self.level = area_id, level
        self._get = get
        value = get(place_key(area_id)) or {}
        self.clock_ms = int(value.get("clock", 0))
        #: Hours with a value in the table.
        self.held: set[int] = {int(h) for h in value.get("hours", ())}
        #: Where each incident counts, so that a move or a withdrawal finds it.
        self.incident_hours: dict[str, int] = {
            str(i): int(h) for i, h in value.get("incidents", {}).items()
        }
        self._before = (self.clock_ms, len(self.incident_hours))
        self._hours: dict[int, _Hour] = {}
        self._changed: set[int] = set()

    def kept(self, hour_ms: int) -> bool:
        """Whether the hour is still counted: it ended less than :data:`RETAIN_MS` before
        the place's clock."""
        return hour_ms + HOUR_MS + RETAIN_MS > self.clock_ms

    def hour(self, hour_ms: int) -> _Hour:
        """The hour's ids (empty for an hour not held)."""
        if hour_ms not in self._hours:
            value = self._get(hour_key(self.area_id, hour_ms)) if hour_ms in self.held else None
            self._hours[hour_ms] = _Hour(value)
        return self._hours[hour_ms]

    def counts(self, hour_ms: int) -> tuple[int, int]:
        """(alerts, incidents) of the hour as the ids held say."""
        return self.hour(hour_ms).counts()

    def _add(self, hour_ms: int, which: str, item: str) -> bool:
        """Add ``item`` to the hour's set ``which``; False for a dropped hour, which takes
        nothing (its published count stays as it was)."""
        if not self.kept(hour_ms):
            return False
        ids: set[str] = getattr(self.hour(hour_ms), which)
        if item not in ids:
            ids.add(item)
            self._changed.add(hour_ms)
        return True

    def take_alert(self, data: Mapping[str, Any]) -> None:
        """An alert transition of the place (the ``data`` of an ``ioc.alerts`` CloudEvent):
        a final one counts its alert, a ``retract`` vetoes it; others change nothing.
        Its time moves the place's clock first, so one far ahead may drop the hour of a
        late one it carries."""
        state = data.get("state")
        if state not in FINAL_STATES and state != "retract":
            return
        self.clock_ms = max(self.clock_ms, _ms(str(data["updated_at"])))
        which = "alerts" if state in FINAL_STATES else "retracted"
        self._add(hour_of(_ms(str(data["opened_at"]))), which, str(data["alert_id"]))

    def take_incidents(self, opened: Mapping[str, int], withdrawn: Iterable[str]) -> None:
        """The incidents the correlation holds for the place now (id -> opening time,
        from ``Place.emitted``) and those it has just withdrawn (``retract``): each held
        one counts in the hour it opened (moved there if it counted elsewhere), a
        withdrawn one nowhere; one no longer held and not withdrawn (forgotten) stays."""
        moves: list[tuple[str, int | None]] = [
            (i, None) for i in withdrawn if i in self.incident_hours
        ]
        for incident, opened_ms in opened.items():
            if self.incident_hours.get(incident) != hour_of(opened_ms):
                moves.append((incident, hour_of(opened_ms)))
        for incident, hour_ms in moves:
            before = self.incident_hours.pop(incident, None)
            if before is not None and self.kept(before):
                self.hour(before).incidents.discard(incident)
                self._changed.add(before)
            if hour_ms is not None and self._add(hour_ms, "incidents", incident):
                self.incident_hours[incident] = hour_ms

    def take_step(
        self, emitted: Mapping[str, Sequence[Any]], out: Iterable[IncidentTransition]
    ) -> None:
        """What a correlation step (``Place.step``) left: the place's incidents
        (``Place.emitted``) and the transitions it published, withdrawals among them."""
        withdrawn = [t.incident_id for t in out if t.state == "retract"]
        self.take_incidents(opened_incidents(emitted), withdrawn)

    def settle(self) -> tuple[list[HourCount], dict[bytes, dict[str, Any] | None]]:
        """Drop the hours the clock has left behind, then return the counts to publish
        (the hours whose counts differ from what was published, each with a new
        version) and the table's writes (None: delete the key)."""
        writes: dict[bytes, dict[str, Any] | None] = {}
        for hour_ms in [h for h in self.held if not self.kept(h)]:
            self.held.discard(hour_ms)
            writes[hour_key(self.area_id, hour_ms)] = None
        self.incident_hours = {i: h for i, h in self.incident_hours.items() if self.kept(h)}
        out: list[HourCount] = []
        for hour_ms in sorted(h for h in self._changed if self.kept(h)):
            hour = self._hours[hour_ms]
            counts = hour.counts()
            if counts != hour.published and (hour.published is not None or any(counts)):
                hour.version += 1
                hour.published = counts
                out.append(
                    HourCount(
                        area_id=self.area_id,
                        level=self.level,
                        hour_ms=hour_ms,
                        alerts=counts[0],
                        incidents=counts[1],
                        version=hour.version,
                    )
                )
            writes[hour_key(self.area_id, hour_ms)] = hour.to_value()
            self.held.add(hour_ms)
        if writes or (self.clock_ms, len(self.incident_hours)) != self._before:
            writes[place_key(self.area_id)] = {
                "clock": self.clock_ms,
                "hours": sorted(self.held),
                "incidents": self.incident_hours,
            }
        self._before = (self.clock_ms, len(self.incident_hours))
        self._changed.clear()
        return out, writes


def opened_incidents(emitted: Mapping[str, Sequence[Any]]) -> dict[str, int]:
    """Incident id -> opening time of what a place's correlation holds
    (``Place.emitted``: ``[state, severity, alerts key, rule, opened_ms]``)."""
    return {i: int(mark[4]) for i, mark in emitted.items()}
