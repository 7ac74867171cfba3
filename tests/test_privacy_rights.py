"""Consent, data-subject export and erasure (crypto-shredding) through the API."""

from __future__ import annotations

import shutil
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from server.app import AppState
from server.data.engine import create_engine, create_session_factory
from server.data.models import (
    AuditAccess,
    Complaint,
    Customer,
    CustomerKey,
    Interaction,
    Order,
)
from server.demo import DemoBuilder
from server.errors import VaultError
from server.privacy.service import has_consent
from server.vault import FieldRef, LocalKeyring, Vault
from tests.conftest import Api, Database
from tests.factories import make_customer


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    # Erasure destroys secrets in the key store next to the keyring: keep it per test.
    return tmp_path / "keys" / "keyring.json"


GRANT = """
mutation Grant($id: ID!, $purpose: ConsentPurpose!, $source: String!) {
  grantConsent(customerId: $id, purpose: $purpose, source: $source) {
    __typename
    ... on ConsentChanged { consent { id purpose active source withdrawnAt } }
    ... on UserError { code }
  }
}
"""
WITHDRAW = """
mutation Withdraw($id: ID!, $purpose: ConsentPurpose!) {
  withdrawConsent(customerId: $id, purpose: $purpose) {
    __typename
    ... on ConsentChanged { consent { id active withdrawnAt } }
    ... on UserError { code }
  }
}
"""
CONSENTS = """
query C($id: ID!) { customer(id: $id) { id consents { purpose active source withdrawnAt } } }
"""


async def test_consent_grant_withdraw_regrant_keeps_history(api: Api, state: AppState) -> None:
    customer_id = await make_customer(state, owner_id="agent-1")
    agent = api.token("agent", subject="agent-1", team="east")
    args = {"id": str(customer_id), "purpose": "MARKETING", "source": "web-form"}

    first = (await api.gql(GRANT, args, token=agent))["data"]["grantConsent"]
    again = (await api.gql(GRANT, args, token=agent))["data"]["grantConsent"]
    assert first["__typename"] == "ConsentChanged"
    assert again["consent"]["id"] == first["consent"]["id"]  # an active grant is kept
    async with state.sessions() as session:
        assert await has_consent(session, [customer_id], "marketing") == {customer_id}

    withdrawn = await api.gql(WITHDRAW, {"id": args["id"], "purpose": "MARKETING"}, token=agent)
    assert withdrawn["data"]["withdrawConsent"]["consent"]["active"] is False
    async with state.sessions() as session:
        assert await has_consent(session, [customer_id], "marketing") == set()
    twice = await api.gql(WITHDRAW, {"id": args["id"], "purpose": "MARKETING"}, token=agent)
    assert twice["data"]["withdrawConsent"] == {"__typename": "UserError", "code": "NOT_GRANTED"}

    await api.gql(GRANT, {**args, "source": "phone"}, token=agent)
    await api.gql(GRANT, {**args, "purpose": "ANALYTICS"}, token=agent)
    body = await api.gql(CONSENTS, {"id": args["id"]}, token=agent)
    history = body["data"]["customer"]["consents"]
    assert [(c["purpose"], c["active"], c["source"]) for c in history] == [
        ("MARKETING", False, "web-form"),
        ("MARKETING", True, "phone"),
        ("ANALYTICS", True, "web-form"),
    ]
    assert history[0]["withdrawnAt"] is not None
    # A role without consent/read is refused at that field; the rest still answers.
    analyst = await api.gql(CONSENTS, {"id": args["id"]}, token=api.token("analyst"))
    assert analyst["data"] == {"customer": {"id": args["id"], "consents": None}}
    [denied] = analyst["errors"]
    assert denied["path"] == ["customer", "consents"]
    assert denied["extensions"]["code"] == "FORBIDDEN"
    async with state.sessions() as session:
        other = uuid.uuid4()
        assert await has_consent(session, [customer_id, other], "analytics") == {customer_id}
        assert await has_consent(session, [customer_id], "third_party_sharing") == set()


