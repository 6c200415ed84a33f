"""The published contract: a JSON Schema per event type, made from the pydantic models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.auth import AnyCaller
from api.problems import Problem, problem_responses
from streams.catalog import PAYLOAD_MODELS
from streams.envelope import CloudEvent

router = APIRouter(prefix="/v1/schemas", tags=["schemas"])


class SchemaRef(BaseModel):
    type: str
    domain: str
    kind: str
    version: int
    kept_raw: bool
    url: str


def event_schema(event_type: str) -> dict[str, Any]:
    """JSON Schema of a whole CloudEvent of ``event_type``: the envelope with ``type``
    fixed and ``data`` the payload model's schema."""
    model = PAYLOAD_MODELS[event_type]
    schema = CloudEvent.model_json_schema()
    payload = model.model_json_schema()
    schema["$defs"] = {**schema.get("$defs", {}), **payload.pop("$defs", {})}
    if not schema["$defs"]:
        del schema["$defs"]
    schema["properties"]["type"] = {"const": event_type, "title": "Type", "type": "string"}
    schema["properties"]["data"] = payload
    schema["title"] = f"{model.__name__} CloudEvent"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"/v1/schemas/{event_type}"
    return schema


@router.get("", responses=problem_responses())
async def list_schemas(caller: AnyCaller) -> list[SchemaRef]:
    """Every event type the platform accepts, with the URL of its JSON Schema."""
    refs = []
    for event_type, model in sorted(PAYLOAD_MODELS.items()):
        _, domain, kind, version = event_type.split(".")
        refs.append(
            SchemaRef(
                type=event_type,
                domain=domain,
                kind=kind,
                version=int(version.removeprefix("v")),
                kept_raw=model.keep_raw,
                url=f"/v1/schemas/{event_type}",
            )
        )
    return refs


@router.get("/{event_type}", responses=problem_responses(404))
async def get_schema(
    caller: AnyCaller,
    event_type: Annotated[str, Path(max_length=128, examples=["city.traffic.flow.v1"])],
) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event type's CloudEvent."""
    if event_type not in PAYLOAD_MODELS:
        raise Problem(
            404,
            "unknown-type",
            "Unknown event type",
            f"no event type {event_type!r}; see /v1/schemas",
        )
    return event_schema(event_type)
