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

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)
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
    # TLS: the CA that signed the brokers' certificates (default: the system's), and a
    # client certificate and key for mutual TLS (Strimzi's KafkaUser with tls auth).
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    # False where an operator owns the live namespace's topics (Strimzi's KafkaTopic
    # resources): they are then only checked (present, partition count), never altered.
    # Sandbox namespaces' topics are created all the same.
    create_topics: bool = True
    # Replicas of every topic the project creates. Default: 1 with one local broker,
    # 3 with a local cluster of three or more (``ioc infra up --brokers 3``).
    replication_factor: int = Field(default=1, ge=1)
    # Ports of the broker the launcher starts when no bootstrap servers are given. A local
    # cluster of several brokers (local_brokers) puts node n (from 0) on local_port + 2n
    # and local_controller_port + 2n.
    local_port: int = 19092
    local_controller_port: int = 19093
    # Brokers of the local KRaft cluster, each a combined broker and controller. With
    # three or more, topics get three replicas and min.insync.replicas=2: writes with
    # acks=all go on while one broker is down, and stop (rather than risk a loss) when
    # two are.
    local_brokers: int = Field(default=1, ge=1, le=5)
    partitions: int = Field(default=8, ge=1, le=1024)
    # The compacted state topic keeps each record at least this long before compaction
    # may drop it, so a sink that lags (database down) still reads every version.
    state_min_compaction_lag_ms: int = 7 * 24 * 3600 * 1000
    # Raw and dead-letter topics keep records by size, never by age: their timestamps are
    # event times, and a replayed 2024 scenario would otherwise be deleted on arrival.
    log_retention_bytes: int = 2 * 1024**3

    @model_validator(mode="after")
    def _replicate_on_a_cluster(self) -> KafkaSettings:
        if "replication_factor" not in self.model_fields_set and self.local_brokers > 1:
            self.replication_factor = min(3, self.local_brokers)
        return self

    @property
    def local_ports(self) -> list[int]:
        """The client ports of the local brokers, node 1 first."""
        return [self.local_port + 2 * n for n in range(self.local_brokers)]

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        prefix = "IOC_KAFKA__"
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        if sasl:
            missing = [
                f"{prefix}{name.upper()}"
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"security_protocol {self.security_protocol} needs {missing}")
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password:
            raise ValueError(
                f"SASL credentials are set but security_protocol is {self.security_protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if not tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile):
            raise ValueError(
                f"TLS files are set but security_protocol is {self.security_protocol}: "
                "use SSL or SASL_SSL"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("mutual TLS needs both ssl_certfile and ssl_keyfile")
        if self.ssl_key_password is not None and self.ssl_keyfile is None:
            raise ValueError("ssl_key_password is set without ssl_keyfile")
        return self


class DatabaseSettings(BaseModel):
    """Where PostgreSQL is, and the cluster the launcher runs when none is given."""

    url: SecretStr | None = None
    local_port: int = 15432
    local_user: str = "ioc"
    local_database: str = "ioc"
    pool_min_size: int = 1
    pool_max_size: int = 10
    # TLS to PostgreSQL, as libpq names it; overrides sslmode in the URL when set.
    # verify-full checks the server's name too; require encrypts without checking who
    # answers unless sslrootcert is given (then it checks the CA, as libpq does).
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        None
    )
    # CA bundle (default: the system's), and a client certificate and key.
    sslrootcert: FilePath | None = None
    sslcert: FilePath | None = None
    sslkey: FilePath | None = None
    sslkey_password: SecretStr | None = None

    @model_validator(mode="after")
    def _check_tls(self) -> DatabaseSettings:
        files = [n for n in ("sslrootcert", "sslcert", "sslkey") if getattr(self, n)]
        if files and self.sslmode not in ("require", "verify-ca", "verify-full"):
            raise ValueError(
                f"{files} are set but sslmode is {self.sslmode}: "
                "set IOC_DATABASE__SSLMODE to verify-full, verify-ca or require"
            )
        if (self.sslcert is None) != (self.sslkey is None):
            raise ValueError("a client certificate needs both sslcert and sslkey")
        if self.sslkey_password is not None and self.sslkey is None:
            raise ValueError("sslkey_password is set without sslkey")
        return self


class SinkSettings(BaseModel):
    """Batching and retry of the database sink."""

    batch_max_records: int = Field(default=5000, ge=1)
    batch_max_wait_ms: int = Field(default=200, ge=1)
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    # Plain PostgreSQL: how often delete_expired() drops rows past their retention
    # (TimescaleDB's policies do it there). None: in the live namespace only, since
    # sandboxes replay old event times on purpose and are dropped whole.
    expire: bool | None = None
    expire_interval_s: float = Field(default=3600.0, gt=0)
    # How often the hours written since that have become final are rolled up, with their
    # days (streams.sink.rollup_window); with no write for this long, everything written.
    rollup_interval_s: float = Field(default=60.0, gt=0)
    # How often the area minutes (migration 0012) are recomputed from the entity minutes
    # written since: how far the area series may lag the entity series.
    area_refresh_s: float = Field(default=10.0, gt=0)


class StreamSettings(BaseModel):
    """Event-time windowing."""

    allowed_lateness_s: int = Field(default=120, ge=0)
    # The worker's /metrics; 0.0.0.0 in a container so Prometheus can scrape it.
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # The aggregator folds records in batches of up to this many, or what arrived within
    # max_wait_s.
    max_events: int = Field(default=20_000, ge=1)
    max_wait_s: float = Field(default=0.05, gt=0)
    # How often the aggregator commits the offsets of the batches Kafka has acknowledged
    # (with their watermarks). A commit is a round trip to the group coordinator; after
    # a crash the new owner folds at most this much again, as duplicates.
    commit_interval_s: float = Field(default=1.0, gt=0)
    # How often entities that sent nothing have their newly final minutes judged by the
    # alert rules (a quiet camera's intrusion alert opens and resolves on time).
    sweep_interval_s: float = Field(default=0.5, gt=0)
    # Records one sweep writes at most. When a minute becomes final nearly every entity
    # has it to judge; written all at once they held the event loop for hundreds of ms.
    sweep_max_records: int = Field(default=125, ge=1)
    # Events stamped further ahead of the clock are refused: one would push its
    # partition's watermark ahead of real time and make honest events late. Keep it well
    # under the allowed lateness.
    max_ahead_s: float = Field(default=60.0, ge=0)
    # Clock marks (streams.marks): the worker marks each raw partition it owns that has
    # been quiet for clock_interval_s with the present time, so quiet partitions still see
    # their minutes become final. "auto": in the live namespace only; a sandbox fed by a
    # replay of another day takes the marks of its recording (or its simulator) instead.
    clock_marks: Literal["auto", "on", "off"] = "auto"
    clock_interval_s: float = Field(default=1.0, gt=0)
    # Seconds between two reads of the registry's changed rows (streams.registry).
    registry_refresh_s: float = Field(default=30.0, gt=0)
    # Alert rule files (*.json); default: the library shipped in seeds/rules/. A file that
    # does not validate stops the worker at start with the file, rule and field named.
    rules_dir: Path | None = None
    # Correlation rule files of the incident tier (*.json); default: seeds/correlation/.
    correlation_dir: Path | None = None


API_KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
API_SCOPE_PATTERN = r"^(view|replay|admin|publish:[a-z]+)$"


class ApiKeySettings(BaseModel):
    """One API key as configured: who holds it, the hash of the key, what it may do.

    Only ``sha256:<hex>`` of the key is ever stored; ``ioc keys create`` makes one.
    """

    name: str = Field(pattern=API_KEY_NAME_PATTERN)
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    scopes: list[str] = Field(min_length=1)
    #: CloudEvent ``source`` patterns the key may publish (``*`` matches any run of
    #: characters, ``/vendors/acme/*``); empty: any source. One vendor's key then cannot
    #: claim another's (source, id), which the API and the worker take as a repeat.
    sources: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not re.fullmatch(API_SCOPE_PATTERN, scope):
                raise ValueError(f"scope {scope!r}: use view, replay, admin or publish:<domain>")
        return value

    @field_validator("sources")
    @classmethod
    def _check_sources(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not 1 <= len(pattern) <= 256 or pattern.strip() != pattern or "?" in pattern:
                raise ValueError(
                    f"source pattern {pattern!r}: 1 to 256 characters, no spaces at the ends; "
                    "* is the only wildcard"
                )
        return value


class ApiSettings(BaseModel):
    """The HTTP API: where it listens, who may call it, and how much."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Keys given in the environment (IOC_API__KEYS='[{"name": ..., "hash": ..., "scopes":
    # [...]}]'), in addition to those in the keys file that ``ioc keys`` manages.
    keys: list[ApiKeySettings] = Field(default_factory=list)
    # Default: <state_dir>/api-keys.json.
    keys_file: Path | None = None
    # JWT bearer tokens (HS256/384/512) are accepted when a secret is set.
    jwt_key: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Per key (or token subject): a token bucket of rate_burst requests refilled at
    # rate_per_s.
    rate_per_s: float = Field(default=50.0, gt=0)
    rate_burst: int = Field(default=200, ge=1)
    # Failed authentications (a key or token presented and refused), per client address
    # and per presented key prefix: a bucket of auth_failure_burst refilled at
    # auth_failure_per_s. An empty bucket answers 429 before any key is checked.
    auth_failure_burst: int = Field(default=10, ge=1)
    auth_failure_per_s: float = Field(default=0.1, gt=0)
    # Addresses of the reverse proxies in front of the API (IPs or CIDR ranges; "*" for
    # any): only from these is X-Forwarded-For believed to name the client. Empty: the
    # peer address is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Browser origins allowed to call the API; none by default.
    cors_origins: list[str] = Field(default_factory=list)
    # POST /v1/events: how long to wait for Kafka, and how many recent event ids are
    # remembered to drop a repeated post.
    publish_timeout_s: float = Field(default=5.0, gt=0)
    publish_dedup_ids: int = Field(default=100_000, ge=0)
    max_batch_events: int = Field(default=1000, ge=1)
    # Series: the most points one request may return.
    max_series_points: int = Field(default=10_000, ge=10)
    # Other namespaces engineers read with ?namespace= (api.namespaces): how many may be
    # open at once besides the API's own, and how long an unwatched one stays open.
    max_namespaces: int = Field(default=8, ge=1)
    namespace_idle_s: float = Field(default=300.0, gt=0)


class LiveSettings(BaseModel):
    """The live feeds (``/v1/live``, ``/v1/live/sse``): heartbeats, client queues, replay."""

    # A heartbeat goes to a client that has been sent nothing for this long.
    heartbeat_s: float = Field(default=15.0, gt=0)
    # Per client: distinct entities with an update waiting (updates of one entity merge).
    queue_entities: int = Field(default=10_000, ge=1)
    # Per client: alert transitions waiting; one more disconnects the client (it resumes).
    queue_alerts: int = Field(default=1_000, ge=1)
    # Messages the hub keeps for clients resuming from an event id.
    replay_messages: int = Field(default=50_000, ge=0)
    # Entities per snapshot message.
    snapshot_chunk: int = Field(default=1_000, ge=1)
    # How long the API's start waits for the feed's Kafka consumer before serving anyway.
    start_timeout_s: float = Field(default=10.0, ge=0)
    # A feed consumer starts this far back in the derived topics, so the hub holds what the
    # database sink may not have written yet when the first clients take their snapshot.
    lookback_s: float = Field(default=10.0, ge=0)
    # An area's tile (the feeds' "area" messages) is sent at most this often, when it changed.
    area_interval_s: float = Field(default=2.0, gt=0)


class RecordingSettings(BaseModel):
    """Recordings (``ioc record``) and replays (``ioc replay``)."""

    # Default: <state_dir>/recordings.
    dir: Path | None = None
    # Uncompressed bytes per MCAP chunk: a recording killed mid-way loses at most the
    # chunk being filled.
    chunk_bytes: int = Field(default=1024 * 1024, ge=4096)
    # A new file of the recording starts past this size or this many seconds.
    split_bytes: int = Field(default=512 * 1024**2, ge=1024 * 1024)
    split_s: float = Field(default=3600.0, gt=0)
    # Where replays go unless told otherwise: a sandbox, never the live namespace.
    sandbox_namespace: str = Field(default="sandbox", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    # Replays and recordings started through the API run in the API process: at most this
    # many at once (running or paused), so the operations centre's views stay served.
    max_active_replays: int = Field(default=4, ge=1)
    max_active_recordings: int = Field(default=4, ge=1)


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
    live: LiveSettings = Field(default_factory=LiveSettings)
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL")
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not NAMESPACE_PATTERN.fullmatch(value):
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
            # Every local broker, so a client starts while any one of them is down.
            or ",".join(f"127.0.0.1:{port}" for port in self.kafka.local_ports)
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
    def clock_marks(self) -> bool:
        """Whether the worker marks its quiet partitions with the present time."""
        setting = self.streams.clock_marks
        return setting == "on" or (setting == "auto" and self.namespace == LIVE_NAMESPACE)

    @property
    def db_schema(self) -> str:
        """Database schema holding this namespace's tables."""
        return self.namespace

    @property
    def recordings_dir(self) -> Path:
        """Directory of the recordings (``IOC_RECORDINGS__DIR``, else under the state dir)."""
        return self.recordings.dir or self.state_dir / "recordings"

    def topic(self, name: str) -> str:
        """Full topic name of ``name`` (like ``ioc.traffic.events``) in this namespace."""
        return f"{self.topic_prefix}{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings()
