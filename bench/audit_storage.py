"""What the audit ledger stores for the record ids it names, and how fast "who saw
customer X" is, with record ids a row each (the layout before migration 0019) and
packed on their access (today's), in the same run on the same machine.

    python -m bench.audit_storage [--backends postgresql,sqlite] [--lists 1000]

For each backend two scratch databases are made: one migrated to 0018 and written the
way the code before 0019 wrote (`audit_access_records`, its statement verbatim), one at
head written by today's `AuditRepository.append_entries`. Entries come from the real
recorder (`AuditRecorder.prepare`, hashed), so both layouts hold the same ledger.

1. Audit bytes per 1,000-row list: 30 list entries of 1,000 ids appended one per
   transaction (as the group commit does when requests do not overlap), the growth of
   every audit table (heap, indexes, TOAST on PostgreSQL; dbstat pages on SQLite)
   divided by the entries; once listing the same 1,000 customers again (an agent's
   list) and once 1,000 customers never listed before.
2. "Who saw customer X" on 1M access record ids: `--lists` list entries of 1,000 ids
   drawn from 10,000 customers plus 10,000 by-id reads, then for 100 customers the
   compliance search's two queries (the count and the newest 20 events), timed.
   The old layout is asked the old code's query (a correlated EXISTS per event) and,
   to tell layout from query shape apart, today's shape (the ids' index first); the
   packed layout is asked today's criterion as the same plain SQL and through
   `AuditRepository` (the ORM's share included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from alembic import command
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.audit.recorder import AuditRecorder
from server.audit.repository import AuditFilter, AuditRepository, PreparedEntry
from server.auth.principal import Principal
from server.data.base import Base, new_id
from server.data.engine import create_engine, create_session_factory
from server.data.migrate import alembic_config
from server.data.models.audit import record_key

PG_ADMIN_URL = os.environ.get(
    "CUSTOS_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
READER = Principal(subject="agent-bench", roles=("agent",), team="east", purpose="support")
# The bench's list_1000 scenario: 10 fields, 3 of them decrypted.
LIST_FIELDS = {
    "id": "clear",
    "name": "clear",
    "phone": "masked",
    "email": "masked",
    "tier": "clear",
    "lifecycle": "clear",
    "region": "clear",
    "industry": "clear",
    "team": "clear",
    "created_at": "clear",
}
BY_ID_FIELDS = {f: LIST_FIELDS[f] for f in ("id", "name", "phone", "email", "tier", "lifecycle")}
AUDIT = ("audit_events", "audit_accesses", "audit_access_records", "audit_record_keys")
SIZE_LISTS = 30
POOL = 10_000
BY_ID_READS = 10_000
ASKED = 100
PAGE = 20

_EVENTS = Base.metadata.tables["audit_events"]
# audit_accesses as it was before 0019 (no record_ids column).
_OLD_ACCESSES = Table(
    "audit_accesses",
    MetaData(),
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", Uuid),
    Column("object_type", String(64)),
    Column("action", String(64)),
    Column("fields", JSON),
    Column("denied_fields", JSON),
    Column("changed_fields", JSON),
    Column("record_count", Integer),
)


def entry(ids: Sequence[uuid.UUID], fields: dict[str, str]) -> PreparedEntry:
    recorder = AuditRecorder(READER)
    recorder.read("customer", ids, fields)
    return recorder.prepare(operation_type="query", operation_name="List", query=None, outcome="ok")


# -- the two ways of writing ------------------------------------------------------------


async def append_packed(session: AsyncSession, entries: Sequence[PreparedEntry]) -> None:
    await AuditRepository(session).append_entries(entries)


async def append_rows(session: AsyncSession, entries: Sequence[PreparedEntry]) -> None:
    """`AuditRepository.append_entries` as it was before 0019, statements verbatim."""
    postgres = session.get_bind().dialect.name == "postgresql"
    events = [dict(e.event) for e in entries]
    if not postgres:
        top = int(await session.scalar(select(func.max(_EVENTS.c.seq))) or 0)
        for offset, event in enumerate(events, start=1):
            event["seq"] = top + offset
    await session.execute(insert(_EVENTS), events)
    accesses = [{"event_id": e.id, **access} for e in entries for access, _ in e.accesses]
    access_ids = (
        await session.scalars(
            insert(_OLD_ACCESSES).returning(_OLD_ACCESSES.c.id, sort_by_parameter_order=True),
            accesses,
        )
    ).all()
    pairs = [
        (access_id, record_id)
        for access_id, (_, record_ids) in zip(
            access_ids, (a for e in entries for a in e.accesses), strict=True
        )
        for record_id in record_ids
    ]
    if postgres:
        statement = (
            "INSERT INTO audit_access_records (access_id, record_id) "
            "SELECT unnest(CAST(:access_ids AS bigint[])), unnest(CAST(:record_ids AS uuid[]))"
        )
        params: dict[str, object] = {
            "access_ids": [a for a, _ in pairs],
            "record_ids": [r for _, r in pairs],
        }
    else:
        statement = (
            "INSERT INTO audit_access_records (access_id, record_id) "
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
            "FROM json_each(:pairs)"
        )
        params = {"pairs": orjson.dumps([[a, r.hex] for a, r in pairs]).decode()}
    await session.execute(text(statement), params)


# -- "who saw X" ------------------------------------------------------------------------

OLD_EXISTS = (
    "EXISTS (SELECT 1 FROM audit_accesses a WHERE a.event_id = e.id AND EXISTS ("
    "SELECT 1 FROM audit_access_records r WHERE r.access_id = a.id AND r.record_id = :x))"
)
OLD_INDEX_FIRST = (
    "e.id IN (SELECT a.event_id FROM audit_accesses a JOIN audit_access_records r "
    "ON r.access_id = a.id WHERE r.record_id = :x)"
)


# Today's criterion as plain SQL, asked through the same text path as the old ones, so
# the layouts are compared without the ORM's share of `AuditRepository.search`.
PACKED_PG = (
    "e.id IN (SELECT a.event_id FROM audit_accesses a "
    "WHERE a.record_ids @> ARRAY[CAST(:x AS uuid)])"
)
PACKED_SQLITE = (
    "e.id IN (SELECT a.event_id FROM audit_record_keys k JOIN audit_accesses a "
    "ON a.id = k.access_id WHERE k.record_key = :key "
    "AND substr(a.record_ids, k.ordinal * 16 + 1, 16) = :x)"
)


def text_query(criterion: str) -> Callable[[AsyncSession, uuid.UUID], Awaitable[int]]:
    async def ask(session: AsyncSession, record_id: uuid.UUID) -> int:
        postgres = session.get_bind().dialect.name == "postgresql"
        if criterion == PACKED_SQLITE:
            params: dict[str, Any] = {"x": record_id.bytes, "key": record_key(record_id)}
        else:
            params = {"x": record_id if postgres else record_id.hex}
        count = await session.scalar(
            text(f"SELECT count(*) FROM audit_events e WHERE {criterion}"), params
        )
        page = await session.execute(
            text(
                f"SELECT e.* FROM audit_events e WHERE {criterion} ORDER BY e.seq DESC LIMIT {PAGE}"
            ),
            params,
        )
        page.all()
        return int(count or 0)

    return ask


async def packed_query(session: AsyncSession, record_id: uuid.UUID) -> int:
    """Today's compliance search: `AuditRepository.count` and `search`."""
    repo = AuditRepository(session)
    flt = AuditFilter(record_id=record_id)
    count = await repo.count(flt)
    await repo.search(flt, before_seq=None, limit=PAGE)
    return count


