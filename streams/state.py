"""Entity state of the raw partitions a worker owns: validate, deduplicate, window, or
dead-letter each record, and say what must be written. Pure logic, no Kafka.

:class:`EntityStore` holds the latest record of every entity in the owned partitions and
a watermark per raw-topic partition. :meth:`EntityStore.apply` folds one partition's
batch and returns a :class:`Batch` of what to produce: one changelog record per touched
entity, the alert transitions, and the dead letters. The aggregator
(``streams.aggregator``) produces them and only then commits the source offsets.

Each record's outcome is exactly one of: applied, duplicate (already applied before a
restart), a control record (``mark`` or ``action``, ``streams.marks``), or dead-lettered
with a reason; the counts add up to what was consumed.
Records are folded one by one in arrival order, exactly as if each were processed alone,
so results never depend on where a batch happened to end.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contract.envelope import check_clock, decode
from contract.rejection import Rejection
from streams.alerts import AlertTransition, RuleEngine, last_final_minute
from streams.entity_record import (
    BUCKET_MS,
    EntityRecord,
    KeptEvent,
    encode_record,
    event_hash,
    fold,
    new_record,
)
from streams.marks import MARK_HEADER, Action, ControlError, Mark, control_of
from streams.partitions import home_partition, wrong_partition
from streams.registry import Registered, Registry

Owned = tuple[str, int]  # (domain, raw-topic partition number)

#: The sweep leaves an entity that sent something within this much event time of its
#: partition's watermark to its own next event: in a live city most entities report
#: every few seconds, and sweeping them all when a minute becomes final would write
#: each of them twice within seconds.
QUIET_MS = 10_000
#: ...unless the partition's watermark has not moved for this long on the wall clock: a
#: replay or a drill that has ended, a sandbox without clock marks. Then no entity's next
#: event is near, and everything due is judged now (what it would have judged; only the
#: moment depends on the wall clock).
IDLE_S = 5.0
#: A partition whose event time jumps further than this in one step was not observed in
#: between (the platform or the whole feed was down, or a replay starts): nobody's
#: silence can be judged over such a gap, so silences count from the jump.
CONTINUITY_GAP_MS = 5 * 60_000


class RawRecord(Protocol):
    """What the store reads of a Kafka record (aiokafka's ConsumerRecord has it all)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass
class Batch:
    """What one batch asks to be produced, and the outcome of every record in it."""

    #: (partition, entity key, serialised record) for ``ioc.state``; one per touched entity.
    changelog: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    #: (partition, entity key, transition JSON) for ``ioc.alerts``.
    alerts: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    deadletters: list[tuple[RawRecord, Rejection]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class _Pending:
    """An entity touched by this batch: its record (folded in place), not yet written."""

    record: EntityRecord
    changed: set[str] = field(default_factory=set)
    raw: list[KeptEvent] = field(default_factory=list)
    #: Transitions of instant rules, made event by event as the batch was folded.
    transitions: list[AlertTransition] = field(default_factory=list)
    #: The last final minute when this batch last dropped the record's final minutes:
    #: until another minute is final, no minute of the record can be (``fold``'s prune).
    pruned: int | None = None


class EntityStore:
    """Entity records and watermarks of the raw partitions this worker owns.

    Domains share partition numbers (their raw topics are co-partitioned with
    ``ioc.state``), but each raw-topic partition is its own ordered stream with its own
    watermark: lateness never depends on how two topics happened to interleave.
    """

    def __init__(
        self,
        *,
        rules: RuleEngine,
        lateness_ms: int,
        max_ahead_ms: int = 60_000,
        clock: Callable[[], float] = time.time,
        registry: Registry | None = None,
    ) -> None:
        self.rules = rules
        #: What each entity is (kind, expected interval): refreshed by the aggregator.
        self.registry = registry if registry is not None else Registry()
        self.lateness_ms = lateness_ms
        self.max_ahead_ms = max_ahead_ms
        self.clock = clock
        self.records: dict[bytes, EntityRecord] = {}
        self.watermarks: dict[Owned, int] = {}
        # Records read back from the changelog and not written since: their alert states
        # were made by another process, perhaps with other rules, so the rules see all of
        # their minutes once. Every other record's states have taken in all of its minutes
        # but those its pending batch changed.
        self.restored: set[bytes] = set()
        # The last final minutes at which a sweep walked every record and left none due:
        # until one of them moves, a record only changes by being written, and the next
        # sweep has nothing to walk for. None: walk.
        self.settled: dict[Owned, int] | None = None
        # Each partition's watermark as the sweep last saw it, and when it last moved.
        self.moved: dict[Owned, tuple[int, float]] = {}
        # The watermark at which each record has an instant or a silent rule to judge
        # (RuleEngine.due_at), as of its last write; and per partition the earliest of
        # them, or lower: the sweep walks again once a watermark reaches it, whether or not
        # a minute has become final.
        self.due: dict[bytes, int] = {}
        self.next_due: dict[Owned, int] = {}
        # Per partition, the event time since which it has been observed without a gap of
        # CONTINUITY_GAP_MS: an entity's silence counts from its last event or from this,
        # whichever is later. Committed with the watermark.
        self.observed: dict[Owned, int] = {}

    def restore(self, key: bytes, record: EntityRecord | None) -> None:
        """Take one record read back from the changelog (None: the entity was deleted)."""
        if record is None:
            self.records.pop(key, None)
            self.restored.discard(key)
            self.due.pop(key, None)
            return
        self.records[key] = record
        self.restored.add(key)
        self._note_due(key, record)
        self.settled = None

    def register(self, entries: Sequence[tuple[str, Registered]]) -> None:
        """Take registry entries read from the database: an entity that became registered
        (or changed interval) may be due for a silence it is already in."""
        self.registry.update(entries)
        for entity_id, _ in entries:
            key = entity_id.encode()
            record = self.records.get(key)
            if record is not None:
                self._note_due(key, record)

    def resume(
        self, owned: Owned, watermark_ms: int | None, observed_ms: int | None = None
    ) -> None:
        """Set a partition's watermark as it was at its committed offset.

        It cannot be rebuilt from the restored records: a worker killed while producing a
        batch leaves some of that batch's records in the changelog and not others, and
        the greatest event time among them is ahead of the committed offset. The records
        after that offset are folded again from this watermark, as they were the first
        time, so none of them is judged late that was not late then.
        """
        if watermark_ms is None:
            self.watermarks.pop(owned, None)
        else:
            self.watermarks[owned] = watermark_ms
        if observed_ms is None:
            self.observed.pop(owned, None)
        else:
            self.observed[owned] = observed_ms

    def _observe(self, owned: Owned, time_ms: int) -> None:
        """A valid record's event time: a partition seen for the first time, or again after
        a gap longer than :data:`CONTINUITY_GAP_MS`, is observed from now on."""
        watermark = self.watermarks.get(owned)
        if watermark is None or time_ms - watermark > CONTINUITY_GAP_MS:
            self.observed[owned] = time_ms

    def heard(self, owned: Owned, last_event_ms: int | None) -> int | None:
        """From when an entity's silence counts: its last event, or the start of the
        partition's continuous observation if that is later."""
        observed = self.observed.get(owned)
        if last_event_ms is None or observed is None:
            return last_event_ms
        return max(last_event_ms, observed)

    def drop(self, owned: Iterable[Owned]) -> None:
        """Forget the records of partitions this worker no longer owns."""
        gone = set(owned)
        if not gone:
            return
        self.records = {
            key: record
            for key, record in self.records.items()
            if (record.domain, record.partition) not in gone
        }
        self.restored &= self.records.keys()
        self.due = {key: at for key, at in self.due.items() if key in self.records}
        for item in gone:
            self.watermarks.pop(item, None)
            self.moved.pop(item, None)
            self.next_due.pop(item, None)
            self.observed.pop(item, None)

    def apply(
        self,
        messages: Sequence[RawRecord],
        *,
        domain: str,
        partition: int,
        partitions: int | None = None,
    ) -> Batch:
        """Fold one raw-topic partition's records, in order, into the store. With the
        topic's number of ``partitions``, a record not on its key's home partition is
        dead-lettered (``streams.partitions``); tests of the fold alone leave it out."""
        out = Batch()
        pending: dict[bytes, _Pending] = {}
        owned = (domain, partition)
        lateness = self.lateness_ms
        now_ms = int(self.clock() * 1000)
        for message in messages:
            if not message.value and message.headers:
                try:
                    control = control_of(message.value, message.headers)
                except ControlError as exc:
                    rejection = Rejection("invalid_field", str(exc), field="headers")
                    out.deadletters.append((message, rejection))
                    out.outcomes[rejection.reason] += 1
                    continue
                if control is not None:
                    self._control(
                        control, message, owned=owned, now_ms=now_ms, pending=pending, out=out
                    )
                    continue
            try:
                decoded = decode(
                    message.value,
                    headers=message.headers,
                    key=message.key or b"",
                    domain=domain,
                )
                check_clock(decoded, now_ms=now_ms, max_ahead_ms=self.max_ahead_ms)
            except Rejection as rejection:
                out.deadletters.append((message, rejection))
                out.outcomes[rejection.reason] += 1
                continue
            key = decoded.entity_id.encode()  # the record's key: decode() checked they match
            entry = pending.get(key)
            if entry is None:
                known = self.records.get(key)
                if partitions is not None:
                    # An entity's record lives on its home partition: known, its "p" says
                    # which (no hashing on the hot path); else the key's murmur2 does.
                    home = known.partition if known is not None else home_partition(key, partitions)
                    if home != partition:
                        elsewhere = wrong_partition(key, home=home, partition=partition)
                        out.deadletters.append((message, elsewhere))
                        out.outcomes[elsewhere.reason] += 1
                        continue
                other = self._other_domain(decoded.entity_id, known, domain=domain)
                if other is not None:
                    out.deadletters.append((message, other))
                    out.outcomes[other.reason] += 1
                    continue
                record = known or new_record(
                    entity_id=decoded.entity_id, domain=domain, partition=partition
                )
                entry = _Pending(record)
            watermark = self.watermarks.get(owned)
            time_ms = decoded.time_ms
            envelope = decoded.envelope
            previous_ms = entry.record.time_ms
            final_up_to = max(time_ms, time_ms if watermark is None else watermark) - lateness
            last_final = final_up_to - final_up_to % BUCKET_MS - BUCKET_MS
            outcome = fold(
                entry.record,
                offset=message.offset,
                time_ms=time_ms,
                event=event_hash(envelope.source, envelope.id),
                event_type=envelope.type,
                state=decoded.data,
                metrics=decoded.payload.metrics(),
                watermark_ms=watermark,
                lateness_ms=lateness,
                pinned=entry.changed,
                prune=entry.pruned != last_final,
            )
            if outcome == "duplicate":
                # Its time still moves the watermark: the watermark is the greatest event
                # time of the partition's valid records, whoever folds them and however
                # many of them a restart finds already applied.
                self._observe(owned, time_ms)
                if watermark is None or time_ms > watermark:
                    self.watermarks[owned] = time_ms
                out.outcomes["duplicate"] += 1
                continue
            if outcome == "late":
                late = Rejection(
                    "late",
                    f"event time {decoded.time.isoformat()} is in a final minute "
                    f"(watermark {watermark} ms, allowed lateness {lateness} ms)",
                    field="time",
                )
                out.deadletters.append((message, late))
                out.outcomes["late"] += 1
                continue
            entry.pruned = last_final
            pending[key] = entry
            self.records[key] = entry.record
            entry.changed.update(entry.record.changed)
            self._observe(owned, time_ms)
            if self.rules.hears(domain):
                entry.transitions += self.rules.on_report(
                    entry.record.rules,
                    entity_id=decoded.entity_id,
                    domain=domain,
                    registered=self.registry.get(decoded.entity_id),
                    previous_ms=self.heard(owned, previous_ms),
                    time_ms=time_ms,
                    watermark_ms=watermark,
                    lateness_ms=lateness,
                )
            if self.rules.watches(envelope.type):
                entry.transitions += self.rules.on_event(
                    entry.record.rules,
                    entity_id=decoded.entity_id,
                    event_type=envelope.type,
                    data=decoded.data,
                    time_ms=time_ms,
                    watermark_ms=watermark,
                    lateness_ms=lateness,
                )
            if decoded.payload.keep_raw:
                entry.raw.append(
                    KeptEvent(envelope.id, envelope.source, envelope.type, time_ms, decoded.data)
                )
            self.watermarks[owned] = time_ms if watermark is None else max(watermark, time_ms)
            out.outcomes["applied"] += 1
        self._finish(pending, partition=partition, out=out)
        return out

    def _other_domain(
        self, entity_id: str, known: EntityRecord | None, *, domain: str
    ) -> Rejection | None:
        """Why an event of ``domain`` may not touch this entity: it is registered in another
        domain, or (unregistered) its state was made by another domain's first event."""
        registered = self.registry.get(entity_id)
        if registered is not None:
            bound, by = registered.domain, "the registry"
        elif known is not None:
            bound, by = known.domain, "its first event"
        else:
            return None
        if bound == domain:
            return None
        return Rejection(
            "wrong_domain",
            f"{entity_id!r} is a {bound} entity ({by} says so); a {domain} event cannot "
            "change it: publish it under the entity id of the thing it is about",
            field="subject",
        )

    def _control(
        self,
        control: Mark | Action,
        message: RawRecord,
        *,
        owned: Owned,
        now_ms: int,
        pending: dict[bytes, _Pending],
        out: Batch,
    ) -> None:
        """A clock mark moves the watermark; an operator's resolve closes the alert in the
        entity's rule states (``streams.marks``)."""
        if isinstance(control, Mark):
            ahead_ms = control.time_ms - now_ms
            if ahead_ms > self.max_ahead_ms:
                late = Rejection(
                    "invalid_field",
                    f"{MARK_HEADER}: {ahead_ms / 1000:.0f} s ahead of the clock; "
                    f"at most {self.max_ahead_ms / 1000:.0f} s",
                    field="headers",
                )
                out.deadletters.append((message, late))
                out.outcomes[late.reason] += 1
                return
            self._observe(owned, control.time_ms)
            watermark = self.watermarks.get(owned)
            if watermark is None or control.time_ms > watermark:
                self.watermarks[owned] = control.time_ms
            out.outcomes["mark"] += 1
            return
        out.outcomes["action"] += 1
        key = message.key or b""
        entry = pending.get(key)
        record = entry.record if entry is not None else self.records.get(key)
        if record is None:
            return  # no state of that entity here: nothing of it is open
        if self.rules.close(record.rules, control.alert_id):
            pending[key] = entry or _Pending(record)

    def sweep(self, *, limit: int | None = None) -> Batch:
        """Judge the minutes that became final for entities that sent nothing since.

        A camera that reported one intrusion and went quiet has its minute made final by
        the other entities of its partition, but it is evaluated only when written. The
        sweep writes the records whose rules have a final minute left to judge: one with
        data, or any minute while a streak, a clear count or an alert is open (a quiet
        minute counts for rules with a ``missing`` value). What is emitted is what the
        entity's next event would have emitted; only the moment is earlier.

        Only entities quiet for :data:`QUIET_MS` are swept (all of a partition whose
        watermark has stood still for :data:`IDLE_S`), and at most ``limit`` records
        are written: when a minute becomes final, nearly every entity has it to judge,
        and writing them all at once held the event loop for hundreds of milliseconds.
        The rest wait for a later sweep or for their own next event, whichever comes
        first; the transitions are the same, only later.
        """
        out = Batch()
        due: dict[int, dict[bytes, _Pending]] = {}
        # The last final minute of each owned partition whose domain has rules.
        last_finals: dict[Owned, int] = {}
        for owned, watermark in self.watermarks.items():
            last_final = last_final_minute(watermark, lateness_ms=self.lateness_ms)
            if last_final is not None and self.rules.rules_for(owned[0]):
                last_finals[owned] = last_final
        reached = any(
            self.watermarks.get(owned, due - 1) >= due for owned, due in self.next_due.items()
        )
        if last_finals == self.settled and not reached:
            return out
        idle = self._idle_partitions()
        settled = True
        taken = 0
        next_due: dict[Owned, int] = {}
        for key, record in self.records.items():
            owned = (record.domain, record.partition)
            last_final = last_finals.get(owned)
            if last_final is None:
                continue
            at = self.due.get(key)
            by_time = at is not None and at <= self.watermarks[owned]
            if at is not None and not by_time:
                next_due[owned] = min(next_due.get(owned, at), at)
            judged = record.judged  # the last final minute its rules saw
            if judged is not None and judged >= last_final and not by_time:
                continue  # most records: written since the last minute became final
            if by_time or self._has_final_minutes_to_judge(
                record, judged=judged, last_final=last_final
            ):
                recent = (
                    record.time_ms is not None
                    and record.time_ms > self.watermarks[owned] - QUIET_MS
                )
                if recent and owned not in idle:
                    settled = False  # not quiet: its own next event is likely near
                    continue
                due.setdefault(record.partition, {})[key] = _Pending(record)
                taken += 1
                if taken == limit:
                    settled = False
                    break
        self.settled = last_finals if settled else None
        self.next_due = next_due
        for partition, pending in due.items():
            self._finish(pending, partition=partition, out=out)
        return out

    def _placed(self, entity_id: str, transitions: list[AlertTransition]) -> list[AlertTransition]:
        """The transitions with the entity's commune and zone from the registry."""
        registered = self.registry.get(entity_id)
        if registered is None:
            return transitions
        place = {"commune_id": registered.commune, "zone_id": registered.zone}
        return [t.model_copy(update=place) for t in transitions]

    def _note_due(self, key: bytes, record: EntityRecord) -> None:
        """Remember when the record next has an instant or silent rule to judge."""
        at = self.rules.due_at(
            record.rules,
            domain=record.domain,
            registered=self.registry.get(record.entity_id),
            last_event_ms=self.heard((record.domain, record.partition), record.time_ms),
            lateness_ms=self.lateness_ms,
        )
        if at is None:
            self.due.pop(key, None)
            return
        self.due[key] = at
        owned = (record.domain, record.partition)
        self.next_due[owned] = min(self.next_due.get(owned, at), at)

    def _idle_partitions(self) -> set[Owned]:
        """Partitions whose watermark has not moved for :data:`IDLE_S` of wall time."""
        now = self.clock()
        idle = set()
        for owned, watermark in self.watermarks.items():
            seen = self.moved.get(owned)
            if seen is None or seen[0] != watermark:
                self.moved[owned] = (watermark, now)
            elif now - seen[1] >= IDLE_S:
                idle.add(owned)
        return idle

    def _has_final_minutes_to_judge(
        self, record: EntityRecord, *, judged: int | None, last_final: int
    ) -> bool:
        if any(
            int(minute) <= last_final and (judged is None or int(minute) > judged)
            for minute in record.buckets
        ):
            return True
        return self.rules.unsettled(record.rules)

    def _finish(self, pending: dict[bytes, _Pending], *, partition: int, out: Batch) -> None:
        """One changelog record per touched entity, after the alert rules have judged the
        minutes the batch made final."""
        for key, entry in pending.items():
            record = entry.record
            watermark = self.watermarks.get((record.domain, partition))
            buckets = record.buckets
            if key in self.restored:
                self.restored.discard(key)
            else:
                # The rules took in every other minute when the record was last written.
                buckets = {minute: buckets[minute] for minute in entry.changed}
            evaluation = self.rules.evaluate(
                record.rules,
                entity_id=record.entity_id,
                domain=record.domain,
                buckets=buckets,
                watermark_ms=watermark,
                lateness_ms=self.lateness_ms,
                registered=self.registry.get(record.entity_id),
                last_event_ms=self.heard((record.domain, partition), record.time_ms),
            )
            record.judged = last_final_minute(watermark, lateness_ms=self.lateness_ms)
            # The transitions travel in the record too (x): the changelog record is the
            # one write that is atomic with the state that produced them, so the sink takes
            # them from there and a crash between two topics' flushes loses no alert.
            transitions = sorted(
                [*entry.transitions, *evaluation.transitions], key=lambda t: t.updated_at
            )
            if transitions:
                transitions = self._placed(record.entity_id, transitions)
            record.changed = sorted(entry.changed)
            record.rules = evaluation.states
            self._note_due(key, record)
            record.transitions = [t.model_dump(mode="json") for t in transitions]
            # Events of the types kept one by one (Payload.keep_raw), for raw_event.
            record.raw = entry.raw
            out.changelog.append((partition, key, encode_record(record)))
            # Only this write carries them; the next one has its own.
            record.transitions, record.raw = [], []
            # The live feed for operators. Its ids and times are event-time facts, so a
            # repeat after a crash is the same message.
            out.alerts.extend((partition, key, t.to_json()) for t in transitions)