async def test_consent_needs_permission_and_row_scope(api: Api, state: AppState) -> None:
    theirs = await make_customer(state, owner_id="agent-2")
    args = {"id": str(theirs), "purpose": "MARKETING", "source": "web"}
    agent = api.token("agent", subject="agent-1", team="east")
    out_of_scope = await api.gql(GRANT, args, token=agent)
    assert out_of_scope["data"] is None
    assert out_of_scope["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    analyst = await api.gql(GRANT, args, token=api.token("analyst"))
    assert analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    blank = await api.gql(GRANT, {**args, "source": "  "}, token=api.token("manager", team="east"))
    assert blank["data"]["grantConsent"] == {"__typename": "UserError", "code": "BAD_SOURCE"}
    async with state.sessions() as session:
        assert await has_consent(session, [theirs], "marketing") == set()


EXPORT = "query X($id: ID!) { exportCustomerData(id: $id) }"
ERASE = """
mutation E($id: ID!) {
  eraseCustomer(id: $id) {
    __typename ... on CustomerErased { customerId erasedAt } ... on UserError { code }
  }
}
"""


async def _demo(state: AppState, count: int = 6) -> list[uuid.UUID]:
    async with state.sessions() as session, session.begin():
        await DemoBuilder(state.services.vault, seed=11).run(session, count)
    async with state.sessions() as session:
        # A customer with interactions, complaints and orders: the richest file.
        stmt = (
            select(Customer.id)
            .join(Interaction, Interaction.customer_id == Customer.id)
            .join(Complaint, Complaint.customer_id == Customer.id)
            .join(Order, Order.customer_id == Customer.id)
            .distinct()
        )
        return list((await session.scalars(stmt)).all())


async def test_export_returns_everything_decrypted_and_is_audited(
    api: Api, state: AppState
) -> None:
    customer_id = await make_customer(state, phone="13912345678", address="上海市长乐路1号")
    agent = api.token("agent", subject="agent-1", team="east")
    await api.gql(
        GRANT, {"id": str(customer_id), "purpose": "ANALYTICS", "source": "app"}, token=agent
    )
    [rich] = (await _demo(state, 6))[:1]
    compliance = api.token("compliance", subject="c-1")

    body = await api.gql(EXPORT, {"id": str(customer_id)}, token=compliance, purpose="compliance")
    data = body["data"]["exportCustomerData"]
    assert data["customer"]["phone"] == "+8613912345678"
    assert data["customer"]["address"] == "上海市长乐路1号"
    assert "phone_bidx" not in data["customer"]
    assert [c["purpose"] for c in data["consents"]] == ["analytics"]
    assert data["undecryptable"] == []

    full = await api.gql(EXPORT, {"id": str(rich)}, token=compliance, purpose="compliance")
    export = full["data"]["exportCustomerData"]
    assert export["interactions"]
    assert all(isinstance(i["notes"], str) and i["notes"] for i in export["interactions"])
    assert export["complaints"][0]["description"] == "Customer reported a problem"
    assert export["orders"]
    assert export["order_items"]
    assert {item["order_id"] for item in export["order_items"]} <= {
        o["id"] for o in export["orders"]
    }
    async with state.sessions() as session:
        access = (
            await session.scalars(select(AuditAccess).where(AuditAccess.action == "export"))
        ).all()
    assert len(access) == 2
    assert "customers.phone" in access[0].changed_fields
    assert "interactions.notes" in access[1].changed_fields

    denied = await api.gql(EXPORT, {"id": str(customer_id)}, token=agent, purpose="support")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert denied["data"] is None


async def _snapshot(state: AppState, customer_id: uuid.UUID) -> dict[str, Any]:
    """What a backup holds of one person: the wrapped key and every ciphertext."""
    async with state.sessions() as session:
        key = (
            await session.execute(
                select(CustomerKey.kek_version, CustomerKey.wrapped_dek).where(
                    CustomerKey.customer_id == customer_id
                )
            )
        ).one()
        sealed: list[tuple[str, str, uuid.UUID, bytes]] = []
        for table in ("customers", "interactions", "complaints", "complaint_events"):
            model_table = Customer.metadata.tables[table]
            owner = model_table.c.id if table == "customers" else model_table.c.customer_id
            columns = [
                c for c in model_table.c if getattr(c.info.get("data_class"), "sealed", False)
            ]
            rows = (
                await session.execute(
                    select(model_table.c.id, *columns).where(owner == customer_id)
                )
            ).all()
            for row in rows:
                for column in columns:
                    value = getattr(row, column.key)
                    if value is not None:
                        sealed.append((table, column.key, row.id, value))
    return {"kek_version": key.kek_version, "wrapped": key.wrapped_dek, "sealed": sealed}


def _decrypt_all(vault: Vault, customer_id: uuid.UUID, snapshot: dict[str, Any]) -> int:
    key = vault.open_data_key(customer_id, snapshot["kek_version"], snapshot["wrapped"])
    for table, column, row_id, ciphertext in snapshot["sealed"]:
        vault.reveal(key, FieldRef(table, column, row_id), ciphertext)
    return len(snapshot["sealed"])


async def _aggregates(state: AppState) -> tuple[int, Decimal, int, int]:
    async with state.sessions() as session:
        orders, total = (await session.execute(select(func.count(), func.sum(Order.total)))).one()
        interactions = await session.scalar(select(func.count()).select_from(Interaction))
        customers = await session.scalar(select(func.count()).select_from(Customer))
    return int(orders), Decimal(total), int(interactions or 0), int(customers or 0)


async def test_erasure_shreds_live_data_and_backups_keeps_aggregates(
    api: Api, state: AppState, settings: Any
) -> None:
    [person, *others] = await _demo(state, 8)
    backup = await _snapshot(state, person)
    # Before erasure the backup opens (so the checks below can fail), with a keyring
    # loaded afresh as a restore would.
    restore_keys = LocalKeyring.load(settings.keyring, create=False)
    assert _decrypt_all(Vault(restore_keys), person, backup) > 5
    before = await _aggregates(state)
    compliance = api.token("compliance", subject="c-1")

    body = await api.gql(ERASE, {"id": str(person)}, token=compliance, purpose="compliance")

    assert body["data"]["eraseCustomer"]["__typename"] == "CustomerErased"
    assert await _aggregates(state) == before
    # The pre-erasure copy no longer opens, with any keyring instance.
    for vault in (Vault(LocalKeyring.load(settings.keyring, create=False)), state.services.vault):
        with pytest.raises(VaultError):
            _decrypt_all(vault, person, backup)
    # Nor does the live database: no wrapped key, no blind index, marked erased.
    async with state.sessions() as session:
        key = (
            await session.execute(select(CustomerKey).where(CustomerKey.customer_id == person))
        ).scalar_one()
        row = (await session.execute(select(Customer).where(Customer.id == person))).scalar_one()
    assert key.wrapped_dek is None
    assert key.shredded_at is not None
    assert row.erased_at is not None
    assert (row.phone_bidx, row.email_bidx, row.national_id_bidx) == (None, None, None)
    live = await _snapshot(state, person)
    assert live["sealed"]  # the ciphertexts are still there, and dead:
    with pytest.raises(VaultError):
        state.services.vault.open_data_key(person, live["kek_version"], live["wrapped"])
    # Everyone else still decrypts.
    other_backup = await _snapshot(state, others[0])
    assert _decrypt_all(state.services.vault, others[0], other_backup) > 0

    again = await api.gql(ERASE, {"id": str(person)}, token=compliance, purpose="compliance")
    assert again["data"]["eraseCustomer"] == {"__typename": "UserError", "code": "ALREADY_ERASED"}
    gone = await api.gql(
        "query($id: ID!) { customer(id: $id) { id } }", {"id": str(person)}, token=compliance
    )
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    export = await api.gql(EXPORT, {"id": str(person)}, token=compliance, purpose="compliance")
    assert export["errors"][0]["extensions"]["code"] == "ERASED"
    async with state.sessions() as session:
        assert await has_consent(session, [person], "marketing") == set()
    async with state.sessions() as session:
        erased = (
            await session.scalars(select(AuditAccess).where(AuditAccess.action == "erase"))
        ).all()
    assert len(erased) == 1
    assert "interactions.notes" in erased[0].changed_fields


async def test_only_compliance_erases(api: Api, state: AppState) -> None:
    customer_id = await make_customer(state, owner_id="agent-1")
    for token in (api.token("agent", subject="agent-1", team="east"), api.token("admin")):
        body = await api.gql(ERASE, {"id": str(customer_id)}, token=token)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with state.sessions() as session:
        row = (
            await session.execute(select(Customer).where(Customer.id == customer_id))
        ).scalar_one()
    assert row.erased_at is None
    assert row.phone_bidx is not None


# A file copy is the SQLite backup; PostgreSQL backups are covered by the snapshot above.
@pytest.mark.parametrize("backend_target", ["sqlite"], indirect=True)
async def test_erasure_reaches_a_file_copy_of_the_sqlite_database(
    api: Api, state: AppState, database: Database, settings: Any, tmp_path: Path
) -> None:
    assert database.backend == "sqlite"
    [person, *_] = await _demo(state, 4)
    live = Path(settings.database_url.split("///", 1)[1])
    copy = tmp_path / "backup.db"
    # A file-level backup of a WAL database: the main file and its write-ahead log.
    shutil.copyfile(live, copy)
    wal = live.with_name(live.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))

    async def from_copy() -> dict[str, Any]:
        engine = create_engine(f"sqlite+aiosqlite:///{copy}")
        try:
            copy_state = AppState.__new__(AppState)
            copy_state.sessions = create_session_factory(engine)
            return await _snapshot(copy_state, person)
        finally:
            await engine.dispose()

    assert _decrypt_all(
        Vault(LocalKeyring.load(settings.keyring, create=False)), person, await from_copy()
    )
    body = await api.gql(
        ERASE, {"id": str(person)}, token=api.token("compliance"), purpose="compliance"
    )
    assert body["data"]["eraseCustomer"]["__typename"] == "CustomerErased"

    restored = await from_copy()
    assert restored["wrapped"] is not None  # the copy still holds the wrapped key...
    with pytest.raises(VaultError):  # ...which no longer opens
        _decrypt_all(Vault(LocalKeyring.load(settings.keyring, create=False)), person, restored)
