"""The incident tier: a Faust app (``ioc incidents``) correlating alerts by place.

Data flow, per level (commune and zone)::

    ioc.alerts --agent rekey (placed, final or retract)--> ioc.alerts.<level>s
        (each alert transition forwarded, re-keyed by its area)
    ioc.alerts.<level>s --agent--> table <level>s (area -> Place, changelog) --> ioc.incidents
                           +--> table <level>-activity (area|hour -> ids) --> ioc.area-activity
    ioc.incidents (operators' resolve, merge) --agent operators--> ioc.alerts.<level>s

The same agent counts what opened in each place and hour (``streams.incidents.activity``):
alerts (forecasts' retractions reach it for that) and the place's incidents, published as
absolute counts after each change, which the sink stores in ``area_activity_hour``.

Faust is used here for what it is made for: re-keying by a new key through a
repartition topic, tables with changelogs and their recovery, and agents, at the volume
of alerts (tens to hundreds a minute in a storm). The raw event path stays on the
project's own aggregator (docs/architecture.md says why). The re-keying is an agent that
forwards rather than ``group_by``, whose forwarding would hide the input's offsets.

Guarantees. Faust processes at least once, mostly: after a crash or a rebalance some
records are processed again, and after a rebalance its consumer can skip some. Every
agent takes its records through :class:`streams.incidents.positions.Positions`, which
reads what Faust skipped straight from Kafka and passes over what was processed before.
The table holds absolute facts keyed by alert id and the incidents are derived from them
(``streams.incidents.correlate``), so a record seen twice changes nothing. Incident
transitions are published, and their delivery awaited, *before* the table records them
as published: a crash between the two publishes them again, with the same CloudEvent ids
(the sink keeps one), never loses them.

Clock. Quiet places close their incidents in event time: a timer sends each place with
an open incident a tick carrying the worker's clock (the latest event time of every
place it holds; in the live namespace at least the wall clock less the allowed
lateness) through the same repartition topic, so that the tick is handled by the agent
that owns the place's table partition.

Faust traps avoided (measured on this machine): the web server is off (``web_enabled``
is honoured because the worker is started here, not by the ``faust`` command, which
would bind 0.0.0.0:6066); the spinner, which sets the root logger to DEBUG, is off; the
producer runs in the event loop (``producer_threaded`` halved throughput).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.types import TableT
from mode import BaseSignalT

from ioc.settings import Settings
from streams.incidents.activity import PlaceActivity
from streams.incidents.correlate import Place, fact_of
from streams.incidents.events import OPERATORS_SOURCE
from streams.incidents.positions import Positions
from streams.incidents.rules import CorrelationRule
from streams.kafka import ssl_context
from streams.topics import (
    ALERTS_TOPIC,
    AREA_ACTIVITY_TOPIC,
    INCIDENT_LEVELS,
    INCIDENTS_TOPIC,
    by_area_topic,
    changelog_topic,
)

log = logging.getLogger(__name__)

LEVELS = INCIDENT_LEVELS
#: Seconds between two rounds of ticks to places with open incidents.
TICK_INTERVAL_S = 2.0
#: Seconds between two checks for input partitions whose records stopped coming
#: (Positions.resume): a partition's dropped last records are handed over after two
#: quiet checks, six while the agent is busy with other partitions.
RESUME_INTERVAL_S = 5.0


def _credentials(settings: Settings) -> Any:
    """Faust's form of the project's Kafka security settings (None: plaintext)."""
    kafka = settings.kafka
    context = ssl_context(settings)
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def _places(value: bytes | None) -> dict[str, bytes]:
    """The areas by level (``commune`` -> its id) an ``ioc.alerts`` record goes to: an
    alert transition of a placed entity that correlation or the activity counts take, a
    final one or the retraction of a forecast. Nothing for anything else (malformed
    records are logged and skipped)."""
    try:
        data = orjson.loads(value or b"")["data"]
        if data.get("state") != "retract" and fact_of(data) is None:
            return {}
        return {
            level: str(data[f"{level}_id"]).encode() for level in LEVELS if data.get(f"{level}_id")
        }
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.warning("skipping an ioc.alerts record correlation cannot read: %s", exc)
        return {}


class Clock:
    """The worker's event-time clock: the latest event time of any place it holds, and
    in the live namespace no earlier than the wall clock less the allowed lateness."""

    def __init__(self, *, wall: bool, lateness_ms: int) -> None:
        self.seen_ms = 0
        self.wall, self.lateness_ms = wall, lateness_ms

    def see(self, ms: int) -> None:
        self.seen_ms = max(self.seen_ms, ms)

    def now_ms(self) -> int:
        if self.wall:
            return max(self.seen_ms, int(time.time() * 1000) - self.lateness_ms)
        return self.seen_ms


def build_app(settings: Settings, rules: Sequence[CorrelationRule]) -> faust.App:
    """The Faust app of the namespace: two agents (commune, zone), their tables and the
    ticking timer."""
    partitions = settings.kafka.partitions
    app = faust.App(
        f"ioc-{settings.namespace}-incidents",
        broker=f"kafka://{settings.bootstrap_servers}",
        broker_credentials=_credentials(settings),
        store="memory://",
        # Faust keeps a directory per app (its table stores' files): under the state dir,
        # not in the working directory.
        datadir=str(settings.state_dir / "incidents"),
        topic_partitions=partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        table_standby_replicas=0,
        web_enabled=False,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # A worker that died (kill -9) holds its partitions until its session expires:
        # 10 s, as the project's other consumers (Faust's default is 60 s).
        broker_session_timeout=10.0,
        key_serializer="raw",
        value_serializer="raw",
    )
    alerts = app.topic(settings.topic(ALERTS_TOPIC), key_type=bytes, value_type=bytes)
    incidents = app.topic(settings.topic(INCIDENTS_TOPIC), key_type=bytes, value_type=bytes)
    activity = app.topic(settings.topic(AREA_ACTIVITY_TOPIC), key_type=bytes, value_type=bytes)
    clock = Clock(
        wall=settings.clock_marks, lateness_ms=int(settings.streams.allowed_lateness_s * 1000)
    )
    by_area = {
        level: app.topic(
            by_area_topic(settings, level),
            key_type=bytes,
            value_type=bytes,
            partitions=partitions,
            internal=True,
        )
        for level in LEVELS
    }
    inputs = [alerts, incidents, *by_area.values()]
    positions = Positions(settings, app.conf.id, (t.get_topic_name() for t in inputs))
    for level in LEVELS:
        _add_level(
            app,
            level,
            [r for r in rules if r.level == level],
            by_area=by_area[level],
            incidents=incidents,
            activity=activity,
            clock=clock,
            positions=positions,
        )

    @app.agent(alerts, name="rekey")
    async def rekey(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """Each alert transition correlation takes, to its commune's and its zone's
        partition of the levels' repartition topics (Faust flushes its producer before it
        commits ``ioc.alerts``, so a forward is in Kafka before its source is committed)."""
        async for _, value in positions.records(stream):
            for level, area in _places(value).items():
                await by_area[level].send(key=area, value=value)
            yield None

    @app.agent(incidents, name="operators")
    async def operators(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """Operators' resolutions and merges (published by the API on ioc.incidents) to
        the place's agent: both levels, the one holding the incident takes it."""
        async for _, value in positions.records(stream):
            ended = _ended(value)
            if ended is not None:
                area, incident = ended
                message = orjson.dumps({"ended": incident})
                sent = [await t.send(key=area.encode(), value=message) for t in by_area.values()]
                for delivered in sent:
                    await delivered
            yield None

    @app.on_partitions_assigned.connect
    async def read_starts(
        sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        # Sent with the new assignment before its records are handed over.
        await positions.assigned(args[0], app.consumer_generation_id)

    @app.timer(RESUME_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def resume_stalled() -> None:
        # Records at a partition's end that Faust's consumer dropped: see Positions.
        if not (app.rebalancing or app.in_recovery):
            try:
                await positions.resume(app.consumer.seek)
            except KafkaError as error:
                log.warning("could not check the inputs' positions: %r", error)

    @app.on_before_shutdown.connect
    async def close_reader(
        sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        await positions.stop()

    del rekey, operators, read_starts, resume_stalled, close_reader
    return app


def _ended(value: bytes | None) -> tuple[str, str] | None:
    """(area, incident) of an operator's resolution or merge on ioc.incidents; None for
    anything else."""
    try:
        event = orjson.loads(value or b"")
        data = event["data"]
        if event.get("source") == OPERATORS_SOURCE and data.get("state") in ("resolve", "merge"):
            return str(data["area_id"]), str(data["incident_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        log.warning("skipping an ioc.incidents record the tier cannot read: %s", exc)
    return None


def _add_level(
    app: faust.App,
    level: str,
    rules: Sequence[CorrelationRule],
    *,
    by_area: faust.TopicT,
    incidents: faust.TopicT,
    activity: faust.TopicT,
    clock: Clock,
    positions: Positions,
) -> None:
    """The agent, tables and timer of one level, over its repartition topic ``by_area``:
    the places' correlation state and their alerts and incidents per hour."""
    settings = positions.settings
    table = _table(app, f"{level}s", changelog=changelog_topic(settings, INCIDENTS_TOPIC, level))
    hours = _table(
        app, f"{level}-activity", changelog=changelog_topic(settings, AREA_ACTIVITY_TOPIC, level)
    )

    @app.agent(by_area, name=f"{level}-correlation")
    async def correlate(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for key, value in positions.records(stream):
            if key is None or value is None:
                log.warning("skipping a %s record with no key or value", by_area.get_topic_name())
                yield None
                continue
            area = key.decode()
            place = Place(area, level, table.get(key))
            counting = PlaceActivity(area, level, hours.get)
            message = orjson.loads(value)
            tick = 0
            if "tick" in message:
                tick = int(message["tick"])
            elif "ended" in message:
                # For correlation it ends now, in the place's event time: alerts that
                # open after this make a new incident.
                place.end(str(message["ended"]), at_ms=place.now_ms)
            else:
                data = message["data"]
                counting.take_alert(data)
                fact = fact_of(data)
                if fact is None:
                    # A forecast's retraction: counted, nothing for correlation.
                    await _count(counting, key=key, activity=activity, hours=hours)
                    yield None
                    continue
                place.take(fact, at_ms=_event_ms(data["updated_at"]))
            clock.see(place.now_ms)
            out = place.step(rules, clock_ms=max(tick, clock.now_ms() if tick else 0))
            for transition in out:
                # Delivered before the table says so: a crash in between repeats it.
                delivered = await incidents.send(key=key, value=transition.to_json())
                await delivered
            # Counted before the place records what it published: a crash in between
            # repeats the step, and its withdrawals with it.
            counting.take_step(place.emitted, out)
            await _count(counting, key=key, activity=activity, hours=hours)
            table[key] = place.to_value()
            yield None

    @app.timer(TICK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        places = list(table.items())
        # After a restart the clock starts from the recovered places' own clocks.
        clock.see(max((int(v.get("now", 0)) for _, v in places if v), default=0))
        now = clock.now_ms()
        for key, value in places:
            waiting = value and any(e[0] == "open" for e in value.get("emitted", {}).values())
            if waiting and int(value.get("now", 0)) < now:
                await by_area.send(key=key, value=orjson.dumps({"tick": now}))

    del correlate, tick  # registered with the app by their decorators


def _table(app: faust.App, name: str, *, changelog: str) -> TableT[bytes, Any]:
    """A table of JSON values by area (bytes) with its changelog named in the namespace,
    like every other topic of it; the changelog's schema is the table's (recovery decodes
    with the topic's, not the table's)."""
    schema: faust.Schema[bytes, Any] = faust.Schema(
        key_type=bytes, key_serializer="raw", value_serializer="json"
    )
    topic = app.topic(
        changelog,
        schema=schema,
        partitions=app.conf.topic_partitions,
        compacting=True,
        deleting=False,
        internal=True,
    )
    return app.Table(
        name,
        default=None,
        changelog_topic=topic,
        partitions=app.conf.topic_partitions,
        schema=schema,
    )


async def _count(
    counting: PlaceActivity, *, key: bytes, activity: faust.TopicT, hours: TableT[bytes, Any]
) -> None:
    """Publish the place's changed hourly counts (delivery awaited), then write its hours
    to the table."""
    counts, writes = counting.settle()
    for count in counts:
        delivered = await activity.send(key=key, value=count.to_json())
        await delivered
    for name, value in writes.items():
        if value is None:
            hours.pop(name, None)
        else:
            hours[name] = value


def _event_ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def run_incidents(settings: Settings, rules: Sequence[CorrelationRule], loglevel: str) -> None:
    """Run the incident tier's Faust worker until stopped (SIGINT/SIGTERM)."""
    app = build_app(settings, rules)
    worker = faust.Worker(app, loglevel=loglevel.upper(), redirect_stdouts=False)
    # The spinner's log handler sets the root logger to DEBUG (a record for every
    # message): never wanted in a service.
    worker.spinner = None
    worker.execute_from_commandline()
