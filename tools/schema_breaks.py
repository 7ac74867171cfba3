"""Breaking changes of the GraphQL schema, against the SDL committed on the base branch.

`python -m tools.schema_breaks` (part of `make lint`) builds the schema the server serves
and compares it with `schema/schema.graphql` as committed where this branch left its base
(`git merge-base HEAD <base>`, the base being `$SCHEMA_BASE`, else `main` or
`origin/main`), using
graphql-core's `find_breaking_changes`. Each break prints as one line,
`TYPE description` (e.g. `FIELD_REMOVED Customer.tier was removed.`), and fails the
check unless `schema/accepted-breaks.txt` holds that exact line. Dangerous changes (an
argument default changed, an enum value added) are printed and pass.

Not breaking is the first choice: add the new field or argument beside the old one and
mark the old `@deprecated(reason: "...")` (strawberry: `deprecation_reason=`); clients
move at their pace and the old one goes in a later, announced break. To accept an
intended break, copy its line into `schema/accepted-breaks.txt` under a `#` comment that
says why and what clients do instead; the review of that file is the review of the break.
Lines there that no longer match a change (once the break is on the base branch) are
reported as stale and may be removed.

Exit codes: 0 no unaccepted break; 1 unaccepted breaks; 2 `$SCHEMA_BASE` names no
commit. Outside a git checkout, or in a clone without the default branch, there is
nothing to compare against: it says so and exits 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from graphql import GraphQLSchema, build_schema, find_breaking_changes, find_dangerous_changes

ROOT = Path(__file__).resolve().parents[1]
SDL_PATH = "schema/schema.graphql"
ACCEPTED = ROOT / "schema" / "accepted-breaks.txt"
DEFAULT_BASES = ("main", "origin/main")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def base_sdl(base: str) -> str | None:
    """The committed SDL where HEAD left `base`; None when `base` names nothing."""
    fork = _git("merge-base", "HEAD", base)
    if fork is None:
        return None
    return _git("show", f"{fork.strip()}:{SDL_PATH}")


def change_lines(old: GraphQLSchema, new: GraphQLSchema) -> tuple[list[str], list[str]]:
    """Breaking and dangerous changes from `old` to `new`, one line each."""
    breaking = [f"{c.type.name} {c.description}" for c in find_breaking_changes(old, new)]
    dangerous = [f"{c.type.name} {c.description}" for c in find_dangerous_changes(old, new)]
    return breaking, dangerous


def accepted_lines(text: str) -> set[str]:
    return {
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def check(old_sdl: str, new_sdl: str, accepted: set[str]) -> tuple[list[str], list[str], list[str]]:
    """(unaccepted breaks, dangerous changes, stale acceptances)."""
    breaking, dangerous = change_lines(build_schema(old_sdl), build_schema(new_sdl))
    unaccepted = [line for line in breaking if line not in accepted]
    stale = sorted(accepted - set(breaking))
    return unaccepted, dangerous, stale


def main(argv: Sequence[str] = ()) -> int:
    if _git("rev-parse", "--git-dir") is None:
        print("schema breaks: not a git checkout, no committed SDL to compare against")
        return 0
    chosen = os.environ.get("SCHEMA_BASE")
    bases = [chosen] if chosen else list(DEFAULT_BASES)
    found = [(base, sdl) for base in bases if (sdl := base_sdl(base)) is not None]
    if not found:
        print(
            f"schema breaks: no base ({', '.join(bases)}) to compare against; "
            "set SCHEMA_BASE to the branch this one will land on",
            file=sys.stderr,
        )
        # A named base that does not exist is a mistake; a clone without the default
        # branch (a CI checkout of one commit) simply has nothing to compare against.
        return 2 if chosen else 0
    base, old_sdl = found[0]
    from schema.build import print_sdl

    accepted = accepted_lines(ACCEPTED.read_text()) if ACCEPTED.exists() else set()
    unaccepted, dangerous, stale = check(old_sdl, print_sdl(), accepted)
    for line in dangerous:
        print(f"schema breaks: dangerous (allowed): {line}")
    for line in stale:
        print(f"schema breaks: stale acceptance (no such change against {base}): {line}")
    for line in unaccepted:
        print(f"schema breaks: BREAKING: {line}", file=sys.stderr)
    if unaccepted:
        print(
            f"schema breaks: {len(unaccepted)} breaking change(s) against {base}'s "
            f"{SDL_PATH}. Deprecate instead of breaking (tools/schema_breaks.py says how), "
            "or accept an intended break by adding its line to schema/accepted-breaks.txt "
            "with a comment saying why.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
