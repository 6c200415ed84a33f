"""The event contract against the first one (pydantic models, until December 2026): on a
fixed corpus (``tests.utils.contract_corpus``), every value is accepted or refused with the
same reason and field, and the served JSON Schemas accept and refuse the same documents."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from api.event_schemas import event_schema
from contract.catalog import PAYLOAD_MODELS
from contract.envelope import decode
from contract.rejection import Rejection
from tests.utils.contract_corpus import corpus

DATA = Path(__file__).resolve().parents[1] / "data"
FIRST = orjson.loads((DATA / "contract-v1-outcomes.json").read_bytes())
CORPUS = list(corpus())


def outcome(value: bytes) -> list[str | None] | None:
    try:
        decode(value)
    except Rejection as rejection:
        return [rejection.reason, rejection.field]
    return None


def test_the_corpus_is_the_one_the_first_contract_answered() -> None:
    assert [name for name, _ in CORPUS] == list(FIRST)
    assert len(CORPUS) > 2000


def test_every_value_gets_the_first_contracts_reason_and_field() -> None:
    differ = {}
    for name, value in CORPUS:
        now, then = outcome(value), FIRST[name]
        if then == ["invalid_field", "data."]:
            # A check across fields (beds_occupied over beds_total): the first contract
            # named no field ("data." with nothing after it); this one names the one at fault.
            assert now is not None, name
            reason, field = now
            assert reason == "invalid_field", (name, now)
            assert field is not None, name
            assert field.startswith("data."), (name, now)
            assert len(field) > len("data."), (name, now)
            continue
        if now != then:
            differ[name] = (then, now)
    assert not differ, differ
    # The corpus holds each kind of answer: acceptance, and most reasons.
    answers = {tuple(a) if a else None for a in FIRST.values()}
    assert None in answers
    assert {a[0] for a in answers if a} >= {
        "not_json",
        "not_object",
        "missing_field",
        "invalid_field",
        "unknown_type",
    }


@cache
def validators(event_type: str) -> tuple[Draft202012Validator, Draft202012Validator]:
    """The first contract's schema of ``event_type`` and the one served now, both checking
    formats (``date-time``)."""
    first = orjson.loads((DATA / "contract-v1-schemas" / f"{event_type}.json").read_bytes())
    checker = Draft202012Validator.FORMAT_CHECKER
    return (
        Draft202012Validator(first, format_checker=checker),
        Draft202012Validator(event_schema(event_type), format_checker=checker),
    )


def documents() -> list[tuple[str, Any]]:
    out = []
    for name, value in CORPUS:
        try:
            out.append((name, orjson.loads(value)))
        except orjson.JSONDecodeError:
            continue
    return out


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_MODELS))
def test_served_schemas_accept_and_refuse_what_the_first_ones_did(event_type: str) -> None:
    first, now = validators(event_type)
    differ = [
        name for name, document in documents() if first.is_valid(document) != now.is_valid(document)
    ]
    assert not differ, differ
    # Neither is vacuous: each refuses most of the corpus and accepts its type's events.
    verdicts = [now.is_valid(document) for _, document in documents()]
    assert 10 < sum(verdicts) < len(verdicts) / 2


def test_what_the_worker_accepts_its_schema_accepts() -> None:
    # The decoder is the schema and more: event times after 1970, checks across fields.
    accepted = 0
    for name, value in CORPUS:
        if outcome(value) is not None:
            continue
        document = orjson.loads(value)
        accepted += 1
        assert validators(document["type"])[1].is_valid(document), name
    assert accepted > 100
