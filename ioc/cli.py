"""The ``ioc`` command line: infrastructure, migrations, worker, API, simulator, or all at once.

ioc run              everything, for a demo: infra, migrations, worker, API, simulator
ioc infra up|down|status
ioc migrate          apply SQL migrations to the namespace's schema
ioc topics           create the namespace's Kafka topics
ioc worker           stream agents and the database sink
ioc api              the HTTP API
ioc simulate         produce simulated events
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import typer
from rich.console import Console

from ioc.infra import KafkaBroker, PostgresCluster
from ioc.infra.process import InfraError, ServiceStatus, terminate
from ioc.settings import get_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
infra_app = typer.Typer(help="Start, stop or inspect the local Kafka and PostgreSQL.")
app.add_typer(infra_app, name="infra")
console = Console(stderr=True)


def _print_status(statuses: list[ServiceStatus]) -> None:
    for s in statuses:
        colour = {"running": "green", "external": "cyan"}.get(s.state, "red")
        console.print(f"{s.name:9} [{colour}]{s.state:8}[/] {s.address} {s.detail}")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code=2)


@infra_app.command("up")
def infra_up() -> None:
    """Start Kafka and PostgreSQL (installing or resolving them on first use)."""
    settings = get_settings()
    try:
        with console.status("starting Kafka (first start resolves its jars with Maven)"):
            kafka = KafkaBroker(settings).up()
        with console.status("starting PostgreSQL"):
            postgres = PostgresCluster(settings).up()
    except InfraError as exc:
        raise _fail(str(exc)) from None
    _print_status([kafka, postgres])


@infra_app.command("down")
def infra_down() -> None:
    """Stop the local Kafka and PostgreSQL (external services are left alone)."""
    settings = get_settings()
    KafkaBroker(settings).down()
    PostgresCluster(settings).down()
    _print_status([KafkaBroker(settings).status(), PostgresCluster(settings).status()])


@infra_app.command("status")
def infra_status() -> None:
    """Say whether each service runs, and where."""
    settings = get_settings()
    _print_status([KafkaBroker(settings).status(), PostgresCluster(settings).status()])


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations to the namespace's schema."""
    from ioc.db.migrate import migrate as run_migrations

    settings = get_settings()
    applied = asyncio.run(run_migrations(settings))
    console.print(
        f"schema {settings.db_schema}: "
        + (f"applied {', '.join(applied)}" if applied else "up to date")
    )


@app.command()
def topics() -> None:
    """Create the namespace's Kafka topics."""
    from streams.admin import ensure_topics

    created = asyncio.run(ensure_topics(get_settings()))
    console.print(f"created {', '.join(created)}" if created else "topics up to date")


@app.command()
def worker(loglevel: str = typer.Option("info", help="Faust log level")) -> None:
    """Run the stream agents and the database sink of the namespace."""
    from streams.worker import run_worker

    run_worker(get_settings(), loglevel=loglevel)


@app.command()
def api(
    host: str = typer.Option(None, help="Interface (default from settings: 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default from settings: 8000)"),
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from api.main import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level="info",
    )


@app.command()
def simulate(
    entities: int = typer.Option(50, min=1, help="Number of intersections"),
    interval: int = typer.Option(10, min=1, help="Seconds of event time between readings"),
    speed: float = typer.Option(1.0, min=0.0, help="Simulated seconds per real second; 0: max"),
    duration: float = typer.Option(0, min=0, help="Seconds of event time to produce; 0: for ever"),
    seed: int = typer.Option(0, help="Random seed: same seed, same events"),
    start: datetime = typer.Option(None, help="Event time of the first reading (default now)"),
) -> None:
    """Produce simulated traffic flow events into the namespace's raw topic."""
    from simulators.producer import ProduceStats, make_producer, produce
    from simulators.traffic import flow_events, intersections
    from streams.admin import ensure_topics
    from streams.topics import raw_topic

    settings = get_settings()
    begin = start.astimezone(UTC) if start else datetime.now(UTC)
    events = flow_events(
        intersections(entities, seed=seed),
        start=begin,
        duration_s=duration or None,
        interval_s=interval,
        seed=seed,
    )

    async def main() -> ProduceStats:
        await ensure_topics(settings)
        producer = make_producer(settings)
        await producer.start()
        stats = ProduceStats()
        reporter = asyncio.create_task(_report(stats))
        try:
            return await produce(
                producer,
                raw_topic(settings, "traffic"),
                events,
                speed=speed or None,
                stats=stats,
            )
        finally:
            reporter.cancel()
            await producer.stop()

    stats = asyncio.run(main())
    console.print(f"produced {stats.produced} events ({stats.errors} errors)")


async def _report(stats: object) -> None:
    while True:
        await asyncio.sleep(5)
        console.print(f"simulate: {stats.produced} events, {stats.rate:,.0f}/s")  # type: ignore[attr-defined]


@app.command()
def run(
    entities: int = typer.Option(50, min=1, help="Simulated intersections"),
    speed: float = typer.Option(1.0, min=0.1, help="Simulated clock speed"),
) -> None:
    """Start everything for a demo and stop it all on Ctrl-C."""
    settings = get_settings()
    kafka, postgres = KafkaBroker(settings), PostgresCluster(settings)
    started = []
    try:
        for name, service in (("Kafka", kafka), ("PostgreSQL", postgres)):
            if service.status().state == "stopped":
                with console.status(f"starting {name}"):
                    service.up()
                started.append(service)
        migrate()
        topics()
    except InfraError as exc:
        for service in reversed(started):
            service.down()
        raise _fail(str(exc)) from None
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "ioc.cli"]
    roles = {
        "worker": [*base, "worker"],
        "api": [*base, "api"],
        "simulate": [
            *base,
            "simulate",
            "--entities",
            str(entities),
            "--speed",
            str(speed),
            "--interval",
            "5",
        ],
    }
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for role, command in roles.items():
        with (logs / f"{role}.log").open("ab") as log:
            children[role] = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=os.environ.copy(),
            )
    url = f"http://{settings.api.host}:{settings.api.port}"
    sample = "qn-ix-halong-001"
    console.print(
        f"[bold green]Smart-city IOC is running[/] (namespace {settings.namespace})\n"
        f"  open   {url}/docs\n"
        f"  series {url}/v1/traffic/entities/{sample}/series?metric=vehicles\n"
        f"  logs   {logs.resolve()}\n"
        "Press Ctrl-C to stop."
    )
    try:
        while not stopping:
            for role, child in children.items():
                if child.poll() is not None:
                    console.print(f"[red]{role} exited with {child.returncode}[/]; see {logs}")
                    stopping = True
            time.sleep(0.5)
    finally:
        console.print("stopping ...")
        for child in reversed(list(children.values())):
            if child.poll() is None:
                terminate(child.pid, timeout_s=20)
                child.wait()
        for service in reversed(started):
            service.down()
        console.print("stopped")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
