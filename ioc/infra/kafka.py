"""A single-node Apache Kafka broker in KRaft mode, run from its Maven Central jars.

The jars are resolved once by Maven from ``deploy/kafka/pom.xml`` and copied into the
state directory; later starts use that copy and need no network.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from ioc.infra.process import (
    InfraError,
    ServiceStatus,
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


class KafkaBroker:
    """Starts, stops and reports the local broker; does nothing when Kafka is external."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir.resolve() / "kafka"
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.config = self.home / "server.properties"
        self.log4j = self.home / "log4j2.properties"
        self.log_file = self.home / "kafka.log"
        self.stdout_file = self.home / "stdout.log"
        self.pid_file = self.home / "kafka.pid"

    @property
    def port(self) -> int:
        return self.settings.kafka.local_port

    def resolve_jars(self) -> None:
        """Copy the broker's jars from Maven (network on first use only)."""
        if self.libs.is_dir() and any(self.libs.glob("kafka_2.13-*.jar")):
            return
        if shutil.which("mvn") is None:
            raise InfraError("Maven (mvn) is needed once to fetch the Kafka jars; install it")
        if not POM.exists():
            raise InfraError(f"{POM} is missing; run from a checkout of the project")
        staging = self.home / "libs.partial"
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

    def _write_config(self) -> None:
        port, cport = self.settings.kafka.local_port, self.settings.kafka.local_controller_port
        partitions = self.settings.kafka.partitions
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{cport}",
                    f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    f"num.partitions={partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
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

    def _java(self, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.log4j}",
            "-cp",
            f"{self.libs}/*",
            *args,
        ]

    def _format_storage(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config)
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka storage failed: {result.stdout}{result.stderr}")

    def up(self) -> ServiceStatus:
        """Start the broker (resolving jars and formatting storage when needed) and wait."""
        if self.settings.external_kafka:
            return self.status()
        if read_pid(self.pid_file) is not None and port_open(self.port):
            return self.status()
        if port_open(self.port):
            raise InfraError(
                f"port {self.port} is taken by another program; set IOC_KAFKA__LOCAL_PORT "
                "or KAFKA_BOOTSTRAP_SERVERS"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.resolve_jars()
        self._write_config()
        self._format_storage()
        mark = self.log_file.stat().st_size if self.log_file.exists() else 0
        process = spawn(
            self._java("kafka.Kafka", str(self.config), heap="1g"), log=self.stdout_file
        )
        self.pid_file.write_text(str(process.pid))

        def ready() -> bool:
            if process.poll() is not None:
                raise InfraError(f"Kafka exited with {process.returncode}; see {self.log_file}")
            if not self.log_file.exists():
                return False
            with self.log_file.open("rb") as log:
                log.seek(mark)
                started = READY_LINE.encode() in log.read()
            return started and port_open(self.port)

        wait_until(ready, timeout_s=90, what="Kafka", log_file=self.log_file)
        return self.status()

    def down(self) -> None:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after 30 s)."""
        if self.settings.external_kafka:
            return
        pid = read_pid(self.pid_file)
        if pid is not None:
            terminate(pid, timeout_s=30)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> ServiceStatus:
        """Running, stopped or external, and where."""
        address = self.settings.bootstrap_servers
        if self.settings.external_kafka:
            return ServiceStatus("kafka", "external", address)
        pid = read_pid(self.pid_file)
        if pid is not None and port_open(self.port):
            return ServiceStatus("kafka", "running", address, f"pid {pid}, log {self.log_file}")
        return ServiceStatus("kafka", "stopped", address)
