"""Incidents of one place as a pure function of its alerts and the event time.

The incident agents (``streams.incidents.app``) keep, per commune and per zone, every
alert of the place as absolute facts keyed by alert id (:class:`Place`): its rule,
domain, severity, opening time and resolution time. A transition delivered twice, or
late, or in another order, leaves the same facts, because Faust processes some records
twice after a rebalance and alerts of different entities arrive through different
partitions in no fixed order. The incidents are then *derived* from the facts
(:func:`derive`), never accumulated: the same alerts give the same incidents, with the
same ids and times, whatever the arrival order, the replay speed or the number of times
a record was seen. What was published before is kept too, so that each call publishes
only what changed (:meth:`Place.step`).

Event time only: an incident closes at ``quiet_minutes`` after the resolution of its
last alert, judged against the place's clock (the latest event time it has seen, or the
worker's clock, which ticks carry to quiet places).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from streams.alerts.transitions import FINAL_STATES
from streams.incidents.events import IncidentState, IncidentTransition, incident_id
from streams.incidents.rules import SEVERITY_RANK, CorrelationRule

MINUTE_MS = 60_000
#: How long after its last incident closed (and its last alert resolved) a place's
#: facts are kept, beyond the longest rule's window and quiet time, in the event time of
#: the place's own alerts: alerts of one place come through different partitions, which
#: may lag each other by as much when a worker catches up after an outage.
KEEP_MS = 6 * 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class AlertFact:
    """What correlation needs of one alert."""

    alert_id: str
    rule_id: str
    domain: str
    severity: str
    opened_ms: int
    resolved_ms: int | None


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as the facts make it."""

    incident_id: str
    rule: CorrelationRule
    area_id: str
    opened_ms: int
    #: Event time it closed; None while it is open.
    closed_ms: int | None
    severity: str
    alerts: tuple[str, ...]
    #: Opening time of its latest alert.
    last_joined_ms: int


def _quiet_end(members: Sequence[AlertFact], quiet_ms: int) -> int | None:
    """When the incident of these alerts closes if no other joins: ``quiet_ms`` after the
    last resolution; None while one of them is unresolved."""
    resolved = [a.resolved_ms for a in members]
    if any(r is None for r in resolved):
        return None
    return max(r for r in resolved if r is not None) + quiet_ms


def _made(
    rule: CorrelationRule,
    area_id: str,
    members: list[AlertFact],
    opened_ms: int,
    closed: int | None,
) -> Incident:
    severity = max((rule.severity, *(a.severity for a in members)), key=lambda s: SEVERITY_RANK[s])
    return Incident(
        incident_id=incident_id(
            rule_id=rule.id, area_id=area_id, first_alert_id=members[0].alert_id
        ),
        rule=rule,
        area_id=area_id,
        opened_ms=opened_ms,
        closed_ms=closed,
        severity=severity,
        alerts=tuple(sorted(a.alert_id for a in members)),
        last_joined_ms=max(a.opened_ms for a in members),
    )