# -- databases --------------------------------------------------------------------------


@dataclass
class Scratch:
    backend: str
    layout: str  # rows | packed
    url: str
    pg_name: str | None
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


async def _pg_admin(statement: str) -> None:
    engine = create_engine(PG_ADMIN_URL, null_pool=True)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def scratch(backend: str, layout: str, workdir: str) -> Scratch:
    revision = "0018" if layout == "rows" else "head"
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir}/audit-{layout}.db"
    else:
        pg_name = f"custos_auditbench_{os.getpid()}_{layout}_{uuid.uuid4().hex[:6]}"
        await _pg_admin(f'CREATE DATABASE "{pg_name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_name}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
    engine = create_engine(url)
    return Scratch(backend, layout, url, pg_name, engine, create_session_factory(engine))


async def drop(db: Scratch) -> None:
    await db.engine.dispose()
    if db.pg_name is not None:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{db.pg_name}" WITH (FORCE)')


async def audit_bytes(db: Scratch) -> dict[str, int]:
    """Each audit table's bytes with its indexes (and TOAST on PostgreSQL)."""
    async with db.engine.connect() as conn:
        if db.backend == "postgresql":
            rows = await conn.execute(
                text(
                    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                    "WHERE c.relname = ANY(:names) AND c.relkind = 'r'"
                ),
                {"names": list(AUDIT)},
            )
            return {name: int(size) for name, size in rows}
        rows = await conn.execute(
            text(
                "SELECT coalesce(i.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
                "LEFT JOIN sqlite_schema i ON i.name = d.name GROUP BY 1"
            )
        )
        return {name: int(size) for name, size in rows if name in AUDIT}


async def write(db: Scratch, entries: Sequence[PreparedEntry], per_transaction: int) -> None:
    append = append_rows if db.layout == "rows" else append_packed
    for start in range(0, len(entries), per_transaction):
        async with db.sessions() as session, session.begin():
            await append(session, entries[start : start + per_transaction])


async def analyze(db: Scratch) -> None:
    async with db.engine.connect() as conn:
        if db.backend == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


# -- the run ----------------------------------------------------------------------------


def kb(value: float) -> str:
    return f"{value / 1000:.1f} KB"


async def bytes_per_list(backend: str, workdir: str) -> dict[str, dict[str, float]]:
    agents_list = [new_id() for _ in range(1000)]
    same = [entry(agents_list, LIST_FIELDS) for _ in range(SIZE_LISTS + 1)]
    fresh = [entry([new_id() for _ in range(1000)], LIST_FIELDS) for _ in range(SIZE_LISTS)]
    out: dict[str, dict[str, float]] = {}
    for layout in ("rows", "packed"):
        db = await scratch(backend, layout, workdir)
        try:
            await write(db, same[:1], 1)  # the list's customers have been seen once
            for name, entries in (("same", same[1:]), ("fresh", fresh)):
                before = await audit_bytes(db)
                await write(db, entries, 1)
                after = await audit_bytes(db)
                grown = {t: after.get(t, 0) - before.get(t, 0) for t in after}
                out[f"{layout}/{name}"] = {t: g / len(entries) for t, g in grown.items() if g}
        finally:
            await drop(db)
    return out


async def who_saw(
    backend: str, workdir: str, lists: int
) -> tuple[dict[str, list[float]], dict[str, int], dict[str, float]]:
    rng = random.Random(14)
    pool = [new_id() for _ in range(POOL)]
    started = time.perf_counter()
    entries = [entry(rng.sample(pool, 1000), LIST_FIELDS) for _ in range(lists)]
    entries += [entry([rng.choice(pool)], BY_ID_FIELDS) for _ in range(BY_ID_READS)]
    rng.shuffle(entries)
    prepared = time.perf_counter() - started
    asked = rng.sample(pool, ASKED)
    timings: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    sizes: dict[str, float] = {"prepare_s": prepared}
    for layout in ("rows", "packed"):
        db = await scratch(backend, layout, workdir)
        try:
            started = time.perf_counter()
            await write(db, entries, 50)
            sizes[f"{layout}_write_s"] = time.perf_counter() - started
            await analyze(db)
            sizes[f"{layout}_bytes"] = sum((await audit_bytes(db)).values())
            queries: dict[str, Callable[[AsyncSession, uuid.UUID], Awaitable[int]]]
            if layout == "rows":
                queries = {
                    "rows, old query": text_query(OLD_EXISTS),
                    "rows, index first": text_query(OLD_INDEX_FIRST),
                }
            else:
                packed = PACKED_PG if backend == "postgresql" else PACKED_SQLITE
                queries = {
                    "packed, as SQL": text_query(packed),
                    "packed, via search": packed_query,
                }
            for name, ask in queries.items():
                samples = []
                total = 0
                async with db.sessions() as session:
                    await ask(session, asked[0])  # warm the connection and caches
                    for record_id in asked:
                        t0 = time.perf_counter()
                        total += await ask(session, record_id)
                        samples.append((time.perf_counter() - t0) * 1000)
                timings[name] = samples
                counts[name] = total
        finally:
            await drop(db)
    return timings, counts, sizes


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (5 min {five:.2f})"


async def main(backends: Sequence[str], lists: int) -> None:
    with __import__("tempfile").TemporaryDirectory() as workdir:
        for backend in backends:
            print(f"== {backend}; load average {_load()} at the start")
            sizes = await bytes_per_list(backend, workdir)
            print("audit bytes per 1,000-row list (per table):")
            for key, tables in sizes.items():
                detail = ", ".join(f"{t} {kb(b)}" for t, b in sorted(tables.items()))
                print(f"  {key:14} {kb(sum(tables.values())):>9}  ({detail})")
            for kind in ("same", "fresh"):
                old = sum(sizes[f"rows/{kind}"].values())
                new = sum(sizes[f"packed/{kind}"].values())
                print(f"  {kind}: {kb(old)} -> {kb(new)} = {old / new:.1f}x smaller")
            timings, counts, info = await who_saw(backend, workdir, lists)
            ids = lists * 1000 + BY_ID_READS
            print(
                f'"who saw customer X" over {ids:,} access record ids '
                f"({lists:,} lists of 1,000 of {POOL:,} customers + {BY_ID_READS:,} by-id reads); "
                f"count + newest {PAGE}, {ASKED} customers, ms:"
            )
            for name, samples in timings.items():
                ordered = sorted(samples)
                p95 = ordered[int(len(ordered) * 0.95) - 1]
                print(
                    f"  {name:18} p50 {statistics.median(samples):8.2f}  p95 {p95:8.2f}  "
                    f"(events found {counts[name]:,})"
                )
            if len(set(counts.values())) != 1:
                raise SystemExit(f"the layouts answered differently: {counts}")
            p50 = {name: statistics.median(samples) for name, samples in timings.items()}
            print(
                "  p50 ratios, rows / packed as SQL: old query "
                f"{p50['rows, old query'] / p50['packed, as SQL']:.2f}x, index first "
                f"{p50['rows, index first'] / p50['packed, as SQL']:.2f}x; "
                "rows old query / packed via search "
                f"{p50['rows, old query'] / p50['packed, via search']:.2f}x"
            )
            print(
                f"  stored: rows {kb(info['rows_bytes'])}, packed {kb(info['packed_bytes'])} "
                f"= {info['rows_bytes'] / info['packed_bytes']:.1f}x; written in "
                f"{info['rows_write_s']:.1f} s vs {info['packed_write_s']:.1f} s "
                f"(entries hashed in {info['prepare_s']:.1f} s)"
            )
            print(f"   load average {_load()} at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--lists", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main([b for b in args.backends.split(",") if b], args.lists))
