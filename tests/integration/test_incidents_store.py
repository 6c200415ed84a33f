"""The incident sink (``streams.incidents.store``) on real Kafka and PostgreSQL: incident
CloudEvents produced to the namespace's ``ioc.incidents`` become rows, repeats and older
transitions change nothing, operators' states hold, malformed records are skipped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from streams.incidents.events import OPERATORS_SOURCE, IncidentTransition, incident_event
from streams.incidents.store import IncidentSink
from streams.topics import INCIDENTS_TOPIC
from tests.utils.events import Record
from tests.utils.eventually import eventually
from tests.utils.incidents import alert_ids, incident_record, transition
from tests.utils.kafka import produce
from tests.utils.namespaces import Namespace

AREA = "qn-commune-test"


@pytest.fixture
async def sink(namespace: Namespace) -> AsyncIterator[IncidentSink]:
    service = IncidentSink(namespace.settings)
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def conn(namespace: Namespace) -> AsyncIterator[asyncpg.Connection]:
    settings = namespace.settings
    connection = await asyncpg.connect(
        settings.dsn, server_settings={"search_path": f"{settings.db_schema},public"}
    )
    yield connection
    await connection.close()


class Feed:
    """Produces to the namespace's ``ioc.incidents`` and waits for the sink to take it."""

    def __init__(self, namespace: Namespace, sink: IncidentSink) -> None:
        self.settings, self.sink, self.sent = namespace.settings, sink, 0

    async def send(self, *items: IncidentTransition | Record) -> None:
        records = [i if isinstance(i, Record) else incident_record(i) for i in items]
        self.sent += await produce(self.settings, self.settings.topic(INCIDENTS_TOPIC), records)

        async def taken() -> tuple[int, int, dict[str, int]]:
            return self.sent, self.sink.applied, dict(self.sink.skipped)

        await eventually(
            taken,
            until=lambda seen: seen[1] + sum(seen[2].values()) >= seen[0],
            within_s=30,
            what="the sink to apply or skip every record sent (sent, applied, skipped)",
        )


@pytest.fixture
def feed(namespace: Namespace, sink: IncidentSink) -> Feed:
    return Feed(namespace, sink)


async def incident(conn: asyncpg.Connection, key: uuid.UUID) -> dict[str, Any]:
    """The incident's row."""
    row = await conn.fetchrow("SELECT * FROM incident WHERE incident_id = $1", key)
    assert row is not None, key
    return dict(row)


async def members(conn: asyncpg.Connection, incident: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT alert_id FROM incident_alert WHERE incident_id = $1", uuid.UUID(incident)
    )
    return {str(r["alert_id"]) for r in rows}


async def timeline(conn: asyncpg.Connection, incident: str) -> list[tuple[str, Any]]:
    rows = await conn.fetch(
        'SELECT kind, "by", detail FROM incident_log WHERE incident_id = $1 ORDER BY at, kind',
        uuid.UUID(incident),
    )
    return [(r["kind"], orjson.loads(r["detail"])) for r in rows]


async def test_open_update_close_and_repeats_change_nothing(
    feed: Feed, sink: IncidentSink, conn: asyncpg.Connection
) -> None:
    a = alert_ids(3)
    opened = transition(area=AREA, alerts=a[:2])
    updated = transition(
        area=AREA, alerts=a, state="update", minute=4, severity="critical", escalated=True
    )
    closed = transition(area=AREA, alerts=a, state="close", minute=30, severity="critical")
    key = uuid.UUID(opened.incident_id)

    await feed.send(opened)
    row = await incident(conn, key)
    assert (row["state"], row["severity"], row["rule_id"], row["sop"]) == (
        "open",
        "warning",
        "multi-hazard",
        "flooding",
    )
    assert (row["area_id"], row["level"], row["closed_at"]) == (AREA, "commune", None)
    assert row["title_vi"] == f"Sự cố tại {AREA}"
    assert await members(conn, opened.incident_id) == set(a[:2])

    await feed.send(updated)
    row = await incident(conn, key)
    assert (row["state"], row["severity"]) == ("open", "critical")
    assert row["updated_at"].isoformat() == "2024-09-07T08:04:00+00:00"
    assert row["opened_at"].isoformat() == "2024-09-07T08:00:00+00:00"
    assert await members(conn, opened.incident_id) == set(a)

    await feed.send(closed)
    row = await incident(conn, key)
    assert row["state"] == "closed"
    assert row["closed_at"].isoformat() == "2024-09-07T08:30:00+00:00"
    assert [kind for kind, _ in await timeline(conn, opened.incident_id)] == [
        "open",
        "update",
        "close",
    ]
    escalation = (await timeline(conn, opened.incident_id))[1][1]
    assert escalation == {"severity": "critical", "alerts": sorted(a), "escalated": True}

    # The same three again (a producer's retry, a re-read after a crash): nothing moves,
    # not even the row's write time.
    before = row
    await feed.send(opened, updated, closed)
    assert await incident(conn, key) == before
    assert len(await timeline(conn, opened.incident_id)) == 3
    assert sink.skipped["repeat"] == 3
    assert sink.applied == 3


