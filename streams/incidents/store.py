"""The incident sink: incident transitions of ``ioc.incidents`` stored in PostgreSQL
(migration 0011: ``incident``, ``incident_alert``, ``incident_log``).

A consumer group of its own (``ioc-<namespace>-incident-sink``), run beside the state
sink in the worker's sink process. Each batch is written in one transaction and only then
are its offsets committed, so a crash repeats at most one batch, and a repeat changes
nothing: the CloudEvent id is the key of the incident's timeline (``incident_log``), and
a transition whose id is there already is skipped whole. A transition older than the
stored one still adds its alerts and its line of the timeline, never its fields.

Operators' states win over the correlation's: an acknowledged incident stays
acknowledged through updates; a resolved, merged or retracted one is never reopened,
though alerts that join it are still recorded (and on the incidents it was merged into).
Operators' events (source ``/ioc/operators``) are skipped: the API wrote them to the
database before publishing them. Records that do not read as incident transitions are
logged and skipped, never retried.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from mode import Service, ServiceT
from prometheus_client import Counter
from pydantic import ValidationError

from ioc.db.pool import create_pool
from ioc.settings import Settings
from streams.counters import SINK_RETRIES, SINK_ROWS
from streams.incidents.events import (
    CORRELATION_SOURCE,
    INCIDENT_EVENT_TYPES,
    OPERATORS_SOURCE,
    IncidentTransition,
)
from streams.kafka import client_options
from streams.topics import INCIDENTS_TOPIC

if TYPE_CHECKING:
    from streams.incidents.activity_store import AreaActivitySink

log = logging.getLogger(__name__)

SKIPPED = Counter(
    "ioc_incident_sink_skipped",
    "Records of ioc.incidents the incident sink did not apply, by reason",
    ["reason"],
)

#: The incident's state for each correlation transition (before operators' states).
DB_STATE = {"open": "open", "update": "open", "close": "closed", "retract": "retracted"}
#: Which of two transitions with the same time is the later (``streams.sink.STEP``).
STEP = {"open": 0, "update": 1, "close": 2, "retract": 2}

SEEN = "SELECT EXISTS (SELECT 1 FROM incident_log WHERE event_id = $1)"

UPSERT_INCIDENT = """
INSERT INTO incident AS i (incident_id, rule_id, sop, area_id, level, severity, state,
                           opened_at, updated_at, closed_at, title_en, title_vi)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (incident_id) DO UPDATE SET
    severity = EXCLUDED.severity, updated_at = EXCLUDED.updated_at,
    closed_at = EXCLUDED.closed_at, title_en = EXCLUDED.title_en, title_vi = EXCLUDED.title_vi,
    state = CASE WHEN EXCLUDED.state <> 'open' THEN EXCLUDED.state
                 WHEN i.acknowledged_by IS NOT NULL THEN 'acknowledged'
                 ELSE 'open' END,
    written_at = now()
WHERE i.state NOT IN ('resolved', 'merged', 'retracted')
  AND (i.updated_at < EXCLUDED.updated_at
       OR (i.updated_at = EXCLUDED.updated_at
           AND $13 >= CASE WHEN i.state IN ('closed', 'retracted') THEN 2 ELSE 1 END))
"""

#: Members join the incident and every incident it was merged into (a chain: an
#: incident is only merged into one that is not merged itself, so there is no cycle).
ADD_MEMBERS = """
WITH RECURSIVE targets (id, depth) AS (
    SELECT $1::uuid, 0
    UNION ALL
    SELECT i.merged_into, t.depth + 1 FROM incident i JOIN targets t ON i.incident_id = t.id
    WHERE i.merged_into IS NOT NULL AND t.depth < 16
)
INSERT INTO incident_alert AS m (incident_id, alert_id, joined_at)
SELECT t.id, a, $3 FROM targets t CROSS JOIN unnest($2::uuid[]) AS a
ON CONFLICT (incident_id, alert_id) DO UPDATE SET joined_at = EXCLUDED.joined_at
WHERE m.joined_at > EXCLUDED.joined_at
"""

ADD_LOG = """
INSERT INTO incident_log (event_id, incident_id, at, kind, "by", detail)
VALUES ($1, $2, $3, $4, NULL, $5::jsonb)
ON CONFLICT (event_id) DO NOTHING
"""


class Malformed(ValueError):
    """A record of ``ioc.incidents`` that is not an incident transition."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StoredTransition:
    """One correlation transition, read and checked, as the database takes it."""

    event_id: uuid.UUID
    incident_id: uuid.UUID
    transition: IncidentTransition
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    alerts: tuple[uuid.UUID, ...]

    def incident_row(self) -> tuple[Any, ...]:
        t = self.transition
        return (
            self.incident_id,
            t.rule_id,
            t.sop,
            t.area_id,
            t.level,
            t.severity,
            DB_STATE[t.state],
            self.opened_at,
            self.updated_at,
            self.closed_at,
            t.title_en,
            t.title_vi,
            STEP[t.state],
        )

    def detail(self) -> str:
        """The timeline's detail of the transition."""
        t = self.transition
        detail: dict[str, Any] = {"severity": t.severity, "alerts": t.alerts}
        if t.escalated:
            detail["escalated"] = True
        if t.closed_at is not None:
            detail["closed_at"] = t.closed_at
        return orjson.dumps(detail).decode()


