"""Which partition an entity's records belong on, and what to tell a client that missed it.

Every record of an entity must reach one partition, its *home*: the worker that owns
that partition holds the entity's state, and a record elsewhere would start a second
state that the first never sees (its minute counted twice in two halves, or overwritten).
The home is the partition Kafka's Java client and aiokafka choose for the key: murmur2 of
the key bytes, positive, modulo the topic's partition count. The project's producers
(simulators, the API, replays) use it. librdkafka's clients (confluent-kafka, kcat,
node-rdkafka, Go's confluent client) hash with CRC32 by default (``consistent_random``),
which sends most keys elsewhere; with ``partitioner=murmur2_random`` they agree.

A record found on another partition is dead-lettered with the reason ``wrong_partition``
and a detail naming the home partition and the client setting (docs/architecture.md says
why not forwarded). It is never applied, so it can never be counted twice, and the
decision depends on the record alone, so a replay makes the same one.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from contract.rejection import Rejection

#: What the dead letter tells the integrator to change.
CLIENT_SETTING = (
    "librdkafka clients (confluent-kafka, kcat, node-rdkafka, Go) hash keys with CRC32 by "
    "default: set partitioner=murmur2_random, as Kafka's Java client and aiokafka do"
)


def home_partition(key: bytes, partitions: int) -> int:
    """The partition records keyed ``key`` belong on (Kafka's default partitioner)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def wrong_partition(key: bytes, *, home: int, partition: int) -> Rejection:
    """The dead letter's reason for a record of ``key`` found on ``partition``."""
    return Rejection(
        "wrong_partition",
        f"key {key.decode('utf-8', 'replace')!r} belongs on partition {home} (murmur2 of the "
        f"key), not {partition}; {CLIENT_SETTING}",
        field="partition",
    )
