"""What operators do with an incident: acknowledge, assign, note, check a step of its SOP,
resolve, merge into another.

Each action is written in one transaction with its line of the incident's timeline
(``incident_log``, keyed by the action's CloudEvent id), then published on the
namespace's ``ioc.incidents`` from ``/ioc/operators`` for screens and subscribers; the
incident sink skips those events, the database has them already.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from fastapi import APIRouter, Path
from pydantic import AfterValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from api.auth import ViewCaller
from api.deps import PublisherDep
from api.models.incidents import (
    INCIDENT_COLUMNS,
    IncidentDetail,
    IncidentId,
    State,
    incident_detail,
    read_sops,
    unknown_incident,
)
from api.namespaces import NAMESPACE_PROBLEMS, NamespaceDep, NamespaceView
from api.params import RequestBody
from api.problems import Problem, problem_responses
from api.publisher import KafkaUnavailable, OutRecord, Publisher
from ioc.settings import Settings
from streams.incidents.events import INCIDENT_NAMESPACE, OPERATORS_SOURCE, incident_event
from streams.incidents.sops import ID_PATTERN
from streams.topics import INCIDENTS_TOPIC

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
ACTION_PROBLEMS = problem_responses(409, 503, *NAMESPACE_PROBLEMS)


def _conflict(current: asyncpg.Record, verb: str, what: str = "an incident") -> Problem:
    state = current["state"]
    by = {"acknowledged": "acknowledged_by", "resolved": "resolved_by"}.get(state)
    who = current[by] if by else None
    return Problem(
        409,
        "incident-state",
        "Incident state conflict",
        f"cannot {verb} {what} that is {state}" + (f" (by {who})" if who else ""),
        state=state,
    )


class Action:
    """One operator's action in progress: its time, its event and its line of the
    timeline, written in the caller's transaction and published after it."""

    def __init__(self, *, kind: str, who: str, **fields: Any) -> None:
        self.kind, self.who, self.fields = kind, who, fields
        self.at = datetime.now(UTC)

    def event(self, incident: asyncpg.Record) -> bytes:
        return incident_event(
            {
                "incident_id": str(incident["incident_id"]),
                "area_id": incident["area_id"],
                "state": self.kind,
                "updated_at": self.at.isoformat().replace("+00:00", "Z"),
                "by": self.who,
                **self.fields,
            },
            source=OPERATORS_SOURCE,
        )

    async def log(
        self,
        conn: PoolConnectionProxy[asyncpg.Record],
        incident_id: uuid.UUID,
        event_id: uuid.UUID,
        detail: dict[str, Any],
    ) -> None:
        await conn.execute(
            'INSERT INTO incident_log (event_id, incident_id, at, kind, "by", detail) '
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            event_id,
            incident_id,
            self.at,
            self.kind,
            self.who,
            orjson.dumps(detail).decode(),
        )


async def _locked(
    conn: PoolConnectionProxy[asyncpg.Record], incident_id: uuid.UUID
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {INCIDENT_COLUMNS} FROM incident i WHERE incident_id = $1 FOR UPDATE",
        incident_id,
    )
    if row is None:
        raise unknown_incident(incident_id)
    return row


async def _act(
    view: NamespaceView,
    publisher: Publisher,
    incident_id: uuid.UUID,
    action: Action,
    *,
    allowed: tuple[str, ...],
    sql: str | None = None,
    args: tuple[Any, ...] = (),
) -> IncidentDetail:
    """Apply ``sql`` (``$1`` the id, ``$2`` the caller, ``$3`` the time, then ``args``)
    to an incident in one of the ``allowed`` states, log it, publish it, return it."""
    async with view.pool.acquire() as conn:
        async with conn.transaction():
            current = await _locked(conn, incident_id)
            if current["state"] not in allowed:
                raise _conflict(current, _VERBS[action.kind])
            if sql is not None:
                await conn.execute(sql, incident_id, action.who, action.at, *args)
            value = action.event(current)
            await action.log(conn, incident_id, _event_id(value), action.fields)
        detail = await incident_detail(conn, incident_id)
    await _publish(publisher, view.settings, area=current["area_id"], value=value, at=action.at)
    return detail


def _event_id(value: bytes) -> uuid.UUID:
    return uuid.UUID(orjson.loads(value)["id"])


_VERBS = {
    "acknowledge": "acknowledge",
    "assign": "assign",
    "step": "check a step of",
    "resolve": "resolve",
    "merge": "merge",
}
OPEN = ("open",)
LIVE = ("open", "acknowledged", "closed")


