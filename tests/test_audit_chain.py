"""Tamper evidence of the ledger (entries, blocks, chain, signatures), the pre-block chain
migrated into blocks, retention, and "no audit, no data".

Tamper tests play the attacker inside one transaction: lift the append-only triggers
(dropped on SQLite; `session_replication_role = replica` on PostgreSQL), change rows,
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
from server.audit.chain import GENESIS_HASH, access_content, entry_hash, event_content
from server.audit.recorder import AuditRecorder
from server.audit.verify import VerifyReport, verify_ledger
from server.auth.principal import Principal
from server.data.models import (
    AuditAccess,
    AuditBlock,
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
    for table in ("audit_events", "audit_accesses", "audit_record_keys", "audit_blocks")
    for verb in ("update", "delete")
] + ["audit_events_sealed_once"]
BLOCK_SIZE = 2


async def _produce_events(api: Api, state: AppState) -> list[tuple[int, uuid.UUID]]:
    """A varied trail (mutations, a list read, a denial), sealed into blocks of two;
    returns (position, id) in ledger order."""
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
    await api.gql(LIST, token=api.token("support"), purpose="support")
    state.sealer.block_size = BLOCK_SIZE
    await state.sealer.seal_pending(state.sessions)
    async with state.sessions() as session:
        rows = (await session.execute(select(AuditEvent.position, AuditEvent.id))).all()
    return sorted((int(r.position), r.id) for r in rows)


def _block_of(position: int) -> int:
    return (position - 1) // BLOCK_SIZE + 1


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
        return await verify_ledger(session, state.services.audit.signer, batch_size=2)


async def _delete_event(session: AsyncSession, event_id: uuid.UUID) -> None:
    await session.execute(delete(AuditAccess).where(AuditAccess.event_id == event_id))
    await session.execute(delete(AuditEvent).where(AuditEvent.id == event_id))


async def test_an_intact_ledger_verifies_entries_blocks_chain_and_signatures(
    api: Api, state: AppState
) -> None:
    events = await _produce_events(api, state)
    async with state.sessions() as session:
        report = await verify_ledger(session, state.services.audit.signer, batch_size=2)
        blocks = list(await session.scalars(select(AuditBlock).order_by(AuditBlock.number)))
    assert report.ok, report.problem
    assert report.checked == len(events) == events[-1][0]
    assert report.blocks_checked == len(blocks) == _block_of(len(events))
    assert (blocks[0].first_position, blocks[0].last_position) == (1, 2)
    assert all(len(bytes(b.signature)) == 64 for b in blocks)


async def test_entries_arriving_after_a_seal_are_checked_unsealed_then_sealed_in_order(
    api: Api, state: AppState
) -> None:
    events = await _produce_events(api, state)
    await make_customer(state)
    await make_customer(state)
    async with state.sessions() as session:
        report = await verify_ledger(session, state.services.audit.signer)
    assert report.ok
    assert report.unsealed_checked == 2
    await state.sealer.seal_pending(state.sessions)
    async with state.sessions() as session:
        rows = (
            await session.execute(select(AuditEvent.seq, AuditEvent.position, AuditEvent.block))
        ).all()
        report = await verify_ledger(session, state.services.audit.signer)
    assert report.ok
    assert report.unsealed_checked == 0
    assert report.last_position == len(events) + 2
    # Positions follow arrival order and leave no gap.
    assert [r.position for r in sorted(rows)] == list(range(1, len(rows) + 1))


async def test_altering_any_entry_is_named_at_that_entry(
    api: Api, state: AppState, database: Database
) -> None:
    for position, event_id in await _produce_events(api, state):

        async def attack(session: AsyncSession, event_id: uuid.UUID = event_id) -> None:
            await session.execute(
                update(AuditEvent).where(AuditEvent.id == event_id).values(subject="someone-else")
            )

        report = await _tampered(state, database, attack)
        assert report.problem is not None
        assert (report.problem.kind, report.problem.position) == ("entry", position)
        assert report.problem.block == _block_of(position)
        assert report.problem.event_id == event_id
        assert f"position {position}" in report.problem.describe()


async def test_altering_any_access_or_record_id_is_named_at_its_entry(
    api: Api, state: AppState, database: Database
) -> None:
    events = await _produce_events(api, state)
    async with state.sessions() as session:
        accesses = (
            await session.execute(
                select(AuditAccess.id, AuditAccess.event_id, AuditAccess.record_ids)
            )
        ).all()
    records = [(a.id, a.record_ids, n) for a in accesses for n in range(len(a.record_ids))]
    position_of = {event_id: position for position, event_id in events}
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
        assert (report.problem.kind, report.problem.position) == (
            "entry",
            position_of[access.event_id],
        )
    for access_id, ids, n in records[:6]:
        expected = position_of[event_of_access[access_id]]

        async def pack(session: AsyncSession, access_id: int, ids: list[uuid.UUID]) -> None:
            await session.execute(
                update(AuditAccess).where(AuditAccess.id == access_id).values(record_ids=ids)
            )

        async def swap_id(
            session: AsyncSession, a: int = access_id, i: Any = ids, n: int = n
        ) -> None:
            await pack(session, a, [*i[:n], uuid.uuid4(), *i[n + 1 :]])

        async def drop_id(
            session: AsyncSession, a: int = access_id, i: Any = ids, n: int = n
        ) -> None:
            await pack(session, a, [*i[:n], *i[n + 1 :]])

        async def repeat_id(
            session: AsyncSession, a: int = access_id, i: Any = ids, n: int = n
        ) -> None:
            # One id packed twice in another's place: the count holds, the content not.
            other = (n + 1) % len(i)
            twice = (
                [*i, i[n]] if other == n else [i[n] if k == other else r for k, r in enumerate(i)]
            )
            await pack(session, a, twice)

        for attack in (swap_id, drop_id, repeat_id):
            report = await _tampered(state, database, attack)
            assert report.problem is not None
            assert (report.problem.kind, report.problem.position) == ("entry", expected)


async def test_removing_any_entry_is_named_at_its_position(
    api: Api, state: AppState, database: Database
) -> None:
    for position, event_id in await _produce_events(api, state):

        async def attack(session: AsyncSession, event_id: uuid.UUID = event_id) -> None:
            await _delete_event(session, event_id)

        report = await _tampered(state, database, attack)
        assert report.problem is not None
        assert (report.problem.kind, report.problem.position) == ("removed", position)
        assert report.problem.block == _block_of(position)


async def test_swapping_two_neighbours_is_named_at_their_block(
    api: Api, state: AppState, database: Database
) -> None:
    events = await _produce_events(api, state)
    for (position, first), (_, second) in itertools.pairwise(events):

        async def attack(
            session: AsyncSession, a: uuid.UUID = first, b: uuid.UUID = second, p: int = position
        ) -> None:
            for entry, new in ((a, -p), (b, p), (a, p + 1)):
                await session.execute(
                    update(AuditEvent).where(AuditEvent.id == entry).values(position=new)
                )
            # Keep each in the block it was moved into.
            for entry, at in ((a, p + 1), (b, p)):
                await session.execute(
                    update(AuditEvent).where(AuditEvent.id == entry).values(block=_block_of(at))
                )

        report = await _tampered(state, database, attack)
        assert report.problem is not None
        assert report.problem.kind == "block"
        assert report.problem.block == _block_of(position)


async def test_altering_a_block_its_link_or_its_signature_is_named_at_that_block(
    api: Api, state: AppState, database: Database
) -> None:
    events = await _produce_events(api, state)
    last = _block_of(len(events))
    assert last >= 3
    attacks: list[tuple[dict[str, Any], str]] = [
        ({"merkle_root": "a" * 64}, "block"),
        ({"last_position": AuditBlock.first_position}, "block"),
        ({"first_position": 2}, "chain"),
        ({"prev_hash": "b" * 64}, "chain"),
        ({"hash": "c" * 64}, "block"),
        ({"signature": b"\x00" * 64}, "signature"),
        ({"key_version": 99}, "block"),
    ]
    for number in (1, 2, last):
        for values, kind in attacks:

            async def attack(
                session: AsyncSession, n: int = number, v: dict[str, Any] = values
            ) -> None:
                await session.execute(update(AuditBlock).where(AuditBlock.number == n).values(**v))

            report = await _tampered(state, database, attack)
            assert report.problem is not None, values
            assert (report.problem.kind, report.problem.block) == (kind, number), values

        async def drop_block(session: AsyncSession, n: int = number) -> None:
            await session.execute(
                update(AuditEvent).where(AuditEvent.block == n).values(block=None)
            )
            await session.execute(delete(AuditBlock).where(AuditBlock.number == n))

        report = await _tampered(state, database, drop_block)
        assert report.problem is not None
        if number == last:
            # Dropping the last block with its seals turns its entries back into unsealed
            # ones; dropping the entries too leaves a shorter ledger: both are why the
            # newest block head is published (auditProof, `custos audit status`).
            assert report.problem.kind == "entry"
        else:
            assert (report.problem.kind, report.problem.block) == ("removed", number)


async def test_a_block_rebuilt_without_the_key_fails_its_signature(
    api: Api, state: AppState, database: Database
) -> None:
    """An attacker who rewrites an entry and recomputes its hash, the Merkle root and the
    block's hash (everything but the signature) is named at the block's signature."""
    from server.audit.chain import document_hash, stored_bytes
    from server.audit.merkle import block_hash, block_head, leaf_hash, merkle_root
    from server.audit.repository import AuditRepository
    from server.audit.sealer import iso_utc
    from server.audit.verify import hashed_accesses

    events = await _produce_events(api, state)
    _, event_id = events[0]

    async def rebuild(session: AsyncSession) -> None:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == event_id).values(subject="forged")
        )
        repo = AuditRepository(session)
        entry = await repo.by_id(event_id)
        assert entry is not None
        await session.refresh(entry)
        hashed, _ = await hashed_accesses(repo, [entry])
        new_hash = document_hash(stored_bytes(entry, hashed[entry.id]))
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == event_id).values(hash=new_hash)
        )
        block = await repo.block(1)
        assert block is not None
        leaves = [leaf_hash(int(p or 0), h) for p, h in await repo.block_leaves(1)]
        root = merkle_root(leaves).hex()
        head = block_head(
            number=1,
            first_position=block.first_position,
            last_position=block.last_position,
            merkle_root_hex=root,
            prev_hash=block.prev_hash,
            sealed_at=iso_utc(block.sealed_at),
            key_version=block.key_version,
        )
        await session.execute(
            update(AuditBlock)
            .where(AuditBlock.number == 1)
            .values(merkle_root=root, hash=block_hash(head))
        )
        await session.execute(
            update(AuditBlock).where(AuditBlock.number == 2).values(prev_hash=block_hash(head))
        )

    report = await _tampered(state, database, rebuild)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.block) == ("signature", 1)


async def test_verify_can_start_at_a_block(api: Api, state: AppState) -> None:
    events = await _produce_events(api, state)
    async with state.sessions() as session:
        report = await verify_ledger(session, state.services.audit.signer, from_block=2)
        missing = await verify_ledger(session, state.services.audit.signer, from_block=999)
    assert report.ok, report.problem
    assert report.checked == len(events) - BLOCK_SIZE
    assert missing.problem is not None
    assert missing.problem.kind == "block"


async def _write_pre_block_chain(state: AppState, count: int) -> list[uuid.UUID]:
    """Entries as the hash chain wrote them before blocks: seq, prev_hash, chained hash,
    and the chain head row at the tip."""
    from server.audit.repository import AuditRepository, PreparedEntry

    prev, ids = GENESIS_HASH, []
    async with state.sessions() as session, session.begin():
        for seq in range(1, count + 1):
            recorder = AuditRecorder(Principal(subject=f"legacy-{seq}", roles=("support",)))
            recorder.read("customer", [uuid.uuid4()], {"name": "clear"})
            entry = recorder.prepare(
                operation_type="query", operation_name="Old", query=None, outcome="ok"
            )
            event = dict(entry.event, seq=seq, prev_hash=prev)
            hashed = [
                access_content(
                    a["object_type"],
                    a["action"],
                    a["fields"],
                    a["denied_fields"],
                    a["changed_fields"],
                    (str(r) for r in rids),
                )
                for a, rids in entry.accesses
            ]
            event["hash"] = entry_hash(prev, event_content(_Attrs(event)), hashed)
            await AuditRepository(session).append_entries([PreparedEntry(event, entry.accesses)])
            prev = event["hash"]
            ids.append(entry.id)
        await session.execute(
            text("UPDATE audit_chain_head SET seq = :s, hash = :h"), {"s": count, "h": prev}
        )
        if session.get_bind().dialect.name == "postgresql":
            # As the migration leaves it: arrivals continue after the chain.
            await session.execute(text("SELECT setval('audit_events_seq_seq', :s)"), {"s": count})
    return ids


class _Attrs:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


async def test_the_pre_block_chain_is_sealed_first_and_still_verifies(
    state: AppState, database: Database
) -> None:
    legacy = await _write_pre_block_chain(state, 5)
    await make_customer(state)
    state.sealer.block_size = BLOCK_SIZE
    await state.sealer.seal_pending(state.sessions)
    async with state.sessions() as session:
        report = await verify_ledger(session, state.services.audit.signer)
        positions = [
            await session.scalar(select(AuditEvent.position).where(AuditEvent.id == i))
            for i in legacy
        ]
    assert report.ok, report.problem
    assert positions == [1, 2, 3, 4, 5]

    async def break_link(session: AsyncSession) -> None:
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == legacy[2]).values(prev_hash="d" * 64)
        )

    report = await _tampered(state, database, break_link)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.position) == ("entry", 3)

    async def cut_the_tip(session: AsyncSession) -> None:
        await _delete_event(session, legacy[-1])
        await session.execute(
            update(AuditEvent).where(AuditEvent.block >= 3).values(block=None, position=None)
        )
        await session.execute(delete(AuditBlock).where(AuditBlock.number >= 3))

    report = await _tampered(state, database, cut_the_tip)
    assert report.problem is not None
    assert report.problem.kind == "removed"


async def test_prune_keeps_the_rest_verifiable_and_the_normal_path_append_only(
    api: Api, state: AppState, database: Database
) -> None:
    from server.clock import FixedClock

    now = datetime.now(UTC)
    clock = state.services.clock
    state.services.clock = FixedClock(now - timedelta(days=400))
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
    await state.sealer.seal_pending(state.sessions)
    state.services.clock = clock
    customer = await make_customer(state)
    await api.gql(
        "query($id: ID!) { customer(id: $id) { name } }",
        {"id": str(customer)},
        token=api.token("support"),
        purpose="support",
    )
    await state.sealer.seal_pending(state.sessions)
    audit = state.services.audit
    async with state.sessions() as session, session.begin():
        result = await audit.prune(session, cutoff=audit.retention_cutoff(now))
    assert result.boundary_block == 1
    assert result.removed_events == len(old)

    async with state.sessions() as session:
        report = await verify_ledger(session, audit.signer)
        remaining = await session.scalar(select(func.count()).select_from(AuditEvent))
        blocks = await session.scalar(select(func.count()).select_from(AuditBlock))
        checkpoint = await session.scalar(select(AuditCheckpoint))
    assert report.ok, report.problem
    assert remaining == 2  # the seeding event and the read after the boundary
    assert blocks == 2  # the pruned block's head stays
    assert checkpoint is not None
    assert checkpoint.detail == {"reason": "prune boundary", "block": 1}

    # Outside the prune command, audit rows still refuse UPDATE and DELETE.
    for statement in (
        update(AuditEvent).values(subject="x"),
        update(AuditEvent).values(block=7),
        delete(AuditEvent),
        delete(AuditCheckpoint),
        delete(AuditBlock),
        update(AuditBlock).values(hash="0" * 64),
    ):
        async with state.sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                async with session.begin():
                    await session.execute(statement)

    # Removing an entry after the boundary is still caught.
    async with _as_attacker(state, database) as session:
        first = await session.scalar(select(AuditEvent.id).order_by(AuditEvent.seq).limit(1))
        assert first is not None
        await _delete_event(session, first)
        report = await verify_ledger(session, audit.signer)
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


async def test_a_fully_pruned_ledger_verifies_from_its_boundary(state: AppState) -> None:
    from server.clock import FixedClock

    clock = state.services.clock
    state.services.clock = FixedClock(datetime.now(UTC) - timedelta(days=2))
    for _ in range(2):
        await make_customer(state)
    await state.sealer.seal_pending(state.sessions)
    state.services.clock = clock
    audit = state.services.audit
    async with state.sessions() as session, session.begin():
        result = await audit.prune(session, cutoff=datetime.now(UTC) - timedelta(days=1))
    assert result.removed_events == 2
    async with state.sessions() as session:
        report = await verify_ledger(session, audit.signer)
    assert report.ok, report.problem
    assert report.blocks_checked == 1
    assert report.checked == 0


async def test_entries_naming_a_block_that_does_not_exist_are_named(
    api: Api, state: AppState, database: Database
) -> None:
    events = await _produce_events(api, state)
    last = _block_of(len(events))

    async def forge(session: AsyncSession) -> None:
        recorder = AuditRecorder(Principal(subject="ghost", roles=("admin",)))
        event_id = await recorder.commit(
            session, operation_type="query", operation_name=None, query=None, outcome="ok"
        )
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == event_id)
            .values(block=last + 1, position=len(events) + 1)
        )

    report = await _tampered(state, database, forge)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.block) == ("block", last + 1)
