"""The engine's memory of one (rule, entity): small, JSON-serialisable, crash-safe.

It lives inside the entity record (``streams.entity_record``, whose changelog is
``ioc.state``), so it is recovered with the minutes it refers to. Keys are short because
every record carries it; keys at their default value are left out, so an entity with nothing going
on costs ``{"f": <minute>}`` per rule.

| key | meaning |
|---|---|
| ``f`` | start of the last final minute walked (ms), or absent before the first |
| ``p`` | clause values of minutes seen but not final yet, by minute start |
| ``r``, ``s`` | length and first minute of the current opening streak |
| ``k`` | length of the current clearing streak (while an alert is open) |
| ``u`` | consecutive minutes without a verdict (capped at ``max_gap_minutes + 1``) |
| ``a`` | the open alert: id, opening minute, streak start, minute of last open/update |
| ``q`` | a provisional alert: ``[id, the minute expected to open it, streak start]`` |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.alerts.conditions import Values
from streams.entity_record import RuleState

#: A track as the entity record carries it (``EntityRecord.rules``, by rule id). Every
#: rule kind keeps its open alert under ``a`` with its ``id``, which
#: ``EntityRecord.open_alerts`` reads for the live feed.
TrackJson = RuleState


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """The alert open for this (rule, entity)."""

    id: str
    opened_ms: int  # start of the minute whose verdict opened it
    since_ms: int  # start of the first minute of the opening streak
    last_ms: int  # start of the minute of the last open or update transition


@dataclass(slots=True)
class Track:
    """Streaks and the open alert of one (rule, entity); see the module docstring."""

    final_ms: int | None = None
    pending: dict[int, Values] = field(default_factory=dict)
    run: int = 0
    since_ms: int | None = None
    clear: int = 0
    gap: int = 0
    alert: OpenAlert | None = None
    #: The provisional alert announced: its id, the minute expected to open it, and the
    #: first minute of its streak.
    provisional: tuple[str, int, int] | None = None

    def snapshot(self) -> tuple[object, ...]:
        """Everything a step can change except ``final_ms`` and ``pending``."""
        return (self.run, self.since_ms, self.clear, self.gap, self.alert)

    def is_empty(self) -> bool:
        return (
            self.final_ms is None
            and not self.pending
            and self.alert is None
            and self.provisional is None
        )

    def to_json(self) -> TrackJson:
        out: TrackJson = {}
        if self.final_ms is not None:
            out["f"] = self.final_ms
        if self.pending:
            out["p"] = {str(minute): values for minute, values in sorted(self.pending.items())}
        if self.run:
            out["r"], out["s"] = self.run, self.since_ms
        if self.clear:
            out["k"] = self.clear
        if self.gap:
            out["u"] = self.gap
        if self.alert is not None:
            a = self.alert
            out["a"] = {"id": a.id, "o": a.opened_ms, "s": a.since_ms, "l": a.last_ms}
        if self.provisional is not None:
            out["q"] = list(self.provisional)
        return out

    @classmethod
    def from_json(cls, data: TrackJson | None) -> Track:
        if not data:
            return cls()
        raw_alert = data.get("a")
        alert = (
            OpenAlert(
                id=raw_alert["id"],
                opened_ms=raw_alert["o"],
                since_ms=raw_alert["s"],
                last_ms=raw_alert["l"],
            )
            if raw_alert
            else None
        )
        return cls(
            final_ms=data.get("f"),
            pending={int(minute): list(values) for minute, values in data.get("p", {}).items()},
            run=data.get("r", 0),
            since_ms=data.get("s"),
            clear=data.get("k", 0),
            gap=data.get("u", 0),
            alert=alert,
            provisional=(data["q"][0], data["q"][1], data["q"][2]) if "q" in data else None,
        )
