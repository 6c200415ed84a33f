"""The alert rules the worker applies, and the JSON Schema of their file format."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import ViewCaller
from api.deps import SettingsDep
from api.problems import Problem, document_response, problem_responses
from streams.alerts import RuleError, load_rules
from streams.alerts.rules import RuleFile

router = APIRouter(prefix="/v1/rules", tags=["rules"])


class RuleList(BaseModel):
    rules: list[dict[str, Any]] = Field(
        description="Every rule of the rule files, as written (instant and window rules)"
    )


@router.get("", responses=problem_responses(503))
async def list_rules(caller: ViewCaller, settings: SettingsDep) -> RuleList:
    """The alert rules of IOC_STREAMS__RULES_DIR (default: the shipped library)."""
    try:
        rules = load_rules(settings.streams.rules_dir)
    except RuleError as exc:
        raise Problem(
            503,
            "rules-unreadable",
            "Rule files unreadable",
            str(exc),
            headers={"Retry-After": "60"},
        ) from None
    return RuleList(rules=[rule.model_dump(exclude_defaults=False) for rule in rules])


@router.get(
    "/schema",
    responses={**document_response("A JSON Schema (draft 2020-12)"), **problem_responses()},
)
async def rule_schema(caller: ViewCaller) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a rule file (``{"rules": [...]}``)."""
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "/v1/rules/schema"
    return schema
