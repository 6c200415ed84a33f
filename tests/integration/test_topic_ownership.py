"""Topics owned by an operator (IOC_KAFKA__CREATE_TOPICS=false, as on Kubernetes with
Strimzi's KafkaTopic resources): the live namespace's topics are checked, never created
or altered; sandboxes still get theirs."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contract.catalog import DOMAINS
from ioc.settings import Settings
from streams.admin import TopicsNotReady, check_topics, ensure_topics
from streams.kafka import client_options
from streams.topics import topic_specs
from tests.utils.namespaces import Namespace, drop_namespace


def owned_by_operator(settings: Settings, **changes: object) -> Settings:
    kafka = settings.kafka.model_copy(update={"create_topics": False, **changes})
    return settings.model_copy(update={"kafka": kafka})


async def check(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await check_topics(admin, topic_specs(settings, DOMAINS))
    finally:
        await admin.close()


async def topic_names(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_existing_topics_with_the_partition_count_pass(namespace: Namespace) -> None:
    await check(owned_by_operator(namespace.settings))


async def test_missing_topics_are_named_and_not_created(infra: Settings) -> None:
    settings = owned_by_operator(
        infra.model_copy(update={"namespace": f"t_{uuid.uuid4().hex[:10]}"})
    )
    with pytest.raises(TopicsNotReady, match=r"do not exist: \[.*ioc\.traffic\.events"):
        await check(settings)
    assert not any(n.startswith(settings.topic_prefix) for n in await topic_names(infra))


async def test_another_partition_count_is_refused(namespace: Namespace) -> None:
    wrong = owned_by_operator(
        namespace.settings, partitions=namespace.settings.kafka.partitions + 4
    )
    with pytest.raises(TopicsNotReady, match="IOC_KAFKA__PARTITIONS=12 partitions") as info:
        await check(wrong)
    assert f"{namespace.settings.topic('ioc.state')}': 8" in str(info.value)


async def test_sandbox_namespaces_still_get_their_topics(infra: Settings) -> None:
    settings = owned_by_operator(
        infra.model_copy(update={"namespace": f"t_{uuid.uuid4().hex[:10]}"})
    )
    created = await ensure_topics(settings)
    try:
        assert settings.topic("ioc.state") in created
        await check(settings)
    finally:
        await drop_namespace(settings)
