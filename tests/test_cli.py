"""The `custos` command as an operator runs it: every data command records exactly one
audit event as the one CLI principal, and exit codes say what went wrong (0 success,
1 an operational failure, 2 a usage or configuration error), in one line, no traceback."""

from __future__ import annotations

import asyncio
import csv
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import AppState
from server.audit.verify import verify_ledger
from server.cli import invoke
from server.cli.context import Command, open_command, operator
from server.clock import FixedClock
from server.config import Settings
from server.customer.repository import CustomerRepository
from server.customer.service import NewCustomer
from server.data.models import AuditAccess, AuditEvent, Customer
from server.errors import ValidationError
from tests.conftest import Api
from tests.factories import customer_data, make_customer

AT = datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    # Commands here may add key versions: each test gets its own keyring.
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def operator_env(operator_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared operator environment, with a short note retention to prune against."""
    monkeypatch.setenv("CUSTOS_RETENTION_INTERACTION_NOTES_DAYS", "30")


async def _events(state: AppState) -> list[AuditEvent]:
    async with state.sessions() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


async def _add_customer(command: Command, session: AsyncSession, data: NewCustomer) -> uuid.UUID:
    """A customer written as imports and demo data write them, noted on the command."""
    sealed = command.services.customers.seal_new(data, owner_id=None, team=None)
    await CustomerRepository(session).add(sealed.customer, sealed.key)
    command.audit.change("customer", "create", sealed.customer.id, sealed.sealed_fields)
    return sealed.customer.id


async def _custos(*args: str) -> int:
    return await asyncio.to_thread(invoke, list(args))


def _customers_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone"])
        writer.writerows([["林静", "13700000077"], ["周宁", "13700000078"]])
    return path


@pytest.mark.slow
@pytest.mark.usefixtures("operator_env")
async def test_every_data_command_records_one_event_as_the_operator(
    state: AppState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_customer(state)
    expected: list[tuple[Sequence[str], int, str | None]] = [
        (["demo", "--customers", "3", "--seed", "1"], 0, "demo"),
        (["import", "customers", str(_customers_csv(tmp_path / "c.csv"))], 0, "import customers"),
        (["segments", "refresh", "--as-of", "2026-06-30"], 0, "segments refresh"),
        (["retention", "run", "--dry-run"], 0, None),
        (["retention", "run"], 0, "retention run"),
        (["audit", "verify"], 0, None),
        (["audit", "seal"], 0, None),
        (["audit", "export", "--since", "2999-01-01"], 0, "audit export jsonl"),
        (["audit", "prune", "--before", "2000-01-01"], 0, "audit prune before"),
        (["keys", "retire", "--kek", "99"], 1, "keys retire kek"),
    ]
    me = operator()
    for args, code, operation in expected:
        before = await _events(state)
        assert await _custos(*args) == code, (args, capsys.readouterr().err)
        added = (await _events(state))[len(before) :]
        if operation is None:
            assert added == [], args
            continue
        assert len(added) == 1, args
        event = added[0]
        assert event.operation_name is not None
        assert event.operation_name.startswith(operation), args
        assert (event.operation_type, event.subject, event.roles) == (
            "cli",
            me.subject,
            ["cli_operator"],
        )
        assert (event.client_addr, event.user_agent) == (socket.gethostname()[:64], "custos-cli")
        assert event.outcome == ("ok" if code == 0 else "error"), args
    # A refused command says why in one line and claims nothing it did not do.
    assert "version 99 is not in the key provider" in capsys.readouterr().err
    async with state.sessions() as session:
        report = await verify_ledger(session, state.services.audit.signer)
    assert report.ok


async def test_the_context_records_one_event_in_the_command_transaction(
    state: AppState, settings: Settings
) -> None:
    clock = FixedClock(AT)
    async with open_command("test one", settings=settings, clock=clock) as command:
        async with command.transaction() as session:
            caller = await command.caller(session)
            # The operator passes the policy with the cli_operator role's rules only.
            assert caller.principal == command.principal == operator()
            assert caller.gate.allows("segment", "manage")
            assert not caller.gate.allows("customer", "read")
            created = await _add_customer(command, session, NewCustomer(name="钟表"))
        with pytest.raises(RuntimeError):
            async with command.transaction() as session:
                pass  # a second event for the same command is refused
    events = await _events(state)
    assert [(e.operation_type, e.operation_name, e.outcome) for e in events] == [
        ("cli", "test one", "ok")
    ]
    assert events[0].occurred_at == AT
    async with state.sessions() as session:
        accesses = list(await session.scalars(select(AuditAccess)))
        customer = await session.get(Customer, created)
    assert [(a.object_type, a.action, a.record_count) for a in accesses] == [
        ("customer", "create", 1)
    ]
    assert customer is not None
    assert (customer.created_at, customer.updated_at) == (AT, AT)


async def test_a_failed_command_records_one_error_event_and_changes_nothing(
    state: AppState, settings: Settings
) -> None:
    async def fail() -> None:
        async with (
            open_command("test fails", settings=settings) as command,
            command.transaction() as session,
        ):
            await _add_customer(command, session, customer_data())
            raise ValidationError("the second step is refused")

    with pytest.raises(ValidationError):
        await fail()
    events = await _events(state)
    assert [(e.operation_name, e.outcome, e.subject) for e in events] == [
        ("test fails", "error", operator().subject)
    ]
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0
        # The rolled-back creation is not claimed.
        assert await session.scalar(select(func.count()).select_from(AuditAccess)) == 0


async def test_a_command_that_never_opened_a_transaction_still_has_its_event(
    state: AppState, settings: Settings
) -> None:
    async with open_command("test quiet", settings=settings):
        pass
    async with open_command("test unaudited", settings=settings, audited=False):
        pass
    assert [e.operation_name for e in await _events(state)] == ["test quiet"]


async def test_the_operator_role_counts_only_for_the_operator(api: Api) -> None:
    refresh = """mutation { refreshSegments(asOf: "2026-06-30") {
        __typename ... on UserError { code } } }"""
    claimed = await api.gql(refresh, token=api.token("cli_operator", subject="root"))
    assert claimed["data"]["refreshSegments"] == {"__typename": "UserError", "code": "FORBIDDEN"}
    granted = await api.gql(refresh, token=api.token("manager", subject="m-1", team="east"))
    assert granted["data"]["refreshSegments"] == {"__typename": "SegmentsRefreshed"}
    assert invoke(["token", "--role", "cli_operator", "--subject", "x"]) == 2


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["keys", "retire"], "give exactly one of --kek or --blind-index"),
        (["no-such-command"], "No such command"),
        (["demo", "--customers", "0"], "--customers"),
        (["audit", "export", "--since", "yesterday"], "--since must be an ISO date"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert named in err


def test_configuration_errors_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUSTOS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CUSTOS_JWT_SECRET", raising=False)
    monkeypatch.setenv("CUSTOS_PORT", "http")
    assert invoke(["serve"]) == 2
    assert capsys.readouterr().err == (
        "error: invalid settings: CUSTOS_PORT: Input should be a valid integer, "
        "unable to parse string as an integer\n"
    )
    monkeypatch.delenv("CUSTOS_PORT")
    monkeypatch.setenv("CUSTOS_ENV", "prod")
    monkeypatch.setenv("CUSTOS_KEYRING", str(tmp_path / "missing.json"))
    assert invoke(["serve"]) == 2
    assert capsys.readouterr().err == "error: CUSTOS_KEYRING: keyring file not found\n"
    assert invoke(["token", "--role", "agent", "--subject", "a"]) == 2
    assert capsys.readouterr().err == (
        "error: CUSTOS_JWT_SECRET is required when CUSTOS_ENV=prod\n"
    )


async def test_operational_failures_exit_1_and_successes_0(
    settings: Settings,
    state: AppState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CUSTOS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CUSTOS_KEYRING", str(settings.keyring))
    monkeypatch.setenv("CUSTOS_STATE_DIR", str(settings.state_dir))
    assert await _custos("keys", "retire", "--blind-index", "1") == 1
    assert capsys.readouterr().err == (
        "error: the newest key version cannot be retired (KEY_IN_USE)\n"
    )
    assert await _custos("import", "orders", str(settings.state_dir / "none.csv")) == 1
    assert capsys.readouterr().err == "error: the import file does not exist (FILE_NOT_FOUND)\n"
    assert await _custos("audit", "seal") == 0
    # Each refused command left its error event: two entries, sealed into one block.
    assert capsys.readouterr().err == "sealed 2 entries into 1 blocks (through block 1)\n"
    # Nowhere to connect: one line naming the problem, no SQL, no traceback.
    monkeypatch.setenv("CUSTOS_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:9/none")
    assert await _custos("retention", "run") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the database is unavailable (")
    assert err.count("\n") == 1


@pytest.mark.slow
def test_failures_reach_the_operator_without_a_traceback(tmp_path: Path) -> None:
    import subprocess

    env = {
        **os.environ,
        "CUSTOS_ENV": "prod",
        "CUSTOS_STATE_DIR": str(tmp_path),
        "CUSTOS_KEYRING": str(tmp_path / "missing.json"),
        "CUSTOS_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/none",
    }
    env.pop("CUSTOS_JWT_SECRET", None)
    for args, code in ((["serve"], 2), (["audit", "verify"], 2), (["keys"], 2)):
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == code, (args, result.stderr)
        assert "Traceback" not in result.stderr
    env["CUSTOS_ENV"] = "dev"
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "retention", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: the database is unavailable")
    assert "Traceback" not in result.stderr
