"""Entry point of a stream worker: ``ioc worker`` (the aggregator plus the database sink).

Both are mode services (mode is the service library Faust is built on) run by one
``mode.Worker``, which stops them cleanly on SIGINT or SIGTERM. Prometheus counters are
served on ``IOC_STREAMS__WEB_HOST``:``IOC_STREAMS__WEB_PORT`` (loopback by default) at
``/metrics``.
"""

from __future__ import annotations

import asyncio

from mode import Worker
from prometheus_client import start_http_server

from ioc.settings import Settings
from streams.admin import ensure_topics
from streams.aggregator import Aggregator
from streams.sink import StateSink


def run_worker(settings: Settings, *, loglevel: str = "info") -> None:
    """Create missing topics, then run the aggregator and the sink until stopped."""
    asyncio.run(ensure_topics(settings))
    start_http_server(settings.streams.web_port, addr=settings.streams.web_host)
    # mode looks levels up by their upper-case names; "info" would silently mean NOTSET.
    worker = Worker(
        Aggregator(settings),
        StateSink(settings),
        loglevel=loglevel.upper(),
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
