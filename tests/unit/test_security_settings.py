"""Kafka SASL/TLS and database TLS settings: what reaches aiokafka and asyncpg, which
combinations are refused and how, and that no secret shows in a repr or a log."""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from ioc.db.pool import DatabaseSecurityError, connect_options, ssl_option
from ioc.settings import Settings
from streams.kafka import KafkaSecurityError, client_options
from tests.utils.certs import KEY_PASSWORD, TlsFiles, make_tls_files

SASL_PASSWORD = "sasl-pass-93be"
DB_PASSWORD = "db-pass-17aa"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the defaults, whatever the shell running the suite set."""
    for name in list(os.environ):
        if name.startswith("IOC_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


def strimzi_env(monkeypatch: pytest.MonkeyPatch, tls: TlsFiles) -> None:
    """What the worker Deployment sets for Strimzi's TLS listener with SCRAM-SHA-512."""
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": "city-kafka-bootstrap:9093",
        "IOC_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "IOC_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "IOC_KAFKA__SASL_USERNAME": "ioc-worker",
        "IOC_KAFKA__SASL_PASSWORD": SASL_PASSWORD,
        "IOC_KAFKA__SSL_CAFILE": str(tls.ca),
        "DATABASE_URL": f"postgresql://ioc:{DB_PASSWORD}@db:5432/ioc",
        "IOC_DATABASE__SSLMODE": "verify-full",
        "IOC_DATABASE__SSLROOTCERT": str(tls.ca),
    }.items():
        monkeypatch.setenv(name, value)


async def test_sasl_scram_over_tls_reaches_aiokafka(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles
) -> None:
    strimzi_env(monkeypatch, tls)
    options = client_options(Settings(_env_file=None))
    producer = AIOKafkaProducer(**options)
    client = producer.client
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "ioc-worker"
    assert client._sasl_plain_password == SASL_PASSWORD
    context = client._ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # The CA the settings name is the one, and the only one, trusted.
    assert context.get_ca_certs() == ssl.create_default_context(cafile=tls.ca).get_ca_certs()
    await producer.stop()


def test_mutual_tls_loads_the_client_certificate(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles
) -> None:
    monkeypatch.setenv("IOC_KAFKA__SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("IOC_KAFKA__SSL_CAFILE", str(tls.ca))
    monkeypatch.setenv("IOC_KAFKA__SSL_CERTFILE", str(tls.client_cert))
    monkeypatch.setenv("IOC_KAFKA__SSL_KEYFILE", str(tls.client_key_encrypted))
    monkeypatch.setenv("IOC_KAFKA__SSL_KEY_PASSWORD", KEY_PASSWORD)
    options = client_options(Settings(_env_file=None))
    assert options["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in options
    assert isinstance(options["ssl_context"], ssl.SSLContext)

    monkeypatch.setenv("IOC_KAFKA__SSL_KEY_PASSWORD", "wrong")
    with pytest.raises(KafkaSecurityError, match="cannot load the client certificate") as info:
        client_options(Settings(_env_file=None))
    assert "wrong" not in str(info.value)


def test_plaintext_default_has_no_tls_or_sasl() -> None:
    options = client_options(Settings(_env_file=None))
    assert options == {"bootstrap_servers": "127.0.0.1:19092", "security_protocol": "PLAINTEXT"}
    assert connect_options(Settings(_env_file=None)) == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"IOC_KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "IOC_KAFKA__SASL_MECHANISM": "PLAIN"},
            r"SASL_SSL needs \['IOC_KAFKA__SASL_USERNAME', 'IOC_KAFKA__SASL_PASSWORD'\]",
        ),
        (
            {"IOC_KAFKA__SASL_USERNAME": "u", "IOC_KAFKA__SASL_PASSWORD": "p"},
            "SASL credentials are set but security_protocol is PLAINTEXT",
        ),
        ({"IOC_KAFKA__SSL_CAFILE": "{ca}"}, "TLS files are set but security_protocol is PLAINTEXT"),
        (
            {"IOC_KAFKA__SECURITY_PROTOCOL": "SSL", "IOC_KAFKA__SSL_CERTFILE": "{cert}"},
            "mutual TLS needs both ssl_certfile and ssl_keyfile",
        ),
        (
            {"IOC_KAFKA__SECURITY_PROTOCOL": "SSL", "IOC_KAFKA__SSL_CAFILE": "/nowhere/ca.pem"},
            "Path does not point to a file",
        ),
        (
            {"IOC_KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "IOC_KAFKA__SASL_MECHANISM": "GSSAPI"},
            "sasl_mechanism",
        ),
        ({"IOC_DATABASE__SSLROOTCERT": "{ca}"}, "set IOC_DATABASE__SSLMODE to verify-full"),
        (
            {"IOC_DATABASE__SSLMODE": "prefer", "IOC_DATABASE__SSLROOTCERT": "{ca}"},
            "sslmode is prefer",
        ),
        (
            {"IOC_DATABASE__SSLMODE": "verify-full", "IOC_DATABASE__SSLKEY": "{key}"},
            "needs both sslcert and sslkey",
        ),
        ({"IOC_DATABASE__SSLMODE": "verify_full"}, "sslmode"),
    ],
)
def test_bad_combinations_are_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles, env: dict[str, str], message: str
) -> None:
    files = {"ca": tls.ca, "cert": tls.client_cert, "key": tls.client_key}
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**files))
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None)


