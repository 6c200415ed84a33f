"""Types of the parameters routes take, with the bounds the OpenAPI document states.

Times are bounded before any route does arithmetic on them: a year-1 ``from`` floored
to a week, or a year-9999 ``to`` in a zone west of UTC, leaves the range of Python's
datetime (a 500), and PostgreSQL refuses some of the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
)
from pydantic_core import PydanticCustomError

from contract.envelope import RFC3339

#: Years a time parameter may have, as written in its own zone. The JSON Schema states
#: them (``pattern``), so clients and generated tests know the bound; a year short of
#: datetime's last leaves room to add a day, a week or any zone offset.
FIRST_YEAR, LAST_YEAR = 1970, 9998
TIME_RANGE = (
    f"RFC 3339 with a time zone, dated from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31 "
    "as written in its zone"
)
#: The years FIRST_YEAR to LAST_YEAR at the start of an RFC 3339 string.
YEAR_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
#: Record indexes in a recording: at most 2^53, the integers a JSON number holds exactly.
MAX_INDEX = 2**53


def _rfc3339(value: Any) -> Any:
    # pydantic alone would also read epoch seconds, as a number or as digits.
    if not isinstance(value, datetime) and not (
        isinstance(value, str) and RFC3339.fullmatch(value)
    ):
        raise PydanticCustomError(
            "rfc3339", "give an RFC 3339 time with a zone, like 2024-09-07T08:00:00+07:00"
        )
    return value


def _in_range(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError("time_range", "out of range: " + TIME_RANGE)
    return value


#: A time parameter (query or body): with a zone, dated FIRST_YEAR to LAST_YEAR.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_in_range),
    Field(description=TIME_RANGE, json_schema_extra={"pattern": YEAR_PATTERN}),
    # Read from its RFC 3339 text inside strict bodies too.
    Strict(False),
]


def json_number(value: Any) -> Any:
    """``value`` when it is a JSON number; booleans and text are refused (pydantic's lax
    mode would read ``true`` as 1 and ``"12"`` as 12, which JSON Schema does not allow)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "json_number", "give a JSON number, not {kind}", {"kind": type(value).__name__}
        )
    return value


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer includes 3.0; strict bodies would refuse it as a float.
    value = json_number(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: Reads an integer of a request body: a JSON number without a fraction (3 or 3.0).
#: Last in an ``Annotated``, after the bounds, so that the JSON Schema states them.
JSON_INTEGER = BeforeValidator(_json_integer)
#: A record index in a recording.
RecordIndex = Annotated[int, Field(ge=0, le=MAX_INDEX), JSON_INTEGER]


class RequestBody(BaseModel):
    """A JSON request body, read strictly: each field takes the JSON type the OpenAPI
    document gives it (pydantic's lax mode would read true as 1, 1 as true, "3" as 3)."""

    model_config = ConfigDict(strict=True)
