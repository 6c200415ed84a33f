"""Types of the parameters routes take, with the bounds the OpenAPI document states.

Times are bounded before any route does arithmetic on them: a year-1 ``from`` floored
to a week, or a year-9999 ``to`` in a zone west of UTC, leaves the range of Python's
datetime (a 500), and PostgreSQL refuses some of the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from streams.envelope import RFC3339

#: The earliest time a parameter may name: Kafka timestamps start there.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
#: The latest: a year short of datetime's last, so that a day, a week or a zone offset
#: added to it still fits.
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
TIME_RANGE = (
    "RFC 3339 with a time zone, from 1970-01-01T00:00:00Z up to (not including) "
    "9999-01-01T00:00:00Z"
)
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
    if not EARLIEST <= value < LATEST:
        raise PydanticCustomError("time_range", "out of range: " + TIME_RANGE)
    return value


#: A time parameter (query or body): with a zone, within :data:`EARLIEST`..:data:`LATEST`.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_in_range),
    Field(description=TIME_RANGE),
]
#: A record index in a recording.
RecordIndex = Annotated[int, Field(ge=0, le=MAX_INDEX)]
