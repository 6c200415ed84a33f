"""Publishing events over HTTP: one CloudEvent or a batch, checked by the stream contract.

Each event is validated by ``contract.envelope.decode`` (the rules the worker applies)
and produced to its domain's raw topic, keyed by entity id, with the event time as the
Kafka timestamp. A key may publish the domains of its ``publish:<domain>`` scopes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import Caller, PublishCaller
from api.deps import OwnPoolDep, PublisherDep, SettingsDep
from api.event_schemas import event_schema
from api.instruments import PUBLISHED
from api.problems import Problem, malformed_json, problem_responses
from api.publisher import KafkaUnavailable, OutRecord, Publisher
from contract.catalog import PAYLOAD_MODELS
from contract.envelope import check_clock, decode, event_object
from contract.rejection import REASONS, Rejection
from ioc.settings import ApiSettings, Settings
from streams.topics import raw_topic

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["publish"])

MEDIA_TYPES = (
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
)
#: Reasons an item is refused here on top of the stream contract's.
HTTP_REASONS = {"forbidden": "the key may not publish this event's domain or source"}
RETRY_AFTER_S = 5

EXAMPLE_EVENT = {
    "specversion": "1.0",
    "id": "cam-7-000123",
    "source": "/vendors/acme-traffic",
    "type": "city.traffic.flow.v1",
    "time": "2024-09-07T08:00:00+07:00",
    "subject": "qn-ix-halong-001",
    "data": {"vehicles": 42, "avg_speed_kmh": 31.5, "occupancy_pct": 48.0, "interval_s": 60},
}


#: Any event of the catalogue, as the published schemas describe it (``/v1/schemas``).
TYPED_EVENT = {
    "anyOf": [
        {k: v for k, v in event_schema(t).items() if k not in ("$schema", "$id")}
        for t in sorted(PAYLOAD_MODELS)
    ]
}


class AcceptedEvent(BaseModel):
    index: int = Field(description="Position in the request (0 for a single event)")
    id: str
    source: str
    topic: str
    duplicate: bool = Field(description="Already published recently; not produced again")


class RejectedEvent(BaseModel):
    index: int
    id: str | None = None
    reason: str = Field(description="Code: " + ", ".join([*REASONS, *HTTP_REASONS]))
    detail: str
    field: str | None = None


class PublishResult(BaseModel):
    accepted: list[AcceptedEvent]
    rejected: list[RejectedEvent]


def _parse(body: bytes) -> list[Any]:
    """The request's events: a JSON object is one event, an array a batch."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed_json(f"the body is not JSON: {exc}") from None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        if not value:
            raise Problem(422, "empty-batch", "Empty batch", "the array holds no event")
        return value
    raise Problem(
        422,
        "invalid-body",
        "Invalid body",
        f"send a CloudEvent object or an array of them, not a JSON {type(value).__name__}",
    )


def _in_its_domain(
    index: int, item: dict[str, Any], record: OutRecord, bound: dict[str, tuple[str, str]]
) -> OutRecord | RejectedEvent:
    """The record, unless its entity is bound to another domain than the event's."""
    entity = record.key.decode()
    domain = str(item["type"]).split(".")[1]
    if entity not in bound or bound[entity][0] == domain:
        return record
    other, by = bound[entity]
    return RejectedEvent(
        index=index,
        id=str(item["id"]),
        reason="wrong_domain",
        detail=f"{entity!r} is a {other} entity ({by} says so); a {domain} event cannot change it",
        field="subject",
    )


def _check(index: int, item: Any, caller: Caller, settings: Settings) -> OutRecord | RejectedEvent:
    """The record for one item, or why it is refused."""
    item_id = item.get("id") if isinstance(item, dict) else None
    item_id = item_id if isinstance(item_id, str) else None
    try:
        # Checked before encoding: orjson refuses to encode a value nested too deeply.
        value = orjson.dumps(event_object(item))
        event = decode(value)
    except Rejection as exc:
        return RejectedEvent(
            index=index, id=item_id, reason=exc.reason, detail=exc.detail, field=exc.field
        )
    if not caller.can(f"publish:{event.domain}"):
        return RejectedEvent(
            index=index,
            id=item_id,
            reason="forbidden",
            detail=f"{caller.name!r} lacks the 'publish:{event.domain}' scope",
            field="type",
        )
    if not caller.may_publish_source(event.envelope.source):
        return RejectedEvent(
            index=index,
            id=item_id,
            reason="forbidden",
            detail=f"{caller.name!r} may publish only the sources {', '.join(caller.sources)}",
            field="source",
        )
    # The worker refuses these too (a future event would hold up its partition); Kafka
    # itself refuses timestamps an hour ahead. Say so here, with the reason.
    try:
        check_clock(
            event,
            now_ms=int(time.time() * 1000),
            max_ahead_ms=int(settings.streams.max_ahead_s * 1000),
        )
    except Rejection as refused:
        return RejectedEvent(
            index=index, id=item_id, reason=refused.reason, detail=refused.detail, field="time"
        )
    return OutRecord(
        topic=raw_topic(settings, event.domain),
        key=event.entity_id.encode(),
        value=value,
        timestamp_ms=event.time_ms,
    )


