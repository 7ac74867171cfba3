"""No sensitive value reaches the disk in plaintext: scan the raw SQLite file and its WAL,
and a pg_dump of the PostgreSQL database, for every sealed value and its normal forms.

The values are collected by opening every sealed column of every table through the
vault after seeding, so the scan covers what the demo builder and the API wrote. Full
values and their normalised forms are searched in the raw bytes; short forms (the masks
that carry a last-4) only in the text dump, where random ciphertext bytes cannot
produce them by chance (bytea is dumped as hex).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from server.app import AppState
from server.data.base import Base, DataClass
from server.data.models import CustomerKey
from server.demo import DemoBuilder
from server.vault import FieldRef
from server.vault.masking import mask_bank_card, mask_national_id, mask_phone
from tests.conftest import PG_HOST, PG_PORT, PG_USER, Api, Database
from tests.factories import make_customer

CREATE = """
mutation New($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on CustomerCreated { customer { id } } }
}
"""


async def _seed(api: Api, state: AppState) -> None:
    async with state.sessions() as session, session.begin():
        await DemoBuilder(state.services.vault, seed=5).run(session, 40)
    await make_customer(state, email="Mixed.Case@Example.COM", address="杭州市西湖路88号")
    token = api.token("manager", subject="m-1", team="east")
    created = await api.gql(
        CREATE,
        {
            "input": {
                "name": "Quentin Vault",
                "phone": "+86 139-8765-4321",
                "email": "Quentin.Vault@Example.org",
                "address": "Room 1201, 99 Scanner Road",
            }
        },
        token=token,
    )
    assert created["data"]["createCustomer"]["__typename"] == "CustomerCreated"
    customer_id = created["data"]["createCustomer"]["customer"]["id"]
    for mutation in (
        'addContactPoint(customerId: $id, input: {kind: WECHAT, value: "quentin_vault_88"})',
        'addContactPoint(customerId: $id, input: {kind: CONTACT_PERSON, personName: "Petra '
        'Plainfield", value: "010-6552 9988"})',
        'addCustomerNote(customerId: $id, body: "Prefers calls after lunch, ask for Petra")',
    ):
        added = await api.gql(
            f"mutation($id: ID!) {{ {mutation} {{ __typename }} }}",
            {"id": customer_id},
            token=token,
        )
        assert "errors" not in added, added
        assert next(iter(added["data"].values()))["__typename"] != "UserError", added


async def _sealed_plaintexts(state: AppState) -> dict[str, set[str]]:
    """Every sealed value in the database, opened through the vault, by column."""
    vault = state.services.vault
    found: dict[str, set[str]] = {}
    async with state.sessions() as session:
        keys = {
            row.customer_id: vault.open_data_key(row.customer_id, row.kek_version, row.wrapped_dek)
            for row in (await session.execute(select(CustomerKey))).scalars()
        }
        for table in Base.metadata.sorted_tables:
            sealed = [
                c
                for c in table.c
                if isinstance(c.info.get("data_class"), DataClass) and c.info["data_class"].sealed
            ]
            if not sealed:
                continue
            owner = table.c.id if table.name == "customers" else table.c.customer_id
            rows = (await session.execute(select(table.c.id, owner.label("owner"), *sealed))).all()
            for row in rows:
                for column in sealed:
                    value = getattr(row, column.key)
                    if value is not None:
                        ref = FieldRef(table.name, column.key, row.id)
                        text = vault.reveal(keys[row.owner], ref, value)
                        found.setdefault(f"{table.name}.{column.key}", set()).add(text)
    return found


def _forms(column: str, value: str) -> tuple[set[str], set[str]]:
    """(full forms searched everywhere, short forms searched only in text dumps)."""
    full = {value, value.lower(), value.upper()}
    short: set[str] = set()
    digits = re.sub(r"\D", "", value)
    name = column.split(".", 1)[1]
    if name == "phone":
        full |= {digits, digits[-11:], value.lstrip("+")}
        short.add(mask_phone(value))
    elif name == "national_id":
        short.add(mask_national_id(value))
    elif name == "bank_card":
        full.add(" ".join(digits[i : i + 4] for i in range(0, len(digits), 4)))
        short.add(mask_bank_card(value))
    elif name == "birthday":
        full.add(digits)
    return {f for f in full if len(f.encode()) >= 6}, short


def _needles(values: dict[str, set[str]]) -> tuple[set[str], set[str]]:
    full: set[str] = set()
    short: set[str] = set()
    for column, texts in values.items():
        for text in texts:
            f, s = _forms(column, text)
            full |= f
            short |= s
    return full, short


def _hits(haystack: bytes, needles: set[str]) -> list[str]:
    return sorted(n for n in needles if n.encode() in haystack)


async def test_no_plaintext_on_disk(
    api: Api, state: AppState, database: Database, tmp_path: Path
) -> None:
    await _seed(api, state)
    values = await _sealed_plaintexts(state)
    # The scan covers every kind of sensitive value, or it proves nothing.
    for column in (
        "customers.name",
        "customers.phone",
        "customers.email",
        "customers.national_id",
        "customers.bank_card",
        "customers.address",
        "customers.birthday",
        "interactions.notes",
        "complaints.description",
    ):
        assert values.get(column), column
    assert "+8613987654321" in values["customers.phone"]
    full, short = _needles(values)
    assert "8613987654321" in full
    assert "quentin.vault@example.org" in full

    if database.backend == "sqlite":
        path = Path(database.url.split("///", 1)[1])
        files = [path, path.with_name(path.name + "-wal")]
        scanned = 0
        for file in files:
            if file.exists():
                raw = file.read_bytes()
                scanned += len(raw)
                assert _hits(raw, full) == [], file.name
        assert scanned > 100_000
        # The scan itself can find things: a plaintext planted in a copy is reported.
        planted = tmp_path / "planted.db"
        shutil.copyfile(path, planted)
        with planted.open("ab") as handle:
            handle.write(b"+8613987654321")
        assert "+8613987654321" in _hits(planted.read_bytes(), full)
    else:
        if shutil.which("pg_dump") is None:
            pytest.fail("pg_dump is required for the PostgreSQL plaintext scan")
        name = database.url.rsplit("/", 1)[1]
        process = await asyncio.create_subprocess_exec(
            *("pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", name),
            stdout=asyncio.subprocess.PIPE,
        )
        dump, _ = await process.communicate()
        assert process.returncode == 0
        assert b"COPY public.customers" in dump
        assert _hits(dump, full) == []
        assert _hits(dump, short) == []
        # Planted in the dump text, a mask is found: the short-form scan can fail.
        assert _hits(dump + mask_phone("+8613987654321").encode(), short) == ["139****4321"]