@router.post("/{incident_id}/acknowledge", responses=ACTION_PROBLEMS)
async def acknowledge_incident(
    caller: ViewCaller, view: NamespaceDep, publisher: PublisherDep, incident_id: IncidentId
) -> IncidentDetail:
    """Acknowledge an open incident: records the key's name and the time."""
    sql = (
        "UPDATE incident SET state = 'acknowledged', acknowledged_by = $2, "
        "acknowledged_at = $3 WHERE incident_id = $1"
    )
    action = Action(kind="acknowledge", who=caller.name)
    return await _act(view, publisher, incident_id, action, allowed=OPEN, sql=sql)


#: An operator's name or a team: no NUL, no blank at either end.
NAME_PATTERN = r"^[^\x00\s](?:[^\x00]*[^\x00\s])?$"
#: A note's text: no NUL, not only blanks.
TEXT_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"


def _utf8(value: str) -> str:
    # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 text holds: the
    # database would refuse them with a server error.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PydanticCustomError("utf8", "a lone surrogate: not Unicode text") from None
    return value


Utf8 = AfterValidator(_utf8)


class AssignBody(RequestBody):
    model_config = ConfigDict(extra="forbid")

    assignee: Annotated[str, Utf8] = Field(
        min_length=1, max_length=128, pattern=NAME_PATTERN, examples=["fire-team-halong"]
    )


class NoteBody(RequestBody):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Utf8] = Field(
        min_length=1,
        max_length=4000,
        pattern=TEXT_PATTERN,
        examples=["Commune police on site; water 40 cm on Tran Hung Dao."],
    )


class MergeBody(RequestBody):
    model_config = ConfigDict(extra="forbid")

    into: Annotated[uuid.UUID, Strict(False)] = Field(
        description="The incident that takes this one's alerts"
    )


@router.post("/{incident_id}/assign", responses=ACTION_PROBLEMS)
async def assign_incident(
    caller: ViewCaller,
    view: NamespaceDep,
    publisher: PublisherDep,
    incident_id: IncidentId,
    body: AssignBody,
) -> IncidentDetail:
    """Assign an incident that is not resolved, retracted or merged to someone."""
    sql = (
        "UPDATE incident SET assignee = $4, assigned_by = $2, assigned_at = $3 "
        "WHERE incident_id = $1"
    )
    action = Action(kind="assign", who=caller.name, assignee=body.assignee)
    return await _act(
        view, publisher, incident_id, action, allowed=LIVE, sql=sql, args=(body.assignee,)
    )


@router.post("/{incident_id}/notes", responses=ACTION_PROBLEMS)
async def annotate_incident(
    caller: ViewCaller,
    view: NamespaceDep,
    publisher: PublisherDep,
    incident_id: IncidentId,
    body: NoteBody,
) -> IncidentDetail:
    """Add a note to an incident's timeline, in any state."""
    action = Action(kind="annotate", who=caller.name, text=body.text)
    return await _act(view, publisher, incident_id, action, allowed=get_args(State))


@router.post("/{incident_id}/steps/{step_id}", responses=ACTION_PROBLEMS)
async def check_step(
    caller: ViewCaller,
    view: NamespaceDep,
    publisher: PublisherDep,
    incident_id: IncidentId,
    step_id: Annotated[str, Path(pattern=ID_PATTERN, description="A step of the incident's SOP")],
) -> IncidentDetail:
    """Check one step of the incident's SOP: records the key's name and the time."""
    sops = read_sops()
    async with view.pool.acquire() as conn:
        sop = await conn.fetchval("SELECT sop FROM incident WHERE incident_id = $1", incident_id)
        if sop is None:
            raise unknown_incident(incident_id)
        steps = {s.id for s in sops[sop].steps} if sop in sops else set()
        if step_id not in steps:
            raise Problem(
                404, "unknown-step", "Unknown step", f"SOP {sop!r} has no step {step_id!r}"
            )
        done = await conn.fetchrow(
            "SELECT checked_by FROM incident_step WHERE incident_id = $1 AND step_id = $2",
            incident_id,
            step_id,
        )
    if done is not None:
        raise Problem(
            409,
            "step-checked",
            "Step already checked",
            f"step {step_id!r} was checked by {done['checked_by']}",
        )
    sql = (
        "INSERT INTO incident_step (incident_id, step_id, checked_by, checked_at) "
        "VALUES ($1, $4, $2, $3)"
    )
    action = Action(kind="step", who=caller.name, step_id=step_id)
    try:
        return await _act(
            view, publisher, incident_id, action, allowed=LIVE, sql=sql, args=(step_id,)
        )
    except asyncpg.UniqueViolationError:
        # Checked by someone else between the look and the write.
        raise Problem(
            409, "step-checked", "Step already checked", f"step {step_id!r} is checked"
        ) from None