async def test_older_transitions_never_overwrite_newer_ones(
    feed: Feed, conn: asyncpg.Connection
) -> None:
    a = alert_ids(3, seed="late")
    opened = transition(area=AREA, alerts=a[:1])
    early = transition(area=AREA, alerts=a[:2], state="update", minute=2)
    later = transition(area=AREA, alerts=a, state="update", minute=5, severity="critical")
    await feed.send(opened, later)
    key = uuid.UUID(opened.incident_id)
    before = await incident(conn, key)

    # The update of minute 2 arrives after that of minute 5: its line joins the
    # timeline, its fields (severity warning, minute 2) do not replace newer ones.
    await feed.send(early)
    assert await incident(conn, key) == before
    assert await members(conn, opened.incident_id) == set(a)
    lines = await timeline(conn, opened.incident_id)
    kinds = [(kind, detail["severity"]) for kind, detail in lines]
    assert kinds == [("open", "warning"), ("update", "warning"), ("update", "critical")]

    # A close, then an update older than it: still closed. An open repeated with the
    # close's time does not reopen it either.
    closed = transition(area=AREA, alerts=a, state="close", minute=20, severity="critical")
    await feed.send(closed)
    closed_row = await incident(conn, key)
    await feed.send(
        transition(area=AREA, alerts=a, state="update", minute=10, severity="critical"),
        transition(area=AREA, alerts=a, state="open", minute=20, first_alert=a[0]),
    )
    assert await incident(conn, key) == closed_row
    assert closed_row["state"] == "closed"


async def test_operators_states_hold_through_correlation(
    feed: Feed, conn: asyncpg.Connection
) -> None:
    a = alert_ids(4, seed="ops")
    opened = transition(area=AREA, alerts=a[:1])
    key = uuid.UUID(opened.incident_id)
    await feed.send(opened)
    # As the API's acknowledge writes it.
    await conn.execute(
        "UPDATE incident SET state = 'acknowledged', acknowledged_by = 'op', "
        "acknowledged_at = now() WHERE incident_id = $1",
        key,
    )
    await feed.send(
        transition(area=AREA, alerts=a[:2], state="update", minute=3, severity="critical")
    )
    row = await incident(conn, key)
    assert (row["state"], row["severity"], row["acknowledged_by"]) == (
        "acknowledged",
        "critical",
        "op",
    )

    # Resolved by an operator: correlation never reopens it, but alerts that join are kept.
    await conn.execute(
        "UPDATE incident SET state = 'resolved', resolved_by = 'op', resolved_at = now() "
        "WHERE incident_id = $1",
        key,
    )
    before = await incident(conn, key)
    await feed.send(transition(area=AREA, alerts=a[:3], state="update", minute=6))
    await feed.send(transition(area=AREA, alerts=a[:3], state="close", minute=30))
    assert await incident(conn, key) == before
    assert await members(conn, opened.incident_id) == set(a[:3])

    # Merged into another incident: the alerts that join it join the other one too.
    other = transition(area=AREA, alerts=alert_ids(1, seed="other"), rule_id="other-rule")
    await feed.send(other)
    merged = transition(area=AREA, alerts=a[:1], rule_id="merged-rule")
    await feed.send(merged)
    await conn.execute(
        "UPDATE incident SET state = 'merged', merged_into = $2 WHERE incident_id = $1",
        uuid.UUID(merged.incident_id),
        uuid.UUID(other.incident_id),
    )
    await feed.send(
        transition(area=AREA, alerts=a, state="update", minute=8, rule_id="merged-rule")
    )
    state = await conn.fetchval(
        "SELECT state FROM incident WHERE incident_id = $1", uuid.UUID(merged.incident_id)
    )
    assert state == "merged"
    assert await members(conn, merged.incident_id) == set(a)
    assert await members(conn, other.incident_id) == {*alert_ids(1, seed="other"), *a}


