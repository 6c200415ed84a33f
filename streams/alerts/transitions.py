"""Alert lifecycle transitions as published on ``ioc.alerts``.

The engine emits ``open``, ``update`` and ``resolve`` (the final transitions: a replay
emits identical ones), and for window rules ``provisional`` and ``retract``: an alert
the minutes seen so far say will open, before they are final, and its withdrawal when
the final minutes do not bear it out (an ``open`` with the same id confirms it). Those
two depend on how the data arrived and may differ between runs. Acknowledgement is an
operator's action and belongs to the API. Every time is event time (the end of the
minute that caused the transition), never the wall clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict

from contract.catalog import Domain
from streams.alerts.rules import Severity

#: Namespace of alert ids: uuid5 of ``<rule>/<entity>/<opening minute ms>``.
ALERT_NAMESPACE = uuid.UUID("6f0f3c52-8a4e-4b8e-9d0e-2c1a7f4b9e10")

AlertState = Literal["open", "update", "resolve", "provisional", "retract"]
#: The transitions a replay reproduces exactly.
FINAL_STATES = frozenset({"open", "update", "resolve"})


def alert_id(*, rule_id: str, entity_id: str, opened_minute_ms: int) -> str:
    """Deterministic id of the alert that opened on this minute for this rule and entity."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{rule_id}/{entity_id}/{opened_minute_ms}"))


def event_time(time_ms: int) -> datetime:
    """An event time in milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC)


class _Titled(Protocol):
    """What every kind of rule has that a transition names."""

    @property
    def id(self) -> str: ...
    @property
    def domain(self) -> Domain: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def title(self) -> Any: ...


def transition(
    rule: _Titled,
    *,
    alert_id: str,
    entity_id: str,
    state: AlertState,
    opened_ms: int,
    since_ms: int,
    at_ms: int,
    values: Mapping[str, float | str | None],
) -> AlertTransition:
    """A transition of ``rule``'s alert at event time ``at_ms`` (the resolve time too, for
    a ``resolve`` or ``retract``)."""
    at = event_time(at_ms)
    return AlertTransition(
        alert_id=alert_id,
        rule_id=rule.id,
        entity_id=entity_id,
        domain=rule.domain,
        severity=rule.severity,
        state=state,
        opened_at=event_time(opened_ms),
        since=event_time(since_ms),
        updated_at=at,
        resolved_at=at if state in ("resolve", "retract") else None,
        values=dict(values),
        title_en=rule.title.en,
        title_vi=rule.title.vi,
    )


class AlertTransition(BaseModel):
    """One step of an alert's life: opened, still firing with new values, or resolved."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    rule_id: str
    entity_id: str
    domain: Domain
    severity: Severity
    state: AlertState
    #: When the condition had held for the rule's ``for_minutes`` (end of that minute).
    opened_at: datetime
    #: Start of the first minute of the streak that opened the alert.
    since: datetime
    #: Time of this transition (equal to ``opened_at`` for ``open``).
    updated_at: datetime
    resolved_at: datetime | None = None
    #: Window rules: clause values (``statistic(metric)``) of the minute that caused this
    #: transition. Instant rules: the reported payload fields of the matching event, and
    #: ``matches``, how many matched while the alert was open.
    values: dict[str, float | str | None]
    title_en: str
    title_vi: str
    #: Where the entity is, from the registry when the transition was made (None for an
    #: entity the registry does not know): the incident tier correlates alerts by place.
    commune_id: str | None = None
    zone_id: str | None = None

    @property
    def dedup_key(self) -> str:
        """At most one alert is open per key: ``<rule>/<entity>``."""
        return f"{self.rule_id}/{self.entity_id}"

    def to_json(self) -> bytes:
        """The message value for ``ioc.alerts``: a CloudEvent (:func:`alert_event`)."""
        return alert_event(orjson.loads(orjson.dumps(self.model_dump())), source=RULES_SOURCE)


#: CloudEvent types of what ``ioc.alerts`` carries, by transition state (the rules') or
#: operator's action (the API's ``acknowledge``; an operator's ``resolve`` is a resolve).
ALERT_EVENT_TYPES: Mapping[str, str] = {
    "provisional": "city.alert.provisional.v1",
    "open": "city.alert.opened.v1",
    "update": "city.alert.updated.v1",
    "resolve": "city.alert.resolved.v1",
    "retract": "city.alert.retracted.v1",
    "acknowledge": "city.alert.acknowledged.v1",
}
#: Who made the event: the rules in the stream worker, or an operator through the API.
RULES_SOURCE = "/ioc/rules"
OPERATORS_SOURCE = "/ioc/operators"


def alert_event(data: Mapping[str, Any], *, source: str) -> bytes:
    """An alert transition (or an operator's action on an alert) as a CloudEvent 1.0 in
    structured JSON mode: its type says what happened, ``subject`` is the entity, ``time``
    the transition's ``updated_at`` and ``data`` the transition. The id is a function of
    the alert, the state and the time, so a repeat or a replay carries the same id."""
    state, updated = str(data["state"]), str(data["updated_at"])
    event_type = ALERT_EVENT_TYPES[state]
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid5(ALERT_NAMESPACE, f"{data['alert_id']}/{state}/{updated}")),
            "source": source,
            "type": event_type,
            "subject": data["entity_id"],
            "time": updated,
            "datacontenttype": "application/json",
            "dataschema": f"/v1/schemas/{event_type}",
            "data": data,
        }
    )