@router.post("/{incident_id}/resolve", responses=ACTION_PROBLEMS)
async def resolve_incident(
    caller: ViewCaller, view: NamespaceDep, publisher: PublisherDep, incident_id: IncidentId
) -> IncidentDetail:
    """Resolve an incident by hand: correlation never reopens it."""
    sql = (
        "UPDATE incident SET state = 'resolved', resolved_by = $2, resolved_at = $3 "
        "WHERE incident_id = $1"
    )
    action = Action(kind="resolve", who=caller.name)
    return await _act(view, publisher, incident_id, action, allowed=LIVE, sql=sql)


@router.post("/{incident_id}/merge", responses=ACTION_PROBLEMS)
async def merge_incident(
    caller: ViewCaller,
    view: NamespaceDep,
    publisher: PublisherDep,
    incident_id: IncidentId,
    body: MergeBody,
) -> IncidentDetail:
    """Merge this incident into another: its alerts join the other and it becomes
    ``merged``. Not into itself, nor into a merged or retracted one."""
    async with view.pool.acquire() as conn:
        async with conn.transaction():
            # Both rows locked, in id order, so two crossed merges cannot deadlock.
            rows = {
                r["incident_id"]: r
                for r in await conn.fetch(
                    f"SELECT {INCIDENT_COLUMNS} FROM incident i WHERE incident_id = ANY($1) "
                    "ORDER BY incident_id FOR UPDATE",
                    [incident_id, body.into],
                )
            }
            source, target = rows.get(incident_id), rows.get(body.into)
            if source is None:
                raise unknown_incident(incident_id)
            if body.into == incident_id:
                raise Problem(
                    409, "merge-into-itself", "Cannot merge into itself", "name another incident"
                )
            if target is None:
                raise Problem(
                    404,
                    "unknown-incident",
                    "Unknown incident",
                    f"no incident {body.into} to merge into",
                )
            if source["state"] not in LIVE:
                raise _conflict(source, "merge")
            if target["state"] in ("merged", "retracted"):
                raise _conflict(target, "merge into", "an incident")
            alerts = [
                str(r["alert_id"])
                for r in await conn.fetch(
                    "SELECT alert_id FROM incident_alert WHERE incident_id = $1 ORDER BY alert_id",
                    incident_id,
                )
            ]
            await conn.execute(
                "INSERT INTO incident_alert (incident_id, alert_id, joined_at) "
                "SELECT $2, alert_id, joined_at FROM incident_alert WHERE incident_id = $1 "
                "ON CONFLICT DO NOTHING",
                incident_id,
                body.into,
            )
            await conn.execute(
                "UPDATE incident SET state = 'merged', merged_into = $2 WHERE incident_id = $1",
                incident_id,
                body.into,
            )
            action = Action(kind="merge", who=caller.name, into=str(body.into), alerts=alerts)
            value = action.event(source)
            event_id = _event_id(value)
            await action.log(conn, incident_id, event_id, action.fields)
            # The other incident's timeline shows what joined it.
            await action.log(
                conn,
                body.into,
                uuid.uuid5(INCIDENT_NAMESPACE, f"{event_id}/into"),
                {"from": str(incident_id), "alerts": alerts},
            )
        detail = await incident_detail(conn, incident_id)
    await _publish(publisher, view.settings, area=source["area_id"], value=value, at=action.at)
    return detail


async def _publish(
    publisher: Publisher, settings: Settings, *, area: str, value: bytes, at: datetime
) -> None:
    """Put an operator's action on ``ioc.incidents`` (keyed by area) for screens and
    subscribers. The database already holds it: if Kafka does not take it, the request
    still succeeds."""
    record = OutRecord(
        topic=settings.topic(INCIDENTS_TOPIC),
        key=area.encode(),
        value=value,
        timestamp_ms=int(at.timestamp() * 1000),
    )
    try:
        await publisher.send([record])
    except KafkaUnavailable as exc:
        log.warning("incident action not published on ioc.incidents: %s", exc)
