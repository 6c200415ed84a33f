"""Entry point of a stream worker: ``ioc worker`` (Faust agents plus the database sink)."""

from __future__ import annotations

import asyncio

import faust

from ioc.settings import Settings
from streams.admin import ensure_topics


def run_worker(settings: Settings, *, loglevel: str = "info") -> None:
    """Create missing topics, then run the agents and the sink until stopped."""
    asyncio.run(ensure_topics(settings))
    # Faust creates its data directory but not the directories above it.
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    # Importing the modules registers the agents, views and table with the app.
    import streams.agents
    import streams.views  # noqa: F401 (each import registers agents or views)
    from streams.app import app
    from streams.sink import StateSink

    # mode looks levels up by their upper-case names; "info" would silently mean NOTSET.
    worker = faust.Worker(
        app, StateSink(settings), loglevel=loglevel.upper(), redirect_stdouts=False
    )
    # Faust's terminal spinner lowers the root logger to DEBUG (so that it spins on every
    # record) whenever the level is WARNING or above: a large cost for nothing in a service.
    worker.spinner = None
    worker.execute_from_commandline()
