"""Key rotation: online under concurrent traffic, resumable after a kill, retirement."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import func, select

from server.app import AppState
from server.caller import caller_for
from server.cli.context import operator
from server.clock import Clock
from server.config import Settings
from server.console.routes import DEFAULT_PURPOSE
from server.data.models import AuditEvent, Customer, CustomerKey, KeyRotation
from server.data.models.user import User
from server.errors import ConflictError
from server.keys.service import BLIND_INDEX, KEK, KeyRotationService
from server.users.service import Accounts
from server.vault import LocalKeyring, Vault
from tests.conftest import Api
from tests.factories import customer_data, make_customer

PASSWORD = "correct horse battery staple"


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    # Rotation adds and retires versions: each test gets its own keyring.
    return tmp_path / "keys" / "keyring.json"


ALL = """
query All($after: String) {
  customers(first: 500, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id name phone email nationalId bankCard address birthday }
  }
}
"""
CREATE = """
mutation New($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on UserError { code } }
}
"""
LOOKUP = "query F($phone: String) { customerByContact(phone: $phone) { id phone } }"


def _rotation(state: AppState, settings: Settings, **kwargs: Any) -> KeyRotationService:
    # The rotation works as a separate process would: its own keyring instance.
    keys = LocalKeyring.load(settings.keyring, create=False)
    # The serving keyring notices new versions at once, so no propagation wait is needed.
    serving = state.services.vault.keys
    assert isinstance(serving, LocalKeyring)
    serving.RELOAD_INTERVAL = 0.0
    kwargs.setdefault("propagation_seconds", 0.0)
    return KeyRotationService(Vault(keys), state.sessions, Clock(), **kwargs)


async def _read_everything(api: Api, token: str) -> list[dict[str, Any]]:
    """Every customer, following the pages (writes during a rotation can pass one page)."""
    nodes: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        body = await api.gql(ALL, {"after": after}, token=token, purpose="support")
        assert "errors" not in body, body.get("errors")
        page = body["data"]["customers"]
        nodes.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def _kek_versions(state: AppState) -> dict[int, int]:
    async with state.sessions() as session:
        rows = await session.execute(
            select(CustomerKey.kek_version, func.count()).group_by(CustomerKey.kek_version)
        )
        return {int(v): int(n) for v, n in rows.all()}


@pytest.mark.slow
async def test_kek_rotation_under_concurrent_reads_and_writes(
    api: Api, state: AppState, settings: Settings
) -> None:
    for _ in range(40):
        await make_customer(state, owner_id="m-1")
    token = api.token("manager", subject="m-1", team="east")
    rotation = asyncio.create_task(
        _rotation(state, settings, batch_size=4, pause_seconds=0.05).rotate(KEK)
    )
    failures: list[Any] = []
    reads = writes = 0
    while not rotation.done():
        nodes = await _read_everything(api, token)
        reads += 1
        data = customer_data()
        created = await api.gql(
            CREATE,
            {"input": {"name": data.name, "phone": data.phone, "email": data.email}},
            token=token,
        )
        writes += 1
        if (
            created.get("errors")
            or created["data"]["createCustomer"]["__typename"] != "CustomerCreated"
        ):
            failures.append(created)
        found = await api.gql(LOOKUP, {"phone": nodes[0]["phone"]}, token=token, purpose="support")
        if found.get("errors") or found["data"]["customerByContact"] is None:
            failures.append(found)
    report = await rotation
    assert failures == []
    assert reads > 2  # the traffic really overlapped the rotation
    assert report.finished
    assert report.to_version == 2
    assert await _kek_versions(state) == {2: 40 + writes}
    nodes = await _read_everything(api, token)
    assert len(nodes) == 40 + writes
    assert all(n["phone"] and n["name"] and n["email"] for n in nodes)
    assert sum(1 for n in nodes if n["bankCard"]) == 40
    # Version 1 is no longer used: it can go, and everything still opens without it.
    await _rotation(state, settings).retire(KEK, 1)
    assert LocalKeyring.load(settings.keyring, create=False).kek_versions() == [2]
    state.services.vault.forget_all()
    assert len(await _read_everything(api, token)) == 40 + writes


async def test_retire_is_refused_while_a_version_is_used(
    state: AppState, settings: Settings
) -> None:
    await make_customer(state)
    service = _rotation(state, settings, batch_size=1)
    report = await service.rotate(KEK, stop_after_batches=0)
    assert not report.finished
    with pytest.raises(ConflictError) as unfinished:
        await service.retire(KEK, 1)
    assert unfinished.value.code == "ROTATION_UNFINISHED"
    with pytest.raises(ConflictError) as newest:
        await service.retire(KEK, 2)
    assert newest.value.code == "KEY_IN_USE"
    await service.rotate(KEK)
    await service.retire(KEK, 1)
    async with state.sessions() as session:
        rows = (await session.scalars(select(KeyRotation))).all()
    assert [(r.kind, r.to_version, r.finished_at is not None) for r in rows] == [(KEK, 2, True)]


async def test_blind_index_rotation_keeps_lookups_working_half_way(
    api: Api, state: AppState, settings: Settings
) -> None:
    people = [customer_data() for _ in range(12)]
    for person in people:
        await make_customer(state, phone=person.phone, owner_id="m-1")
    token = api.token("manager", subject="m-1", team="east")
    service = _rotation(state, settings, batch_size=3)

    half = await service.rotate(BLIND_INDEX, stop_after_batches=2)

    async with state.sessions() as session:
        versions = dict(
            (
                await session.execute(
                    select(Customer.bidx_key_version, func.count()).group_by(
                        Customer.bidx_key_version
                    )
                )
            ).all()
        )
    assert versions == {1: 6, 2: 6}
    for person in people:
        body = await api.gql(LOOKUP, {"phone": person.phone}, token=token, purpose="support")
        assert body["data"]["customerByContact"] is not None, person.phone
    duplicate = await api.gql(
        CREATE, {"input": {"name": "x", "phone": people[-1].phone}}, token=token, purpose="sales"
    )
    assert duplicate["data"]["createCustomer"]["code"] == "DUPLICATE_CUSTOMER"

    rest = await service.rotate(BLIND_INDEX)
    assert rest.resumed
    assert rest.to_version == half.to_version == 2
    await service.retire(BLIND_INDEX, 1)
    for person in people:
        body = await api.gql(LOOKUP, {"phone": person.phone}, token=token, purpose="support")
        assert body["data"]["customerByContact"] is not None, person.phone


def _cli(settings: Settings, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CUSTOS_DATABASE_URL": settings.database_url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_ENV": "dev",
        "COLUMNS": "120",
    }
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("custos")), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def _events_named(state: AppState, prefix: str) -> dict[str, int]:
    async with state.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.operation_name, func.count())
            .where(AuditEvent.operation_name.startswith(prefix))
            .group_by(AuditEvent.operation_name)
        )
        return {str(name): int(n) for name, n in rows.all()}


async def _rotation_row(state: AppState) -> KeyRotation | None:
    async with state.sessions() as session:
        return (await session.scalars(select(KeyRotation))).first()


@pytest.mark.slow
async def test_rotation_killed_half_way_resumes_without_loss(
    api: Api, state: AppState, settings: Settings
) -> None:
    for _ in range(60):
        await make_customer(state, owner_id="m-1")
    token = api.token("manager", subject="m-1", team="east")
    before = await _read_everything(api, token)

    process = _cli(settings, "keys", "rotate", "--batch-size", "3", "--pause", "0.2")
    deadline = time.monotonic() + 120  # a safety net for a hung child, not a measurement
    row = None
    while time.monotonic() < deadline:
        row = await _rotation_row(state)
        if row is not None and row.done >= 9:
            break
        await asyncio.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert row is not None
    assert row.finished_at is None
    interrupted = await _rotation_row(state)
    assert interrupted is not None
    assert interrupted.finished_at is None
    split = await _kek_versions(state)
    assert set(split) == {1, 2}  # really half-way: both versions in use
    # Killed before the end, yet audited: the rotation's start has its event.
    assert await _events_named(state, "keys rotate kek") == {"keys rotate kek started": 1}
    assert split[2] == interrupted.done
    assert await _read_everything(api, token) == before

    again = _cli(settings, "keys", "rotate", "--batch-size", "7")
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output
    assert "resumed" in output
    finished = await _rotation_row(state)
    assert finished is not None
    assert finished.finished_at is not None
    assert finished.done == 60
    assert await _events_named(state, "keys rotate kek") == {
        "keys rotate kek started": 1,
        "keys rotate kek": 1,
    }
    assert await _kek_versions(state) == {2: 60}
    assert LocalKeyring.load(settings.keyring, create=False).kek_versions() == [1, 2]
    assert await _read_everything(api, token) == before


async def test_kek_rotation_rewraps_console_second_factors(
    state: AppState, settings: Settings
) -> None:
    """Accounts' TOTP secrets are wrapped under the KEK like data keys: a rotation moves
    them to the new version (sealing any still in clear), the old version cannot be
    retired while one is under it, and codes keep working after retirement."""
    operator_caller = caller_for(operator(), state.services.authorizer)
    accounts = Accounts(state.services.clock, state.settings, state.services.vault)
    async with state.sessions() as session, session.begin():
        await state.services.authorizer.refresh(session, force=True)
        sealed = await accounts.add(
            session, operator_caller, username="gia", password=PASSWORD, roles=["agent"], totp=True
        )
        clear = await accounts.add(
            session, operator_caller, username="hal", password=PASSWORD, roles=["agent"]
        )
        clear.totp_secret = pyotp.random_base32()
    secret = await accounts.second_factors.secret(sealed)
    assert secret is not None
    assert sealed.totp_kek_version == 1
    service = _rotation(state, settings)
    with pytest.raises(ConflictError) as in_use:
        await service.retire(KEK, 1)
    assert in_use.value.code == "KEY_IN_USE"
    assert (await service.rotate(KEK)).finished
    await service.retire(KEK, 1)
    async with state.sessions() as session, session.begin():
        rows = {u.username: u for u in (await session.scalars(select(User))).all()}
        assert {n: (u.totp_kek_version, u.totp_secret) for n, u in rows.items()} == {
            "gia": (2, None),
            "hal": (2, None),
        }
        signed, _ = await accounts.sign_in(
            session,
            username="gia",
            password=PASSWORD,
            code=pyotp.TOTP(secret).now(),
            purposes=DEFAULT_PURPOSE,
        )
        assert signed is not None


async def test_a_second_factor_that_does_not_open_refuses_the_sign_in(state: AppState) -> None:
    """A sealed secret that is damaged (cut short, or another account's) never opens:
    the sign-in fails as with a wrong code, whatever code is given, and nothing crashes."""
    operator_caller = caller_for(operator(), state.services.authorizer)
    accounts = Accounts(state.services.clock, state.settings, state.services.vault)
    async with state.sessions() as session, session.begin():
        await state.services.authorizer.refresh(session, force=True)
        ivy = await accounts.add(
            session, operator_caller, username="ivy", password=PASSWORD, roles=["agent"], totp=True
        )
        jon = await accounts.add(
            session, operator_caller, username="jon", password=PASSWORD, roles=["agent"], totp=True
        )
        jon_code = pyotp.TOTP(await accounts.second_factors.secret(jon) or "").now()
    assert ivy.totp_sealed is not None
    assert jon.totp_sealed is not None
    for damaged in (jon.totp_sealed, ivy.totp_sealed[:5], b"", ivy.totp_sealed[:20]):
        async with state.sessions() as session, session.begin():
            user = await session.scalar(select(User).where(User.username == "ivy"))
            assert user is not None
            user.totp_sealed = damaged
        for code in (jon_code, None, "000000"):
            async with state.sessions() as session, session.begin():
                signed, _ = await accounts.sign_in(
                    session,
                    username="ivy",
                    password=PASSWORD,
                    code=code,
                    purposes=DEFAULT_PURPOSE,
                )
            assert signed is None, (damaged, code)
