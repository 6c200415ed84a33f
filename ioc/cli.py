"""The ``ioc`` command line: infrastructure, migrations, worker, API, simulator, or all at once.

ioc run              everything, for a demo: infra, migrations, worker, API, simulator
ioc infra up|down|status
ioc migrate          apply SQL migrations to the namespace's schema
ioc seed             load the city model (areas, entities) into the namespace's registry
ioc topics           create the namespace's Kafka topics
ioc worker           stream aggregator and the database sink
ioc api              the HTTP API
ioc simulate         produce simulated events
ioc keys create|list|revoke   API keys (the key is printed once; only its hash is kept)
ioc record           record topics into MCAP files
ioc replay           replay a recording into a sandbox namespace
ioc recording info|verify|simulate   inspect, check or make recordings
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import typer
from rich.console import Console

from contract.catalog import DOMAINS
from ioc.infra import KafkaBroker, PostgresCluster
from ioc.infra.process import InfraError, ServiceStatus, terminate
from ioc.redact import install_log_redaction
from ioc.settings import Settings, get_settings
from recordings.cli import register as register_recordings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
infra_app = typer.Typer(help="Start, stop or inspect the local Kafka and PostgreSQL.")
app.add_typer(infra_app, name="infra")
keys_app = typer.Typer(help="Make, list or revoke API keys (only their hashes are stored).")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)


@app.callback()
def _every_command() -> None:
    """Smart-city IOC."""
    # Whatever a command logs (worker, API, launcher) passes the credential scrubber.
    install_log_redaction()


def _print_status(statuses: list[ServiceStatus]) -> None:
    for s in statuses:
        colour = {"running": "green", "external": "cyan"}.get(s.state, "red")
        console.print(f"{s.name:9} [{colour}]{s.state:8}[/] {s.address} {s.detail}")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code=2)


def _with_brokers(settings: Settings, brokers: int | None) -> Settings:
    """The settings with ``--brokers`` applied (IOC_KAFKA__LOCAL_BROKERS otherwise)."""
    if brokers is None:
        return settings
    kafka = settings.kafka.model_copy(update={"local_brokers": brokers})
    if "replication_factor" not in settings.kafka.model_fields_set:
        kafka.replication_factor = min(3, brokers)
    return settings.model_copy(update={"kafka": kafka})


BrokersOption = typer.Option(
    None,
    "--brokers",
    min=1,
    max=5,
    help="Local Kafka brokers (default IOC_KAFKA__LOCAL_BROKERS, 1); 3 is a cluster with "
    "three replicas per partition and min.insync.replicas=2, beside any single broker",
)


@infra_app.command("up")
def infra_up(brokers: int | None = BrokersOption) -> None:
    """Start Kafka and PostgreSQL (installing or resolving them on first use)."""
    settings = _with_brokers(get_settings(), brokers)
    try:
        with console.status("starting Kafka (first start resolves its jars with Maven)"):
            kafka = KafkaBroker(settings).up()
        with console.status("starting PostgreSQL"):
            postgres = PostgresCluster(settings).up()
    except InfraError as exc:
        raise _fail(str(exc)) from None
    _print_status([kafka, postgres])


@infra_app.command("down")
def infra_down(brokers: int | None = BrokersOption) -> None:
    """Stop the local Kafka and PostgreSQL (external services are left alone)."""
    settings = _with_brokers(get_settings(), brokers)
    KafkaBroker(settings).down()
    PostgresCluster(settings).down()
    _print_status([KafkaBroker(settings).status(), PostgresCluster(settings).status()])


@infra_app.command("status")
def infra_status(brokers: int | None = BrokersOption) -> None:
    """Say whether each service runs, and where."""
    settings = _with_brokers(get_settings(), brokers)
    _print_status([KafkaBroker(settings).status(), PostgresCluster(settings).status()])


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., help="Who holds the key (shown in logs and on alerts)"),
    scope: list[str] = typer.Option(
        ..., help="view, replay, admin or publish:<domain>; repeat for more"
    ),
    source: list[str] = typer.Option(
        [],
        help="CloudEvent source pattern the key may publish (/vendors/acme/*); repeat for "
        "more; none: any source",
    ),
    replace: bool = typer.Option(False, help="Replace an existing key of that name"),
) -> None:
    """Make an API key, print it once and store only its hash in the keys file."""
    from api.keys import create_key, keys_path
    from ioc.settings import ApiKeySettings

    settings = get_settings()
    path = keys_path(settings)
    try:
        ApiKeySettings(name=name, hash="sha256:" + "0" * 64, scopes=scope, sources=source)
        key = create_key(path, name=name, scopes=scope, sources=source, replace=replace)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    bound = f"; sources {', '.join(source)}" if source else ""
    console.print(
        f"key {name!r} ({', '.join(scope)}{bound}) stored as a hash in {path}; copy it now:"
    )
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List the keys in the keys file and the settings (names and scopes, never keys)."""
    from api.keys import keys_path, read_keys_file

    settings = get_settings()
    for entry in settings.api.keys:
        sources = " ".join(entry.sources) or "any source"
        console.print(f"{entry.name:20} {' '.join(entry.scopes):40} {sources:30} (settings)")
    for stored in read_keys_file(keys_path(settings)):
        sources = " ".join(stored.sources) or "any source"
        console.print(
            f"{stored.name:20} {' '.join(stored.scopes):40} {sources:30} "
            f"{stored.created_at:%Y-%m-%d}"
        )


