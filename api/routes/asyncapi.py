"""The AsyncAPI document of the API's namespace's topics (``api.asyncapi``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.asyncapi import asyncapi_document
from api.auth import AnyCaller
from api.deps import SettingsDep
from api.problems import document_response, problem_responses

router = APIRouter(prefix="/v1", tags=["schemas"])


@router.get("/asyncapi", responses={**document_response("An AsyncAPI 3.0"), **problem_responses()})
async def get_asyncapi(caller: AnyCaller, settings: SettingsDep) -> dict[str, Any]:
    """AsyncAPI 3.0 document of the Kafka topics: raw events to publish (keys, partitioner,
    CloudEvent schemas), alerts, dead letters and entity state to subscribe to."""
    return asyncapi_document(settings)
