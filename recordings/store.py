"""Where recordings live, and names that cannot leave that place.

Recordings are directories under the recordings directory of the settings
(``IOC_RECORDINGS__DIR``, default ``<state dir>/recordings``). Shipped recordings
(``seeds/recordings/*.mcap``) are listed beside them, read-only. A name is one path
component of letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, so
``..``, slashes, backslashes, NUL and the like are refused before any path is built; the
resolved path is checked to be inside its directory all the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ioc.settings import Settings

NAME_MAX_LENGTH = 64
#: Letters, digits, ``.``, ``_`` and ``-``, a letter or digit first, every ``.`` followed
#: by another character or the end (so never ``..``). Written for JSON Schema's
#: ECMAScript regexes too (the OpenAPI document states it); Python code matches it with
#: ``fullmatch``, as ``$`` in ``re`` also matches before a final newline.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?$")
SEEDS_DIR = Path(__file__).resolve().parents[1] / "seeds" / "recordings"


class NameError_(ValueError):
    """A recording name that is not allowed."""


def is_name(name: str) -> bool:
    """Whether ``name`` is a valid recording name (see :data:`NAME_PATTERN`)."""
    return len(name) <= NAME_MAX_LENGTH and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: str) -> str:
    """``name`` when it is a valid recording name; :class:`NameError_` saying why not."""
    if not is_name(name):
        raise NameError_(
            f"recording name {name[:80]!r} is not allowed: 1-64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, no '..'"
        )
    return name


@dataclass(frozen=True)
class Entry:
    """A recording found on disk."""

    name: str
    path: Path
    source: str  # "recorded" or "seed"


class RecordingStore:
    """The recordings directory of a settings object, plus the shipped seeds."""

    def __init__(self, settings: Settings, *, seeds: Path = SEEDS_DIR) -> None:
        self.root = settings.recordings_dir
        self.seeds = seeds

    def _inside(self, base: Path, path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(base.resolve()):
            raise NameError_(f"recording path {path} leaves {base}")
        return resolved

    def new_path(self, name: str) -> Path:
        """Directory for a new recording; FileExistsError when the name is taken."""
        check_name(name)
        if self.find(name) is not None:
            raise FileExistsError(f"a recording named {name!r} exists already")
        self.root.mkdir(parents=True, exist_ok=True)
        return self._inside(self.root, self.root / name)

    def find(self, name: str) -> Entry | None:
        """The recording of that name (recorded first, then seeds), or None."""
        check_name(name)
        recorded = self.root / name
        if recorded.is_dir():
            return Entry(name, self._inside(self.root, recorded), "recorded")
        seed = self.seeds / f"{name}.mcap"
        if seed.is_file():
            return Entry(name, self._inside(self.seeds, seed), "seed")
        return None

    def list(self) -> list[Entry]:
        """Every recording, recorded ones first, by name."""
        found = []
        if self.root.is_dir():
            found += [
                Entry(p.name, p, "recorded")
                for p in sorted(self.root.iterdir())
                if p.is_dir() and is_name(p.name)
            ]
        if self.seeds.is_dir():
            found += [Entry(p.stem, p, "seed") for p in sorted(self.seeds.glob("*.mcap"))]
        return found
