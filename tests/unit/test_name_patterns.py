"""Every name rule refuses a trailing newline (Python's ``$`` matches before one).

An outside probe replayed into namespace ``"live\\n"`` past the live-namespace guard; the
rules below are every place a name is checked against a pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.envelope import decode, encode
from contract.rejection import Rejection
from ioc.settings import ApiKeySettings, Settings
from recordings.options import OptionsError, ReplayOptions
from recordings.recorder import base_name
from recordings.store import NameError_, check_name

EVENT_TIME = "2026-12-01T08:00:00+07:00"


def event(**fields: str) -> bytes:
    values = {
        "event_type": "city.traffic.incident.v1",
        "subject": "qn-ix-halong-001",
        **fields,
    }
    return encode(
        event_type=values["event_type"],
        subject=values["subject"],
        time=datetime.fromisoformat(EVENT_TIME),
        data={"kind": "crash", "severity": 3, "lanes_blocked": 1},
        event_id="e-1",
        source="tests",
    )


REFUSALS: list[tuple[str, Callable[[str], object], type[Exception]]] = [
    ("namespace setting", lambda v: Settings(namespace=v, state_dir=Path("/tmp")), ValueError),
    ("replay target", lambda v: ReplayOptions(namespace=v), OptionsError),
    ("recording name", check_name, NameError_),
    (
        "key name",
        lambda v: ApiKeySettings(name=v, hash="sha256:" + "0" * 64, scopes=["view"]),
        ValidationError,
    ),
    (
        "key scope",
        lambda v: ApiKeySettings(name="ops", hash="sha256:" + "0" * 64, scopes=[v]),
        ValidationError,
    ),
    ("event subject", lambda v: decode(event(subject=v)), Rejection),
    ("event type", lambda v: decode(event(event_type=v)), Rejection),
]
VALID = {
    "namespace setting": "sandbox",
    "replay target": "sandbox",
    "recording name": "typhoon-yagi",
    "key name": "ops",
    "key scope": "view",
    "event subject": "qn-ix-halong-001",
    "event type": "city.traffic.incident.v1",
}


@pytest.mark.parametrize(("rule", "check", "error"), REFUSALS, ids=[r[0] for r in REFUSALS])
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\n\n", " "])
def test_a_name_with_a_line_ending_is_refused(
    rule: str, check: Callable[[str], object], error: type[Exception], ending: str
) -> None:
    check(VALID[rule])  # the rule accepts the name itself
    with pytest.raises(error):
        check(VALID[rule] + ending)


def test_a_live_topic_of_a_newline_namespace_is_not_taken_for_a_sandbox() -> None:
    assert base_name("sandbox\n.ioc.traffic.events", "live") == "sandbox\n.ioc.traffic.events"
