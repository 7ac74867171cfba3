"""The shape of the command line: every `server.cli` module imports on its own in a fresh
interpreter, the package has no import cycle and nothing below it imports it, and the
CLI's principal, caller and audit commits each have one home."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "server" / "cli"
MODULES = sorted(
    "server.cli" if path.stem == "__init__" else f"server.cli.{path.stem}"
    for path in CLI.glob("*.py")
    if path.stem != "__main__"
)


def _python_files(*folders: str) -> Iterator[tuple[Path, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES)
def test_each_cli_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_the_cli_package_has_no_import_cycle_and_sits_on_top() -> None:
    graph: dict[str, set[str]] = {}
    for path, tree in _python_files("server/cli"):
        module = _module_of(path)
        graph[module] = {name for name in _imports(tree) if name in MODULES} - {module}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, set())):
            assert state.get(target) != "open", f"import cycle: {' -> '.join([*trail, target])}"
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    below = [
        _module_of(path)
        for path, tree in _python_files("server", "schema")
        if not path.is_relative_to(CLI)
        and any(name == "server.cli" or name.startswith("server.cli.") for name in _imports(tree))
    ]
    assert below == [], "the CLI is the top layer: nothing in server/ or schema/ imports it"


def _calls(tree: ast.Module) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def test_audit_commits_principals_and_callers_of_commands_have_one_home() -> None:
    commits, principals, cli_callers = set(), set(), set()
    for path, tree in _python_files("server"):
        where = str(path.relative_to(ROOT))
        for call in _calls(tree):
            name = _called_name(call)
            if name == "commit" and any(k.arg == "operation_type" for k in call.keywords):
                commits.add(where)
            elif name == "Principal":
                principals.add(where)
            elif name in ("Caller", "caller_for") and path.is_relative_to(CLI):
                cli_callers.add(where)
    # Requests commit at the HTTP edge; every command through its context.
    assert commits == {"server/app.py", "server/cli/context.py"}
    # Principals come from credentials (auth, authz, the HTTP edge) or are the operator.
    assert {p for p in principals if not p.startswith(("server/auth/", "server/authz/"))} == {
        "server/app.py",
        "server/cli/context.py",
    }
    assert cli_callers == {"server/cli/context.py"}
