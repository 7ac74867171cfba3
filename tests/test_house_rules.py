"""The house rules check themselves: the tree keeps them, and each check catches a breach.

Breaches are written into throwaway trees under tmp_path, never into the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from tools.lint_ast import (
    CRYPTO,
    GATE,
    GRAPHQL,
    RULES,
    SQL,
    Finding,
    Rule,
    lint_source,
    lint_tree,
)

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint(path: str, source: str, rules: Sequence[Rule] = RULES) -> list[Finding]:
    return lint_source(path, textwrap.dedent(source), rules)


def _rules_of(findings: list[Finding]) -> set[tuple[int, str]]:
    return {(f.line, f.rule) for f in findings}


def test_the_tree_keeps_the_house_rules() -> None:
    assert [str(f) for f in lint_tree(ROOT)] == []


# --- SQL only in repositories -------------------------------------------------------------

MISPLACED_SQL = """\
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession


    async def count(session: AsyncSession) -> int:
        return int(await session.scalar(text("SELECT 1")))


    async def ping(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1"))
"""


def test_a_misplaced_sql_statement_fails_the_linter(tmp_path: Path) -> None:
    service = tmp_path / "server" / "customer" / "service.py"
    service.parent.mkdir(parents=True)
    service.write_text(textwrap.dedent(MISPLACED_SQL))
    (tmp_path / "schema").mkdir()

    result = subprocess.run(
        [sys.executable, "-m", "tools.lint_ast", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "server/customer/service.py:10: sql-outside-repository: session.execute()" in "\n".join(
        lines
    )
    assert any(
        line.startswith("server/customer/service.py:10: sql-outside-repository: builds SQL")
        for line in lines
    )
    assert any(line.startswith("server/customer/service.py:6: ") for line in lines)


def test_the_same_sql_in_a_repository_or_the_data_layer_passes() -> None:
    assert _lint("server/customer/repository.py", MISPLACED_SQL) == []
    assert _lint("server/data/engine.py", MISPLACED_SQL) == []


def test_sql_builders_and_session_writes_are_found_under_any_name() -> None:
    source = """\
        import sqlalchemy as sa
        from sqlalchemy import delete as remove


        async def purge(db_session, ids):
            stmt = sa.select(1)
            remove(object())
            db_session.add(object())
            await db_session.flush()
    """
    assert _rules_of(_lint("schema/customers.py", source)) == {
        (6, SQL.name),
        (7, SQL.name),
        (8, SQL.name),
        (9, SQL.name),
    }


def test_look_alike_calls_are_not_sql() -> None:
    source = """\
        import sys


        async def run(state, values, repo_factory, session) -> None:
            values.update({"a": 1})
            labels = []
            labels.insert(0, "x")
            sys.stdout.flush()
            print("done", flush=True)
            await state.schema.execute("{ a }")
            await repo_factory(session).flush()
            async with session.begin():
                pass
    """
    assert _lint("server/customer/service.py", source) == []


# --- GraphQL only at the HTTP edge -----------------------------------------------------------


def test_strawberry_in_the_domain_is_reported() -> None:
    source = """\
        import strawberry
        from graphql import GraphQLError
    """
    findings = _lint("server/order/service.py", source)
    assert _rules_of(findings) == {(1, GRAPHQL.name), (2, GRAPHQL.name)}
    assert "imports strawberry" in findings[0].message


def test_strawberry_at_the_edge_and_in_the_schema_passes() -> None:
    source = "import strawberry\nfrom strawberry.types import Info\n"
    assert _lint("server/app.py", source) == []
    assert _lint("schema/orders.py", source) == []


# --- keyed crypto only in the vault ----------------------------------------------------------

KEYED = """\
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM


    def sign(key: bytes, content: bytes) -> bytes:
        return hmac.new(key, content, hashlib.sha256).digest()


    def derive(secret: bytes) -> bytes:
        return hashlib.blake2b(secret, key=b"k").digest() + hashlib.pbkdf2_hmac(
            "sha256", secret, b"s", 1
        )
"""


def test_keyed_crypto_outside_the_vault_is_reported() -> None:
    findings = _lint("server/audit/checkpoints.py", KEYED)
    assert _rules_of(findings) == {(4, CRYPTO.name), (8, CRYPTO.name), (12, CRYPTO.name)}
    messages = " ".join(f.message for f in findings)
    assert "hmac.new" in messages
    assert "AESGCM" in messages
    assert "hashlib.blake2b(key=...)" in messages
    assert "hashlib.pbkdf2_hmac" in messages


def test_keyed_crypto_in_the_vault_passes() -> None:
    assert _lint("server/vault/signing.py", KEYED) == []


def test_plain_hashes_and_constant_time_comparison_are_not_keyed_crypto() -> None:
    source = """\
        import hashlib
        import hmac
        from hmac import compare_digest


        def same(a: str, b: str) -> bool:
            digest = hashlib.sha256(a.encode()).hexdigest()
            return hmac.compare_digest(digest, b) and compare_digest(a, b)
    """
    assert _lint("server/auth/api_keys.py", source) == []


def test_token_signing_is_allowed_only_in_auth() -> None:
    source = "import jwt\n"
    assert _lint("server/auth/tokens.py", source) == []
    assert _rules_of(_lint("server/customer/service.py", source)) == {(1, CRYPTO.name)}


# --- policy decisions only through the gate -------------------------------------------------


def test_the_gate_rule_reports_decisions_read_around_the_gate() -> None:
    source = """\
        from server.authz.authorizer import AccessDecisions


        def scope(caller, ctx) -> object:
            return caller.access.row_scope("customer", "read") or ctx.caller.access
    """
    assert GATE in RULES
    findings = _lint("server/order/service.py", source)
    assert _rules_of(findings) == {(1, GATE.name), (5, GATE.name)}
    assert len(findings) == 3
    assert _lint("server/authz/gate.py", source) == []


# --- import contracts (lint-imports) ---------------------------------------------------------


def _contract_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for package in ("server", "schema"):
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copyfile(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_import_contracts_hold(tmp_path: Path) -> None:
    result = _lint_imports(_contract_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "server/order/service.py",
            "from schema.build import build_schema",
            "schema sits on top: server never imports it",
        ),
        (
            "server/customer/repository.py",
            "from server.customer.service import CustomerService",
            "repositories, the vault, the gate and the audit recorder never import a service",
        ),
        (
            "server/data/base.py",
            "from server.vault import Vault",
            "the data layer imports nothing above it",
        ),
        (
            "server/customer/service.py",
            "from server.order.service import OrderService",
            "no import cycles between the packages of server, nor of schema",
        ),
        (
            "schema/types/customer.py",
            "from schema.orders import OrderQuery",
            "no import cycles between the packages of server, nor of schema",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _contract_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")

    result = _lint_imports(tree)

    assert result.returncode == 1, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
