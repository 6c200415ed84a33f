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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from streams.alerts.transitions import FINAL_STATES
from streams.incidents.events import IncidentState, IncidentTransition, incident_id
from streams.incidents.rules import SEVERITY_RANK, CorrelationRule, Match

MINUTE_MS = 60_000
#: How many alerts a place holds before it forgets old ones: the table's bound. Below it
#: nothing is forgotten, so a place's incidents are exactly the rules' reading of all its
#: alerts; above it (a place with more alerts than a storm gives), the alerts of its
#: closed incidents and of no incident go, if they resolved :data:`KEEP_MS` (beyond the
#: longest window and quiet time) before the place's clock.
MAX_FACTS = 2000
#: Alerts of one place come through different partitions, which lag each other when a
#: worker catches up after an outage; one later than this could split an incident it
#: belonged to.
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
    related = _relation(rule)
    ordered = sorted(
        (a for a in alerts if related(a.rule_id, a.domain, a.severity)),
        key=lambda a: (a.opened_ms, a.alert_id),
    )
    window_ms, quiet_ms = rule.within_minutes * MINUTE_MS, rule.quiet_minutes * MINUTE_MS
    needs = [(_matcher(need), need.count) for need in rule.requires]
    incidents: list[Incident] = []
    current: _Open | None = None
    first_free = 0  # ordered[first_free:] belong to no earlier incident
    low = 0  # ordered[low:] opened within the window before the alert at hand
    for i, alert in enumerate(ordered):
        if current is not None:
            end = current.end(quiet_ms, ended)
            if end is None or alert.opened_ms < end:
                current.join(alert)
                continue
            incidents.append(current.made(end))
            current = None
            first_free = i
        low = max(low, first_free)
        while ordered[low].opened_ms < alert.opened_ms - window_ms:
            low += 1
        candidates = ordered[low : i + 1]
        if all(
            sum(1 for a in candidates if match(a.rule_id, a.domain, a.severity)) >= count
            for match, count in needs
        ):
            current = _Open(rule, area_id, alert.opened_ms)
            for a in candidates:
                current.join(a)
    if current is not None:
        end = current.end(quiet_ms, ended)
        incidents.append(current.made(end if end is not None and end <= now_ms else None))
    return incidents


class _Open:
    """An incident being derived: its members so far, with what closing needs of them."""

    def __init__(self, rule: CorrelationRule, area_id: str, opened_ms: int) -> None:
        self.rule, self.area_id, self.opened_ms = rule, area_id, opened_ms
        self.members: list[AlertFact] = []
        self.unresolved = 0
        self.last_resolved = 0
        self.id = ""

    def join(self, alert: AlertFact) -> None:
        if not self.members:
            self.id = incident_id(
                rule_id=self.rule.id, area_id=self.area_id, first_alert_id=alert.alert_id
            )
        self.members.append(alert)
        if alert.resolved_ms is None:
            self.unresolved += 1
        else:
            self.last_resolved = max(self.last_resolved, alert.resolved_ms)

    def end(self, quiet_ms: int, ended: Mapping[str, int]) -> int | None:
        """When it closes if no other alert joins: ``quiet_ms`` after its last alert
        resolved, or when an operator ended it, whichever is first; None while neither."""
        end = None if self.unresolved else self.last_resolved + quiet_ms
        by_hand = ended.get(self.id) if ended else None
        if by_hand is not None and (end is None or by_hand < end):
            return by_hand
        return end

    def made(self, closed_ms: int | None) -> Incident:
        rule, members = self.rule, self.members
        severity = max(
            (rule.severity, *(a.severity for a in members)), key=lambda s: SEVERITY_RANK[s]
        )
        return Incident(
            incident_id=self.id,
            rule=rule,
            area_id=self.area_id,
            opened_ms=self.opened_ms,
            closed_ms=closed_ms,
            severity=severity,
            alerts=tuple(sorted(a.alert_id for a in members)),
            last_joined_ms=max(a.opened_ms for a in members),
        )


Matcher = Callable[[str, str, str], bool]


