"""Connection options shared by every Kafka client of the project (all aiokafka)."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import OutOfOrderSequenceNumber
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from ioc.settings import Settings


class KafkaSecurityError(ValueError):
    """The TLS material named in the settings cannot be loaded."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A TLS context when the security protocol asks for one, with the client
    certificate loaded for mutual TLS."""
    kafka = settings.kafka
    if not kafka.security_protocol.endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
    except ssl.SSLError as exc:
        raise KafkaSecurityError(
            f"Kafka TLS: cannot read the CA {kafka.ssl_cafile}: {exc}"
        ) from None
    context.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile is not None and kafka.ssl_keyfile is not None:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        try:
            context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile, password)
        except ssl.SSLError as exc:
            # The reason (wrong password, key not matching the certificate) but never the
            # password itself.
            raise KafkaSecurityError(
                f"Kafka TLS: cannot load the client certificate {kafka.ssl_certfile} "
                f"with key {kafka.ssl_keyfile}: {exc.reason or exc}"
            ) from None
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka producers, consumers and admin clients.

    The SASL password is in here in clear, as aiokafka needs it: never log the result.
    """
    kafka = settings.kafka
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if kafka.sasl_mechanism:
        # aiokafka takes the SCRAM credentials under the same "plain" names.
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return options


def producer_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for every producer of the project: the connection's, plus
    idempotence with ``acks=all``.

    Every in-sync replica (at least ``min.insync.replicas``) has a record before it is
    acknowledged, so a broker lost after the acknowledgement loses nothing; idempotence
    makes the producer's own retries across a leader change write each record once.
    aiokafka's idempotent producer never expires a batch: while Kafka cannot take writes
    a send waits (callers bound it with their own timeout) instead of failing.
    """
    return {"acks": "all", "enable_idempotence": True, **client_options(settings)}


def wedged(exc: BaseException) -> bool:
    """True for the error after which an idempotent producer is of no more use.

    When the broker and the producer disagree on a partition's sequence numbers (seen
    after brokers restart or leaders move), the broker answers OutOfOrderSequenceNumber.
    aiokafka fails the batch and keeps its producer id and sequences, so every later batch
    to that partition fails the same way (aio-libs/aiokafka#1017, open). The way out is a
    new producer (a new producer id, sequences from zero) that sends again what was not
    acknowledged; consumers that count exactly (the worker, by event id and offset) take
    a record written twice that way once.
    """
    return isinstance(exc, OutOfOrderSequenceNumber)


async def committed_offsets(
    settings: Settings, group_id: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """What ``group_id`` last committed for each of ``partitions`` (one admin request);
    a partition the group committed nothing for is missing or has offset -1."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        committed: dict[
            TopicPartition, OffsetAndMetadata
        ] = await admin.list_consumer_group_offsets(group_id, partitions=partitions)
    finally:
        await admin.close()
    return committed
