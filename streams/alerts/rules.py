"""Alert rules as data: pydantic models for ``seeds/rules/*.json`` and their loading.

Two kinds of rule (``kind``):

- ``instant``: one event whose type and payload match a predicate opens an alert at
  once (an alarm, an incident, a safety report, a detection above a confidence). While
  it is open, more matches update it; it resolves on a matching ``clear`` event, after
  ``clear_minutes`` of event time without a match, or by an operator; the next match
  then opens a new one (``streams.alerts.instant``).
- ``window`` (the default): a condition over one entity's per-minute aggregates
  (``streams/entity_record.py``), judged minute by minute (``streams.alerts.engine``).
- ``silent`` and ``stuck``, the health of a sensor (``streams.alerts.health``): nothing
  received for some of its expected reporting intervals (the registry's, by entity
  kind), or the same readings minute after minute where they normally vary.

A window rule's condition is one or more clauses ``statistic(metric) comparison threshold`` combined
with ``all`` or ``any``. A clause may give a ``clear_threshold`` on the easier side of
``threshold``: the alert then stays open while the condition holds with the clear
thresholds (hysteresis by value), and resolves only after ``clear_minutes`` minutes in
which it does not (hysteresis by time). Time-of-day windows are local time in
Asia/Ho_Chi_Minh (UTC+7, no daylight saving time).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from contract.catalog import PAYLOAD_MODELS, Domain
from contract.payload import payload_fields

RULES_DIR = Path(__file__).resolve().parents[2] / "seeds" / "rules"
UTC_OFFSET_MIN = 7 * 60  # Asia/Ho_Chi_Minh: UTC+7 all year

Severity = Literal["info", "warning", "critical"]
Statistic = Literal["avg", "min", "max", "sum", "count", "last"]
Comparison = Literal["<", "<=", ">", ">="]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Title(_Strict):
    """A title in English and Vietnamese."""

    en: str = Field(min_length=1, max_length=200)
    vi: str = Field(min_length=1, max_length=200)


class Clause(_Strict):
    """``statistic(metric) comparison threshold`` over one minute's aggregate."""

    metric: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    statistic: Statistic
    comparison: Comparison
    threshold: float
    #: The threshold that keeps an open alert open; defaults to ``threshold``.
    clear_threshold: float | None = None
    #: The statistic's value in a minute without samples of ``metric``: 0 for ``count``
    #: and ``sum`` unless given; ``None`` leaves the clause unknown in such minutes.
    missing: float | None = None

    @model_validator(mode="after")
    def _clear_on_the_easier_side(self) -> Clause:
        if self.clear_threshold is None:
            return self
        below = self.comparison in ("<", "<=")
        if (below and self.clear_threshold < self.threshold) or (
            not below and self.clear_threshold > self.threshold
        ):
            raise ValueError(
                f"clear_threshold {self.clear_threshold} must not be stricter than threshold "
                f"{self.threshold} for comparison {self.comparison!r}"
            )
        return self

    @property
    def label(self) -> str:
        """The name of this clause's value in alert transitions, like ``avg(speed)``."""
        return f"{self.statistic}({self.metric})"

    @property
    def missing_value(self) -> float | None:
        if self.missing is not None:
            return self.missing
        return 0.0 if self.statistic in ("count", "sum") else None


class Condition(_Strict):
    """Clauses combined with ``all`` (and) or ``any`` (or)."""

    combine: Literal["all", "any"] = "all"
    clauses: list[Clause] = Field(min_length=1, max_length=8)


class TimeWindow(_Strict):
    """Local time of day ``[start, end)``; an end before the start wraps past midnight."""

    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

    @property
    def start_minute(self) -> int:
        return int(self.start[:2]) * 60 + int(self.start[3:])

    @property
    def end_minute(self) -> int:
        return int(self.end[:2]) * 60 + int(self.end[3:])

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window is empty")
        return self


class Rule(_Strict):
    """One window rule over the per-minute aggregates of each entity of a domain."""

    kind: Literal["window"] = "window"
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)
    domain: Domain
    title: Title
    severity: Severity
    condition: Condition
    #: Consecutive final minutes the condition must hold before the alert opens.
    for_minutes: int = Field(default=1, ge=1, le=1440)
    #: Consecutive final minutes the clear condition must fail before it resolves.
    clear_minutes: int = Field(default=1, ge=1, le=1440)
    #: Minutes without a verdict (no samples) a streak may skip before it restarts.
    max_gap_minutes: int = Field(default=0, ge=0, le=1440)
    #: Least minutes between two ``open``/``update`` transitions of one alert.
    update_minutes: int = Field(default=5, ge=1, le=1440)
    #: Local times of day when the rule applies; empty means always.
    windows: list[TimeWindow] = Field(default_factory=list, max_length=8)


