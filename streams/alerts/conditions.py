"""A rule's condition over one minute: clause values, three-valued verdicts, time windows.

A clause's value is its statistic of the minute's aggregate ``[count, sum, min, max,
last, last_time_ms]``. A minute without samples of the metric gives the clause's
``missing_value`` (0 for ``count`` and ``sum``), or ``None``: unknown. Clauses combine
in three-valued logic: ``all`` is false if any clause is false, unknown if any is
unknown, else true; ``any`` is true if any clause is true, unknown if any is unknown,
else false. Outside the rule's time windows the condition is false, known without data.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence

from streams.alerts.rules import UTC_OFFSET_MIN, Clause, Rule, Statistic
from streams.entity_record import BUCKET_MS

Values = list[float | None]  # one value per clause of a rule, in order
MINUTES_PER_DAY = 1440

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def statistic(aggregate: Sequence[float], name: Statistic) -> float:
    """One statistic of an aggregate ``[count, sum, min, max, last, last_time_ms]``."""
    count, total, low, high, last = aggregate[:5]
    if name == "avg":
        return total / count
    return {"count": count, "sum": total, "min": low, "max": high, "last": last}[name]


def clause_values(rule: Rule, metrics: Mapping[str, Sequence[float]]) -> Values | None:
    """The rule's clause values in a minute's bucket, or None when it has none of them."""
    clauses = rule.condition.clauses
    if not any(c.metric in metrics for c in clauses):
        return None
    return [
        statistic(metrics[c.metric], c.statistic) if c.metric in metrics else c.missing_value
        for c in clauses
    ]


def missing_values(rule: Rule) -> Values:
    """The clause values of a minute in which the entity reported none of the metrics."""
    return [c.missing_value for c in rule.condition.clauses]


def _clause(clause: Clause, value: float | None, *, clearing: bool) -> bool | None:
    if value is None:
        return None
    threshold = clause.threshold
    if clearing and clause.clear_threshold is not None:
        threshold = clause.clear_threshold
    return _COMPARE[clause.comparison](value, threshold)


def local_minute_of_day(minute_ms: int) -> int:
    """Minute of the local day (Asia/Ho_Chi_Minh) at which the minute ``minute_ms`` starts."""
    return (minute_ms // BUCKET_MS + UTC_OFFSET_MIN) % MINUTES_PER_DAY


def in_windows(rule: Rule, minute_ms: int) -> bool:
    """True when the minute starts inside one of the rule's windows (or it has none)."""
    if not rule.windows:
        return True
    now = local_minute_of_day(minute_ms)
    for window in rule.windows:
        start, end = window.start_minute, window.end_minute
        if (start <= now < end) if start < end else (now >= start or now < end):
            return True
    return False


def next_window_edge(rule: Rule, minute_ms: int) -> int | None:
    """Start of the first minute after ``minute_ms`` at which a window opens or closes."""
    if not rule.windows:
        return None
    now = local_minute_of_day(minute_ms)
    edges = {w.start_minute for w in rule.windows} | {w.end_minute for w in rule.windows}
    ahead = min((edge - now - 1) % MINUTES_PER_DAY + 1 for edge in edges)
    return minute_ms + ahead * BUCKET_MS


def verdict(rule: Rule, values: Values, *, minute_ms: int, clearing: bool) -> bool | None:
    """Whether the condition holds in the minute: with open thresholds, or with the clear
    thresholds when ``clearing``; ``None`` when unknown for want of samples."""
    if not in_windows(rule, minute_ms):
        return False
    results = [
        _clause(c, v, clearing=clearing)
        for c, v in zip(rule.condition.clauses, values, strict=True)
    ]
    if rule.condition.combine == "all":
        if False in results:
            return False
        return None if None in results else True
    if True in results:
        return True
    return None if None in results else False


def labelled(rule: Rule, values: Values) -> dict[str, float | None]:
    """Clause values by label, as carried by alert transitions."""
    return {c.label: v for c, v in zip(rule.condition.clauses, values, strict=True)}
