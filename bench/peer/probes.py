"""What the bench reads from PostgreSQL and from the app while a scenario runs.

- `BackendCpu`: CPU of the database's backends (from /proc; PostgreSQL on this machine).
- `WaitSampler`: pg_stat_activity sampled every few milliseconds: what active backends
  wait on, and how often a backend waits on a lock while running an audit statement.
- `table_sizes`: every table's total size (heap, indexes, TOAST), for storage deltas.
- `RoundTrips`: statements, transaction control and pool pings per request, counted
  with SQLAlchemy events on every engine and dialect of the process (the app's engine is
  not touched; whatever engines the app builds are counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from bench.seed import PG_ADMIN_URL

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def libpq_url(database: str) -> str:
    """postgresql://… for asyncpg, on the bench's PostgreSQL server."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+asyncpg://", "postgresql://")
    return f"{base}/{database}"


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def _ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


class BackendCpu:
    """CPU seconds the database's backends spent between `start` and `stop`."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.before: dict[int, int] = {}
        self.readable = True

    async def _pids(self) -> list[int]:
        conn = await asyncpg.connect(libpq_url("postgres"))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database
            )
        finally:
            await conn.close()
        return [int(r["pid"]) for r in rows]

    async def start(self) -> None:
        self.before = {}
        for pid in await self._pids():
            ticks = _ticks(pid)
            if ticks is None:
                self.readable = False
            else:
                self.before[pid] = ticks

    async def stop(self) -> float | None:
        """Seconds of CPU; None when the backends' /proc entries cannot be read."""
        total = 0
        for pid in await self._pids():
            ticks = _ticks(pid)
            if ticks is None:
                self.readable = False
                continue
            total += ticks - self.before.get(pid, 0)
        return total / CLOCK_TICKS if self.readable else None


@dataclass
class Waits:
    samples: int = 0
    active: int = 0  # backend-samples with a statement running
    events: Counter[str] = field(default_factory=Counter)
    audit_lock_waits: int = 0  # backend-samples waiting on a lock inside an audit statement
    # The seal lag (how long the oldest unsealed audit entry has waited), sampled.
    seal_lags: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.seal_lags)
        return {
            "samples": self.samples,
            "active_backend_samples": self.active,
            "audit_lock_waits": self.audit_lock_waits,
            "top": dict(self.events.most_common(8)),
            **(
                {
                    "seal_lag_p50_s": round(lags[len(lags) // 2], 3),
                    "seal_lag_max_s": round(lags[-1], 3),
                }
                if lags
                else {}
            ),
        }


# pg_stat_activity every 10 ms; the seal lag every 25th sample (~0.25 s).
SEAL_LAG_EVERY = 25


class WaitSampler:
    """Samples pg_stat_activity for one database, and its ledger's seal lag, until stopped."""

    def __init__(self, database: str, interval: float = 0.01) -> None:
        self.database = database
        self.interval = interval
        self.waits = Waits()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        conn = await asyncpg.connect(libpq_url("postgres"))
        ledger = await asyncpg.connect(libpq_url(self.database))
        try:
            while not self._stop.is_set():
                if self.waits.samples % SEAL_LAG_EVERY == 0:
                    await self._seal_lag(ledger)
                rows = await conn.fetch(
                    "SELECT wait_event_type, wait_event, left(query, 300) AS query "
                    "FROM pg_stat_activity WHERE datname = $1 AND state = 'active' "
                    "AND pid <> pg_backend_pid()",
                    self.database,
                )
                self.waits.samples += 1
                for row in rows:
                    self.waits.active += 1
                    kind = row["wait_event_type"]
                    name = f"{kind}:{row['wait_event']}" if kind else "CPU"
                    self.waits.events[name] += 1
                    if kind == "Lock" and "audit" in (row["query"] or "").lower():
                        self.waits.audit_lock_waits += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval)
        finally:
            await conn.close()
            await ledger.close()

    async def _seal_lag(self, ledger: asyncpg.Connection) -> None:
        """How long the oldest entry not yet in a sealed block has waited (0 when every
        entry is sealed); nothing on a database without a ledger (the peer's mirror)."""
        try:
            lag = await ledger.fetchval(
                "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(occurred_at)), 0) "
                "FROM audit_events WHERE block IS NULL"
            )
        except asyncpg.UndefinedTableError:
            return
        self.waits.seal_lags.append(float(lag))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> Waits:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.waits


async def table_sizes(database: str) -> dict[str, int]:
    conn = await asyncpg.connect(libpq_url(database))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) AS size FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    finally:
        await conn.close()
    return {r["relname"]: int(r["size"]) for r in rows}


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Tables that grew, and by how many bytes."""
    delta = {name: size - before.get(name, 0) for name, size in after.items()}
    return {name: d for name, d in sorted(delta.items()) if d > 0}


@dataclass
class RoundTripCount:
    statements: int = 0
    transaction_control: int = 0  # BEGIN (PostgreSQL), COMMIT, ROLLBACK
    pings: int = 0  # pool pre-ping: BEGIN, ';', ROLLBACK on asyncpg
    log: list[str] = field(default_factory=list)

    @property
    def round_trips(self) -> int:
        return self.statements + self.transaction_control + self.pings


class RoundTrips:
    """Counts what the process sends to its databases while active.

    A round trip is one statement (every cursor execute, including SAVEPOINT/RELEASE and
    SQLite's BEGIN IMMEDIATE), one transaction-control call the driver makes outside a
    cursor (BEGIN on asyncpg, which it sends before the first statement; COMMIT;
    ROLLBACK) or one of the three a pool pre-ping sends on asyncpg (one on SQLite).
    """

    def __init__(self) -> None:
        self.count = RoundTripCount()
        self.keep_log = False
        self._patched: list[tuple[type[Any], Any]] = []

    def _statement(self, conn: Connection, *args: Any) -> None:
        self.count.statements += 1
        if self.keep_log:
            self.count.log.append(" ".join(str(args[1]).split())[:160])

    def _control(self, name: str) -> Any:
        def record(conn: Connection, *args: Any) -> None:
            if name == "BEGIN" and conn.dialect.name != "postgresql":
                return  # SQLite's BEGIN is a statement (counted as one)
            self.count.transaction_control += 1
            if self.keep_log:
                self.count.log.append(name)

        return record

    def _ping(self, original: Any, trips: int) -> Any:
        def do_ping(dialect: Any, dbapi_connection: Any) -> Any:
            self.count.pings += trips
            if self.keep_log:
                self.count.log.append(f"pool pre-ping ({trips} round trips)")
            return original(dialect, dbapi_connection)

        return do_ping

    def reset(self, keep_log: bool = False) -> RoundTripCount:
        done, self.count, self.keep_log = self.count, RoundTripCount(), keep_log
        return done

    @contextlib.contextmanager
    def counting(self, dialects: list[type[Any]]) -> Iterator[RoundTrips]:
        listeners = [
            ("before_cursor_execute", self._statement),
            ("begin", self._control("BEGIN")),
            ("commit", self._control("COMMIT")),
            ("rollback", self._control("ROLLBACK")),
        ]
        for name, fn in listeners:
            event.listen(Engine, name, fn)
        for dialect in dialects:
            self._patched.append((dialect, dialect.__dict__.get("do_ping")))
            dialect.do_ping = self._ping(dialect.do_ping, 3 if dialect.name == "postgresql" else 1)
        try:
            yield self
        finally:
            for name, fn in listeners:
                event.remove(Engine, name, fn)
            for dialect, original in self._patched:
                if original is None:
                    del dialect.do_ping  # it was inherited
                else:
                    dialect.do_ping = original
            self._patched.clear()
