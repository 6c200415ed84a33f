"""Why a message is not accepted: the reason codes that go with it to the dead-letter
topic, and the exception that carries one."""

from __future__ import annotations

from collections.abc import Mapping

#: Every reason a message can be rejected for, and what it means.
REASONS: Mapping[str, str] = {
    "not_json": "the value is not valid UTF-8 JSON",
    "not_object": "the JSON value is not an object",
    "missing_field": "a required attribute or payload field is absent",
    "invalid_field": "an attribute or payload field has the wrong type or range",
    "unknown_type": "the event type is not in the catalogue",
    "wrong_topic": "the event type belongs to another domain's topic",
    "key_mismatch": "the Kafka key differs from the event's subject",
    "wrong_partition": "the record is not on the partition its key maps to (murmur2)",
    "wrong_domain": "the entity belongs to another domain (its registry entry or first event)",
    "late": "the event's minute was already final when it arrived",
}


class Rejection(Exception):
    """Why a message was not accepted: a code from :data:`REASONS`, and details."""

    def __init__(self, reason: str, detail: str, *, field: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field

    def as_dict(self) -> dict[str, str]:
        """The reason as a JSON-ready mapping."""
        out = {"reason": self.reason, "detail": self.detail}
        if self.field:
            out["field"] = self.field
        return out
