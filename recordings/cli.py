"""``ioc record``, ``ioc replay`` and ``ioc recording info|verify|simulate``."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ioc.settings import NAMESPACE_PATTERN, Settings, get_settings
from recordings.options import OptionsError, ReplayOptions, parse_remap, parse_time_ms
from recordings.reader import RecordingError
from recordings.store import NameError_, RecordingStore, check_name

console = Console(stderr=True)
recording_app = typer.Typer(help="Inspect, check or make recordings (MCAP files).")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code=2)


def _settings_for(namespace: str | None) -> Settings:
    settings = get_settings()
    if namespace is None:
        return settings
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise _fail(f"namespace {namespace!r} must match {NAMESPACE_PATTERN.pattern}")
    return settings.model_copy(update={"namespace": namespace})


def resolve(recording: str) -> Path:
    """A path to a recording (file or directory), or the name of one in the store."""
    path = Path(recording)
    if path.exists():
        return path
    try:
        entry = RecordingStore(get_settings()).find(recording)
    except NameError_ as exc:
        raise _fail(f"{recording}: no such file, and {exc}") from None
    if entry is None:
        raise _fail(f"no recording named {recording!r} and no such file")
    return entry.path


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


def record(
    name: str = typer.Argument(..., help="Name of the recording (a directory in the store)"),
    topics: list[str] = typer.Option(
        [], "--topics", "-t", help="Topic name or glob inside the namespace; repeat for more"
    ),
    namespace: str = typer.Option(None, help="Namespace to record (default from settings)"),
    duration: float = typer.Option(None, min=0.1, help="Stop after this many seconds"),
    max_records: int = typer.Option(None, min=1, help="Stop after this many records"),
    from_beginning: bool = typer.Option(False, help="Start at the topics' oldest records"),
) -> None:
    """Record topics (default ioc.*.events) into MCAP files until Ctrl-C or a limit."""
    from recordings.recorder import Recorder, RecorderError

    settings = _settings_for(namespace)
    try:
        directory = RecordingStore(settings).new_path(name)
    except (NameError_, FileExistsError) as exc:
        raise _fail(str(exc)) from None
    recorder = Recorder(
        settings, directory, patterns=topics, name=name, from_beginning=from_beginning
    )

    async def main() -> None:
        stop = asyncio.Event()
        _on_signals(stop)
        task = asyncio.create_task(recorder.run(stop, duration_s=duration, max_records=max_records))
        announced = False
        while not task.done():
            await asyncio.wait({task}, timeout=1.0)
            if recorder.stats.ready and not announced:
                announced = True
                console.print(
                    f"recording {', '.join(recorder.topics)} of namespace "
                    f"{settings.namespace} into {directory}; Ctrl-C stops"
                )
            if announced:
                console.print(
                    f"record: {recorder.stats.total:,} records, {recorder.stats.parts} part(s)"
                )
        await task

    try:
        asyncio.run(main())
    except RecorderError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"recorded {recorder.stats.total:,} records into {directory}: "
        + ", ".join(f"{t} {n:,}" for t, n in sorted(recorder.stats.records.items()))
    )


def replay(
    recording: str = typer.Argument(..., help="Recording name, directory or .mcap file"),
    namespace: str = typer.Option(None, help="Target namespace (default: the sandbox)"),
    speed: float = typer.Option(1.0, help="x0.1 to x1000 of recorded time; 0: max speed"),
    loop: bool = typer.Option(False, help="Start again at the end, until stopped"),
    start_index: int = typer.Option(0, min=0, help="First record (in recorded order)"),
    end_index: int = typer.Option(None, min=1, help="Stop before this record"),
    start_time: str = typer.Option(None, help="Start at this time (ISO 8601 or epoch ms)"),
    end_time: str = typer.Option(None, help="Stop after this time (ISO 8601 or epoch ms)"),
    topics: list[str] = typer.Option([], "--topics", "-t", help="Replay only these (globs)"),
    remap: list[str] = typer.Option([], help="SOURCE=TARGET base topic names; repeat"),
    shift_to_now: bool = typer.Option(False, help="Move event times so the start is now"),
    allow_live: bool = typer.Option(False, help="Allow the live namespace as the target"),
    partial: bool = typer.Option(False, help="Replay a damaged recording up to the damage"),
    prime: bool = typer.Option(True, help="Send each entity's last event before the start"),
) -> None:
    """Replay a recording into a namespace (a sandbox by default), with a progress bar."""
    from recordings.recording import Recording
    from recordings.replayer import Replayer, ReplayError

    settings = get_settings()
    target_ns = namespace or settings.recordings.sandbox_namespace
    try:
        options = ReplayOptions(
            namespace=target_ns,
            speed=speed or None,
            loop=loop,
            start_index=start_index,
            end_index=end_index,
            start_ms=parse_time_ms(start_time) if start_time else None,
            end_ms=parse_time_ms(end_time) if end_time else None,
            topics=tuple(topics),
            remap=parse_remap(remap),
            shift_to_now=shift_to_now,
            partial=partial,
            prime=prime,
        )
    except OptionsError as exc:
        raise _fail(str(exc)) from None
    if options.touches_live(settings.namespace) and not allow_live:
        raise _fail(
            f"namespace {target_ns!r} is live: replaying into it changes live aggregates; "
            "pass --allow-live if that is what you want"
        )
    try:
        source = Recording(resolve(recording))
    except RecordingError as exc:
        raise _fail(str(exc)) from None
    target = settings.model_copy(update={"namespace": target_ns})
    replayer = Replayer(source, target, options)

    async def main() -> None:
        stop = asyncio.Event()
        _on_signals(stop)
        progress = replayer.controller.progress
        task = asyncio.create_task(replayer.run())
        with Progress(
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            shown = bar.add_task("replay", total=None, detail="")
            while not task.done():
                await asyncio.wait({task}, timeout=0.25)
                if stop.is_set():
                    replayer.controller.stop()
                event = (
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(progress.event_time_ms / 1000))
                    if progress.event_time_ms
                    else "-"
                )
                bar.update(
                    shown,
                    total=progress.total or None,
                    completed=progress.position + 1 if progress.sent else 0,
                    detail=f"sent {progress.sent:,} primed {progress.primed:,} | {event} UTC",
                )
        await task

    try:
        asyncio.run(main())
    except (RecordingError, ReplayError, OptionsError) as exc:
        raise _fail(str(exc)) from None
    p = replayer.controller.progress
    console.print(
        f"replay {p.state}: {p.sent:,} records sent ({p.primed:,} primed) into namespace "
        f"{target_ns} in {p.passes} pass(es)"
    )


@recording_app.command("info")
def info(recording: str = typer.Argument(..., help="Recording name, directory or file")) -> None:
    """Records per topic, time range, parts and size of a recording."""
    _report(recording, verify=False)


@recording_app.command("verify")
def verify(recording: str = typer.Argument(..., help="Recording name, directory or file")) -> None:
    """Read every chunk (zstd, CRC) and say whether it is whole or what can be recovered."""
    _report(recording, verify=True)


def _report(recording: str, *, verify: bool) -> None:
    from recordings.recording import Recording

    try:
        report = Recording(resolve(recording)).scan()
    except RecordingError as exc:
        raise _fail(str(exc)) from None
    data = report.as_dict()
    console.print(
        f"{report.path}: {data['parts']} part(s), {data['bytes']:,} bytes, "
        f"{data['chunks']} chunks, {data['records']:,} records"
    )
    console.print(f"  time range {data['first_time']} .. {data['last_time']}")
    for topic, entry in data["topics"].items():
        console.print(
            f"  {topic:32} {entry['records']:>10,} records  {entry['partitions']} partitions"
        )
    damage = report.damage
    if damage is None:
        if verify:
            console.print("[green]ok[/]: every chunk is whole and its CRC matches")
        return
    console.print(f"[red]damaged[/]: {damage.describe()}")
    console.print(
        f"recoverable: {data['records']:,} records in {data['chunks']} complete chunks, "
        f"up to {data['last_time']} (replay with --partial)"
    )
    if verify:
        raise typer.Exit(code=1)


@recording_app.command("simulate")
def simulate(
    out: Path = typer.Argument(..., help="MCAP file to write"),
    scenario: str = typer.Option(None, help="Scenario name in seeds/scenarios/ or a JSON file"),
    start: str = typer.Option(..., help="Event time of the first second, ISO 8601"),
    scenario_start: str = typer.Option(None, help="When the scenario's hours count from"),
    duration: float = typer.Option(1800, min=1, help="Simulated seconds"),
    entities: int = typer.Option(2000, help="Entities in the city model"),
    seed: int = typer.Option(0, help="Random seed"),
    partitions: int = typer.Option(8, min=1, help="Partitions of the recorded topics"),
) -> None:
    """Record a simulation straight into a file, without Kafka (how seeds are made)."""
    from recordings.simulated import record_simulation
    from simulators.engine import ConfigError, SimConfig, start_of
    from simulators.scenario import ScenarioError, load_scenario

    try:
        config = SimConfig(
            start=start_of(start),
            entities=entities,
            seed=seed,
            duration_s=duration,
            scenario=load_scenario(scenario) if scenario else None,
        )
        anchor = start_of(scenario_start) if scenario_start else None
    except (ConfigError, ScenarioError, ValueError) as exc:
        raise _fail(str(exc)) from None
    with console.status(f"simulating {duration:,.0f} s into {out}"):
        counts = record_simulation(out, config, partitions=partitions, scenario_start=anchor)
    console.print(
        f"wrote {sum(counts.values()):,} records to {out} ({out.stat().st_size:,} bytes): "
        + ", ".join(f"{t} {n:,}" for t, n in sorted(counts.items()))
    )


def register(app: typer.Typer) -> None:
    """Add the recording commands to the ``ioc`` command line."""
    app.command("record")(record)
    app.command("replay")(replay)
    app.add_typer(recording_app, name="recording")


__all__ = ["check_name", "register"]
