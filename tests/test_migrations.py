"""Migrations: up from empty and back on both databases; the models match the migrations."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import server.data.models  # noqa: F401
from server.data.base import Base, DataClass, only_on_its_dialect
from server.data.engine import create_engine
from server.data.migrate import alembic_config
from tests.conftest import IN_CI, pg_admin, pg_reachable, pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if not pg_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL is required when CI=true")
        pytest.skip("PostgreSQL is not reachable")
    name = f"custos_migr_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    yield pg_url(name)
    asyncio.run(pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def _tables_and_diff(url: str) -> tuple[set[str], list[object]]:
    async def run() -> tuple[set[str], list[object]]:
        engine = create_engine(url, null_pool=True)

        def inspect_sync(conn: Connection) -> tuple[set[str], list[object]]:
            tables = set(inspect(conn).get_table_names())
            opts = {"compare_type": True, "include_object": only_on_its_dialect(conn.dialect.name)}
            context = MigrationContext.configure(conn, opts=opts)
            return tables, list(compare_metadata(context, Base.metadata))

        async with engine.connect() as conn:
            result = await conn.run_sync(inspect_sync)
        await engine.dispose()
        return result

    return asyncio.run(run())


def test_upgrade_downgrade_upgrade_and_models_match(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    tables, diff = _tables_and_diff(empty_database)
    assert _tables_for(empty_database) <= tables
    assert diff == []
    command.downgrade(config, "base")
    tables, _ = _tables_and_diff(empty_database)
    assert tables <= {"alembic_version"}
    command.upgrade(config, "head")
    tables, _ = _tables_and_diff(empty_database)
    assert _tables_for(empty_database) <= tables


def _tables_for(url: str) -> set[str]:
    """The model's tables that exist on this database (some exist on one only)."""
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    return {
        t.name for t in Base.metadata.sorted_tables if t.info.get("dialect", dialect) == dialect
    }


def test_every_column_declares_a_data_class_and_sealed_ones_are_bytes() -> None:
    from sqlalchemy import LargeBinary

    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            data_class = column.info.get("data_class")
            assert isinstance(data_class, DataClass), f"{table.name}.{column.name}"
            if data_class.sealed:
                assert isinstance(column.type, LargeBinary), f"{table.name}.{column.name}"


def test_customer_owned_tables_carry_customer_id() -> None:
    owned = {
        "customer_keys",
        "consents",
        "interactions",
        "complaints",
        "complaint_events",
        "orders",
        "order_items",
        "order_status_events",
        "loyalty_entries",
        "referrals",
        "campaign_recipients",
    }
    for name in owned:
        assert "customer_id" in Base.metadata.tables[name].columns, name
