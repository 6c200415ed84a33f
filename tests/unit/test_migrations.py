"""Migration files are ordered and named by the convention the runner relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioc.db.migrate import discover


def test_shipped_migrations_are_ordered_with_both_flavours_of_0002() -> None:
    found = discover()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert {m.flavour for m in found if m.version == 2} == {"timescaledb", "postgres"}
    assert found[0].path.name == "0001_core.sql"


def test_a_badly_named_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1")
    (tmp_path / "later.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match=r"later\.sql"):
        discover(tmp_path)