def derive(
    rule: CorrelationRule,
    area_id: str,
    alerts: Iterable[AlertFact],
    *,
    now_ms: int,
    ended: Mapping[str, int] | None = None,
) -> list[Incident]:
    """The incidents ``rule`` makes of a place's alerts, as of event time ``now_ms``;
    ``ended`` gives the time operators resolved (or merged away) incidents by id.

    Related alerts are taken in opening order (then id). One opened while an incident of
    the rule is open joins it; otherwise, if it completes the rule's requirements with
    the alerts opened within the window before it (those of earlier incidents aside), it
    opens one with them. An incident is open until ``quiet_minutes`` after its last
    alert resolved, and closed only once ``now_ms`` has passed that, or until an operator
    ended it: alerts opened after that make a new one if they meet the rule again."""
    ended = ended or {}
    ordered = sorted(
        (
            a
            for a in alerts
            if rule.relates(rule_id=a.rule_id, domain=a.domain, severity=a.severity)
        ),
        key=lambda a: (a.opened_ms, a.alert_id),
    )
    window_ms, quiet_ms = rule.within_minutes * MINUTE_MS, rule.quiet_minutes * MINUTE_MS
    incidents: list[Incident] = []
    members: list[AlertFact] = []
    opened_ms = 0
    first_free = 0  # ordered[first_free:] belong to no earlier incident
    for i, alert in enumerate(ordered):
        if members:
            end = _quiet_end(members, quiet_ms)
            by_hand = ended.get(
                incident_id(rule_id=rule.id, area_id=area_id, first_alert_id=members[0].alert_id)
            )
            if by_hand is not None and (end is None or by_hand < end):
                end = by_hand
            if end is None or alert.opened_ms < end:
                members.append(alert)
                continue
            incidents.append(_made(rule, area_id, members, opened_ms, end))
            members = []
            first_free = i
        candidates = [
            a for a in ordered[first_free : i + 1] if a.opened_ms >= alert.opened_ms - window_ms
        ]
        if all(
            sum(
                1
                for a in candidates
                if need.matches(rule_id=a.rule_id, domain=a.domain, severity=a.severity)
            )
            >= need.count
            for need in rule.requires
        ):
            members, opened_ms = candidates, alert.opened_ms
    if members:
        end = _quiet_end(members, quiet_ms)
        by_hand = ended.get(
            incident_id(rule_id=rule.id, area_id=area_id, first_alert_id=members[0].alert_id)
        )
        if by_hand is not None and (end is None or by_hand < end):
            end = by_hand
        incidents.append(
            _made(
                rule,
                area_id,
                members,
                opened_ms,
                end if end is not None and end <= now_ms else None,
            )
        )
    return incidents


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def fact_of(data: Mapping[str, Any]) -> AlertFact | None:
    """The fact an alert transition (the ``data`` of an ``ioc.alerts`` CloudEvent) states,
    or None for one correlation does not take: provisional alerts and their retraction
    (not final: a replay may not repeat them) and acknowledgements (change nothing)."""
    state = data.get("state")
    if state not in FINAL_STATES:
        return None
    resolved = data.get("resolved_at") if state == "resolve" else None
    return AlertFact(
        alert_id=str(data["alert_id"]),
        rule_id=str(data["rule_id"]),
        domain=str(data["domain"]),
        severity=str(data["severity"]),
        opened_ms=_ms(str(data["opened_at"])),
        resolved_ms=_ms(str(resolved)) if resolved else None,
    )


Emitted = Literal["open", "close"]


