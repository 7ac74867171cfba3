"""Record ids packed on their access: a 1,000-row read stores exactly its ids, "who saw
X" finds exactly the accesses that touched X through an index, and a ledger written in
the old layout (a row per id) still verifies after the migration that packs it."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from alembic import command
from sqlalchemy import insert, select, text

from server.app import AppState, build_state, create_app
from server.audit.proof import check_proof
from server.audit.recorder import AuditRecorder
from server.audit.repository import AuditFilter, AuditRepository
from server.audit.verify import verify_ledger
from server.auth.principal import Principal
from server.config import Settings
from server.data.base import Base, new_id
from server.data.migrate import alembic_config
from server.data.models import AuditAccess, AuditEvent
from tests.conftest import IN_CI, Api, Database, pg_admin, pg_reachable, pg_url

# The last migration before record ids were packed on their access.
BEFORE_PACKING = "0018"
READER = Principal(subject="ledger-reader", roles=("support",), purpose="support")
PROOF = """
query Proof($event: ID!) { auditProof(eventId: $event) { document } }
"""
WHO_SAW = """
query WhoSaw($id: ID!) { auditEvents(filter: {recordId: $id}, first: 50) { nodes { id } } }
"""


async def _append(state: AppState, *reads: list[uuid.UUID]) -> list[uuid.UUID]:
    """One entry per list of ids, each a read of those customers; their event ids."""
    ids = []
    for record_ids in reads:
        recorder = AuditRecorder(READER)
        recorder.read("customer", record_ids, {"name": "clear", "phone": "masked"})
        async with state.sessions() as session, session.begin():
            ids.append(
                await recorder.commit(
                    session, operation_type="query", operation_name="List", query=None, outcome="ok"
                )
            )
    return ids


async def _who_saw(state: AppState, record_id: uuid.UUID) -> set[uuid.UUID]:
    async with state.sessions() as session:
        rows = await AuditRepository(session).search(
            AuditFilter(record_id=record_id), before_seq=None, limit=100
        )
        return {row.id for row in rows}


def _sharing_key(record_id: uuid.UUID) -> uuid.UUID:
    """Another id with the same last 8 bytes: the key SQLite indexes ids under."""
    return uuid.UUID(bytes=os.urandom(8) + record_id.bytes[8:])


async def test_a_thousand_row_read_packs_exactly_its_ids_in_order(state: AppState) -> None:
    ids = [new_id() for _ in range(1000)]
    (event_id,) = await _append(state, ids + ids[:10])  # a repeat is recorded once
    async with state.sessions() as session:
        access = (
            await session.scalars(select(AuditAccess).where(AuditAccess.event_id == event_id))
        ).one()
        assert access.record_ids == ids
        assert access.record_count == 1000
    await state.sealer.seal_pending(state.sessions)
    async with state.sessions() as session:
        report = await verify_ledger(session, state.services.audit.signer)
    assert report.ok, report.problem


async def test_who_saw_a_record_finds_exactly_the_accesses_that_touched_it(
    state: AppState, database: Database
) -> None:
    x, y, other = new_id(), new_id(), new_id()
    x_twin, y_twin = _sharing_key(x), _sharing_key(y)
    crowd = [new_id() for _ in range(300)]
    both, only_x, twin_of_x, only_other, y_pair = await _append(
        state,
        [*crowd[:150], x, *crowd[150:], y],
        [x],
        [x_twin, other],
        [other, *crowd],
        [y_twin, y],  # two ids under one key in one access
    )
    assert await _who_saw(state, x) == {both, only_x}
    assert await _who_saw(state, x_twin) == {twin_of_x}
    assert await _who_saw(state, y) == {both, y_pair}
    assert await _who_saw(state, y_twin) == {y_pair}
    assert await _who_saw(state, other) == {twin_of_x, only_other}
    assert await _who_saw(state, crowd[200]) == {both, only_other}
    assert await _who_saw(state, _sharing_key(x)) == set()
    assert await _who_saw(state, uuid.uuid4()) == set()
    async with state.sessions() as session:
        repo = AuditRepository(session)
        assert await repo.count(AuditFilter(record_id=x)) == 2
        # Combined with an event-level criterion, the id still narrows by its index.
        flt = AuditFilter(record_id=other, object_type="customer", subject=READER.subject)
        assert {r.id for r in await repo.search(flt, before_seq=None, limit=10)} == {
            twin_of_x,
            only_other,
        }
        assert await _plan_uses_the_index(session, database.backend, x)


async def _plan_uses_the_index(session: Any, backend: str, record_id: uuid.UUID) -> bool:
    """The lookup can be answered from the index (the planner may still prefer a scan
    of a table this small, so PostgreSQL is asked with sequential scans priced out)."""
    repo = AuditRepository(session)
    query = select(AuditEvent.id).where(*repo._criteria(AuditFilter(record_id=record_id)))
    compiled = query.compile(dialect=session.get_bind().dialect)
    values = tuple(compiled.params[name] for name in compiled.positiontup or ())
    conn = await session.connection()
    if backend == "postgresql":
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.exec_driver_sql(f"EXPLAIN {compiled}", values))
        await session.rollback()
        return "ix_audit_accesses_record_ids" in plan
    rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)
    plan = "\n".join(str(r[-1]) for r in rows)
    return "audit_record_keys USING PRIMARY KEY" in plan


# -- the migration from a row per id ---------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_before_packing(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        command.upgrade(alembic_config(url), BEFORE_PACKING)
        yield url
        return
    if not pg_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL is required when CI=true")
        pytest.skip("PostgreSQL is not reachable")
    name = f"custos_packing_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    command.upgrade(alembic_config(pg_url(name)), BEFORE_PACKING)
    yield pg_url(name)
    asyncio.run(pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _append_the_old_way(state: AppState, reads: list[list[uuid.UUID]]) -> list[uuid.UUID]:
    """Entries as the code before 0019 wrote them: the event, its accesses, then one
    `audit_access_records` row per id (hashed by today's recorder: the hash is the same)."""
    events = Base.metadata.tables["audit_events"]
    event_ids = []
    async with state.sessions() as session, session.begin():
        postgres = session.get_bind().dialect.name == "postgresql"
        top = (
            0
            if postgres
            else int(await session.scalar(text("SELECT max(seq) FROM audit_events")) or 0)
        )
        for seq, record_ids in enumerate(reads, start=top + 1):
            recorder = AuditRecorder(READER)
            recorder.read("customer", record_ids, {"name": "clear"})
            recorder.deny("order", "read")
            entry = recorder.prepare(
                operation_type="query", operation_name="List", query=None, outcome="ok"
            )
            # PostgreSQL numbers arrivals by its sequence; SQLite takes the next free one.
            await session.execute(
                insert(events), [entry.event if postgres else {**entry.event, "seq": seq}]
            )
            for access, ids in entry.accesses:
                values = {**access, "event_id": entry.id}
                for key in ("fields", "denied_fields", "changed_fields"):
                    values[key] = orjson.dumps(values[key]).decode()
                access_id = await session.scalar(
                    text(
                        "INSERT INTO audit_accesses (event_id, object_type, action, fields, "
                        "denied_fields, changed_fields, record_count) VALUES (:event_id, "
                        ":object_type, :action, :fields, :denied_fields, :changed_fields, "
                        ":record_count) RETURNING id"
                    ),
                    {**values, "event_id": entry.id if postgres else entry.id.hex},
                )
                for record_id in ids:
                    await session.execute(
                        text(
                            "INSERT INTO audit_access_records (access_id, record_id) "
                            "VALUES (:a, :r)"
                        ),
                        {"a": access_id, "r": record_id if postgres else record_id.hex},
                    )
            event_ids.append(entry.id)
    return event_ids


async def test_a_ledger_written_a_row_per_id_verifies_after_packing(
    database_before_packing: str, keyring_path: Path, tmp_path: Path
) -> None:
    settings = Settings(
        env="dev",
        database_url=database_before_packing,
        keyring=keyring_path,
        jwt_secret="test-secret-with-enough-length-for-hs256",
        state_dir=tmp_path / "state",
        rate_limits=False,
        audit_seal_interval_seconds=0,
    )
    x = new_id()
    reads = [[new_id() for _ in range(40)] + [x], [x], [new_id() for _ in range(5)], []]
    old = build_state(settings)
    sealed = await _append_the_old_way(old, reads[:3])
    await old.sealer.seal_pending(old.sessions)  # blocks sealed before the move
    unsealed = await _append_the_old_way(old, reads[3:])
    await old.engine.dispose()

    await asyncio.to_thread(command.upgrade, alembic_config(database_before_packing), "head")

    app = create_app(settings, migrate=False)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.custos
        async with state.sessions() as session:
            report = await verify_ledger(session, state.services.audit.signer, batch_size=2)
            assert report.ok, report.problem
            assert (report.checked, report.unsealed_checked) == (3, 1)
            packed = {
                a.event_id: a.record_ids
                for a in await session.scalars(
                    select(AuditAccess).where(AuditAccess.object_type == "customer")
                )
            }
        assert [packed[e] for e in sealed] == [sorted(r) for r in reads[:3]]
        assert packed[unsealed[0]] == []
        assert await _who_saw(state, x) == {sealed[0], sealed[1]}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as c:
            api = Api(c, settings)
            token = api.token("compliance")
            for event_id in sealed:
                payload = await api.gql(
                    PROOF, {"event": str(event_id)}, token=token, purpose="compliance"
                )
                document = orjson.loads(payload["data"]["auditProof"]["document"])
                assert check_proof(document) == []
            payload = await api.gql(WHO_SAW, {"id": str(x)}, token=token, purpose="compliance")
            found = {n["id"] for n in payload["data"]["auditEvents"]["nodes"]}
            assert {str(sealed[0]), str(sealed[1])} <= found
        # Entries written after the move verify with the ones before it.
        await _append(state, [x, new_id()])
        await state.sealer.seal_pending(state.sessions)
        async with state.sessions() as session:
            report = await verify_ledger(session, state.services.audit.signer)
            assert report.ok, report.problem
            ids = sum(len(i) for i in await session.scalars(select(AuditAccess.record_ids)))

    await asyncio.to_thread(
        command.downgrade, alembic_config(database_before_packing), BEFORE_PACKING
    )
    old = build_state(settings)
    async with old.sessions() as session:
        rows = (await session.execute(text("SELECT count(*) FROM audit_access_records"))).scalar()
    await old.engine.dispose()
    assert rows == ids
