"""Scale-out by partitions: three workers share twelve partitions per topic; one killed
with -9 hands its partitions over and the aggregates stay exact."""

from __future__ import annotations

import uuid
from pathlib import Path

from ioc.db.migrate import migrate
from ioc.settings import Settings
from streams.admin import ensure_topics
from tests.utils.eventually import eventually
from tests.utils.namespaces import Namespace, drop_namespace
from tests.utils.pipeline import produce_events, settle, simulated
from tests.utils.services import Process, start_worker
from tests.utils.truth import database_rows, truth_of

PARTITIONS = 12
TOPICS = 4  # one raw topic per domain


async def twelve_partitions(infra: Settings, logs: Path) -> Namespace:
    name = f"t_{uuid.uuid4().hex[:10]}"
    kafka = infra.kafka.model_copy(update={"partitions": PARTITIONS})
    settings = infra.model_copy(update={"namespace": name, "kafka": kafka})
    await migrate(settings)
    await ensure_topics(settings)
    env = {
        "IOC_NAMESPACE": name,
        "IOC_STATE_DIR": str(infra.state_dir),
        "IOC_KAFKA__PARTITIONS": str(PARTITIONS),
    }
    return Namespace(settings=settings, env=env, logs=logs)


def owned(workers: list[Process]) -> list[int]:
    return [int(w.total("ioc_partitions_owned")) for w in workers]


async def test_three_workers_share_partitions_and_survive_a_kill_9(
    infra: Settings, tmp_path: Path
) -> None:
    ns = await twelve_partitions(infra, tmp_path)
    events = simulated(entities=2000, minutes=30, seed=8)[:150_000]
    workers = [start_worker(ns, name=f"worker-{n}") for n in range(3)]
    try:
        # The range assignor gives each of three members 4 partitions of every topic.
        eventually(
            lambda: owned(workers) == [PARTITIONS * TOPICS // 3] * 3,
            within_s=60,
            what="the partitions to spread over three workers",
        )
        # Killed mid-run whatever the pace: the second half is produced after the kill.
        half = len(events) // 2
        await produce_events(ns, events[:half])
        await settle(ns, 30_000, within_s=120)
        victim, survivors = workers[0], workers[1:]
        victim.kill9()
        await produce_events(ns, events[half:])
        # Its session times out (10 s) and the group gives its partitions to the others.
        eventually(
            lambda: sum(owned(survivors)) == PARTITIONS * TOPICS and min(owned(survivors)) > 0,
            within_s=60,
            what="the killed worker's partitions to move",
        )
        try:
            await settle(ns, len(events), within_s=240)
        except AssertionError as exc:
            # Seen once on CI (137,279 of 150,000 after 240 s), never here: say what each
            # worker was doing.
            tails = "\n".join(
                f"--- {w.log.name} (alive {w.alive()}):\n{w.tail(25)}" for w in workers
            )
            raise AssertionError(f"{exc}\n{tails}") from None
        assert await database_rows(ns.settings) == truth_of(e.value for e in events)
        assert all(w.alive() for w in survivors)
    finally:
        for worker in workers:
            worker.stop()
        await drop_namespace(ns.settings)
