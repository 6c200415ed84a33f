"""Entry point of a stream worker: ``ioc worker`` (the aggregator plus the database sink).

The aggregator runs in this process and the sink in a child process of its own, each as
mode services (mode is the service library Faust is built on). They share nothing but
Kafka: the sink reads ``ioc.state`` like any consumer. Two processes, because at a live
pace every event rewrites its entity's record, and one process (one GIL) could not both
fold 5,000 events/s and write them to PostgreSQL (measured: the database fell behind by
1,700 events/s while the aggregator kept up; see benchmarks/RESULTS.md, soak).

The sink's process runs at a lower priority (``SINK_NICENESS``): on two shared cores its
database writes took CPU from the aggregator exactly when the live feed needed it.

Both processes run the garbage-collector policy of ``ioc.collector``: without it, full
collections of the aggregator's large state stopped its event loop for 250-1,460 ms every
few seconds.

``mode.Worker`` stops the aggregator cleanly on SIGINT or SIGTERM and the child with it;
a child that dies is started again (the sink is idempotent). Prometheus counters of both
processes are served together on ``IOC_STREAMS__WEB_HOST``:``IOC_STREAMS__WEB_PORT`` at
``/metrics`` (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from typing import Any

import uvloop
from mode import Service, Worker

from ioc.collector import manage_collector
from ioc.settings import Settings, get_settings
from streams.admin import ensure_topics
from streams.alerts import AnyRuleModel

log = logging.getLogger(__name__)

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def use_uvloop() -> None:
    """Run this process's event loop on uvloop (libuv), as uvicorn does for the API: the
    aggregator's Kafka traffic is thousands of futures and socket callbacks a second."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class MetricsEndpoint(Service):
    """``/metrics`` of both processes on the configured port or, when another process holds
    it (a second worker on one host: a sandbox's beside the demo's), on a free one, which
    it logs. A service, so that it logs once mode has set logging up."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.port: int | None = None

    async def on_start(self) -> None:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        host, port = self.settings.streams.web_host, self.settings.streams.web_port
        try:
            server, _ = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            server, _ = start_http_server(0, addr=host, registry=registry)
            log.warning(
                "port %d is taken (another worker on this host?): metrics on http://%s:%d/metrics",
                port,
                host,
                server.server_port,
            )
        self.port = int(server.server_port)


def run_worker(
    settings: Settings, *, rules: Sequence[AnyRuleModel], loglevel: str = "info"
) -> None:
    """Create missing topics, then run the aggregator (with these alert rules) and the
    sink until stopped."""
    use_uvloop()
    asyncio.run(ensure_topics(settings))
    # Before prometheus_client is first imported: both processes write their samples
    # to files in this directory, and the parent's /metrics adds them up.
    metrics_dir = tempfile.mkdtemp(prefix="ioc-metrics-")
    os.environ[METRICS_DIR] = metrics_dir
    try:
        from streams.aggregator import Aggregator

        # mode looks levels up by their upper-case names; "info" would mean NOTSET.
        worker = _Worker(
            MetricsEndpoint(settings),
            Aggregator(settings, rules=rules),
            SinkProcess(loglevel=loglevel),
            Collector(),
            loglevel=loglevel.upper(),
            redirect_stdouts=False,
        )
        worker.execute_from_commandline()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Worker(Worker):
    """mode's worker, with a shorter last pause. Once every service has stopped, mode runs
    a task that sleeps a whole second so that callbacks still queued can run before the
    loop closes; a tenth of a second does that here (the services have closed their
    connections by then), and a worker and its sink stop in a quarter of the time."""

    async def _sentinel_task(self) -> None:
        await asyncio.sleep(0.1)


#: How much nicer than the aggregator the sink's process runs. On a machine short of
#: cores the live path (aggregator -> ioc.state -> API) comes first; the database may
#: fall seconds behind, ioc.state holds what it has not written. With cores to spare it
#: changes nothing.
SINK_NICENESS = 5


def run_sink(loglevel: str, parent: int) -> None:
    """The child process: the sink, until told to stop or orphaned."""
    from streams.incidents.store import IncidentSink
    from streams.sink import StateSink

    os.nice(SINK_NICENESS)
    use_uvloop()

    worker = _Worker(
        StateSink(get_settings()),
        IncidentSink(get_settings()),
        Orphaned(parent),
        Collector(),
        loglevel=loglevel.upper(),
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()


class SinkProcess(Service):
    """Runs the sink in a child process and keeps it running."""

    def __init__(self, *, loglevel: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loglevel = loglevel
        self.child: multiprocessing.process.BaseProcess | None = None

    def _spawn(self) -> None:
        # A fresh interpreter (spawn): nothing of the parent's event loop is inherited.
        context = multiprocessing.get_context("spawn")
        self.child = context.Process(
            target=run_sink, args=(self.loglevel, os.getpid()), name="ioc-sink", daemon=False
        )
        self.child.start()

    async def on_start(self) -> None:
        self._spawn()

    async def on_stop(self) -> None:
        child = self.child
        if child is None or not child.is_alive():
            return
        child.terminate()  # SIGTERM: the child's mode.Worker stops the sink cleanly
        await asyncio.to_thread(child.join, 30)
        if child.is_alive():
            child.kill()
            await asyncio.to_thread(child.join, 5)

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(1.0)
            child = self.child
            if child is not None and not child.is_alive() and not self.should_stop:
                log.error("the sink process exited (code %s); starting it again", child.exitcode)
                from prometheus_client import multiprocess

                if child.pid is not None:  # its live gauges no longer count
                    multiprocess.mark_process_dead(child.pid)  # type: ignore[no-untyped-call]
                self._spawn()


class Collector(Service):
    """The garbage collector's policy (``ioc.collector``) for this process."""

    @Service.task
    async def _run(self) -> None:
        await manage_collector()


class Orphaned(Service):
    """Stops the child's worker when its parent is gone (killed with -9, say)."""

    def __init__(self, parent: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parent = parent

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(1.0)
            if os.getppid() != self.parent:
                log.warning("the worker process is gone; the sink stops")
                os.kill(os.getpid(), signal.SIGTERM)
                return
