"""SOP files: the shipped procedures load in both languages; bad files name the file and why."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.incidents.sops import SOPS_DIR, Sop, SopError, Step, load_sop_file, load_sops

SHIPPED = {
    "flooding",
    "landslide",
    "crash-casualties",
    "fire",
    "mass-admissions",
    "crowd-crush",
    "sensor-outage",
    "storm",
    "multiple-alerts",
}
# Letters only Vietnamese (among the project's two languages) writes: tones and đ.
VIETNAMESE = re.compile(
    "[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]", re.IGNORECASE
)


def _sop(**changes: Any) -> dict[str, Any]:
    sop: dict[str, Any] = {
        "id": "fire",
        "title": {"en": "Fire", "vi": "Cháy"},
        "about": {"en": "A fire in one place.", "vi": "Có cháy tại một địa điểm."},
        "steps": [
            {"id": "call-114", "en": "Call 114.", "vi": "Gọi 114."},
            {"id": "close", "en": "Close it.", "vi": "Đóng sự cố."},
        ],
    }
    sop.update(changes)
    return sop


def _write(directory: Path, data: Any, *, name: str = "fire.json") -> Path:
    path = directory / name
    path.write_bytes(orjson.dumps(data))
    return path


def _texts(sop: Sop) -> list[tuple[str, str, str]]:
    """(where, English, Vietnamese) for every text of ``sop``."""
    return [
        ("title", sop.title_en, sop.title_vi),
        ("about", sop.about_en, sop.about_vi),
        *((f"step {step.id}", step.en, step.vi) for step in sop.steps),
    ]


def test_the_shipped_sops_load_with_every_incident_type() -> None:
    sops = load_sops()
    assert set(sops) >= SHIPPED
    assert {path.stem for path in SOPS_DIR.glob("*.json")} == set(sops)
    assert all(sop.id == sop_id for sop_id, sop in sops.items())


@pytest.mark.parametrize("sop_id", sorted(SHIPPED))
def test_a_shipped_sop_has_five_to_nine_steps_in_both_languages(sop_id: str) -> None:
    sop = load_sops()[sop_id]
    assert 5 <= len(sop.steps) <= 9
    for where, en, vi in _texts(sop):
        assert en.strip(), f"{sop_id} {where}: no English"
        assert vi.strip(), f"{sop_id} {where}: no Vietnamese"
        assert VIETNAMESE.search(vi), f"{sop_id} {where}: Vietnamese without diacritics: {vi!r}"
        # Composed forms: decomposed tones render badly and defeat search.
        assert unicodedata.is_normalized("NFC", vi), f"{sop_id} {where}: not NFC"
    assert sop.steps[-1].id == "close"


def test_a_file_becomes_a_frozen_sop_with_its_steps_in_order(tmp_path: Path) -> None:
    sop = load_sop_file(_write(tmp_path, _sop()))
    assert sop == Sop(
        id="fire",
        title_en="Fire",
        title_vi="Cháy",
        about_en="A fire in one place.",
        about_vi="Có cháy tại một địa điểm.",
        steps=(
            Step(id="call-114", en="Call 114.", vi="Gọi 114."),
            Step(id="close", en="Close it.", vi="Đóng sự cố."),
        ),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        sop.id = "other"  # type: ignore[misc]
    assert load_sops(tmp_path) == {"fire": sop}


def _step(**changes: Any) -> dict[str, Any]:
    return {"id": "call-114", "en": "Call 114.", "vi": "Gọi 114.", **changes}


BAD_FILES: dict[str, tuple[Any, str]] = {
    "missing Vietnamese title": (
        _sop(title={"en": "Fire"}),
        "title.vi: Field required",
    ),
    "missing Vietnamese step": (
        _sop(steps=[{"id": "call-114", "en": "Call 114."}]),
        "steps[0](call-114).vi: Field required",
    ),
    "missing English step": (
        _sop(steps=[{"id": "call-114", "vi": "Gọi 114."}]),
        "steps[0](call-114).en: Field required",
    ),
    "blank text": (
        _sop(about={"en": "A fire.", "vi": "   "}),
        "about.vi: String should have at least 1 character",
    ),
    "duplicate step id": (
        _sop(steps=[_step(), _step(en="Call again.")]),
        "steps: Value error, step id 'call-114' repeated: steps[0] and steps[1]",
    ),
    "step id with capitals": (
        _sop(steps=[_step(id="Call-114")]),
        "steps[0](Call-114).id: String should match pattern",
    ),
    "step id with a space": (
        _sop(steps=[_step(id="call 114")]),
        "steps[0](call 114).id: String should match pattern",
    ),
    "step id too long": (
        _sop(steps=[_step(id="a" * 42)]),
        f"steps[0]({'a' * 42}).id: String should match pattern",
    ),
    "no steps": (
        _sop(steps=[]),
        "steps: List should have at least 1 item",
    ),
    "extra field": (
        _sop(owner="ops"),
        "owner: Extra inputs are not permitted",
    ),
    "extra field in a step": (
        _sop(steps=[_step(phone="114")]),
        "steps[0](call-114).phone: Extra inputs are not permitted",
    ),
    "not an object": (
        [_sop()],
        "<root>: Input should be a valid dictionary",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_names_the_file_and_the_field(tmp_path: Path, case: str) -> None:
    data, reason = BAD_FILES[case]
    path = _write(tmp_path, data)
    for load in (lambda: load_sop_file(path), lambda: load_sops(tmp_path)):
        with pytest.raises(SopError, match=re.escape(f"{path}: ")) as caught:
            load()
        assert reason in str(caught.value)


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fire.json"
    path.write_text('{"id": "fire",', encoding="utf-8")
    with pytest.raises(SopError, match=re.escape(f"{path}: not valid JSON: ")):
        load_sops(tmp_path)


def test_the_id_must_be_the_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _sop(id="flooding"))
    with pytest.raises(
        SopError, match=re.escape(f"{path}: id 'flooding' differs from the file name 'fire.json'")
    ):
        load_sops(tmp_path)


def test_one_bad_file_among_good_ones_is_the_one_named(tmp_path: Path) -> None:
    _write(tmp_path, _sop())
    bad = _write(tmp_path, _sop(id="storm", extra=1), name="storm.json")
    with pytest.raises(SopError, match=re.escape(f"{bad}: extra: Extra inputs")):
        load_sops(tmp_path)


def test_a_directory_without_sops_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SopError, match="no SOP files"):
        load_sops(tmp_path)
