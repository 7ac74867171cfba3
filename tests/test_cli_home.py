"""The command line from any directory: one CUSTOS_HOME (and its custos.env) for every
command and the server; whole, shell-ready tokens; progress off a terminal; long commands
committed in steps, each with its audit event."""

from __future__ import annotations

import asyncio
import csv
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server.app import AppState
from server.audit.verify import verify_ledger
from server.auth.tokens import TokenVerifier
from server.cli import invoke
from server.cli.console import console
from server.cli.demo import seed_demo
from server.cli.imports import import_file
from server.cli.serve import _note_old_layout
from server.config import Settings, load_settings
from server.data.models import AuditAccess, AuditEvent, Customer
from server.demo import DemoBuilder
from tools.runtime_requirements import runtime

OTHER_STATE = ("CUSTOS_DATABASE_URL", "CUSTOS_KEYRING", "CUSTOS_STATE_DIR", "CUSTOS_JWT_SECRET")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CUSTOS_HOME and nothing else: every path comes from it."""
    path = tmp_path / "home"
    monkeypatch.setenv("CUSTOS_HOME", str(path))
    monkeypatch.setenv("CUSTOS_ENV", "dev")
    monkeypatch.setenv("COLUMNS", "40")  # narrow: nothing may wrap
    for name in OTHER_STATE:
        monkeypatch.delenv(name, raising=False)
    return path


def _token(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert invoke(["token", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one line, never wrapped
    return out.strip()


async def _events(state: AppState) -> list[AuditEvent]:
    async with state.sessions() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_every_command_finds_the_same_state_from_any_directory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    assert invoke(["demo", "--customers", "3"]) == 0
    monkeypatch.chdir(second)
    token = _token(capsys, "--role", "manager", "--subject", "m-1", "--team", "east")
    # The server, started anywhere, reads the same database and checks with the same secret.
    settings = load_settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{home / 'custos.db'}"
    assert TokenVerifier(settings).verify(token).subject == "m-1"
    names = {p.name for p in home.iterdir()}
    assert {"custos.db", "jwt_secret", "keyring.json", "keyring.shred.db"} <= names
    assert all(n.startswith(("custos.db", "jwt_secret", "keyring")) for n in names), names
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    # Nothing was left in the working directories.
    assert list(first.iterdir()) == list(second.iterdir()) == []


def test_the_settings_file_in_the_home_and_the_environment_over_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir()
    (home / "custos.env").write_text(
        "CUSTOS_JWT_SECRET=from-the-file-and-long-enough-for-hs256\nCUSTOS_PORT=8123\nOTHER=1\n"
    )
    settings = load_settings()
    assert (settings.port, settings.jwt_secret_value()) == (
        8123,
        "from-the-file-and-long-enough-for-hs256",
    )
    token = _token(capsys, "--role", "agent", "--subject", "a-1")
    assert TokenVerifier(settings).verify(token).subject == "a-1"
    assert not (home / "jwt_secret").exists()  # the file's secret is the one used
    monkeypatch.setenv("CUSTOS_PORT", "8124")
    assert load_settings().port == 8124
    monkeypatch.setenv("CUSTOS_HOME", str(home / "elsewhere"))
    assert load_settings().keyring == home / "elsewhere" / "keyring.json"


def test_prod_without_a_secret_is_one_line_and_exit_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUSTOS_ENV", "prod")
    assert invoke(["keys", "init"]) == 0
    capsys.readouterr()
    assert stat.S_IMODE((home / "keyring.json").stat().st_mode) == 0o600
    for args in (["serve"], ["token", "--role", "agent", "--subject", "a"]):
        assert invoke(args) == 2
        assert capsys.readouterr().err == (
            "error: CUSTOS_JWT_SECRET is required when CUSTOS_ENV=prod\n"
        )
    before = (home / "keyring.json").read_bytes()
    assert invoke(["keys", "init"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: a keyring exists at ")
    assert err.endswith("it is never replaced (KEYRING_EXISTS)\n")
    assert (home / "keyring.json").read_bytes() == before


def test_messages_are_never_wrapped(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = "imported 10000 customers, rejected 0 rows, " + "x" * 120
    console.print(long)
    assert capsys.readouterr().err == long + "\n"


def test_state_left_in_the_working_directory_is_named(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "checkout"
    (old / ".custos").mkdir(parents=True)
    (old / "custos.db").write_bytes(b"")
    monkeypatch.chdir(old)
    _note_old_layout(load_settings())
    err = capsys.readouterr().err
    assert err.startswith("note: .custos/ and custos.db in this directory are not used")
    assert str(home) in err
    monkeypatch.setenv("CUSTOS_HOME", str(old / ".custos"))
    monkeypatch.setenv("CUSTOS_DATABASE_URL", f"sqlite:///{old / 'custos.db'}")
    _note_old_layout(load_settings())
    assert capsys.readouterr().err == ""


# --- committed steps ---------------------------------------------------------------------


async def test_demo_commits_in_steps_each_with_its_event(
    state: AppState, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await seed_demo(settings, 25, seed=3, only_if_empty=False, batch_size=10)
    assert report is not None
    assert report.customers == 25
    events = await _events(state)
    assert [(e.operation_name, e.outcome) for e in events] == [
        ("demo customers 1-10 of 25", "ok"),
        ("demo customers 11-20 of 25", "ok"),
        ("demo customers 21-25 of 25", "ok"),
    ]
    async with state.sessions() as session:
        counts = {
            event_id: count
            for event_id, count in (
                await session.execute(
                    select(AuditAccess.event_id, AuditAccess.record_count).where(
                        AuditAccess.object_type == "customer"
                    )
                )
            ).all()
        }
        assert [counts[e.id] for e in events] == [10, 10, 5]
        assert (await verify_ledger(session, state.services.audit.signer)).ok
    # Off a terminal, every phase says how far it got.
    err = capsys.readouterr().err
    for line in (
        "demo customers: 10/25",
        "demo customers: 20/25",
        "demo customers: 25/25",
        "referrals, member levels, campaigns: 1/1",
    ):
        assert line in err, err


async def test_a_failed_step_keeps_the_committed_ones_and_records_its_error(
    state: AppState, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = DemoBuilder.add_customers
    calls = 0

    async def second_step_fails(self: DemoBuilder, session: Any, count: int) -> None:
        nonlocal calls
        calls += 1
        await original(self, session, count)
        if calls == 2:
            raise OSError("the disk is full")

    monkeypatch.setattr(DemoBuilder, "add_customers", second_step_fails)
    with pytest.raises(OSError, match="disk is full"):
        await seed_demo(settings, 30, seed=3, only_if_empty=False, batch_size=10)
    events = await _events(state)
    assert [(e.operation_name, e.outcome) for e in events] == [
        ("demo customers 1-10 of 30", "ok"),
        ("demo customers 11-20 of 30", "error"),
    ]
    async with state.sessions() as session:
        assert len((await session.scalars(select(Customer.id))).all()) == 10
        # The failed step claims nothing it rolled back.
        claimed = await session.scalars(
            select(AuditAccess.id).where(AuditAccess.event_id == events[1].id)
        )
        assert claimed.all() == []
        assert (await verify_ledger(session, state.services.audit.signer)).ok


def _customers_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone"])
        writer.writerows(rows)
    return path


async def test_an_import_commits_in_steps_and_finds_duplicates_across_them(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    rows = [
        ["甲", "13800000001"],
        ["乙", "13800000002"],
        ["丙", "13800000003"],
        ["Twin", "138 0000 0001"],  # row 5: the phone of row 2, in an earlier commit
        ["丁", "13800000005"],
    ]
    path = _customers_csv(tmp_path / "c.csv", rows)
    report = await import_file(settings, "customers", path, 1, False, commit_every=2)
    assert report.accepted == 4
    assert [(r.row, r.reason) for r in report.rejected] == [
        (5, "duplicate phone of row 2 in the file")
    ]
    events = await _events(state)
    assert [e.operation_name for e in events] == [
        "import customers rows 2-3",
        "import customers rows 4-5",
        "import customers rows 6-6",
    ]
    async with state.sessions() as session:
        recorded = dict(
            (
                await session.execute(
                    select(AuditAccess.event_id, AuditAccess.record_count).where(
                        AuditAccess.object_type == "customer"
                    )
                )
            ).all()
        )
    assert [recorded.get(e.id, 0) for e in events] == [2, 1, 1]


async def test_a_small_import_is_one_transaction_named_as_the_command(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    path = _customers_csv(tmp_path / "c.csv", [["甲", "13800000001"], ["乙", "13800000002"]])
    report = await import_file(settings, "customers", path, 500, False)
    assert report.accepted == 2
    assert [e.operation_name for e in await _events(state)] == ["import customers"]


async def test_verify_from_a_block_after_a_seal(
    state: AppState, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    await seed_demo(settings, 2, seed=1, only_if_empty=False)
    monkeypatch.setenv("CUSTOS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CUSTOS_KEYRING", str(settings.keyring))
    capsys.readouterr()
    assert await asyncio.to_thread(invoke, ["audit", "seal"]) == 0
    capsys.readouterr()
    code = await asyncio.to_thread(invoke, ["audit", "verify", "--from-block", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 signed blocks from block 1 through block 1 (position 1), 1 sealed entries" in err


def test_the_image_installs_only_what_the_server_needs() -> None:
    """The Dockerfile's part of the lock: every run-time package, pinned and hashed, and
    none of the dev tools."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    lines = runtime((root / "requirements.lock").read_text(), project["dependencies"])
    pinned = {line.split("==")[0].lower() for line in lines if "==" in line}
    for needed in ("strawberry-graphql", "uvicorn", "sqlalchemy", "asyncpg", "greenlet", "cffi"):
        assert needed in pinned, needed
    for dev in ("pytest", "mypy", "ruff", "httpx", "import-linter", "pyinstrument"):
        assert dev not in pinned, dev
    assert all(line.strip().startswith("--hash=sha256:") for line in lines if "==" not in line)
