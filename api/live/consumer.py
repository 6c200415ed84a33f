"""The one Kafka consumer of an API process: the tail of ``ioc.state``, ``ioc.alerts`` and
``ioc.incidents`` into the hub. Owned by the app's lifespan (:func:`live_feeds`).

No consumer group: every API process reads every partition from where the topics were
``live.lookback_s`` before it started, and commits nothing. What happened before is in
the database (the snapshot); what happens after comes through here. The look back covers
the sink: a record the database does not hold yet when a client takes its snapshot is in
the hub, which lays it over the snapshot (newer event times win).

``ioc.incidents`` is followed when the namespace has it: a namespace made before the
incident tier (a sandbox an engineer kept) still gets its entity and alert feed.

The area tiles need the registry: read at start (with the database's baseline of states,
open alerts and incidents) and again every ``REGISTRY_REFRESH_S``, rebuilt only when it
changed. Between batches (at least every half second) the hub sends the tiles that are due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from api.live.hub import Hub
from api.live.registry import read_baseline, read_registry
from ioc.db.pool import connect_options
from ioc.settings import Settings
from streams.kafka import client_options
from streams.topics import ALERTS_TOPIC, INCIDENTS_TOPIC, STATE_TOPIC

log = logging.getLogger(__name__)
RETRY_S = 2.0
#: How often the registry is read again (registrations change rarely).
REGISTRY_REFRESH_S = 60.0
#: How long the consumer's start waits for the first read of the registry.
REGISTRY_WAIT_S = 5.0


class FeedConsumer:
    """Reads the derived topics and publishes each record to the hub."""

    def __init__(self, settings: Settings, hub: Hub) -> None:
        self.settings, self.hub = settings, hub
        self.state_topic = settings.topic(STATE_TOPIC)
        self.alerts_topic = settings.topic(ALERTS_TOPIC)
        self.incidents_topic = settings.topic(INCIDENTS_TOPIC)
        self.ready = asyncio.Event()
        self.areas_placed = asyncio.Event()  # the first read of the registry was tried
        self.errors = 0

    async def run(self) -> None:
        """Consume until cancelled; follow the registry meanwhile."""
        registry = asyncio.create_task(self._follow_registry(), name="live-area-registry")
        try:
            await self._consume()
        finally:
            registry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await registry

    async def _follow_registry(self) -> None:
        """Place the hub's area tiles on the registry, then keep them placed."""
        baseline_due = True
        while True:
            pause = REGISTRY_REFRESH_S
            try:
                conn = await asyncpg.connect(
                    self.settings.dsn,
                    timeout=5,
                    server_settings={"search_path": f"{self.settings.db_schema},public"},
                    **connect_options(self.settings),
                )
                try:
                    registry = await read_registry(conn)
                    baseline = await read_baseline(conn) if baseline_due else None
                finally:
                    await conn.close()
                if baseline is not None or registry != self.hub.areas.registry:
                    self.hub.load_areas(registry, baseline)
                    self.hub.publish_areas(time.monotonic())
                baseline_due = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pause = RETRY_S
                log.warning("live area tiles: registry not read (%s); retrying", exc)
            finally:
                self.areas_placed.set()
            await asyncio.sleep(pause)

    async def _consume(self) -> None:
        """Consume until cancelled; (re)connect with a pause after any failure."""
        positions: dict[Any, int] = {}
        while True:
            consumer = AIOKafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                **client_options(self.settings),
            )
            try:
                await consumer.start()
                topics = await self._topics(consumer)
                consumer.subscribe(topics)
                await self._assign(consumer, positions, set(topics))
                if not self.ready.is_set():
                    # Clients that connect at once then get the tiles in their snapshot.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.areas_placed.wait(), REGISTRY_WAIT_S)
                self.ready.set()
                while True:
                    batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                    for tp, records in batch.items():
                        for record in records:
                            self._publish(tp.topic, record.value)
                        positions[tp] = records[-1].offset + 1
                    self.hub.publish_areas(time.monotonic())
                    await asyncio.sleep(0)  # let client connections drain between batches
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                log.warning("live feed consumer: %s; retrying in %.0f s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)
            finally:
                await consumer.stop()

    async def _topics(self, consumer: AIOKafkaConsumer) -> list[str]:
        """The topics to follow: ``ioc.incidents`` only when it exists. The brokers do not
        create topics on demand, and aiokafka assigns nothing at all while one subscribed
        topic is missing; a namespace without it (made before the incident tier) gets it
        followed when the consumer next connects (an API restart, or a failure)."""
        topics = [self.state_topic, self.alerts_topic]
        if self.incidents_topic in await consumer.topics():
            topics.append(self.incidents_topic)
        else:
            log.warning("live feed: no topic %s; incidents not followed", self.incidents_topic)
        return topics

    async def _assign(
        self, consumer: AIOKafkaConsumer, positions: dict[Any, int], topics: set[str]
    ) -> None:
        """Wait for every partition of the topics, then place each ``lookback_s`` back
        (or where a previous run of the loop stopped, so a reconnect skips nothing)."""
        for _ in range(100):
            partitions = consumer.assignment()
            if {tp.topic for tp in partitions} == topics:
                break
            await asyncio.sleep(0.1)
        else:
            raise LookupError(f"no partitions assigned of {', '.join(sorted(topics))}")
        fresh = [tp for tp in partitions if tp not in positions]
        if fresh:
            await consumer.seek_to_end(*fresh)
            since_ms = int((time.time() - self.settings.live.lookback_s) * 1000)
            found = await consumer.offsets_for_times({tp: since_ms for tp in fresh})
            for tp, found_at in found.items():
                if found_at is not None:  # None: nothing written since; stay at the end
                    consumer.seek(tp, found_at.offset)
        for tp in partitions:
            if tp in positions:
                consumer.seek(tp, positions[tp])
            else:
                # Fix the position now, so nothing published after start-up is skipped.
                positions[tp] = await consumer.position(tp)

    def _publish(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return  # a tombstone: nothing for clients
        try:
            data = orjson.loads(value)
            if topic == self.state_topic:
                self.hub.publish_state(data)
            elif topic == self.alerts_topic:
                self.hub.publish_alert(data["data"])  # a CloudEvent: the transition
            else:
                self.hub.publish_incident(data)  # a CloudEvent: its id tells repeats
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON errors too
            self.errors += 1
            log.warning("live feed: skipped a record of %s: %r", topic, exc)


def new_hub(settings: Settings) -> Hub:
    """A hub sized by the live settings."""
    live = settings.live
    return Hub(
        replay_messages=live.replay_messages,
        max_entities=live.queue_entities,
        max_alerts=live.queue_alerts,
        area_interval_s=live.area_interval_s,
    )


def _close_on_exit_signals(close: Callable[[], None]) -> Callable[[], None]:
    """Let go of live clients as soon as the server is asked to stop.

    Uvicorn waits for open responses to finish before it runs the lifespan's shutdown, and
    an event stream never finishes by itself; so ``close`` (which ends every feed) runs on
    SIGINT/SIGTERM first, then the server's own handler. Returns what undoes it.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if not callable(handler):
            continue

        def on_signal(signum: int, frame: FrameType | None, chained: Any = handler) -> None:
            loop.call_soon_threadsafe(close)
            chained(signum, frame)

        previous[sig] = handler
        signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


@contextlib.asynccontextmanager
async def live_feeds(app: FastAPI, settings: Settings) -> AsyncIterator[Hub]:
    """The hub and its consumer for the app's lifetime (the API's own namespace view holds
    the hub, see ``api.namespaces``).

    Start-up waits up to ``live.start_timeout_s`` for the consumer to be positioned; the
    API serves anyway after that (Kafka down): the feeds then send snapshots and heartbeats
    until the consumer connects.
    """
    live = settings.live
    hub = new_hub(settings)
    consumer = FeedConsumer(settings, hub)
    task = asyncio.create_task(consumer.run(), name="live-feed-consumer")

    def close_every_feed() -> None:
        hub.close()
        # Feeds of other namespaces engineers watch (api.namespaces), when there are any.
        namespaces = getattr(app.state, "namespaces", None)
        if namespaces is not None:
            namespaces.close_hubs()

    restore = _close_on_exit_signals(close_every_feed)
    try:
        await asyncio.wait_for(consumer.ready.wait(), live.start_timeout_s)
    except TimeoutError:
        log.warning("live feeds: Kafka consumer not ready after %.0f s", live.start_timeout_s)
    try:
        yield hub
    finally:
        restore()
        hub.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
