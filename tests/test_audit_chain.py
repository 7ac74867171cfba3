"""Tamper evidence, checkpoints, retention and "no audit, no data".

Tamper tests play the attacker inside one transaction: lift the append-only triggers
(dropped on SQLite; `session_replication_role = replica` on PostgreSQL), change one row,
verify in the same transaction, then roll everything back.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import AppState
from server.audit.recorder import AuditRecorder
from server.audit.verify import VerifyReport, verify_chain
from server.auth.principal import Principal
from server.data.models import (
    AuditAccess,
    AuditAccessRecord,
    AuditCheckpoint,
    AuditEvent,
    Customer,
)
from tests.conftest import Api, Database
from tests.factories import make_customer

CREATE = """
mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on CustomerCreated { customer { id } } }
}
"""
LIST = "query List { customers(first: 50) { totalCount nodes { id name phone } } }"
SQLITE_TRIGGERS = [
    f"{table}_no_{verb}"
    for table in ("audit_events", "audit_accesses", "audit_access_records")
    for verb in ("update", "delete")
]


async def _produce_events(api: Api, state: AppState) -> list[tuple[int, uuid.UUID]]:
    """A varied trail: mutations, a list read, a denial; returns (seq, id) in order."""
    agent = api.token("agent", subject="agent-1", team="east")
    for n in range(3):
        await api.gql(
            CREATE,
            {"input": {"name": f"客户{n}", "phone": f"1390000000{n}"}},
            token=agent,
            purpose="sales",
        )
    await api.gql(LIST, token=agent, purpose="support")
    await api.gql(LIST, token=api.token("integrator"), purpose="support")
    async with state.sessions() as session:
        rows = (await session.execute(select(AuditEvent.seq, AuditEvent.id))).all()
    return sorted((int(r.seq), r.id) for r in rows)


@asynccontextmanager
async def _as_attacker(state: AppState, database: Database) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        await session.begin()
        if database.backend == "postgresql":
            await session.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            for trigger in SQLITE_TRIGGERS:
                await session.execute(text(f"DROP TRIGGER {trigger}"))
        try:
            yield session
        finally:
            await session.rollback()


async def _tampered(
    state: AppState, database: Database, attack: Callable[[AsyncSession], Awaitable[Any]]
) -> VerifyReport:
    async with _as_attacker(state, database) as session:
        await attack(session)
        return await verify_chain(session, state.services.audit.signer, batch_size=2)


async def _delete_event(session: AsyncSession, event_id: uuid.UUID) -> None:
    accesses = select(AuditAccess.id).where(AuditAccess.event_id == event_id)
    await session.execute(
        delete(AuditAccessRecord).where(AuditAccessRecord.access_id.in_(accesses))
    )
    await session.execute(delete(AuditAccess).where(AuditAccess.event_id == event_id))
    await session.execute(delete(AuditEvent).where(AuditEvent.id == event_id))


async def test_an_intact_chain_verifies(api: Api, state: AppState) -> None:
    events = await _produce_events(api, state)
    async with state.sessions() as session:
        report = await verify_chain(session, state.services.audit.signer, batch_size=2)
    assert report.ok
    assert report.checked == len(events) == events[-1][0]


async def test_altering_any_event_is_detected_at_that_event(
    api: Api, state: AppState, database: Database
) -> None:
    for seq, event_id in await _produce_events(api, state):

        async def attack(session: AsyncSession, seq: int = seq) -> None:
            await session.execute(
                update(AuditEvent).where(AuditEvent.seq == seq).values(subject="someone-else")
            )

        report = await _tampered(state, database, attack)
        assert report.problem is not None
        assert (report.problem.kind, report.problem.seq) == ("altered", seq)
        assert report.problem.event_id == event_id


async def test_altering_any_access_or_record_id_is_detected_at_its_event(
    api: Api, state: AppState, database: Database
) -> None:
    events = dict(await _produce_events(api, state))
    async with state.sessions() as session:
        accesses = (await session.execute(select(AuditAccess.id, AuditAccess.event_id))).all()
        records = (
            await session.execute(select(AuditAccessRecord.access_id, AuditAccessRecord.record_id))
        ).all()
    seq_of = {event_id: seq for seq, event_id in events.items()}
    event_of_access = {a.id: a.event_id for a in accesses}
    assert accesses
    assert records
    for access in accesses:

        async def alter_access(session: AsyncSession, access_id: int = access.id) -> None:
            await session.execute(
                update(AuditAccess).where(AuditAccess.id == access_id).values(action="export")
            )

        report = await _tampered(state, database, alter_access)
        assert report.problem is not None
        assert report.problem.kind == "altered"
        assert report.problem.seq == seq_of[access.event_id]
    for record in records:
        expected_seq = seq_of[event_of_access[record.access_id]]

        async def swap_id(session: AsyncSession, r: Any = record) -> None:
            await session.execute(
                update(AuditAccessRecord)
                .where(
                    AuditAccessRecord.access_id == r.access_id,
                    AuditAccessRecord.record_id == r.record_id,
                )
                .values(record_id=uuid.uuid4())
            )

        async def drop_id(session: AsyncSession, r: Any = record) -> None:
            await session.execute(
                delete(AuditAccessRecord).where(
                    AuditAccessRecord.access_id == r.access_id,
                    AuditAccessRecord.record_id == r.record_id,
                )
            )

        for attack in (swap_id, drop_id):
            report = await _tampered(state, database, attack)
            assert report.problem is not None
            assert (report.problem.kind, report.problem.seq) == ("altered", expected_seq)


async def test_removing_any_event_is_detected_at_its_seq(
    api: Api, state: AppState, database: Database
) -> None:
    for seq, event_id in await _produce_events(api, state):

        async def attack(session: AsyncSession, event_id: uuid.UUID = event_id) -> None:
            await _delete_event(session, event_id)

        report = await _tampered(state, database, attack)
        assert report.problem is not None
        assert (report.problem.kind, report.problem.seq) == ("removed", seq)


async def test_reordering_any_two_neighbours_is_detected_at_the_first(
    api: Api, state: AppState, database: Database
) -> None:
    events = await _produce_events(api, state)
    for (seq, _), (next_seq, next_id) in itertools.pairwise(events):

        async def attack(session: AsyncSession, a: int = seq, b: int = next_seq) -> None:
            for old, new in ((a, -a), (b, a), (-a, b)):
                await session.execute(
                    update(AuditEvent).where(AuditEvent.seq == old).values(seq=new)
                )

        report = await _tampered(state, database, attack)
        assert report.problem is not None
        assert (report.problem.kind, report.problem.seq) == ("reordered", seq)
        assert report.problem.event_id == next_id


async def test_a_rewritten_chain_disagrees_with_its_signed_checkpoint(
    api: Api, state: AppState, database: Database
) -> None:
    events = await _produce_events(api, state)
    async with state.sessions() as session, session.begin():
        await state.services.audit.checkpoint(session)
    last_seq = events[-1][0]

    async def rewrite_tip(session: AsyncSession) -> None:
        # An attacker without the signing key recomputes nothing better than a new hash.
        await session.execute(
            update(AuditEvent).where(AuditEvent.seq == last_seq).values(hash="f" * 64)
        )
        await session.execute(text("UPDATE audit_chain_head SET hash = :h"), {"h": "f" * 64})

    report = await _tampered(state, database, rewrite_tip)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("altered", last_seq)

    async def forge_checkpoint(session: AsyncSession) -> None:
        if database.backend == "sqlite":
            await session.execute(text("DROP TRIGGER audit_checkpoints_no_update"))
        await session.execute(update(AuditCheckpoint).values(hash="e" * 64))

    report = await _tampered(state, database, forge_checkpoint)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("checkpoint", last_seq)


async def test_periodic_checkpoints_let_a_verifier_start_from_one(
    api: Api, state: AppState
) -> None:
    state.services.audit.configure(retention_days=365, checkpoint_every=2)
    events = await _produce_events(api, state)
    async with state.sessions() as session:
        checkpoint_seqs = list(await session.scalars(select(AuditCheckpoint.seq)))
        assert sorted(checkpoint_seqs) == [s for s, _ in events if s % 2 == 0]
        signer = state.services.audit.signer
        latest = await verify_chain(session, signer, from_checkpoint=-1)
        from_two = await verify_chain(session, signer, from_checkpoint=2)
        missing = await verify_chain(session, signer, from_checkpoint=3)
    assert latest.ok
    assert latest.start_seq == max(checkpoint_seqs)
    assert from_two.ok
    assert from_two.checked == len(events) - 2
    assert missing.problem is not None
    assert missing.problem.kind == "checkpoint"


async def test_prune_keeps_the_rest_verifiable_and_the_normal_path_append_only(
    api: Api, state: AppState, database: Database
) -> None:
    now = datetime.now(UTC)
    old = []
    for n in range(4):
        recorder = AuditRecorder(Principal(subject=f"old-{n}", roles=("support",)))
        recorder.read("customer", [uuid.uuid4()], {"name": "clear"})
        async with state.sessions() as session, session.begin():
            old.append(
                await recorder.commit(
                    session,
                    operation_type="query",
                    operation_name="Old",
                    query="{ old }",
                    outcome="ok",
                    occurred_at=now - timedelta(days=400 - n),
                )
            )
    customer = await make_customer(state)
    await api.gql(
        "query($id: ID!) { customer(id: $id) { name } }",
        {"id": str(customer)},
        token=api.token("support"),
        purpose="support",
    )
    audit = state.services.audit
    async with state.sessions() as session, session.begin():
        result = await audit.prune(session, cutoff=audit.retention_cutoff(now))
    assert result.boundary_seq == len(old)
    assert result.removed_events == len(old)

    async with state.sessions() as session:
        report = await verify_chain(session, audit.signer)
        remaining = await session.scalar(select(func.count()).select_from(AuditEvent))
        checkpoint = await session.scalar(
            select(AuditCheckpoint).where(AuditCheckpoint.seq == result.boundary_seq)
        )
    assert report.ok, report.problem
    assert report.start_seq == result.boundary_seq
    assert remaining == 2  # the seeding event and the read after the boundary
    assert checkpoint is not None
    assert checkpoint.detail == {"reason": "prune boundary"}

    # Outside the prune command, audit rows still refuse UPDATE and DELETE.
    for statement in (
        update(AuditEvent).values(subject="x"),
        delete(AuditEvent),
        delete(AuditCheckpoint),
    ):
        async with state.sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                async with session.begin():
                    await session.execute(statement)

    # Removing the first remaining entry is still caught: no checkpoint covers it.
    async with _as_attacker(state, database) as session:
        first = await session.scalar(select(AuditEvent.id).order_by(AuditEvent.seq).limit(1))
        assert first is not None
        await _delete_event(session, first)
        report = await verify_chain(session, audit.signer)
        assert report.problem is not None
        assert report.problem.kind == "removed"


@asynccontextmanager
async def _failing_audit_insert(state: AppState, database: Database) -> AsyncIterator[None]:
    """A real database error on every audit event insert, for this test only."""
    async with state.sessions() as session, session.begin():
        if database.backend == "postgresql":
            await session.execute(
                text(
                    "CREATE FUNCTION custos_test_fail_audit() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'audit storage failed'; END; $$ LANGUAGE plpgsql"
                )
            )
            await session.execute(
                text(
                    "CREATE TRIGGER custos_test_fail_audit BEFORE INSERT ON audit_events "
                    "FOR EACH ROW EXECUTE FUNCTION custos_test_fail_audit()"
                )
            )
        else:
            await session.execute(
                text(
                    "CREATE TRIGGER custos_test_fail_audit BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END"
                )
            )
    try:
        yield
    finally:
        async with state.sessions() as session, session.begin():
            await session.execute(
                text(
                    "DROP TRIGGER custos_test_fail_audit ON audit_events"
                    if database.backend == "postgresql"
                    else "DROP TRIGGER custos_test_fail_audit"
                )
            )
            if database.backend == "postgresql":
                await session.execute(text("DROP FUNCTION custos_test_fail_audit()"))


async def test_when_the_audit_write_fails_nothing_is_returned_or_changed(
    api: Api, state: AppState, database: Database
) -> None:
    existing = await make_customer(state, owner_id="agent-1")
    agent = api.token("agent", subject="agent-1", team="east")
    async with _failing_audit_insert(state, database):
        created = await api.post(
            CREATE,
            {"input": {"name": "王五", "phone": "13912345678"}},
            token=agent,
            purpose="sales",
        )
        read = await api.post(
            "query($id: ID!) { customer(id: $id) { name phone } }",
            {"id": str(existing)},
            token=agent,
            purpose="support",
        )
    for response in (created, read):
        assert response.status_code == 503
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
        assert "data" not in body
    assert "王" not in read.text
    async with state.sessions() as session:
        customers = list(await session.scalars(select(Customer.id)))
    assert customers == [existing]


async def test_a_fully_pruned_chain_verifies_from_its_boundary(state: AppState) -> None:
    for _ in range(2):
        await make_customer(state)
    audit = state.services.audit
    async with state.sessions() as session, session.begin():
        result = await audit.prune(session, cutoff=datetime.now(UTC) + timedelta(days=1))
    assert result.removed_events == 2
    async with state.sessions() as session:
        report = await verify_chain(session, audit.signer)
    assert report.ok, report.problem
    assert report.start_seq == 2


async def test_an_entry_forged_past_the_chain_head_is_detected(
    api: Api, state: AppState, database: Database
) -> None:
    events = await _produce_events(api, state)
    last_seq = events[-1][0]

    async def forge(session: AsyncSession) -> None:
        recorder = AuditRecorder(Principal(subject="ghost", roles=("admin",)))
        await recorder.commit(
            session, operation_type="query", operation_name=None, query=None, outcome="ok"
        )
        await session.execute(
            text("UPDATE audit_chain_head SET seq = :s, hash = :h"),
            {
                "s": last_seq,
                "h": (
                    await session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == last_seq))
                ),
            },
        )

    report = await _tampered(state, database, forge)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("altered", last_seq + 1)