class Place:
    """The table value of one commune or zone: its alerts as facts, its clock, and what
    was last published of each incident. Plain JSON, so that Faust's changelog carries
    it: ``{"alerts": {id: [rule, domain, severity, opened_ms, resolved_ms]}, "now": ms,
    "heard": ms, "emitted": {incident id: [state, severity, alerts key, rule, opened_ms]}}``.
    """

    def __init__(self, area_id: str, level: str, value: Mapping[str, Any] | None = None) -> None:
        self.area_id, self.level = area_id, level
        value = value or {}
        self.alerts: dict[str, list[Any]] = dict(value.get("alerts", {}))
        self.now_ms: int = int(value.get("now", 0))
        #: The latest event time of the place's own alerts (ticks aside).
        self.heard_ms: int = int(value.get("heard", 0))
        #: When operators resolved (or merged away) incidents of the place, by id.
        self.ended: dict[str, int] = dict(value.get("ended", {}))
        self.emitted: dict[str, list[Any]] = dict(value.get("emitted", {}))

    def to_value(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts,
            "now": self.now_ms,
            "heard": self.heard_ms,
            "ended": self.ended,
            "emitted": self.emitted,
        }

    def take(self, fact: AlertFact, *, at_ms: int) -> None:
        """Record an alert's fact: a resolution is never undone by a repeat of an earlier
        transition, and an alert keeps the severity of its latest transition."""
        known = self.alerts.get(fact.alert_id)
        resolved = fact.resolved_ms
        if known is not None and known[4] is not None:
            resolved = known[4] if resolved is None else min(known[4], resolved)
        severity = fact.severity
        if known is not None and SEVERITY_RANK[known[2]] > SEVERITY_RANK[severity]:
            severity = known[2]
        self.alerts[fact.alert_id] = [fact.rule_id, fact.domain, severity, fact.opened_ms, resolved]
        self.now_ms = max(self.now_ms, at_ms)
        self.heard_ms = max(self.heard_ms, at_ms)

    def end(self, incident_id: str, *, at_ms: int) -> None:
        """An operator resolved the incident (or merged it into another) at ``at_ms``: for
        correlation it is over then; a repeat keeps the first time."""
        self.ended[incident_id] = min(self.ended.get(incident_id, at_ms), at_ms)

    def facts(self) -> list[AlertFact]:
        return [
            AlertFact(alert_id, rule_id, domain, severity, opened, resolved)
            for alert_id, (rule_id, domain, severity, opened, resolved) in self.alerts.items()
        ]

    def step(
        self, rules: Sequence[CorrelationRule], *, clock_ms: int = 0
    ) -> list[IncidentTransition]:
        """The transitions that bring what was published in line with the facts as of the
        later of the place's clock and ``clock_ms``."""
        self.now_ms = max(self.now_ms, clock_ms)
        facts = self.facts()
        derived = [
            i
            for rule in rules
            for i in derive(rule, self.area_id, facts, now_ms=self.now_ms, ended=self.ended)
        ]
        out: list[IncidentTransition] = []
        current: set[str] = set()
        for incident in derived:
            current.add(incident.incident_id)
            key = ",".join(incident.alerts)
            before = self.emitted.get(incident.incident_id)
            if before is None:
                out.append(self._transition(incident, "open", incident.opened_ms))
            elif (
                before[2] != key
                or before[1] != incident.severity
                or (before[0] == "close" and incident.closed_ms is None)
            ):
                escalated = SEVERITY_RANK[incident.severity] > SEVERITY_RANK[before[1]]
                out.append(
                    self._transition(
                        incident, "update", incident.last_joined_ms, escalated=escalated
                    )
                )
            state: Emitted = "open"
            if incident.closed_ms is not None:
                state = "close"
                if before is None or before[0] != "close":
                    out.append(self._transition(incident, "close", incident.closed_ms))
            self.emitted[incident.incident_id] = [
                state,
                incident.severity,
                key,
                incident.rule.id,
                incident.opened_ms,
            ]
        by_id = {rule.id: rule for rule in rules}
        for gone in [i for i in self.emitted if i not in current]:
            _, severity, key, rule_id, opened_ms = self.emitted.pop(gone)
            if rule_id in by_id:
                # Alerts that arrived late made another incident of this place (its first
                # alert is earlier): this one is withdrawn in its favour. (Forgetting a
                # place clears what was published with its facts: nothing else vanishes.)
                withdrawn = Incident(
                    incident_id=gone,
                    rule=by_id[rule_id],
                    area_id=self.area_id,
                    opened_ms=opened_ms,
                    closed_ms=None,
                    severity=severity,
                    alerts=tuple(key.split(",")) if key else (),
                    last_joined_ms=opened_ms,
                )
                out.append(self._transition(withdrawn, "retract", self.now_ms))
        self._forget(derived)
        return out

    def _forget(self, derived: Sequence[Incident]) -> None:
        """Drop the facts of a place where everything closed and resolved long ago."""
        if not self.alerts or any(i.closed_ms is None for i in derived):
            return
        longest = max((i.rule.within_minutes + i.rule.quiet_minutes for i in derived), default=0)
        horizon = self.heard_ms - longest * MINUTE_MS - KEEP_MS
        if all(r is not None and r < horizon for *_, r in self.alerts.values()):
            self.alerts.clear()
            self.emitted.clear()
            self.ended.clear()

    def _transition(
        self, incident: Incident, state: IncidentState, at_ms: int, *, escalated: bool = False
    ) -> IncidentTransition:
        rule = incident.rule
        return IncidentTransition(
            incident_id=incident.incident_id,
            rule_id=rule.id,
            sop=rule.sop,
            state=state,
            area_id=self.area_id,
            level=rule.level,
            severity=incident.severity,
            opened_at=_iso(incident.opened_ms),
            updated_at=_iso(at_ms),
            closed_at=_iso(incident.closed_ms) if state == "close" and incident.closed_ms else None,
            alerts=list(incident.alerts),
            escalated=escalated,
            title_en=rule.title.en,
            title_vi=rule.title.vi,
        )
