"""The one settings object. Nothing else in the project reads the environment.

Variables use the ``IOC_`` prefix with ``__`` for nesting (``IOC_KAFKA__PARTITIONS=12``).
Two well-known names are honoured as they are, so the project can be pointed at
services that already run: ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL``. When
either is set, ``ioc infra up`` starts nothing for that service.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

NAMESPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
LIVE_NAMESPACE = "live"


class KafkaSettings(BaseModel):
    """Where Kafka is and how to talk to it."""

    bootstrap_servers: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    # Ports of the broker the launcher starts when no bootstrap servers are given.
    local_port: int = 19092
    local_controller_port: int = 19093
    partitions: int = Field(default=8, ge=1, le=1024)
    # The compacted state topic keeps each record at least this long before compaction
    # may drop it, so a sink that lags (database down) still reads every version.
    state_min_compaction_lag_ms: int = 7 * 24 * 3600 * 1000
    # Raw and dead-letter topics keep records by size, never by age: their timestamps are
    # event times, and a replayed 2024 scenario would otherwise be deleted on arrival.
    log_retention_bytes: int = 2 * 1024**3


class DatabaseSettings(BaseModel):
    """Where PostgreSQL is, and the cluster the launcher runs when none is given."""

    url: SecretStr | None = None
    local_port: int = 15432
    local_user: str = "ioc"
    local_database: str = "ioc"
    pool_min_size: int = 1
    pool_max_size: int = 10


class SinkSettings(BaseModel):
    """Batching and retry of the database sink."""

    batch_max_records: int = Field(default=5000, ge=1)
    batch_max_wait_ms: int = Field(default=200, ge=1)
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    # How often the hour and day rollups are refreshed over the minutes written since.
    rollup_interval_s: float = Field(default=60.0, gt=0)


class StreamSettings(BaseModel):
    """Event-time windowing."""

    allowed_lateness_s: int = Field(default=120, ge=0)
    web_port: int = 6066
    # Agents fold records in batches of up to this many, or what arrived within max_wait_s.
    max_events: int = Field(default=2000, ge=1)
    max_wait_s: float = Field(default=0.05, gt=0)


class ApiSettings(BaseModel):
    """The HTTP API."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: list[SecretStr] = Field(default_factory=list)


class Settings(BaseSettings):
    """Everything configurable, read once from the environment and ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="IOC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    namespace: str = LIVE_NAMESPACE
    state_dir: Path = Path(".ioc")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    streams: StreamSettings = Field(default_factory=StreamSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL")
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not NAMESPACE_PATTERN.match(value):
            raise ValueError(
                f"namespace {value!r} must match {NAMESPACE_PATTERN.pattern} "
                "(lower-case letter first, then letters, digits or _)"
            )
        return value

    @property
    def external_kafka(self) -> bool:
        """True when Kafka is run by someone else and the launcher must not start it."""
        return bool(self.kafka_bootstrap_servers or self.kafka.bootstrap_servers)

    @property
    def external_database(self) -> bool:
        """True when PostgreSQL is run by someone else and the launcher must not start it."""
        return bool(self.database_url or self.database.url)

    @property
    def bootstrap_servers(self) -> str:
        """Kafka bootstrap servers: external ones when given, else the local broker."""
        return (
            self.kafka_bootstrap_servers
            or self.kafka.bootstrap_servers
            or f"127.0.0.1:{self.kafka.local_port}"
        )

    @property
    def dsn(self) -> str:
        """PostgreSQL connection string: the external one when given, else the local one."""
        secret = self.database_url or self.database.url
        if secret is not None:
            return secret.get_secret_value()
        db = self.database
        return f"postgresql://{db.local_user}@127.0.0.1:{db.local_port}/{db.local_database}"

    @property
    def topic_prefix(self) -> str:
        """Prefix of every topic name in this namespace ('' for the live namespace)."""
        return "" if self.namespace == LIVE_NAMESPACE else f"{self.namespace}."

    @property
    def db_schema(self) -> str:
        """Database schema holding this namespace's tables."""
        return self.namespace

    def topic(self, name: str) -> str:
        """Full topic name of ``name`` (like ``ioc.traffic.events``) in this namespace."""
        return f"{self.topic_prefix}{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings()
