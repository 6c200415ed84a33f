"""deploy/Dockerfile and .dockerignore: a multi-stage build, a non-root user, `ioc` as the
entry point, and a build context that keeps every package and data file the code needs."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import PurePosixPath

from tests.utils.services import ROOT

DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return re.findall(rf"(?m)^{name}\s+(.+)$", DOCKERFILE)


def ignored(entry: str, patterns: list[str]) -> bool:
    """True when a top-level entry of the context is left out by one of the patterns."""
    return any(fnmatch.fnmatch(entry, p.rstrip("/")) for p in patterns)


def needed_in_context() -> list[str]:
    """Top-level entries the image needs: the packages pyproject.toml installs, the
    seeds the simulators and alert rules read, and the files the install reads."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted(
        p.name
        for p in ROOT.iterdir()
        if p.is_dir()
        and (p / "__init__.py").exists()
        and any(fnmatch.fnmatch(p.name, i) for i in includes)
    )
    assert {"ioc", "streams", "api", "simulators"} <= set(packages)
    return [*packages, "seeds", "pyproject.toml", "README.md"]


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_multi_stage_with_a_numeric_non_root_user() -> None:
    stages = instructions("FROM")
    assert len(stages) == 2
    assert stages[0].endswith("AS build")
    user = instructions("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) > 0
    assert gid.isdigit(), user
    assert "COPY --from=build /opt/ioc /opt/ioc" in DOCKERFILE


def test_ioc_is_the_entry_point() -> None:
    assert instructions("ENTRYPOINT") == ['["ioc"]']


def test_the_build_context_keeps_what_the_code_reads() -> None:
    patterns = dockerignore()
    for entry in needed_in_context():
        assert not ignored(entry, patterns), f".dockerignore leaves out {entry}"
    for secret_or_local in (".env", ".venv", ".ioc", ".git"):
        assert ignored(secret_or_local, patterns)
    # The check itself sees a mistake.
    assert ignored("seeds", [*patterns, "seeds/"])


def test_faust_keeps_its_data_directory_where_the_user_may_write() -> None:
    """`ioc incidents` (Faust) makes a data directory at start, under the state dir (by
    default Faust would use the working directory, which belongs to root in the image):
    the state dir is the service user's home, made by useradd --create-home."""
    match = re.search(r"IOC_STATE_DIR=(\S+)", DOCKERFILE)
    assert match, "the image sets no IOC_STATE_DIR"
    state_dir = PurePosixPath(match.group(1))
    workdir = PurePosixPath(instructions("WORKDIR")[-1])
    assert state_dir.is_absolute()
    assert not state_dir.is_relative_to(workdir)
    assert f"--home-dir {state_dir} --create-home" in DOCKERFILE
