"""Retention: expired sealed values are cleared by `custos retention run`, audited once."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from asyncio.subprocess import PIPE, STDOUT
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from server.app import AppState
from server.audit.recorder import AuditRecorder
from server.cli.context import operator
from server.cli.retention import apply_retention
from server.clock import FixedClock
from server.config import Settings
from server.data.base import new_id
from server.data.models import AuditAccess, AuditEvent, CustomerKey, Interaction
from server.privacy.retention import run_retention
from server.vault import FieldRef
from tests.factories import make_customer

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _interaction(state: AppState, customer_id: uuid.UUID, age_days: int) -> uuid.UUID:
    async with state.sessions() as session, session.begin():
        key_row = (
            await session.execute(select(CustomerKey).where(CustomerKey.customer_id == customer_id))
        ).scalar_one()
        key = state.services.vault.open_data_key(
            key_row.customer_id, key_row.kek_version, key_row.wrapped_dek
        )
        interaction_id = new_id()
        session.add(
            Interaction(
                id=interaction_id,
                customer_id=customer_id,
                occurred_at=NOW - timedelta(days=age_days),
                channel="phone",
                direction="inbound",
                kind="consultation",
                notes=state.services.vault.seal(
                    key, FieldRef("interactions", "notes", interaction_id), "private note"
                ),
            )
        )
    return interaction_id


async def test_retention_clears_only_expired_notes_and_audits_once(
    state: AppState, settings: Settings
) -> None:
    state.services.clock = FixedClock(NOW)
    customer_id = await make_customer(state)
    old = await _interaction(state, customer_id, 400)
    recent = await _interaction(state, customer_id, 10)
    configured = settings.model_copy(update={"retention_interaction_notes_days": 365})

    dry = await apply_retention(configured, dry_run=True, clock=state.services.clock)
    assert [(o.table, o.rows) for o in dry] == [("interactions", 1)]
    done = await apply_retention(configured, dry_run=False, clock=state.services.clock)
    assert [(o.table, o.rows) for o in done] == [("interactions", 1)]

    async with state.sessions() as session:
        notes = dict((await session.execute(select(Interaction.id, Interaction.notes))).all())
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.operation_name == "retention run")
            )
        ).all()
        accesses = (
            await session.scalars(select(AuditAccess).where(AuditAccess.action == "retention"))
        ).all()
    assert notes[old] is None
    assert notes[recent] is not None  # still sealed, still there
    assert len(events) == 1  # one CLI event, even though the dry run came first
    assert [(a.object_type, a.record_count, a.changed_fields) for a in accesses] == [
        ("interaction", 1, ["notes", "subject"])
    ]
    again = await apply_retention(configured, dry_run=False, clock=state.services.clock)
    assert [o.rows for o in again] == [0]


async def test_retention_without_configuration_does_nothing(
    state: AppState, settings: Settings
) -> None:
    customer_id = await make_customer(state)
    kept = await _interaction(state, customer_id, 4000)
    async with state.sessions() as session, session.begin():
        audit = AuditRecorder(operator())
        assert await run_retention(session, settings, audit, now=NOW, dry_run=False) == []
    async with state.sessions() as session:
        assert await session.scalar(select(Interaction.notes).where(Interaction.id == kept))


@pytest.mark.slow
async def test_retention_command_dry_run_then_run(state: AppState, settings: Settings) -> None:
    customer_id = await make_customer(state)
    # The command runs in its own process on the real clock: ten years old is expired.
    old = await _interaction(state, customer_id, 3650)
    recent = await _interaction(state, customer_id, -(datetime.now(UTC) - NOW).days)
    env = {
        **os.environ,
        "CUSTOS_DATABASE_URL": settings.database_url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_RETENTION_INTERACTION_NOTES_DAYS": "30",
        "COLUMNS": "200",
    }
    custos = str(Path(sys.executable).with_name("custos"))

    async def run(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            custos, "retention", "run", *args, env=env, stdout=PIPE, stderr=STDOUT
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output
        return output.decode()

    assert "would clear 1 rows" in await run("--dry-run")
    async with state.sessions() as session:
        assert await session.scalar(select(Interaction.notes).where(Interaction.id == old))
    assert "cleared 1 rows" in await run()
    async with state.sessions() as session:
        assert await session.scalar(select(Interaction.notes).where(Interaction.id == old)) is None
        assert await session.scalar(select(Interaction.notes).where(Interaction.id == recent))