@pytest.mark.parametrize(
    ("mode", "verify", "check_hostname"),
    [
        ("require", ssl.CERT_NONE, False),
        ("verify-ca", ssl.CERT_REQUIRED, False),
        ("verify-full", ssl.CERT_REQUIRED, True),
    ],
)
def test_database_modes_become_asyncpg_contexts(
    monkeypatch: pytest.MonkeyPatch,
    tls: TlsFiles,
    mode: str,
    verify: ssl.VerifyMode,
    check_hostname: bool,
) -> None:
    monkeypatch.setenv("IOC_DATABASE__SSLMODE", mode)
    context = connect_options(Settings(_env_file=None))["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, check_hostname)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_database_require_with_a_root_cert_checks_the_ca(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles
) -> None:
    """As libpq: sslmode=require with a root certificate behaves as verify-ca."""
    monkeypatch.setenv("IOC_DATABASE__SSLMODE", "require")
    monkeypatch.setenv("IOC_DATABASE__SSLROOTCERT", str(tls.ca))
    monkeypatch.setenv("IOC_DATABASE__SSLCERT", str(tls.client_cert))
    monkeypatch.setenv("IOC_DATABASE__SSLKEY", str(tls.client_key))
    context = ssl_option(Settings(_env_file=None))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname
    assert len(context.get_ca_certs()) == 1


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_database_modes_without_checks_go_to_asyncpg_as_named(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("IOC_DATABASE__SSLMODE", mode)
    assert connect_options(Settings(_env_file=None)) == {"ssl": mode}


def test_database_key_that_does_not_match_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles
) -> None:
    monkeypatch.setenv("IOC_DATABASE__SSLMODE", "verify-full")
    monkeypatch.setenv("IOC_DATABASE__SSLCERT", str(tls.client_cert))
    monkeypatch.setenv("IOC_DATABASE__SSLKEY", str(tls.server_key))
    with pytest.raises(DatabaseSecurityError, match="cannot load the client certificate"):
        connect_options(Settings(_env_file=None))


async def test_secrets_appear_in_no_repr_dump_or_log(
    monkeypatch: pytest.MonkeyPatch, tls: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    strimzi_env(monkeypatch, tls)
    monkeypatch.setenv("IOC_KAFKA__SSL_CERTFILE", str(tls.client_cert))
    monkeypatch.setenv("IOC_KAFKA__SSL_KEYFILE", str(tls.client_key_encrypted))
    monkeypatch.setenv("IOC_KAFKA__SSL_KEY_PASSWORD", KEY_PASSWORD)
    monkeypatch.setenv("IOC_DATABASE__SSLKEY_PASSWORD", "db-key-pass-0c2e")
    monkeypatch.setenv("IOC_DATABASE__SSLCERT", str(tls.client_cert))
    monkeypatch.setenv("IOC_DATABASE__SSLKEY", str(tls.client_key_encrypted))
    settings = Settings(_env_file=None)
    secrets = (SASL_PASSWORD, DB_PASSWORD, KEY_PASSWORD, "db-key-pass-0c2e")
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(settings.kafka),
        repr(settings.database),
    ]
    for text in shown:
        for secret in secrets:
            assert secret not in text
    # A client that cannot reach its broker logs why, but not with the password.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    producer = AIOKafkaProducer(**client_options(Settings(_env_file=None)))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()
    assert caplog.records, "the failed connection logged nothing to check"
    for secret in secrets:
        assert secret not in caplog.text


def test_topics_owned_by_an_operator_and_replication(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC_KAFKA__CREATE_TOPICS", "false")
    monkeypatch.setenv("IOC_KAFKA__REPLICATION_FACTOR", "3")
    settings = Settings(_env_file=None)
    assert settings.kafka.create_topics is False
    assert settings.kafka.replication_factor == 3
    monkeypatch.setenv("IOC_KAFKA__REPLICATION_FACTOR", "0")
    with pytest.raises(ValidationError, match="replication_factor"):
        Settings(_env_file=None)


def test_settings_files_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IOC_DATABASE__SSLMODE", "verify-full")
    monkeypatch.setenv("IOC_DATABASE__SSLROOTCERT", str(tmp_path / "missing.pem"))
    with pytest.raises(ValidationError, match="sslrootcert"):
        Settings(_env_file=None)