#: The domain each entity is bound to: the registry's, else that of its state (its first
#: applied event's). The worker refuses the same events (``wrong_domain``).
BOUND_DOMAINS = """
SELECT id AS entity_id, domain, 'the registry' AS by FROM entity WHERE id = ANY($1::text[])
UNION ALL
SELECT entity_id, domain, 'its first event' FROM entity_state
WHERE entity_id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM entity WHERE id = entity_id)
"""


async def _bound_domains(pool: asyncpg.Pool, entities: set[str]) -> dict[str, tuple[str, str]]:
    """Entity -> (domain, who says so) for the entities already bound to a domain. When
    the database cannot answer, nothing is refused here: the worker still refuses them."""
    if not entities:
        return {}
    try:
        async with pool.acquire() as conn:
            rows = await conn.fetch(BOUND_DOMAINS, sorted(entities))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("the domains of published entities could not be read (%s)", exc)
        return {}
    return {r["entity_id"]: (r["domain"], r["by"]) for r in rows}


async def _publish(
    items: list[Any], caller: Caller, settings: Settings, publisher: Publisher, pool: asyncpg.Pool
) -> PublishResult:
    accepted: list[AcceptedEvent] = []
    rejected: list[RejectedEvent] = []
    to_send: list[OutRecord] = []
    sending: set[tuple[str, str]] = set()
    checked = [
        (index, item, _check(index, item, caller, settings)) for index, item in enumerate(items)
    ]
    bound = await _bound_domains(
        pool, {o.key.decode() for _, _, o in checked if isinstance(o, OutRecord)}
    )
    for index, item, outcome in checked:
        if isinstance(outcome, OutRecord):
            outcome = _in_its_domain(index, item, outcome, bound)
        if isinstance(outcome, RejectedEvent):
            rejected.append(outcome)
            continue
        ident = (str(item["source"]), str(item["id"]))
        duplicate = ident in publisher.recent or ident in sending
        if not duplicate:
            sending.add(ident)
            to_send.append(outcome)
        accepted.append(
            AcceptedEvent(
                index=index, id=ident[1], source=ident[0], topic=outcome.topic, duplicate=duplicate
            )
        )
    if to_send:
        try:
            await publisher.send(to_send)
        except KafkaUnavailable as exc:
            raise Problem(
                503,
                "kafka-unavailable",
                "Kafka unavailable",
                f"events not accepted, retry later: {exc}",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        publisher.recent.add(sending)
    PUBLISHED.labels("produced").inc(len(to_send))
    PUBLISHED.labels("duplicate").inc(len(accepted) - len(to_send))
    PUBLISHED.labels("rejected").inc(len(rejected))
    return PublishResult(accepted=accepted, rejected=rejected)


@router.post(
    "/events",
    status_code=202,
    responses=problem_responses(415, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {
                    "schema": {
                        "oneOf": [
                            TYPED_EVENT,
                            {
                                "type": "array",
                                "items": TYPED_EVENT,
                                "minItems": 1,
                                "maxItems": ApiSettings().max_batch_events,
                            },
                        ]
                    },
                    "examples": {
                        "one": {"summary": "One event", "value": EXAMPLE_EVENT},
                        "batch": {"summary": "A batch", "value": [EXAMPLE_EVENT]},
                    },
                }
                for media in MEDIA_TYPES
            },
        }
    },
)
async def publish_events(
    caller: PublishCaller,
    request: Request,
    settings: SettingsDep,
    publisher: PublisherDep,
    pool: OwnPoolDep,
) -> PublishResult:
    """Publish one CloudEvent or a JSON array of them to their domains' raw topics.

    202 lists the accepted events (``duplicate`` when the same source and id were
    published recently: not produced again) and the refused ones with a reason. When
    nothing is accepted the answer is a problem: 403 when every event was forbidden,
    422 otherwise, with the list under ``rejected``.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send {' or '.join(MEDIA_TYPES)}, not {media or 'no content type'!r}",
        )
    items = _parse(await request.body())
    if len(items) > settings.api.max_batch_events:
        raise Problem(
            422,
            "batch-too-large",
            "Batch too large",
            f"{len(items)} events; at most {settings.api.max_batch_events} per request",
        )
    result = await _publish(items, caller, settings, publisher, pool)
    if not result.accepted:
        forbidden = all(r.reason == "forbidden" for r in result.rejected)
        first = result.rejected[0]
        raise Problem(
            403 if forbidden else 422,
            "events-forbidden" if forbidden else "events-rejected",
            "Events forbidden" if forbidden else "Events rejected",
            f"no event accepted; first: item {first.index}: {first.reason}: {first.detail}",
            rejected=[r.model_dump() for r in result.rejected],
        )
    return result
