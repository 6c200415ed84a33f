"""The published contract: a JSON Schema per event type, made from the pydantic models:
the events integrators publish (``direction: in``) and those the platform publishes on
``ioc.alerts`` and ``ioc.incidents`` (``direction: out``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.auth import AnyCaller
from api.event_schemas import (
    ALERT_STATES,
    INCIDENT_STATES,
    alert_event_schema,
    event_schema,
    incident_event_schema,
)
from api.problems import Problem, document_response, problem_responses
from contract.catalog import PAYLOAD_MODELS

router = APIRouter(prefix="/v1/schemas", tags=["schemas"])


class SchemaRef(BaseModel):
    type: str
    domain: str
    kind: str
    version: int
    kept_raw: bool
    direction: Literal["in", "out"] = Field(
        description="in: integrators publish it to a raw topic; out: the platform publishes "
        "it (ioc.alerts, ioc.incidents)"
    )
    url: str


@router.get("", responses=problem_responses())
async def list_schemas(caller: AnyCaller) -> list[SchemaRef]:
    """Every event type the platform accepts or publishes, with the URL of its JSON Schema."""
    inbound = [(t, model.keep_raw, "in") for t, model in sorted(PAYLOAD_MODELS.items())]
    outbound = [(t, False, "out") for t in sorted([*ALERT_STATES, *INCIDENT_STATES])]
    refs = []
    for event_type, kept_raw, direction in [*inbound, *outbound]:
        _, domain, kind, version = event_type.split(".")
        refs.append(
            SchemaRef(
                type=event_type,
                domain=domain,
                kind=kind,
                version=int(version.removeprefix("v")),
                kept_raw=kept_raw,
                direction=direction,
                url=f"/v1/schemas/{event_type}",
            )
        )
    return refs


@router.get(
    "/{event_type}",
    responses={**document_response("A JSON Schema (draft 2020-12)"), **problem_responses(404)},
)
async def get_schema(
    caller: AnyCaller,
    event_type: Annotated[str, Path(max_length=128, examples=["city.traffic.flow.v1"])],
) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event type's CloudEvent."""
    if event_type in ALERT_STATES:
        return alert_event_schema(event_type)
    if event_type in INCIDENT_STATES:
        return incident_event_schema(event_type)
    if event_type not in PAYLOAD_MODELS:
        raise Problem(
            404,
            "unknown-type",
            "Unknown event type",
            f"no event type {event_type!r}; see /v1/schemas",
        )
    return event_schema(event_type)
