"""Benchmark databases: created for the run, migrated, seeded in bulk, dropped after.

Customers are built by `CustomerService.seal_new` (the one place a customer row is
built) and written with multi-row INSERTs, not one API call per row.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from server.authz.authorizer import Authorizer
from server.customer.service import CustomerService, NewCustomer
from server.data.base import new_id
from server.data.engine import create_engine
from server.data.migrate import upgrade_to_head
from server.data.models import Customer, CustomerKey, Interaction
from server.vault import DataKey, FieldRef, Vault
from server.vault.keyring import LocalKeyring
from server.vault.normalise import luhn_is_valid, national_id_check_char

PG_ADMIN_URL = os.environ.get(
    "CUSTOS_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
# The agent whose own customers the list scenarios read.
AGENT = "agent-bench"
TEAM = "east"
BATCH = 1000


@dataclass
class BenchDatabase:
    backend: str
    url: str
    customers: int
    agent_ids: list[uuid.UUID] = field(default_factory=list)
    agent_phone: str = ""
    pg_name: str | None = None


def _national_id(n: int) -> str:
    first17 = f"110101{1960 + n % 40}0101{n % 1000:03d}"
    return first17 + national_id_check_char(first17)


def _bank_card(n: int) -> str:
    body = f"622202{n:010d}"[:18]
    return next(body + str(d) for d in range(10) if luhn_is_valid(body + str(d)))


NESTED_CUSTOMERS = 50
NESTED_INTERACTIONS = 20


def _interactions(vault: Vault, keys: dict[uuid.UUID, DataKey]) -> list[dict[str, Any]]:
    """20 interactions with sealed notes for each given customer, a day apart."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for customer_id, key in keys.items():
        for i in range(NESTED_INTERACTIONS):
            interaction_id = new_id()
            where = FieldRef("interactions", "notes", interaction_id)
            rows.append(
                {
                    "id": interaction_id,
                    "customer_id": customer_id,
                    "occurred_at": start + timedelta(days=i),
                    "channel": "phone",
                    "direction": "outbound",
                    "kind": "follow_up",
                    "complex": False,
                    "agent_id": AGENT,
                    "notes": vault.seal(key, where, f"Call {i}: asked about delivery"),
                }
            )
    return rows


async def _seed(url: str, keyring: Path, customers: int, owned: int) -> BenchDatabase:
    vault = Vault(LocalKeyring.load(keyring, create=True))
    service = CustomerService(vault)
    rng = random.Random(8)
    engine = create_engine(url, null_pool=True)
    db = BenchDatabase("", url, customers)
    columns = [c.key for c in Customer.__table__.columns]
    # The agent's first customers get a history, for the nested 50 x 20 scenario.
    nested_keys: dict[uuid.UUID, DataKey] = {}
    try:
        async with engine.begin() as conn:
            from sqlalchemy.ext.asyncio import AsyncSession

            async with AsyncSession(bind=conn) as session:
                await Authorizer().ensure_seeded(session)
                await session.flush()
            for start in range(0, customers, BATCH):
                customer_rows: list[dict[str, Any]] = []
                key_rows: list[dict[str, Any]] = []
                for n in range(start, min(start + BATCH, customers)):
                    mine = n % max(1, customers // owned) == 0 and len(db.agent_ids) < owned
                    phone = f"139{n:08d}"
                    sealed = service.seal_new(
                        NewCustomer(
                            name=f"客户{n}",
                            phone=phone,
                            email=f"c{n}@example.com",
                            national_id=_national_id(n),
                            bank_card=_bank_card(n),
                            address=f"上海市长安路{n}号",
                            region=rng.choice(["上海", "北京", "广州"]),
                            industry=rng.choice(["retail", "finance", "education"]),
                            tier=rng.choice(["high", "mid", "low"]),
                            lifecycle=rng.choice(["new", "active", "at_risk"]),
                        ),
                        owner_id=AGENT if mine else f"agent-{n % 50}",
                        team=TEAM,
                    )
                    if mine:
                        db.agent_ids.append(sealed.customer.id)
                        db.agent_phone = phone
                        if len(nested_keys) < NESTED_CUSTOMERS:
                            nested_keys[sealed.customer.id] = sealed.data_key
                    values = {c: getattr(sealed.customer, c) for c in columns}
                    values["updated_at"] = values["created_at"]
                    customer_rows.append(values)
                    key_rows.append(
                        {
                            "customer_id": sealed.customer.id,
                            "wrapped_dek": sealed.key.wrapped_dek,
                            "kek_version": sealed.key.kek_version,
                            "created_at": values["created_at"],
                        }
                    )
                await conn.execute(insert(Customer), customer_rows)
                await conn.execute(insert(CustomerKey), key_rows)
            # The first customers of all (in the list's order) get a history too: the nested
            # scenario as a manager (team scope, every customer) reads them, and so does the
            # peer (bench.peer).
            first = await conn.execute(
                select(Customer.id, CustomerKey.kek_version, CustomerKey.wrapped_dek)
                .join(CustomerKey, CustomerKey.customer_id == Customer.id)
                .order_by(Customer.created_at, Customer.id)
                .limit(NESTED_CUSTOMERS)
            )
            for row in first:
                if row.id not in nested_keys:
                    nested_keys[row.id] = vault.open_data_key(
                        row.id, row.kek_version, row.wrapped_dek
                    )
            await conn.execute(insert(Interaction), _interactions(vault, nested_keys))
        async with engine.connect() as conn:
            if url.startswith("postgresql"):
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    db.agent_ids.sort()
    return db


async def _pg_admin(statement: str) -> None:
    engine = create_engine(PG_ADMIN_URL, null_pool=True)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def create_database(
    backend: str, workdir: Path, keyring: Path, customers: int, owned: int
) -> BenchDatabase:
    """A fresh, migrated, seeded database for this run."""
    if backend == "sqlite":
        path = workdir / f"bench-{customers}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
        pg_name = None
    else:
        pg_name = f"custos_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_name}"
    upgrade_to_head(url)
    db = asyncio.run(_seed(url, keyring, customers, owned))
    db.backend = backend
    db.pg_name = pg_name
    return db


def drop_database(db: BenchDatabase) -> None:
    if db.pg_name is not None:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{db.pg_name}" WITH (FORCE)'))
