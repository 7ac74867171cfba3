"""House rules that import contracts cannot express, checked on the syntax tree.

`python -m tools.lint_ast` (part of `make lint`) reads server/ and schema/ and prints one
line per finding, `path:line: rule: message`, exiting 1 if there is any. Each rule names
the one home of a concern; code elsewhere doing that concern's work is a finding. There is
no inline way to silence a rule: an exception is an entry in EXEMPT, with its reason.
README "Development" says how to fix a finding.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("server", "schema")


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


class Module:
    """One parsed source file and what each imported name stands for."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path  # relative to the project root, with forward slashes
        self.tree = ast.parse(source, filename=path)
        self.names: dict[str, str] = {}  # local name -> dotted origin ("sa" -> "sqlalchemy")
        self.imports: list[tuple[int, str]] = []  # (line, dotted module or module.name)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports.append((node.lineno, alias.name))
                    if alias.asname:
                        self.names[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.names[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    origin = f"{node.module}.{alias.name}"
                    self.imports.append((node.lineno, origin))
                    self.names[alias.asname or alias.name] = origin

    def origin(self, expr: ast.expr) -> str | None:
        """The dotted origin of a name or attribute chain rooted at an imported name:
        `sa.select` -> `sqlalchemy.select`; None for anything else."""
        parts: list[str] = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name) or expr.id not in self.names:
            return None
        return ".".join([self.names[expr.id], *reversed(parts)])

    def calls(self) -> Iterator[ast.Call]:
        return (node for node in ast.walk(self.tree) if isinstance(node, ast.Call))


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def _top(dotted: str) -> str:
    return dotted.split(".")[0]


# --- SQL only in repositories -------------------------------------------------------------

SQL_BUILDERS = {"select", "insert", "update", "delete", "text"}
# Session and connection methods that reach the database (or queue a write for it).
SESSION_OPERATIONS = {
    "execute",
    "exec_driver_sql",
    "scalar",
    "scalars",
    "stream",
    "stream_scalars",
    "get",
    "get_one",
    "add",
    "add_all",
    "delete",
    "merge",
    "refresh",
    "flush",
}
SESSION_NAMES = {"session", "conn", "connection"}
SESSION_TYPES = ("Session", "Connection")


def _session_parameters(tree: ast.Module) -> set[str]:
    """Names of parameters annotated as a session or a connection, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                if any(kind in annotation for kind in SESSION_TYPES):
                    names.add(arg.arg)
    return names


def _looks_like_session(expr: ast.expr, parameters: set[str]) -> bool:
    name = expr.id if isinstance(expr, ast.Name) else getattr(expr, "attr", None)
    if name is None:
        return False
    return name in parameters or name in SESSION_NAMES or name.endswith("_session")


def check_sql(module: Module) -> Iterator[tuple[int, str]]:
    parameters = _session_parameters(module.tree)
    for call in module.calls():
        origin = module.origin(call.func)
        if origin and _top(origin) == "sqlalchemy" and origin.split(".")[-1] in SQL_BUILDERS:
            yield call.lineno, f"builds SQL with {origin}()"
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in SESSION_OPERATIONS
            and _looks_like_session(func.value, parameters)
        ):
            yield call.lineno, f"{ast.unparse(func)}() on a session or connection"


# --- GraphQL only at the HTTP edge -----------------------------------------------------------

GRAPHQL_PACKAGES = {"strawberry", "graphql"}


def check_graphql(module: Module) -> Iterator[tuple[int, str]]:
    for line, imported in module.imports:
        if _top(imported) in GRAPHQL_PACKAGES:
            yield line, f"imports {imported}"


# --- keyed crypto only in the vault ----------------------------------------------------------

CRYPTO_PACKAGES = {"cryptography", "Crypto", "Cryptodome", "nacl"}
# A constant-time comparison holds no key: allowed anywhere.
HMAC_ALLOWED = {"hmac.compare_digest"}
KEYED_HASHLIB = {"hashlib.pbkdf2_hmac", "hashlib.scrypt"}
KEYABLE_HASHLIB = {"hashlib.blake2b", "hashlib.blake2s"}
# Signing and verifying the JWTs people sign in with is authentication, not data
# protection: PyJWT is allowed in server/auth/ (tokens.py) besides the vault.
TOKEN_SIGNING_PACKAGES = {"jwt"}
TOKEN_SIGNING_HOME = ("server/auth/*",)


def check_crypto(module: Module) -> Iterator[tuple[int, str]]:
    for line, imported in module.imports:
        top = _top(imported)
        keyed = (
            top in CRYPTO_PACKAGES
            or (top == "hmac" and imported != "hmac" and imported not in HMAC_ALLOWED)
            or imported in KEYED_HASHLIB | KEYABLE_HASHLIB
        )
        if keyed:
            yield line, f"imports {imported}"
        elif top in TOKEN_SIGNING_PACKAGES and not _matches(module.path, TOKEN_SIGNING_HOME):
            yield line, f"imports {imported} (token signing lives in server/auth/)"
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Attribute):
            continue
        origin = module.origin(node)
        if origin is None:
            continue
        if _top(origin) == "hmac" and origin not in HMAC_ALLOWED:
            yield node.lineno, f"uses {origin} (a keyed MAC)"
        elif origin in KEYED_HASHLIB:
            yield node.lineno, f"uses {origin} (a keyed derivation)"
    for call in module.calls():
        origin = module.origin(call.func)
        if origin in KEYABLE_HASHLIB and any(k.arg == "key" for k in call.keywords):
            yield call.lineno, f"uses {origin}(key=...) (a keyed hash)"


# --- policy decisions only through the gate (not enabled yet) --------------------------------


def _names_caller(expr: ast.expr) -> bool:
    return (isinstance(expr, ast.Name) and expr.id == "caller") or (
        isinstance(expr, ast.Attribute) and expr.attr == "caller"
    )


def check_gate(module: Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and node.attr == "access" and _names_caller(node.value):
            yield node.lineno, f"reads {ast.unparse(node)} (decisions come from the gate)"
    for line, imported in module.imports:
        if imported.endswith(".AccessDecisions"):
            yield line, f"imports {imported}"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    reads: tuple[str, ...]  # files the rule applies to
    homes: tuple[str, ...]  # where the concern lives: the rule does not apply there
    fix: str  # appended to every finding
    check: Callable[[Module], Iterable[tuple[int, str]]]


SQL = Rule(
    name="sql-outside-repository",
    reads=("server/*", "schema/*"),
    homes=("*/repository.py", "server/data/*"),
    fix="SQL lives in */repository.py: add a repository method and call it",
    check=check_sql,
)
GRAPHQL = Rule(
    name="graphql-in-domain",
    reads=("server/*",),
    # The ASGI app mounts the schema; graphql_http speaks GraphQL over HTTP (errors, media).
    homes=("server/app.py", "server/graphql_http.py"),
    fix="GraphQL lives in schema/: return plain values, raise domain errors",
    check=check_graphql,
)
CRYPTO = Rule(
    name="crypto-outside-vault",
    reads=("server/*", "schema/*"),
    homes=("server/vault/*",),
    fix="keyed crypto lives in server/vault/: add a vault function and call it",
    check=check_crypto,
)
GATE = Rule(
    name="policy-outside-gate",
    reads=("server/*", "schema/*"),
    homes=("server/authz/*", "server/caller.py"),
    fix="ask the gate in server/authz/ for the decision",
    check=check_gate,
)
RULES: tuple[Rule, ...] = (SQL, GRAPHQL, CRYPTO, GATE)

# (file pattern, rule name, why). Keep each one narrow; delete it when its reason goes.
EXEMPT: tuple[tuple[str, str, str], ...] = (
    (
        "server/vault/keyring.py",
        SQL.name,
        "the local key provider keeps shred secrets in its own SQLite file beside the "
        "keyring, not in the application database",
    ),
)


def lint_source(path: str, source: str, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Findings for one file; `path` is relative to the project root (forward slashes)."""
    applicable = [
        rule
        for rule in rules
        if _matches(path, rule.reads)
        and not _matches(path, rule.homes)
        and not any(rule.name == name and fnmatch.fnmatchcase(path, p) for p, name, _ in EXEMPT)
    ]
    if not applicable:
        return []
    module = Module(path, source)
    findings = {
        Finding(path, line, rule.name, f"{message}; {rule.fix}")
        for rule in applicable
        for line, message in rule.check(module)
    }
    return sorted(findings, key=lambda f: (f.line, f.rule, f.message))


def lint_tree(root: Path, rules: Sequence[Rule] = RULES) -> list[Finding]:
    findings: list[Finding] = []
    for top in SCANNED:
        for file in sorted((root / top).rglob("*.py")):
            path = file.relative_to(root).as_posix()
            findings.extend(lint_source(path, file.read_text(encoding="utf-8"), rules))
    return findings


def stale_exemptions(root: Path) -> list[str]:
    """Exemptions that match no file any more (the reason is gone: delete the entry)."""
    files = [f.relative_to(root).as_posix() for top in SCANNED for f in (root / top).rglob("*.py")]
    return [p for p, _, _ in EXEMPT if not any(fnmatch.fnmatchcase(f, p) for f in files)]


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve() if args else ROOT
    for pattern in stale_exemptions(root):
        print(f"warning: exemption {pattern!r} matches no file; delete it", file=sys.stderr)
    findings = lint_tree(root)
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} house-rule finding(s); see README, Development", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
