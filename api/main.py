"""The FastAPI application. Run it with ``ioc api``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.auth import Authenticator
from api.dashboard import install_dashboard
from api.docs import ASSETS_PATH, install_docs
from api.headers import install_response_headers
from api.inputs import install_input_guards
from api.instruments import install_metrics
from api.limits import install_body_limit
from api.live import live_feeds
from api.live import router as live_router
from api.methods import install_method_answers
from api.namespaces import Namespaces, NamespaceView
from api.problems import install_problem_handlers
from api.publisher import Publisher
from api.routes import (
    alerts,
    area_series,
    areas,
    asyncapi,
    entities,
    events,
    health,
    incident_actions,
    incidents,
    metrics,
    namespaces,
    overview,
    rules,
    schemas,
    series,
)
from api.routes.recordings import router as recordings_router
from api.routes.replays import router as replays_router
from api.websockets import install_websocket_refusals
from ioc.collector import manage_collector
from ioc.db.pool import create_pool
from ioc.redact import install_log_redaction
from ioc.settings import Settings, get_settings
from recordings.jobs import Jobs


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database pool lives as long as the app's lifespan."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = await create_pool(settings)
        app.state.publisher = Publisher(settings)
        await app.state.publisher.start()
        app.state.jobs = Jobs(settings)
        # The hub's entity views and replay ring are a large long-lived heap, like the
        # worker's state: the same collector policy keeps full collections short.
        collector = asyncio.create_task(manage_collector(), name="collector-policy")
        try:
            async with live_feeds(app, settings) as hub:
                own = NamespaceView(settings=settings, pool=app.state.pool, hub=hub)
                app.state.namespaces = Namespaces(own)
                app.state.namespaces.start()
                try:
                    yield
                finally:
                    await app.state.namespaces.close()
        finally:
            collector.cancel()
            # Replays stop and recordings get their summary before Kafka clients go.
            await app.state.jobs.close()
            await app.state.publisher.stop()
            await app.state.pool.close()

    app = FastAPI(
        title="Smart-city IOC API",
        version="0.1.0",
        summary="Live views, history and alerts of Quang Ninh's operations centre.",
        lifespan=lifespan,
        # Our own /docs serves Swagger UI's files itself (api.docs); no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.auth = Authenticator(settings)
    install_problem_handlers(app)
    install_method_answers(app)
    install_websocket_refusals(app)
    install_body_limit(app, max_bytes=settings.api.max_body_bytes)
    install_input_guards(app)
    install_log_redaction()
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["Retry-After"],
        )
    app.include_router(health.router)
    install_metrics(app)
    app.include_router(metrics.router)
    app.include_router(overview.router)
    app.include_router(namespaces.router)
    app.include_router(entities.router)
    app.include_router(series.router)
    app.include_router(areas.router)
    app.include_router(area_series.router)
    app.include_router(alerts.router)
    app.include_router(incidents.router)
    app.include_router(incident_actions.router)
    app.include_router(schemas.router)
    app.include_router(asyncapi.router)
    app.include_router(rules.router)
    app.include_router(events.router)
    app.include_router(recordings_router)
    app.include_router(replays_router)
    app.include_router(live_router)
    install_dashboard(app)
    install_docs(app)
    # Last, so that it wraps every other middleware and their answers get the headers too.
    install_response_headers(app, cacheable=("/dashboard/", ASSETS_PATH + "/"))
    return app
