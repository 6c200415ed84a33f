"""Standard operating procedures (SOPs) as data: ``seeds/sops/<id>.json``, one per file.

An incident names the procedure its operators follow (``IncidentTransition.sop``); each
procedure is a title, one sentence on when it applies and the ordered steps an operator
checks off, every text in English and Vietnamese. Step ids are what a checked step
refers to, so they stay stable when a step's wording changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

SOPS_DIR = Path(__file__).resolve().parents[2] / "seeds" / "sops"
ID_PATTERN = r"^[a-z][a-z0-9-]{0,40}$"

Id = Annotated[str, Field(pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@dataclass(frozen=True, slots=True)
class Step:
    """One action of a procedure, in English and Vietnamese."""

    id: str
    en: str
    vi: str


@dataclass(frozen=True, slots=True)
class Sop:
    """A standard operating procedure: when it applies and its steps, in order."""

    id: str
    title_en: str
    title_vi: str
    about_en: str
    about_vi: str
    steps: tuple[Step, ...]


class SopError(ValueError):
    """An SOP file that cannot be used, with the file and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Texts(_Strict):
    en: Text
    vi: Text


class _StepModel(_Strict):
    id: Id
    en: Text
    vi: Text


class _SopFile(_Strict):
    id: Id
    title: _Texts
    about: _Texts
    steps: list[_StepModel] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _step_ids_unique(cls, steps: list[_StepModel]) -> list[_StepModel]:
        first: dict[str, int] = {}
        for index, step in enumerate(steps):
            if step.id in first:
                raise ValueError(
                    f"step id {step.id!r} repeated: steps[{first[step.id]}] and steps[{index}]"
                )
            first[step.id] = index
        return steps

    def to_sop(self) -> Sop:
        return Sop(
            id=self.id,
            title_en=self.title.en,
            title_vi=self.title.vi,
            about_en=self.about.en,
            about_vi=self.about.vi,
            steps=tuple(Step(id=s.id, en=s.en, vi=s.vi) for s in self.steps),
        )


def _where(loc: Sequence[int | str], data: Any) -> str:
    """``steps[2](call-115).vi``: the field's path, with the step's id when it has one."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        try:
            step_id = data["steps"][loc[1]]["id"]
        except (KeyError, IndexError, TypeError):
            return where
        if isinstance(step_id, str):
            where = where.replace(f"steps[{loc[1]}]", f"steps[{loc[1]}]({step_id})", 1)
    return where or "<root>"


def load_sop_file(path: Path) -> Sop:
    """Read and validate one SOP file; errors name the file and each bad field."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise SopError(f"{path}: cannot read: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise SopError(f"{path}: not valid JSON: {exc}") from None
    try:
        model = _SopFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'], data)}: {e['msg']}" for e in exc.errors())
        raise SopError(f"{path}: {problems}") from None
    if model.id != path.stem:
        raise SopError(f"{path}: id {model.id!r} differs from the file name {path.name!r}")
    return model.to_sop()


def load_sops(directory: Path = SOPS_DIR) -> dict[str, Sop]:
    """Every SOP of ``*.json`` in ``directory`` by id, in file-name order. Nothing is
    cached here: callers keep the result."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise SopError(f"{directory}: no SOP files (*.json)")
    return {path.stem: load_sop_file(path) for path in files}
