"""The hub: numbers every update once, keeps a replay ring, fans out to client outboxes.

Pure and synchronous: the Kafka consumer calls :meth:`Hub.publish_state`,
:meth:`Hub.publish_alert` and :meth:`Hub.publish_incident`, and :meth:`Hub.publish_areas`
between batches (the area tiles of ``api.live.areas`` that are due), connections call
:meth:`Hub.subscribe`. Nothing here awaits, so subscribing (which takes the replay and the
snapshot overlay at one position) and publishing never interleave: a client gets every
message after its position exactly once.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from api.live.areas import AreaTiles, Registry, narrow
from api.live.filters import LiveFilter
from api.live.messages import EventId, Kind, Message, encode, entity_view, epoch_ms
from api.live.outbox import SHUTDOWN, Outbox
from streams.incidents.events import CORRELATION_SOURCE

#: Why a client gets a snapshot instead of a resumed stream.
INITIAL, UNKNOWN_ID, TOO_OLD = "initial", "unknown-id", "too-old"
RESOLVED_REMEMBERED = 10_000
#: Correlation states after which an incident is off the screens (until a later update).
INCIDENT_ENDED = ("close", "retract")
#: Operators' actions after which an incident never comes back.
INCIDENT_FINISHED = ("resolve", "merge")


@dataclass(frozen=True)
class Baseline:
    """What the database held when the tiles were first placed: entity views, open alerts
    (``alert_id``, ``entity_id``, ``severity``) and incidents on screens (``incident_id``,
    ``area_id``)."""

    entities: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    incidents: list[dict[str, Any]]


@dataclass(eq=False)
class Subscription:
    """One client's place in the hub."""

    filter: LiveFilter
    outbox: Outbox
    #: The last id the client's view reflects once it has the snapshot or the replay.
    position: EventId
    #: Why a snapshot is due; None when the client was resumed from the replay ring.
    snapshot_reason: str | None
    #: What the hub knew at ``position`` (filtered): the snapshot lays it over the database,
    #: which the sink may not have brought that far yet.
    overlay_entities: list[dict[str, Any]] = field(default_factory=list)
    overlay_alerts: list[dict[str, Any]] = field(default_factory=list)
    #: The latest correlation transition of each incident the hub saw (operators' actions
    #: are not needed: the API writes them to the database before it publishes them).
    overlay_incidents: list[dict[str, Any]] = field(default_factory=list)
    #: The area tiles at ``position`` the filter admits (the last sent of each area).
    areas: list[dict[str, Any]] = field(default_factory=list)