Scalar = int | float | str | bool
Operator = Literal["==", "!=", "in", "not_in", "<", "<=", ">", ">="]


class Predicate(_Strict):
    """``field op value`` on one payload field, like ``kind in [fire, smoke]``."""

    field: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    op: Operator
    value: Scalar | list[Scalar]

    @model_validator(mode="after")
    def _value_fits_op(self) -> Predicate:
        listed = isinstance(self.value, list)
        if self.op in ("in", "not_in") and not (listed and self.value):
            raise ValueError(f"op {self.op!r} needs a non-empty list of values")
        if self.op not in ("in", "not_in") and listed:
            raise ValueError(f"op {self.op!r} needs one value, not a list")
        return self

    @property
    def values(self) -> list[Scalar]:
        return self.value if isinstance(self.value, list) else [self.value]


class Match(_Strict):
    """An event of ``type`` whose payload satisfies every predicate of ``where``."""

    type: str = Field(pattern=r"^city\.[a-z]+\.[a-z_]+\.v[0-9]+$", max_length=128)
    where: list[Predicate] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _against_the_contract(self) -> Match:
        model = PAYLOAD_MODELS.get(self.type)
        if model is None:
            raise ValueError(f"no event type {self.type!r} in the contract")
        for predicate in self.where:
            _check_field(self.type, payload_fields(model), predicate)
        return self