async def test_a_retracted_incident_stays_retracted(feed: Feed, conn: asyncpg.Connection) -> None:
    a = alert_ids(2, seed="retract")
    opened = transition(area=AREA, alerts=a[:1])
    await feed.send(
        opened,
        transition(area=AREA, alerts=a[:1], state="retract", minute=1),
        transition(area=AREA, alerts=a, state="update", minute=2, severity="critical"),
    )
    row = await incident(conn, uuid.UUID(opened.incident_id))
    assert (row["state"], row["severity"]) == ("retracted", "warning")
    assert await members(conn, opened.incident_id) == set(a)
    assert [k for k, _ in await timeline(conn, opened.incident_id)] == [
        "open",
        "retract",
        "update",
    ]


async def test_malformed_records_and_operators_events_are_skipped(
    feed: Feed, sink: IncidentSink, conn: asyncpg.Connection
) -> None:
    good = transition(area=AREA, alerts=alert_ids(1, seed="good"))
    event = orjson.loads(good.to_json())

    def variant(**changes: Any) -> bytes:
        return orjson.dumps({**event, **changes})

    def data(**changes: Any) -> bytes:
        return variant(data={**event["data"], **changes})

    operator = incident_event(
        {
            "incident_id": good.incident_id,
            "area_id": AREA,
            "state": "acknowledge",
            "updated_at": "2026-01-01T00:00:00Z",
            "by": "op",
        },
        source=OPERATORS_SOURCE,
    )
    bad = {
        "not_json": b"{not json",
        "not_object": b"[1, 2]",
        "empty": b"",
        "unknown_source": variant(source="/somewhere/else"),
        "missing_field": orjson.dumps({k: v for k, v in event.items() if k != "data"}),
        "bad_id": variant(id="not-a-uuid"),
        "bad_state": data(state="exploded"),
        "bad_incident": data(incident_id="nope"),
        "bad_alert": data(alerts=["nope"]),
        "bad_time": data(updated_at="yesterday"),
        "naive_time": data(updated_at="2024-09-07T08:00:00"),
        "wrong_type": variant(type="city.incident.closed.v1"),
        "nul": data(title_en="a\u0000b"),
    }
    ms = 1_725_696_000_000
    records = [Record(AREA.encode(), value, ms) for value in (*bad.values(), operator)]
    await feed.send(*records, good)

    assert sink.applied == 1
    assert sink.skipped == {
        "not_json": 1,
        "not_object": 1,
        "empty": 1,
        "unknown_source": 1,
        "missing_field": 1,
        "invalid_field": 8,
        "operators": 1,
    }
    assert await conn.fetchval("SELECT count(*) FROM incident") == 1
    assert await conn.fetchval("SELECT count(*) FROM incident_log") == 1


async def test_database_errors_are_retried_until_the_write_succeeds(
    feed: Feed, sink: IncidentSink, conn: asyncpg.Connection, namespace: Namespace
) -> None:
    opened = transition(area=AREA, alerts=alert_ids(1, seed="retry"))
    await conn.execute("ALTER TABLE incident_log RENAME TO incident_log_away")
    settings = namespace.settings
    await produce(settings, settings.topic(INCIDENTS_TOPIC), [incident_record(opened)])

    async def retries() -> int:
        return sink.retries

    await eventually(retries, until=lambda n: n >= 2, within_s=30, what="the sink to retry")
    await conn.execute("ALTER TABLE incident_log_away RENAME TO incident_log")
    feed.sent += 1
    await feed.send()
    assert await conn.fetchval("SELECT state FROM incident") == "open"
    assert await conn.fetchval("SELECT count(*) FROM incident_log") == 1
