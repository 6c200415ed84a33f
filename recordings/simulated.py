"""Recording a simulation straight into an MCAP file, without Kafka: the shipped seed.

The records are what ``ioc simulate`` would produce into the live namespace's raw topics:
same keys, values and timestamps, each in the partition Kafka's default partitioner
gives its key (murmur2, as the simulators' producer computes it), with offsets counted
per partition from 0. Nothing depends on the wall clock, so the same arguments give the
same file, byte for byte.

The simulator's clock marks (one every simulated minute on every partition) are recorded
with the events, and a recording of bounded duration ends with one more, at the end of
its window, which the simulated clock has reached: without it each partition's watermark
stops at its own last event, somewhere in the last minute, and what a sandbox worker
judges last (an instant alert whose quiet minutes end there) depends on when its sweep
ran, that is on the replay's pace.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from aiokafka.partitioner import murmur2

from ioc.settings import Settings
from recordings.frame import KafkaRecord
from recordings.writer import PartWriter
from simulators.engine import SimConfig, Simulation
from simulators.scenario import ScenarioRuntime
from streams.marks import mark_headers
from streams.topics import raw_topic


def record_simulation(
    path: Path,
    config: SimConfig,
    *,
    partitions: int = 8,
    scenario_start: datetime | None = None,
    chunk_bytes: int = 1024 * 1024,
) -> Counter[str]:
    """Write the simulation's events, and its clock marks, to ``path``; return events per
    topic.

    ``scenario_start``: when the scenario's hours count from (default: the simulation's
    start), so a window can be cut out of the middle of a long scenario.
    """
    simulation = Simulation(config)
    start_s = int(config.start.timestamp())
    if config.scenario is not None and scenario_start is not None:
        runtime = ScenarioRuntime(
            config.scenario,
            simulation.city,
            start_s=int(scenario_start.timestamp()),
            seed=config.seed,
        )
        runtime.due(start_s - 1)  # injections before the window are not part of it
        simulation.scenario = runtime
    anchor = scenario_start or config.start
    live = Settings(namespace="live")
    topics = {d: raw_topic(live, d) for d in config.domains}
    writer = PartWriter(
        path,
        chunk_bytes=chunk_bytes,
        metadata={
            "name": path.stem,
            "namespace": "live",
            "source": "simulation",
            "scenario": config.scenario.name if config.scenario else "",
            "scenario_start": anchor.isoformat() if config.scenario else "",
            "start": config.start.isoformat(),
            "seed": str(config.seed),
            "entities": str(config.entities),
        },
    )
    channels = {
        d: writer.channel(
            topic,
            {"namespace": "live", "base_topic": topic, "partitions": str(partitions)},
        )
        for d, topic in topics.items()
    }
    offsets: Counter[tuple[str, int]] = Counter()

    def mark(topic: str, channel: int, time_ms: int) -> None:
        headers = tuple(mark_headers(time_ms))
        for number in range(partitions):
            offset = offsets[(topic, number)]
            offsets[(topic, number)] = offset + 1
            writer.write(channel, KafkaRecord(topic, number, offset, time_ms, None, b"", headers))

    partition_of: dict[bytes, int] = {}
    counts: Counter[str] = Counter()
    try:
        for batch in simulation.batches():
            topic, channel = topics[batch.domain], channels[batch.domain]
            if batch.mark:
                mark(topic, channel, batch.due_ms)
                continue
            for key, value, time_ms in zip(batch.keys, batch.values, batch.times, strict=True):
                partition = partition_of.get(key)
                if partition is None:
                    partition = partition_of[key] = (murmur2(key) & 0x7FFFFFFF) % partitions
                offset = offsets[(topic, partition)]
                offsets[(topic, partition)] = offset + 1
                writer.write(channel, KafkaRecord(topic, partition, offset, time_ms, key, value))
                counts[topic] += 1
        if config.duration_s is not None:
            end_ms = (start_s + int(config.duration_s)) * 1000
            for domain, topic in topics.items():
                mark(topic, channels[domain], end_ms)
    finally:
        writer.close()
    return counts
