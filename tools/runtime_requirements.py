"""Print the part of requirements.lock the server needs at run time, hashes kept.

The lock pins everything, dev tools included; a production image installs only the
packages reachable from `[project].dependencies` (uv's `# via` notes give the edges).
Used by the Dockerfile: `python tools/runtime_requirements.py > runtime.txt`, then
`pip install --require-hashes -r runtime.txt`.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(lock: str) -> dict[str, tuple[list[str], set[str]]]:
    """Each pinned package: its lines (pin and hashes) and the packages that need it."""
    found: dict[str, tuple[list[str], set[str]]] = {}
    current: str | None = None
    for line in lock.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            match = NAME.match(line)
            assert match is not None, line
            current = normalise(match.group(1))
            found.setdefault(current, ([], set()))[0].append(line)
        elif current is not None and line.strip().startswith("--hash"):
            found[current][0].append(line)
        elif current is not None and line.strip().startswith("#"):
            parent = line.strip().lstrip("#").strip().removeprefix("via").strip()
            if parent and not parent.startswith("custos-crm"):
                found[current][1].add(normalise(parent))
    return found


def runtime(lock: str, dependencies: list[str]) -> list[str]:
    """The lock's lines for the closure of `dependencies` over the `# via` edges."""
    pinned = entries(lock)
    needed = {normalise(m.group(1)) for d in dependencies if (m := NAME.match(d))}
    grew = True
    while grew:
        more = {name for name, (_, parents) in pinned.items() if parents & needed} - needed
        grew = bool(more)
        needed |= more
    lines: list[str] = []
    for name, (block, _) in pinned.items():
        if name in needed:
            lines.extend(block)
    return lines


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    sys.stdout.write("\n".join(runtime(lock, project["dependencies"])) + "\n")


if __name__ == "__main__":
    main()