def _instant(value: str, field: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed("invalid_field", f"{field}: not an RFC 3339 time: {value!r}") from None
    if at.tzinfo is None:
        raise Malformed("invalid_field", f"{field}: a time without a zone: {value!r}")
    return at


def read_transition(value: bytes | None) -> StoredTransition | None:
    """The correlation transition a record of ``ioc.incidents`` carries; None for an
    operator's event; :class:`Malformed` for anything that is not one."""
    if not value:
        raise Malformed("empty", "the record has no value")
    # PostgreSQL's text and jsonb refuse NUL: such a record would fail its batch forever.
    if b"\x00" in value or b"\\u0000" in value:
        raise Malformed("invalid_field", "a NUL character")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Malformed("not_json", str(exc)) from None
    if not isinstance(event, dict):
        raise Malformed("not_object", f"a JSON {type(event).__name__}")
    source = event.get("source")
    if source == OPERATORS_SOURCE:
        return None
    if source != CORRELATION_SOURCE:
        raise Malformed("unknown_source", f"source {source!r}")
    try:
        event_id = uuid.UUID(str(event["id"]))
        transition = IncidentTransition.model_validate(event["data"])
        incident_id = uuid.UUID(transition.incident_id)
        alerts = tuple(sorted({uuid.UUID(a) for a in transition.alerts}))
    except KeyError as exc:
        raise Malformed("missing_field", str(exc)) from None
    except ValidationError as exc:
        raise Malformed("invalid_field", str(exc).splitlines()[0]) from None
    except ValueError as exc:
        raise Malformed("invalid_field", str(exc)) from None
    if event.get("type") != INCIDENT_EVENT_TYPES[transition.state]:
        raise Malformed("invalid_field", f"type {event.get('type')!r} for {transition.state}")
    closed = transition.closed_at
    return StoredTransition(
        event_id=event_id,
        incident_id=incident_id,
        transition=transition,
        opened_at=_instant(transition.opened_at, "opened_at"),
        updated_at=_instant(transition.updated_at, "updated_at"),
        closed_at=None if closed is None else _instant(closed, "closed_at"),
        alerts=alerts,
    )


async def write_transitions(pool: asyncpg.Pool, items: Sequence[StoredTransition]) -> int:
    """Apply transitions in order in one transaction; return how many were new (the
    others were in the timeline already)."""
    applied = 0
    async with pool.acquire() as conn, conn.transaction():
        for item in items:
            if await conn.fetchval(SEEN, item.event_id):
                continue
            await conn.execute(UPSERT_INCIDENT, *item.incident_row())
            await conn.execute(ADD_MEMBERS, item.incident_id, list(item.alerts), item.updated_at)
            await conn.execute(
                ADD_LOG,
                item.event_id,
                item.incident_id,
                item.updated_at,
                item.transition.state,
                item.detail(),
            )
            applied += 1
    return applied


T = TypeVar("T")


class TopicSink(Service, Generic[T]):
    """Consumes one topic of the namespace in batches and stores them: each batch in one
    transaction, offsets committed after, writes retried with backoff until the database
    takes them. Subclasses say how a record reads (:meth:`read`) and is written
    (:meth:`write`)."""

    #: The topic (``streams.topics``) and the consumer group's name in the namespace.
    topic: str = INCIDENTS_TOPIC
    group: str = "incident-sink"
    #: The ``ioc_sink_rows`` label of what is written, and the counter of records skipped.
    rows: str = "incident"
    skipped_counter: Counter = SKIPPED

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.consumer: AIOKafkaConsumer | None = None
        #: Items applied, and records not applied by reason (``repeat``, or why a record
        #: was malformed, or the subclass's own).
        self.applied = 0
        self.skipped: Tally[str] = Tally()
        self.retries = 0

    def read(self, value: bytes | None) -> T | None:
        """The item a record carries; None to skip it (:attr:`skipped` by the reason
        :meth:`skip_reason` gives); :class:`Malformed` for a record that is not one."""
        raise NotImplementedError

    def skip_reason(self) -> str:
        raise NotImplementedError

    async def write(self, pool: asyncpg.Pool, items: list[T]) -> int:
        """Write the items in one transaction; return how many changed anything."""
        raise NotImplementedError

    async def on_start(self) -> None:
        # Few records: two connections, beside the state sink's pool.
        self.pool = await create_pool(self.settings, max_size=2)
        self.consumer = AIOKafkaConsumer(
            self.settings.topic(self.topic),
            group_id=f"ioc-{self.settings.namespace}-{self.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **client_options(self.settings),
        )
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.pool is not None:
            await self.pool.close()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        sink = self.settings.sink
        while not self.should_stop:
            batch = await self.consumer.getmany(
                timeout_ms=sink.batch_max_wait_ms, max_records=sink.batch_max_records
            )
            if not batch:
                continue
            items = []
            for messages in batch.values():
                for message in messages:
                    try:
                        item = self.read(message.value)
                    except Malformed as exc:
                        log.warning(
                            "skipping record %s[%d]@%d: %s",
                            message.topic,
                            message.partition,
                            message.offset,
                            exc,
                        )
                        self._skip(exc.reason)
                        continue
                    if item is None:
                        self._skip(self.skip_reason())
                    else:
                        items.append(item)
            if items:
                await self._write_with_retry(items)
            try:
                await self.consumer.commit()
            except CommitFailedError:
                # Another member owns the partitions now and repeats the batch: harmless.
                log.warning("%s commit failed after a rebalance; the batch will repeat", self.group)

    def _skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count
        self.skipped_counter.labels(reason).inc(count)

    async def _write_with_retry(self, items: list[T]) -> None:
        """Write the batch, retrying with backoff until the database takes it (as
        ``streams.sink.StateSink`` does: the topic holds what is not written)."""
        assert self.consumer is not None
        assert self.pool is not None
        delay = self.settings.sink.retry_initial_s
        paused = False
        while True:
            try:
                applied = await self.write(self.pool, items)
            except Exception as exc:
                # Retried, never raised, like the state sink's writes.
                SINK_RETRIES.inc()
                self.retries += 1
                log.warning(
                    "%s write failed (%s: %s); retrying in %.1f s",
                    self.group,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self.pool.terminate()
                self.pool = await create_pool(self.settings, max_size=2)
                if not paused:
                    self.consumer.pause(*self.consumer.assignment())
                    paused = True
                # Polling a paused consumer fetches nothing but keeps it in the group.
                await self.consumer.getmany(timeout_ms=int(delay * 1000))
                delay = min(delay * 2, self.settings.sink.retry_max_s)
                continue
            if paused:
                self.consumer.resume(*self.consumer.assignment())
            self.applied += applied
            SINK_ROWS.labels(self.rows).inc(applied)
            if applied < len(items):
                self._skip("repeat", len(items) - applied)
            return


class IncidentSink(TopicSink[StoredTransition]):
    """Consumes the namespace's ``ioc.incidents`` and stores the incidents; starts the
    sink of the tier's other output, the area activity counts, with it."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        from streams.incidents.activity_store import AreaActivitySink

        self.activity: AreaActivitySink = AreaActivitySink(settings)

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        return [self.activity]

    def read(self, value: bytes | None) -> StoredTransition | None:
        return read_transition(value)

    def skip_reason(self) -> str:
        return "operators"

    async def write(self, pool: asyncpg.Pool, items: list[StoredTransition]) -> int:
        return await write_transitions(pool, items)
