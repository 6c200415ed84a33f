"""Correlation rules as data: pydantic models for ``seeds/correlation/*.json``.

A correlation rule says when the alerts of one place (a commune, or a zone) make an
incident: every one of its ``requires`` matched by at least ``count`` distinct alerts
opened within ``within_minutes`` of each other. The incident then opens at the opening
time of the alert that completed the rule, with the related alerts opened within the
window before it, and grows as more related alerts of the place open: those matching one
of ``requires`` or ``joins`` (or, with ``joins: "any"``, every alert of the place). It
closes when all its alerts are resolved and no other joined for ``quiet_minutes`` after
the last resolution. Its severity is the highest of the rule's and its alerts'; it
escalates as graver alerts join. ``sop`` names the standard operating procedure of
``seeds/sops/`` operators follow for it.

Alerts are named by their rule (``traffic-flooding``; ``fnmatch`` patterns such as
``traffic-crash*`` too), domain and severity; every given field must match.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.catalog import Domain
from streams.alerts.rules import Severity, Title

CORRELATION_DIR = Path(__file__).resolve().parents[2] / "seeds" / "correlation"

#: Severities in rising order.
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which alerts count toward one requirement, and how many distinct ones it needs."""

    rules: tuple[str, ...] = Field(default=(), max_length=50)
    domains: tuple[Domain, ...] = ()
    severities: tuple[Severity, ...] = ()
    count: int = Field(default=1, ge=1, le=1000)

    def matches(self, *, rule_id: str, domain: str, severity: str) -> bool:
        """Whether an alert of this rule, domain and severity counts toward it."""
        return (
            (not self.rules or any(fnmatchcase(rule_id, p) for p in self.rules))
            and (not self.domains or domain in self.domains)
            and (not self.severities or severity in self.severities)
        )


class CorrelationRule(_Strict):
    """One pattern of alerts in one place that makes an incident."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    title: Title
    level: Literal["commune", "zone"]
    sop: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    #: The incident's least severity; alerts graver than it raise it.
    severity: Severity
    within_minutes: int = Field(ge=1, le=24 * 60)
    quiet_minutes: int = Field(ge=0, le=24 * 60)
    requires: tuple[Match, ...] = Field(min_length=1, max_length=10)
    #: Alerts that join an open incident besides those matching ``requires`` (their
    #: ``count`` is not used), or ``"any"``: every alert of the place.
    joins: tuple[Match, ...] | Literal["any"] = ()

    def relates(self, *, rule_id: str, domain: str, severity: str) -> bool:
        """Whether an alert may be part of this rule's incidents."""
        if self.joins == "any":
            return True
        return any(
            m.matches(rule_id=rule_id, domain=domain, severity=severity)
            for m in (*self.requires, *self.joins)
        )


class CorrelationFile(_Strict):
    """A file of correlation rules: ``{"rules": [...]}``."""

    rules: list[CorrelationRule] = Field(min_length=1)


class CorrelationError(ValueError):
    """A correlation rule file that cannot be used, with the file and the field at fault."""


def _where(loc: Sequence[int | str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def load_correlation_rules(directory: Path | None = None) -> list[CorrelationRule]:
    """All rules of the ``*.json`` files in ``directory`` (default: the shipped ones), in
    file-name order; ids must be unique."""
    directory = directory or CORRELATION_DIR
    files = sorted(directory.glob("*.json"))
    if not files:
        raise CorrelationError(f"{directory}: no correlation rule files (*.json)")
    rules: list[CorrelationRule] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            data = orjson.loads(path.read_bytes())
            loaded = CorrelationFile.model_validate(data).rules
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CorrelationError(f"{path}: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
            raise CorrelationError(f"{path}: {problems}") from None
        for rule in loaded:
            if rule.id in seen:
                raise CorrelationError(f"{path}: rule id {rule.id!r} already in {seen[rule.id]}")
            seen[rule.id] = path
            rules.append(rule)
    return rules