@lru_cache(maxsize=256)
def _relation(rule: CorrelationRule) -> Matcher:
    """``rule.relates`` as a function of (alert rule, domain, severity), remembered: a
    place's every alert is asked of every rule at every step."""
    return lru_cache(maxsize=4096)(
        lambda rule_id, domain, severity: rule.relates(
            rule_id=rule_id, domain=domain, severity=severity
        )
    )


@lru_cache(maxsize=1024)
def _matcher(need: Match) -> Matcher:
    """``need.matches`` as a remembered function of (alert rule, domain, severity)."""
    return lru_cache(maxsize=4096)(
        lambda rule_id, domain, severity: need.matches(
            rule_id=rule_id, domain=domain, severity=severity
        )
    )


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
    "ended": {incident id: ms},
    "emitted": {incident id: [state, severity, alerts key, rule, opened_ms]}}``.
    """

    max_facts = MAX_FACTS

    def __init__(self, area_id: str, level: str, value: Mapping[str, Any] | None = None) -> None:
        self.area_id, self.level = area_id, level
        value = value or {}
        self.alerts: dict[str, list[Any]] = dict(value.get("alerts", {}))
        self.now_ms: int = int(value.get("now", 0))
        #: When operators resolved (or merged away) incidents of the place, by id.
        self.ended: dict[str, int] = dict(value.get("ended", {}))
        self.emitted: dict[str, list[Any]] = dict(value.get("emitted", {}))

    def to_value(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts,
            "now": self.now_ms,
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
            changed = before is not None and (before[2] != key or before[1] != incident.severity)
            escalated = before is not None and (
                SEVERITY_RANK[incident.severity] > SEVERITY_RANK[before[1]]
            )
            if before is None:
                out.append(self._transition(incident, "open", incident.opened_ms))
            elif before[0] == "close" and incident.closed_ms is None:
                # Reopened by a late alert: dated now, after the close it undoes.
                at = max(incident.last_joined_ms, self.now_ms)
                out.append(self._transition(incident, "update", at, escalated=escalated))
            elif changed and (before[0] == "open" or incident.closed_ms is None):
                out.append(
                    self._transition(
                        incident, "update", incident.last_joined_ms, escalated=escalated
                    )
                )
            state: Emitted = "open"
            if incident.closed_ms is not None:
                state = "close"
                # Closed now, or closed before and still closed with other members or a
                # later close: the close carries the members and the time.
                if before is None or before[0] != "close" or changed:
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
        self._forget(derived, rules)
        return out

    def _forget(self, derived: Sequence[Incident], rules: Sequence[CorrelationRule]) -> None:
        """Past :attr:`max_facts` alerts, drop what can no longer change an incident:
        alerts resolved before the cut
        (the clock less the longest window and quiet time and :data:`KEEP_MS`), with every
        incident they belong to closed before it, those incidents' published marks with
        them. Whole incidents or none of them, so that what stays derives as before; an
        alert of no incident joined none when it could, so it goes alone."""
        if len(self.alerts) <= self.max_facts:
            return
        longest = max((r.within_minutes + r.quiet_minutes for r in rules), default=0)
        cut = self.now_ms - longest * MINUTE_MS - KEEP_MS

        def old(alert_id: str) -> bool:
            opened, resolved = self.alerts[alert_id][3], self.alerts[alert_id][4]
            return resolved is not None and resolved < cut and opened < cut

        holding: dict[str, list[Incident]] = {}
        for incident in derived:
            for alert_id in incident.alerts:
                holding.setdefault(alert_id, []).append(incident)
        going = {
            i.incident_id
            for i in derived
            if i.closed_ms is not None and all(old(a) for a in i.alerts)
        }
        kept = True
        while kept:  # an alert shared with an incident that stays keeps its incidents
            kept = False
            for incident in derived:
                if incident.incident_id in going and any(
                    other.incident_id not in going for a in incident.alerts for other in holding[a]
                ):
                    going.discard(incident.incident_id)
                    kept = True
        for alert_id in [a for a in self.alerts if old(a)]:
            if all(i.incident_id in going for i in holding.get(alert_id, ())):
                del self.alerts[alert_id]
        for gone in going:
            self.emitted.pop(gone, None)
            self.ended.pop(gone, None)

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
