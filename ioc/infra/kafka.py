"""The local Apache Kafka in KRaft mode, run from its Maven Central jars: one broker by
default, or a cluster of several (``IOC_KAFKA__LOCAL_BROKERS``, ``ioc infra up --brokers 3``),
each node a combined broker and controller.

The jars are resolved once by Maven from ``deploy/kafka/pom.xml`` and copied into the
state directory; later starts use that copy and need no network. One broker keeps its
data in ``<state>/kafka``; a cluster in ``<state>/kafka-cluster/node-<id>``, so the two
never share a log directory.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ioc.infra.process import (
    InfraError,
    ServiceStatus,
    pid_alive,
    port_open,
    read_pid,
    spawn,
    terminate,
    wait_until,
)
from ioc.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
READY_LINE = "Kafka Server started"


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka makes one: 16 random bytes, URL-safe base64, unpadded,
    never starting with '-' (made here rather than by starting a JVM for it)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def replication_of(brokers: int) -> tuple[int, int]:
    """Replicas of every topic and ``min.insync.replicas`` on a cluster of ``brokers``:
    three replicas acknowledged by two, so one broker may be lost without stopping writes
    or losing an acknowledged record (one broker: 1 and 1)."""
    replicas = min(3, brokers)
    return replicas, max(1, replicas - 1)


class KafkaNode:
    """One process of the local cluster: its configuration, data, log and pid."""

    def __init__(self, broker: KafkaBroker, node_id: int) -> None:
        self.broker = broker
        self.node_id = node_id
        kafka = broker.settings.kafka
        self.port = kafka.local_port + 2 * (node_id - 1)
        self.controller_port = kafka.local_controller_port + 2 * (node_id - 1)
        single = kafka.local_brokers == 1
        self.home = broker.home if single else broker.home / f"node-{node_id}"
        self.data = self.home / "data"
        self.config = self.home / "server.properties"
        self.log4j = self.home / "log4j2.properties"
        self.log_file = self.home / "kafka.log"
        self.stdout_file = self.home / "stdout.log"
        self.pid_file = self.home / "kafka.pid"
        # The process spawned last, and where its log stood then (readiness reads after it).
        self.process: subprocess.Popen[bytes] | None = None
        self.mark = 0

    @property
    def pid(self) -> int | None:
        """The pid of the running node, if it runs."""
        return read_pid(self.pid_file)

    def running(self) -> bool:
        return self.pid is not None and port_open(self.port)

    def write_config(self) -> None:
        kafka = self.broker.settings.kafka
        replicas, min_isr = replication_of(kafka.local_brokers)
        voters = ",".join(
            f"{node.node_id}@127.0.0.1:{node.controller_port}" for node in self.broker.nodes
        )
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    f"num.partitions={kafka.partitions}",
                    # The internal topics too: the consumer offsets carry the worker's
                    # watermarks (commit metadata), so they are replicated like the data.
                    f"default.replication.factor={replicas}",
                    f"min.insync.replicas={min_isr}",
                    f"offsets.topic.replication.factor={replicas}",
                    "offsets.topic.num.partitions=8",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min_isr}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min_isr}",
                    # A replica that was not in sync never becomes leader: no acknowledged
                    # record is given up to keep a partition writable.
                    "unclean.leader.election.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        self.log4j.write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = File",
                    "appender.file.name = file",
                    f"appender.file.fileName = {self.log_file}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = file",
                    "",
                ]
            )
        )

    def java(self, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.log4j}",
            "-cp",
            f"{self.broker.libs}/*",
            *args,
        ]

    def format_storage(self, cluster_id: str) -> None:
        if (self.data / "meta.properties").exists():
            return
        result = subprocess.run(
            self.java(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config)
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka storage failed: {result.stdout}{result.stderr}")

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the node's JVM (not waiting); returns the process to wait on."""
        if port_open(self.port) or port_open(self.controller_port):
            raise InfraError(
                f"port {self.port} or {self.controller_port} is taken by another program; set "
                "IOC_KAFKA__LOCAL_PORT and IOC_KAFKA__LOCAL_CONTROLLER_PORT, or "
                "KAFKA_BOOTSTRAP_SERVERS"
            )
        # A cluster's nodes share the machine: half the heap of a lone broker each.
        heap = "1g" if self.broker.settings.kafka.local_brokers == 1 else "512m"
        self.mark = self.log_file.stat().st_size if self.log_file.exists() else 0
        process = spawn(self.java("kafka.Kafka", str(self.config), heap=heap), log=self.stdout_file)
        self.pid_file.write_text(str(process.pid))
        self.process = process
        return process

    def ready(self) -> bool:
        """True once the node spawned last has logged its start and takes connections."""
        if self.process is None:
            return False
        if self.process.poll() is not None:
            raise InfraError(
                f"Kafka node {self.node_id} exited with {self.process.returncode}; "
                f"see {self.log_file}"
            )
        if not self.log_file.exists():
            return False
        with self.log_file.open("rb") as log:
            log.seek(self.mark)
            started = READY_LINE.encode() in log.read()
        return started and port_open(self.port)

    def start(self, *, timeout_s: float = 90) -> None:
        """Start this node alone (the others of its quorum running) and wait for it."""
        if self.running():
            return
        self.spawn()
        wait_until(
            self.ready,
            timeout_s=timeout_s,
            what=f"Kafka node {self.node_id}",
            log_file=self.log_file,
        )

    def kill(self) -> None:
        """SIGKILL the node, as a crash would: nothing is flushed or handed over."""
        pid = self.pid
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), timeout_s=10, what=f"node {self.node_id} to die")
        terminate(pid, timeout_s=1)  # reaps it if this process started it
        self.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the node cleanly (SIGTERM, then SIGKILL after 30 s)."""
        pid = self.pid
        if pid is not None:
            terminate(pid, timeout_s=30)
        self.pid_file.unlink(missing_ok=True)


class KafkaBroker:
    """Starts, stops and reports the local broker, or the local cluster of
    ``local_brokers`` nodes; does nothing when Kafka is external."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        state = settings.state_dir.resolve()
        single = settings.kafka.local_brokers == 1
        self.home = state / "kafka" if single else state / "kafka-cluster"
        # The jars are shared by every layout of the state directory.
        self.libs = state / "kafka" / "libs"
        self.cluster_id_file = self.home / "cluster.id"
        self.nodes = [KafkaNode(self, n) for n in range(1, settings.kafka.local_brokers + 1)]
        # The first node's files, as a single broker's always were.
        self.log_file = self.nodes[0].log_file
        self.pid_file = self.nodes[0].pid_file

    @property
    def port(self) -> int:
        return self.settings.kafka.local_port

    def node(self, node_id: int) -> KafkaNode:
        """Node ``node_id`` (from 1)."""
        return self.nodes[node_id - 1]

    def resolve_jars(self) -> None:
        """Copy the broker's jars from Maven (network on first use only)."""
        if self.libs.is_dir() and any(self.libs.glob("kafka_2.13-*.jar")):
            return
        if shutil.which("mvn") is None:
            raise InfraError("Maven (mvn) is needed once to fetch the Kafka jars; install it")
        if not POM.exists():
            raise InfraError(f"{POM} is missing; run from a checkout of the project")
        staging = self.libs.parent / "libs.partial"
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(f"Maven could not resolve the Kafka jars:\n{result.stdout[-3000:]}")
        staging.rename(self.libs)

    def _cluster_id(self) -> str:
        """The cluster's id, made once: every node is formatted with the same one."""
        if self.cluster_id_file.exists():
            return self.cluster_id_file.read_text().strip()
        cluster_id = new_cluster_id()
        self.home.mkdir(parents=True, exist_ok=True)
        self.cluster_id_file.write_text(cluster_id)
        return cluster_id

    def up(self) -> ServiceStatus:
        """Start every node (resolving jars and formatting storage when needed) and wait
        until each has started: a cluster's nodes are started together, since none
        finishes starting before a majority of the controllers has."""
        if self.settings.external_kafka:
            return self.status()
        down = [node for node in self.nodes if not node.running()]
        if not down:
            return self.status()
        self.home.mkdir(parents=True, exist_ok=True)
        self.resolve_jars()
        cluster_id = self._cluster_id()
        for node in down:
            node.write_config()
            node.format_storage(cluster_id)
        for node in down:
            node.spawn()
        for node in down:
            wait_until(
                node.ready, timeout_s=120, what=f"Kafka node {node.node_id}", log_file=node.log_file
            )
        return self.status()

    def down(self) -> None:
        """Stop every node cleanly (SIGTERM, then SIGKILL after 30 s), all at once: nodes
        stopped one by one would leave the last ones waiting for a quorum that is gone."""
        if self.settings.external_kafka:
            return
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(KafkaNode.stop, self.nodes))

    def status(self) -> ServiceStatus:
        """Running, stopped or external, and where."""
        address = self.settings.bootstrap_servers
        if self.settings.external_kafka:
            return ServiceStatus("kafka", "external", address)
        running = [node for node in self.nodes if node.running()]
        if len(self.nodes) == 1:
            if running:
                detail = f"pid {running[0].pid}, log {self.log_file}"
                return ServiceStatus("kafka", "running", address, detail)
            return ServiceStatus("kafka", "stopped", address)
        if not running:
            return ServiceStatus("kafka", "stopped", address)
        pids = ", ".join(f"node {n.node_id} pid {n.pid}" for n in running)
        state = "running" if len(running) == len(self.nodes) else "degraded"
        return ServiceStatus("kafka", state, address, f"{pids}; logs under {self.home}")