@keys_app.command("revoke")
def keys_revoke(name: str = typer.Argument(..., help="Name of the key")) -> None:
    """Remove a key from the keys file; a running API refuses it within a second."""
    from api.keys import keys_path, revoke_key

    if not revoke_key(keys_path(get_settings()), name):
        raise _fail(f"no key named {name!r} in the keys file")
    console.print(f"revoked {name!r}")


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


@app.command("seed")
def seed_registry(
    # The same model as ``ioc simulate`` builds by default: 2,000 entities, seed 0.
    entities: int = typer.Option(2000, help="Entities in the city model (up to 100,000)"),
    seed: int = typer.Option(0, help="Seed of the generated entities, as for ioc simulate"),
) -> None:
    """Load the city model (zones, communes, entities) into the namespace's registry."""
    from city.model import build_city
    from ioc.db.registry import load_registry

    settings = get_settings()
    try:
        city = build_city(entities, seed=seed)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    with console.status(f"loading {len(city.entities):,} entities"):
        loaded = asyncio.run(load_registry(settings, city))
    console.print(
        f"schema {settings.db_schema}: city model {loaded.version}, "
        f"{loaded.areas} areas ({loaded.areas_changed} written), "
        f"{loaded.entities} entities ({loaded.entities_changed} written)"
    )


@app.command()
def topics() -> None:
    """Create the namespace's Kafka topics."""
    from streams.admin import ensure_topics

    created = asyncio.run(ensure_topics(get_settings()))
    console.print(f"created {', '.join(created)}" if created else "topics up to date")


@app.command()
def worker(loglevel: str = typer.Option("info", help="log level")) -> None:
    """Run the stream aggregator and the database sink of the namespace."""
    from streams.alerts import RuleError, load_rules
    from streams.worker import run_worker

    settings = get_settings()
    try:
        rules = (
            load_rules(settings.streams.rules_dir) if settings.streams.rules_dir else load_rules()
        )
    except RuleError as exc:
        raise _fail(f"alert rules: {exc}") from None
    run_worker(settings, rules=rules, loglevel=loglevel)


@app.command()
def incidents(loglevel: str = typer.Option("info", help="log level")) -> None:
    """Run the incident tier: Faust agents correlating alerts by place into incidents."""
    from streams.admin import ensure_topics
    from streams.incidents.app import run_incidents
    from streams.incidents.rules import CorrelationError, load_correlation_rules
    from streams.incidents.sops import SopError, load_sops

    settings = get_settings()
    try:
        rules = load_correlation_rules(settings.streams.correlation_dir)
        sops = load_sops()
    except (CorrelationError, SopError) as exc:
        raise _fail(f"incidents: {exc}") from None
    unknown = sorted({f"{r.id} -> {r.sop}" for r in rules if r.sop not in sops})
    if unknown:
        raise _fail(f"incidents: correlation rules name SOPs that do not exist: {unknown}")
    asyncio.run(ensure_topics(settings))
    run_incidents(settings, rules, loglevel)


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
        # X-Forwarded-For names the client only when the peer is a proxy the city trusts
        # (the failed-authentication limit counts per client address).
        proxy_headers=bool(settings.api.trusted_proxies),
        forwarded_allow_ips=settings.api.trusted_proxies or None,
        # Live feeds are told the API stops and end at once; a client whose socket takes no
        # data cannot be told, and must not hold the shutdown past this.
        timeout_graceful_shutdown=10,
    )


