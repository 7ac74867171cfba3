"""Reproducible installs: `make` installs from the lock, and the lock fits pyproject.toml."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    unpinned = [str(r) for r in _declared() if canonicalize_name(r.name) not in pins]
    assert unpinned == [], "run `make lock` after changing pyproject.toml"
    outside = [
        f"{r} (locked {pins[canonicalize_name(r.name)]})"
        for r in _declared()
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == [], "run `make lock` after changing pyproject.toml"


def test_every_pin_carries_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert entries
    assert [e.split(" ", 1)[0] for e in entries if "--hash=sha256:" not in e] == []


def test_a_fresh_clone_installs_from_the_lock(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copyfile(ROOT / name, tmp_path / name)

    for target in ("serve", "test"):
        plan = subprocess.run(
            ["make", "--no-print-directory", "-n", target],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert plan[0].endswith("-m venv .venv")
        assert (
            ".venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock" in plan
        )
        assert ".venv/bin/python -m pip install --quiet --no-deps -e ." in plan
        assert not any("pip install" in line and "[dev]" in line for line in plan)
    assert not (tmp_path / ".venv").exists()
