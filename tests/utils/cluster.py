"""A three-broker KRaft cluster of a test's own, beside the shared single broker: the
project's launcher (``ioc.infra.kafka``) on free ports and a state directory under the
test's temporary files, the jars shared with the shared broker's."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from ioc.infra import KafkaBroker
from ioc.settings import Settings
from streams.kafka import client_options

BROKERS = 3


@dataclass
class Cluster:
    """The running cluster, settings pointed at it and the environment that points the
    project's processes at it."""

    broker: KafkaBroker
    settings: Settings
    env: dict[str, str]

    async def in_sync(self, prefix: str = "") -> bool:
        """True when every partition of the topics named ``prefix``... (all topics, the
        consumer offsets included, by default) has all its replicas in sync."""
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            names = [n for n in await admin.list_topics() if n.startswith(prefix)]
            described = await admin.describe_topics(names)
        finally:
            await admin.close()
        return all(
            len(p["isr"]) == len(p["replicas"]) for topic in described for p in topic["partitions"]
        )


def _free_block(count: int, *, start: int = 29_100, end: int = 40_000) -> int:
    """The first port of ``count`` consecutive ports nothing listens on or holds."""
    for base in range(start, end, count):
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} free consecutive ports in {start}-{end}")


@contextmanager
def kafka_cluster(infra: Settings, state: Path) -> Iterator[Cluster]:
    """Start a cluster of three brokers (replication 3, min.insync.replicas 2), yield it,
    and kill every node afterwards."""
    shared = KafkaBroker(infra)
    shared.resolve_jars()
    (state / "kafka").mkdir(parents=True, exist_ok=True)
    libs = state / "kafka" / "libs"
    if not libs.exists():
        libs.symlink_to(shared.libs)
    base = _free_block(2 * BROKERS)
    kafka = infra.kafka.model_copy(
        update={
            "local_port": base,
            "local_controller_port": base + 1,
            "local_brokers": BROKERS,
            "replication_factor": BROKERS,
        }
    )
    settings = infra.model_copy(update={"state_dir": state, "kafka": kafka})
    env = {
        "IOC_KAFKA__LOCAL_PORT": str(base),
        "IOC_KAFKA__LOCAL_CONTROLLER_PORT": str(base + 1),
        "IOC_KAFKA__LOCAL_BROKERS": str(BROKERS),
        "IOC_KAFKA__REPLICATION_FACTOR": str(BROKERS),
    }
    broker = KafkaBroker(settings)
    try:
        broker.up()
        yield Cluster(broker=broker, settings=settings, env=env)
    finally:
        # Its data goes with the test's temporary files: no clean shutdown to wait for (a
        # node took the whole 30 s of SIGTERM's grace in CI, for nothing).
        for node in broker.nodes:
            node.kill()