@app.command()
def simulate(
    domains: str = typer.Option(",".join(DOMAINS), help="Comma-separated domains to simulate"),
    entities: int = typer.Option(2000, help="Entities in the city model (up to 100,000)"),
    rate: float = typer.Option(1.0, help="Event-rate multiplier (2: twice as many events)"),
    seed: int = typer.Option(0, help="Random seed: same seed, scenario and start, same events"),
    scenario: str = typer.Option(None, help="Scenario name in seeds/scenarios/ or a JSON file"),
    speed: float = typer.Option(1.0, min=0.0, help="Simulated seconds per real second; 0: max"),
    duration: float = typer.Option(
        None, help="Simulated seconds to produce (default: the scenario's length, else for ever)"
    ),
    start: str = typer.Option(None, help="Event time of the start, ISO 8601 (default now)"),
    namespace: str = typer.Option(None, help="Namespace to produce into (default from settings)"),
    faults: str = typer.Option("", help="Sensor faults, e.g. stuck=0.01,gaps=0.02,reorder=0.01"),
) -> None:
    """Produce simulated city events (four domains, rhythms, scenarios) into raw topics."""
    from ioc.settings import NAMESPACE_PATTERN
    from simulators.engine import ConfigError, SimConfig, start_of
    from simulators.faults import Faults
    from simulators.run import run_simulation
    from simulators.scenario import ScenarioError, load_scenario

    settings = get_settings()
    try:
        if namespace is not None:
            if not NAMESPACE_PATTERN.fullmatch(namespace):
                raise ConfigError(f"namespace {namespace!r} must match {NAMESPACE_PATTERN.pattern}")
            settings = settings.model_copy(update={"namespace": namespace})
        story = load_scenario(scenario) if scenario else None
        if duration is None and story is not None:
            duration = story.duration_h * 3600
        config = SimConfig(
            start=start_of(start),
            domains=tuple(d.strip() for d in domains.split(",") if d.strip()),
            entities=entities,
            seed=seed,
            rate=rate,
            duration_s=duration or None,
            scenario=story,
            faults=Faults.parse(faults),
        )
    except (ConfigError, ScenarioError, ValueError) as exc:
        raise _fail(str(exc)) from None
    try:
        stats = asyncio.run(run_simulation(settings, config, speed=speed or None, console=console))
    except KeyboardInterrupt:
        console.print("simulate: interrupted")
        return
    console.print(
        f"produced {stats.total} events ({stats.total_errors} errors) "
        f"into namespace {settings.namespace}: "
        + ", ".join(f"{d} {n}" for d, n in sorted(stats.produced.items()))
    )


@app.command()
def run(
    entities: int = typer.Option(50, min=1, help="Entities in the simulated city"),
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
        seed_registry(entities=entities, seed=0)
        topics()
    except Exception as exc:
        # Whatever failed, leave nothing running that this command started.
        for service in reversed(started):
            service.down()
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    from api.keys import create_key, keys_path, revoke_key

    # A key for this demo only: printed below, revoked when the demo stops.
    demo_key = create_key(keys_path(settings), name="demo", scopes=["admin"], replace=True)
    base = [sys.executable, "-m", "ioc.cli"]
    roles = {
        "worker": [*base, "worker"],
        "incidents": [*base, "incidents"],
        "api": [*base, "api"],
        "simulate": [
            *base,
            "simulate",
            "--entities",
            str(entities),
            "--speed",
            str(speed),
            "--rate",
            "2",
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
        f"  board  {url}/?key={demo_key}  (the operations-centre dashboard)\n"
        f"  open   {url}/docs\n"
        f"  series {url}/v1/traffic/entities/{sample}/series?metric=vehicles\n"
        f"  key    {demo_key}  (admin, this demo only: send it as X-API-Key)\n"
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
        revoke_key(keys_path(settings), "demo")
        for service in reversed(started):
            service.down()
        console.print("stopped")


register_recordings(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