def _field_kinds(annotation: Any) -> tuple[set[type], set[Scalar] | None]:
    """The Python types a payload field holds and, for a ``Literal``, its allowed values."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        allowed = set(typing.get_args(annotation))
        return {type(v) for v in allowed}, allowed
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds: set[type] = set()
        for part in typing.get_args(annotation):
            kinds |= _field_kinds(part)[0]
        return kinds, None
    return ({annotation} if isinstance(annotation, type) else set()), None


def _bounds(annotation: Any) -> tuple[float | None, float | None]:
    """The least and greatest value a numeric payload field allows (its ``msgspec.Meta``
    ge/gt/le/lt; exclusive bounds kept as the bound itself, which is never allowed)."""
    low = high = None
    while typing.get_origin(annotation) is Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, msgspec.Meta):
                low = meta.ge if meta.ge is not None else meta.gt if meta.gt is not None else low
                high = meta.le if meta.le is not None else meta.lt if meta.lt is not None else high
        annotation = typing.get_args(annotation)[0]
    return low, high


def _check_field(event_type: str, fields: dict[str, Any], predicate: Predicate) -> None:
    annotation = fields.get(predicate.field)
    if annotation is None:
        raise ValueError(
            f"{event_type} has no field {predicate.field!r}; it has {', '.join(sorted(fields))}"
        )
    kinds, allowed = _field_kinds(annotation)
    numeric = bool(kinds & {int, float}) and bool not in kinds
    if predicate.op in ("<", "<=", ">", ">=") and not numeric:
        raise ValueError(f"{predicate.field!r} is not a number: op {predicate.op!r} cannot apply")
    for value in predicate.values:
        if allowed is not None and value not in allowed:
            choices = ", ".join(repr(a) for a in sorted(allowed, key=str))
            raise ValueError(f"{predicate.field!r} is never {value!r}; it is one of {choices}")
        if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{predicate.field!r} is a number; {value!r} is not")
        if not numeric or predicate.op not in ("==", "!=", "in", "not_in"):
            continue
        number = float(value)  # a number: checked just above
        low, high = _bounds(annotation)
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(f"{predicate.field!r} is never {value!r}; it is from {low} to {high}")


class InstantRule(_Strict):
    """One instant rule: an event that matches opens an alert at once."""

    kind: Literal["instant"]
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)
    domain: Domain
    title: Title
    severity: Severity
    match: Match
    #: An event that resolves the open alert at once (an alarm's all-clear, say).
    clear: Match | None = None
    #: Minutes of event time after the last match, without another, that resolve it.
    clear_minutes: int = Field(default=30, ge=1, le=1440)
    #: Least minutes between two ``update`` transitions while more matches come.
    update_minutes: int = Field(default=5, ge=1, le=1440)
    #: Payload fields the transitions report (default: those the predicates name).
    report: list[str] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _in_its_domain(self) -> InstantRule:
        for name, match in (("match", self.match), ("clear", self.clear)):
            if match is not None and match.type.split(".")[1] != self.domain:
                raise ValueError(
                    f"{name}.type {match.type!r} is not an event of domain {self.domain!r}"
                )
        fields = payload_fields(PAYLOAD_MODELS[self.match.type])
        unknown = [name for name in self.report if name not in fields]
        if unknown:
            raise ValueError(f"report: {self.match.type} has no field {', '.join(unknown)}")
        return self

    @property
    def reported(self) -> list[str]:
        """The payload fields a transition carries as its values."""
        return self.report or list(dict.fromkeys(p.field for p in self.match.where))


EntityKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class SilentRule(_Strict):
    """A sensor that sent nothing for ``intervals`` of its expected reporting interval
    (at least ``min_minutes``). Only registered entities with an interval are judged."""

    kind: Literal["silent"]
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)
    domain: Domain
    title: Title
    severity: Severity
    #: Entity kinds (the registry's) the rule judges; empty: every kind of the domain.
    kinds: list[EntityKind] = Field(default_factory=list, max_length=16)
    #: Expected reporting intervals without any event that make a sensor silent.
    intervals: float = Field(ge=2, le=10_000)
    #: The least silence reported, whatever the interval.
    min_minutes: float = Field(default=5, ge=1, le=1440)

    def silent_after_ms(self, interval_s: float) -> int:
        """How long a sensor reporting every ``interval_s`` seconds may say nothing."""
        return int(max(self.intervals * interval_s, self.min_minutes * 60) * 1000)


class StuckRule(_Strict):
    """A sensor whose readings of every metric in ``metrics`` did not change for
    ``minutes`` consecutive final minutes in which it reported them."""

    kind: Literal["stuck"]
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)
    domain: Domain
    title: Title
    severity: Severity
    kinds: list[EntityKind] = Field(default_factory=list, max_length=16)
    #: Metrics that vary in a working sensor at every hour (a road's vehicle count alone
    #: does not: it is zero all night); the sensor is stuck when none of them changes.
    metrics: list[str] = Field(min_length=1, max_length=8)
    minutes: int = Field(ge=2, le=1440)

    @model_validator(mode="after")
    def _metric_names(self) -> StuckRule:
        bad = [m for m in self.metrics if not re.fullmatch(r"[a-z][a-z0-9_]*", m)]
        if bad:
            raise ValueError(f"metrics: {', '.join(map(repr, bad))} is not a metric name")
        return self


HealthRule = SilentRule | StuckRule
AnyRuleModel = Rule | InstantRule | SilentRule | StuckRule


def _kind_of(data: Any) -> str:
    return str(data.get("kind", "window")) if isinstance(data, dict) else "window"


AnyRule = Annotated[
    Annotated[Rule, Tag("window")]
    | Annotated[InstantRule, Tag("instant")]
    | Annotated[SilentRule, Tag("silent")]
    | Annotated[StuckRule, Tag("stuck")],
    Discriminator(_kind_of),
]


class RuleFile(_Strict):
    """A rule file: ``{"rules": [...]}``."""

    rules: list[AnyRule] = Field(min_length=1)


class RuleError(ValueError):
    """A rule file that cannot be used, with the file and the field at fault."""


def _where(loc: Sequence[int | str], data: object) -> str:
    """``rules[0](traffic-congestion).condition.clauses[1].threshold``: path and rule id."""
    if len(loc) >= 3 and loc[0] == "rules" and loc[2] in ("window", "instant", "silent", "stuck"):
        loc = [*loc[:2], *loc[3:]]  # the rule kind's tag says nothing the reader needs
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(data, dict):
        try:
            rule_id = data["rules"][loc[1]]["id"]
        except (KeyError, IndexError, TypeError):
            return where or "<root>"
        where = where.replace(f"rules[{loc[1]}]", f"rules[{loc[1]}]({rule_id})", 1)
    return where or "<root>"


def load_rule_file(path: Path) -> list[AnyRuleModel]:
    """Read and validate one rule file; errors name the file and each bad field."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RuleError(f"{path}: {exc}") from None
    try:
        return RuleFile.model_validate(data).rules
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'], data)}: {e['msg']}" for e in exc.errors())
        raise RuleError(f"{path}: {problems}") from None


def load_rules(directory: Path | None = None) -> list[AnyRuleModel]:
    """All rules of ``*.json`` files in ``directory`` (default: the shipped library), in
    file-name order; ids must be unique."""
    directory = directory or RULES_DIR
    files = sorted(directory.glob("*.json"))
    if not files:
        raise RuleError(f"{directory}: no rule files (*.json)")
    rules: list[AnyRuleModel] = []
    seen: dict[str, Path] = {}
    for path in files:
        for rule in load_rule_file(path):
            if rule.id in seen:
                raise RuleError(f"{path}: rule id {rule.id!r} already defined in {seen[rule.id]}")
            seen[rule.id] = path
            rules.append(rule)
    return rules