class Hub:
    """Fan-out of the derived topics to live clients."""

    def __init__(
        self,
        *,
        replay_messages: int,
        max_entities: int,
        max_alerts: int,
        epoch: str | None = None,
        area_interval_s: float = 2.0,
    ) -> None:
        self.epoch = epoch or format(time.time_ns() // 1_000_000, "x")
        self.seq = 0
        self.max_entities, self.max_alerts = max_entities, max_alerts
        self._ring: deque[Message] = deque(maxlen=replay_messages)
        self._subscriptions: set[Subscription] = set()
        # The fan-out looks at clients that named the message's entity and at those that
        # named none, not at every client: with many drill-down clients, matching each
        # one's filter against every update was most of the hub's time.
        self._unnamed: set[Subscription] = set()
        self._by_entity: dict[str, set[Subscription]] = {}
        self._entities: dict[str, Message] = {}
        self._open_alerts: dict[str, Message] = {}
        self._resolved: OrderedDict[str, Message] = OrderedDict()
        # The latest correlation transition per incident: those on screens, and those
        # closed, retracted, resolved or merged (bounded, like resolved alerts).
        self._incidents: dict[str, Message] = {}
        self._ended_incidents: OrderedDict[str, Message] = OrderedDict()
        # CloudEvent ids of ioc.incidents seen lately: a repeat is not sent again.
        self._incident_events: OrderedDict[str, None] = OrderedDict()
        # The area tiles, and the last message sent of each area (snapshots carry them).
        self.areas = AreaTiles(interval_s=area_interval_s)
        self._area_messages: dict[str, Message] = {}

    @property
    def last_id(self) -> EventId:
        return EventId(self.epoch, self.seq)

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def publish_state(self, record: dict[str, Any]) -> Message | None:
        """An ``ioc.state`` record; None when its view is what clients already have."""
        view = entity_view(record)
        entity_id = view["entity_id"]
        previous = self._entities.get(entity_id)
        if previous is not None and previous.payload == view:
            return None
        message = self._publish("entity", view, domain=view["domain"], entity_id=entity_id)
        self._entities[entity_id] = message
        self.areas.entity(view)
        return message

    def publish_alert(self, transition: dict[str, Any]) -> Message | None:
        """An ``ioc.alerts`` transition; None for a repeat (at-least-once delivery)."""
        alert_id = transition["alert_id"]
        previous = self._open_alerts.get(alert_id) or self._resolved.get(alert_id)
        if previous is not None and (
            previous.payload["state"] in ("resolve", "retract")
            or (previous.payload["state"], previous.payload["updated_at"])
            == (transition["state"], transition["updated_at"])
        ):
            return None
        message = self._publish(
            "alert",
            transition,
            domain=transition["domain"],
            entity_id=transition["entity_id"],
            severity=transition["severity"],
        )
        if transition["state"] in ("resolve", "retract"):
            self._open_alerts.pop(alert_id, None)
            self._resolved[alert_id] = message
            while len(self._resolved) > RESOLVED_REMEMBERED:
                self._resolved.popitem(last=False)
        else:
            self._open_alerts[alert_id] = message
        self.areas.alert(
            alert_id,
            entity_id=transition["entity_id"],
            severity=transition["severity"],
            open=alert_id in self._open_alerts,
            domain=transition.get("domain"),
        )
        return message

    def publish_incident(self, event: dict[str, Any]) -> Message | None:
        """An ``ioc.incidents`` CloudEvent (a correlation transition or an operator's
        action); None for a repeat (same CloudEvent id)."""
        transition = event["data"]
        incident_id, state, area_id = (
            transition["incident_id"],
            transition["state"],
            transition["area_id"],
        )
        correlation = event.get("source") == CORRELATION_SOURCE
        known = self._incidents.get(incident_id) or self._ended_incidents.get(incident_id)
        # An older transition than the one kept (a repeat under another id, a late one) is
        # sent, since clients keep the newer, but does not replace it.
        keep = correlation and (
            known is None
            or epoch_ms(transition["updated_at"]) >= epoch_ms(known.payload["updated_at"])
        )
        event_id = event.get("id")
        if event_id is not None:
            key = f"{event.get('source')}/{event_id}"
            if key in self._incident_events:
                return None
            self._incident_events[key] = None
            while len(self._incident_events) > RESOLVED_REMEMBERED:
                self._incident_events.popitem(last=False)
        # Operators' actions carry no severity: the incident's, when the hub saw it.
        severity = transition.get("severity") or (known.severity if known else None)
        message = self._publish(
            "incident", transition, domain="", entity_id="", severity=severity, area_id=area_id
        )
        if keep and state in INCIDENT_ENDED:
            self._incidents.pop(incident_id, None)
            self._end_incident(incident_id, message)
        elif keep:
            self._ended_incidents.pop(incident_id, None)
            self._incidents[incident_id] = message
        elif not correlation and state in INCIDENT_FINISHED and incident_id in self._incidents:
            self._end_incident(incident_id, self._incidents.pop(incident_id))
        on_screen = self._incidents.get(incident_id)
        self.areas.incident(
            incident_id,
            area_id=on_screen.payload["area_id"] if on_screen else area_id,
            open=on_screen is not None,
        )
        return message

    def _end_incident(self, incident_id: str, message: Message) -> None:
        self._ended_incidents[incident_id] = message
        self._ended_incidents.move_to_end(incident_id)
        while len(self._ended_incidents) > RESOLVED_REMEMBERED:
            self._ended_incidents.popitem(last=False)

    def _publish(
        self,
        kind: Kind,
        payload: dict[str, Any],
        *,
        domain: str,
        entity_id: str,
        severity: str | None = None,
        area_id: str | None = None,
    ) -> Message:
        self.seq += 1
        body, sse = encode(event_id=EventId(self.epoch, self.seq), kind=kind, payload=payload)
        message = Message(self.seq, kind, domain, entity_id, severity, body, sse, payload, area_id)
        self._ring.append(message)
        named = self._by_entity.get(entity_id)
        area = kind == "area"
        variants: dict[frozenset[str], Message] = {}
        for subscription in itertools.chain(self._unnamed, named or ()):
            f = subscription.filter
            if f.matches(message):
                if area and f.domains is not None:
                    subscription.outbox.offer(self._narrowed(message, f.domains, variants))
                else:
                    subscription.outbox.offer(message)
        return message

    def _narrowed(
        self, message: Message, domains: frozenset[str], variants: dict[frozenset[str], Message]
    ) -> Message:
        """An area message with only the domains a client named, encoded once per set."""
        variant = variants.get(domains)
        if variant is None:
            payload = narrow(message.payload, domains)
            event_id = EventId(self.epoch, message.seq)
            body, sse = encode(event_id=event_id, kind="area", payload=payload)
            variant = variants[domains] = dataclasses.replace(
                message, body=body, sse=sse, payload=payload
            )
        return variant

    def load_areas(self, registry: Registry, baseline: Baseline | None = None) -> None:
        """Place the tiles on a (new) registry; with the database's ``baseline`` of what
        happened before the hub's look back. What the hub saw itself wins: a state older
        than the hub's is ignored, alerts and incidents it has transitions of are its."""
        self.areas.rebuild(registry)
        for area_id in [a for a in self._area_messages if a not in registry.places]:
            del self._area_messages[area_id]
        if baseline is None:
            return
        for view in baseline.entities:
            self.areas.entity(view)
        for row in baseline.alerts:
            if row["alert_id"] not in self._open_alerts and row["alert_id"] not in self._resolved:
                self.areas.alert(
                    row["alert_id"],
                    entity_id=row["entity_id"],
                    severity=row["severity"],
                    open=True,
                    domain=row.get("domain"),
                )
        for row in baseline.incidents:
            incident_id = row["incident_id"]
            if incident_id not in self._incidents and incident_id not in self._ended_incidents:
                self.areas.incident(incident_id, area_id=row["area_id"], open=True)

    def publish_areas(self, now: float) -> list[Message]:
        """The area messages due at ``now`` (monotonic seconds), published like the rest."""
        out = []
        for tile in self.areas.due(now):
            area_id = tile["area_id"]
            message = self._publish("area", tile, domain="", entity_id="", area_id=area_id)
            self._area_messages[area_id] = message
            out.append(message)
        return out

    def _add(self, subscription: Subscription) -> None:
        self._subscriptions.add(subscription)
        entities = subscription.filter.entities
        if entities is None:
            self._unnamed.add(subscription)
        else:
            for entity_id in entities:
                self._by_entity.setdefault(entity_id, set()).add(subscription)

    def subscribe(self, live_filter: LiveFilter, since: EventId | None = None) -> Subscription:
        """Join the fan-out: resumed after ``since`` when the ring reaches back that far,
        otherwise with a snapshot due (and the hub's overlay for it)."""
        outbox = Outbox(max_entities=self.max_entities, max_alerts=self.max_alerts)
        subscription = Subscription(live_filter, outbox, self.last_id, INITIAL)
        if since is not None:
            reason = self._replay(subscription, since)
            if reason is None:
                subscription.snapshot_reason = None
                self._add(subscription)
                return subscription
            subscription.snapshot_reason = reason
            subscription.position = self.last_id
            subscription.outbox = Outbox(max_entities=self.max_entities, max_alerts=self.max_alerts)
        subscription.overlay_entities = [
            m.payload for m in self._entities.values() if live_filter.matches(m)
        ]
        subscription.overlay_alerts = [
            m.payload
            for m in itertools.chain(self._open_alerts.values(), self._resolved.values())
            if live_filter.matches(m)
        ]
        subscription.overlay_incidents = [
            m.payload
            for m in itertools.chain(self._incidents.values(), self._ended_incidents.values())
            if live_filter.matches(m)
        ]
        subscription.areas = [
            narrow(m.payload, live_filter.domains)
            for m in self._area_messages.values()
            if live_filter.matches(m)
        ]
        self._add(subscription)
        return subscription

    def _replay(self, subscription: Subscription, since: EventId) -> str | None:
        """Queue what came after ``since``; the snapshot reason when that is impossible."""
        if since.epoch != self.epoch or since.seq > self.seq:
            return UNKNOWN_ID
        oldest = self._ring[0].seq if self._ring else self.seq + 1
        if since.seq < oldest - 1:
            return TOO_OLD
        subscription.position = since
        start = since.seq - oldest + 1
        f = subscription.filter
        for message in itertools.islice(self._ring, start, None):
            if not f.matches(message):
                continue
            if message.kind == "area" and f.domains is not None:
                message = self._narrowed(message, f.domains, {})
            if not subscription.outbox.offer(message):
                return TOO_OLD  # more than the client's queue holds: a snapshot is smaller
        return None

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self._unnamed.discard(subscription)
        for entity_id in subscription.filter.entities or ():
            named = self._by_entity.get(entity_id)
            if named is not None:
                named.discard(subscription)
                if not named:
                    del self._by_entity[entity_id]

    def close(self) -> None:
        """Disconnect every client (the API is stopping)."""
        for subscription in self._subscriptions:
            subscription.outbox.close(SHUTDOWN)
        self._subscriptions.clear()
        self._unnamed.clear()
        self._by_entity.clear()
