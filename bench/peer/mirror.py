"""The peer's database: the bench's customers and interactions, decrypted, in plain tables.

What a user would pick instead of Custos: the same rows and the same indexes, but every
sealed column as plain text, no blind indexes, no data keys, no audit tables, no policies.
Built from Custos's own models, so a column added there is mirrored too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, MetaData, Table, Text, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.seed import PG_ADMIN_URL, _pg_admin
from server.data.engine import create_engine
from server.data.models import Customer, CustomerKey, Interaction
from server.vault import FieldRef, Vault

BATCH = 2000
# Columns that exist only because the data is encrypted.
CRYPTO_ONLY = ("_bidx", "bidx_key_version")


@dataclass
class Mirror:
    name: str
    url: str  # postgresql+asyncpg://…
    customers: int
    interactions: int

    @property
    def libpq_url(self) -> str:
        """The same database as a plain postgres:// URL (for the peer)."""
        return "postgres://" + self.url.split("://", 1)[1]


def _sealed(column: Column[Any]) -> bool:
    data_class = column.info.get("data_class")
    return bool(data_class is not None and data_class.sealed)


def plain_table(source: Table, metadata: MetaData) -> Table:
    """`source` with sealed columns as text and crypto-only columns left out."""
    columns: list[Column[Any]] = []
    for col in source.columns:
        if col.name.endswith(CRYPTO_ONLY):
            continue
        foreign = [
            ForeignKey(f"{fk.column.table.name}.{fk.column.name}")
            for fk in col.foreign_keys
            if fk.column.table.name in ("customers", "interactions")
        ]
        columns.append(
            Column(
                col.name,
                Text() if _sealed(col) else col.type,
                *foreign,
                primary_key=col.primary_key,
                nullable=col.nullable,
            )
        )
    table = Table(source.name, metadata, *columns)
    for index in source.indexes:
        names = [c.name for c in index.columns]
        if all(n in table.c for n in names):
            Index(index.name, *(table.c[n] for n in names))
    return table


async def _copy(
    source: AsyncConnection,
    target: AsyncConnection,
    model: Table,
    plain: Table,
    key_column: Any,
    reveal: Callable[[str, str, uuid.UUID, uuid.UUID, Any, bytes, bytes], str],
) -> int:
    """Copy `model` into `plain` in id order, revealing every sealed column."""
    sealed = [c.name for c in model.columns if _sealed(c) and c.name in plain.c]
    wanted = [model.c[c.name] for c in plain.columns]
    copied = 0
    last: uuid.UUID | None = None
    while True:
        stmt = (
            select(
                *wanted,
                key_column.label("key_owner"),
                CustomerKey.kek_version,
                CustomerKey.wrapped_dek,
            )
            .join(CustomerKey, CustomerKey.customer_id == key_column)
            .order_by(model.c.id)
            .limit(BATCH)
        )
        if last is not None:
            stmt = stmt.where(model.c.id > last)
        rows = (await source.execute(stmt)).all()
        if not rows:
            return copied
        values: list[dict[str, Any]] = []
        for row in rows:
            item = {c.name: row[i] for i, c in enumerate(plain.columns)}
            owner = row.key_owner
            for name in sealed:
                if item[name] is not None:
                    item[name] = reveal(
                        model.name,
                        name,
                        item["id"],
                        owner,
                        row.kek_version,
                        row.wrapped_dek,
                        item[name],
                    )
            values.append(item)
        await target.execute(insert(plain), values)
        copied += len(values)
        last = values[-1]["id"]


async def build_mirror(source_url: str, vault: Vault) -> Mirror:
    """Create a plaintext copy of the source database's customers and interactions."""
    name = f"custos_peer_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    metadata = MetaData()
    customers = plain_table(Customer.__table__, metadata)  # type: ignore[arg-type]
    interactions = plain_table(Interaction.__table__, metadata)  # type: ignore[arg-type]

    def reveal(
        table: str,
        column: str,
        row_id: uuid.UUID,
        customer_id: uuid.UUID,
        kek_version: Any,
        wrapped: bytes,
        ciphertext: bytes,
    ) -> str:
        key = vault.open_data_key(customer_id, kek_version, wrapped)
        return vault.reveal(key, FieldRef(table, column, row_id), ciphertext)

    source_engine = create_engine(source_url, null_pool=True)
    target_engine = create_engine(url, null_pool=True)
    try:
        async with source_engine.connect() as source, target_engine.begin() as target:
            await target.run_sync(metadata.create_all)
            n_customers = await _copy(
                source,
                target,
                Customer.__table__,  # type: ignore[arg-type]
                customers,
                Customer.id,
                reveal,
            )
            n_interactions = await _copy(
                source,
                target,
                Interaction.__table__,  # type: ignore[arg-type]
                interactions,
                Interaction.customer_id,
                reveal,
            )
        async with target_engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await source_engine.dispose()
        await target_engine.dispose()
    return Mirror(name, url, n_customers, n_interactions)


async def drop_mirror(mirror: Mirror) -> None:
    await _pg_admin(f'DROP DATABASE IF EXISTS "{mirror.name}" WITH (FORCE)')
