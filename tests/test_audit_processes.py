"""The ledger under real concurrency and real crashes: several processes appending and
sealing at once, and a server killed with SIGKILL in the middle of a burst of reads and
mutations: no entry lost, none duplicated, one gap-free signed ledger."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from server.app import AppState
from server.audit.recorder import AuditRecorder
from server.audit.sealer import Sealer
from server.audit.verify import verify_ledger
from server.auth.principal import Principal
from server.auth.tokens import issue_token
from server.clock import Clock
from server.config import Settings
from server.data.engine import create_engine, create_session_factory
from server.data.models import AuditAccess, AuditBlock, AuditEvent, Customer
from server.vault import LocalKeyring
from tests.conftest import Database

pytestmark = pytest.mark.slow

WRITERS = 4
EVENTS_PER_WRITER = 25
BLOCK_SIZE = 7


def _append_events(url: str, keyring: str, writer: int) -> None:
    """One writer process: its own engine, one transaction per event, and a sealer of its
    own sealing every few events (so sealers of several processes meet)."""

    async def run() -> None:
        engine = create_engine(url, null_pool=True)
        sessions = create_session_factory(engine)
        keys = LocalKeyring.load(Path(keyring), create=False)
        sealer = Sealer(keys, Clock().now, block_size=BLOCK_SIZE)
        for n in range(EVENTS_PER_WRITER):
            recorder = AuditRecorder(Principal(subject=f"writer-{writer}", roles=("support",)))
            recorder.read("customer", [uuid.uuid4(), uuid.uuid4()], {"name": "clear"})
            async with sessions() as session, session.begin():
                await recorder.commit(
                    session,
                    operation_type="query",
                    operation_name=f"W{writer}N{n}",
                    query="{ w }",
                    outcome="ok",
                    keys=keys,
                )
            if n % 5 == 4:
                await sealer.seal_pending(sessions)
        await engine.dispose()

    asyncio.run(run())


async def test_concurrent_writers_and_sealers_keep_one_gap_free_signed_ledger(
    database: Database, state: AppState, keyring_path: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_append_events, args=(database.url, str(keyring_path), w))
        for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    await asyncio.gather(*(asyncio.to_thread(p.join, 120) for p in writers))
    assert [p.exitcode for p in writers] == [0] * WRITERS

    total = WRITERS * EVENTS_PER_WRITER
    async with state.sessions() as session:
        names = list(await session.scalars(select(AuditEvent.operation_name)))
    await state.sealer.seal_pending(state.sessions)
    async with state.sessions() as session:
        positions = list(
            await session.scalars(select(AuditEvent.position).order_by(AuditEvent.position))
        )
        blocks = list(await session.scalars(select(AuditBlock.number)))
        report = await verify_ledger(session, state.services.audit.signer, batch_size=3)
    assert sorted(str(n) for n in names) == sorted(
        f"W{w}N{n}" for w in range(WRITERS) for n in range(EVENTS_PER_WRITER)
    )
    assert positions == list(range(1, total + 1))
    assert sorted(blocks) == list(range(1, len(blocks) + 1))
    assert report.ok, report.problem
    assert report.checked == total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


KILL_AFTER = 20
CREATE = """
mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on CustomerCreated { customer { id } } }
}
"""


async def _burst(
    base: str, token: str, worker: int, acked: list[str], enough: asyncio.Event
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for n in range(10_000):
            try:
                response = await client.post(
                    "/graphql",
                    json={
                        "query": CREATE,
                        "variables": {
                            "input": {"name": f"客户{worker}-{n}", "email": f"w{worker}n{n}@e.com"}
                        },
                    },
                    headers={"Authorization": f"Bearer {token}", "X-Purpose": "sales"},
                )
            except httpx.TransportError:
                return
            if response.status_code == 200:
                acked.append(response.json()["data"]["createCustomer"]["customer"]["id"])
            if len(acked) >= KILL_AFTER:
                enough.set()


async def test_sigkill_mid_burst_leaves_a_verifiable_chain_and_no_unaudited_change(
    database: Database, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "CUSTOS_ENV": "dev",
        "CUSTOS_DATABASE_URL": database.url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_JWT_SECRET": settings.jwt_secret_value(),
        "CUSTOS_STATE_DIR": str(tmp_path / "server-state"),
    }
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "server.app:app_factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    acked: list[str] = []
    killed = False
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as probe:
            for _ in range(200):
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the server did not come up")
        token = issue_token(settings, subject="agent-1", roles=["agent"], team="east")
        enough = asyncio.Event()
        burst = [asyncio.create_task(_burst(base, token, w, acked, enough)) for w in range(6)]
        await asyncio.wait_for(enough.wait(), 120)
        # Writes are in flight on every worker connection when the server dies.
        server.send_signal(signal.SIGKILL)
        killed = True
        await asyncio.gather(*burst)
    finally:
        # kill() polls the child first; after our SIGKILL that poll could reap it before
        # asyncio's watcher does, which then reports exit status 255 instead of -9.
        if not killed:
            server.kill()
        await server.wait()
    assert server.returncode == -signal.SIGKILL

    async with state.sessions() as session:
        customers = {str(c) for c in await session.scalars(select(Customer.id))}
        audited_creates = {
            str(r)
            for ids in await session.scalars(
                select(AuditAccess.record_ids).where(
                    AuditAccess.object_type == "customer", AuditAccess.action == "create"
                )
            )
            for r in ids
        }
        report = await verify_ledger(session, state.services.audit.signer)
    assert report.ok, report.problem
    assert set(acked) <= customers  # every acknowledged create was durable
    assert customers <= audited_creates  # and no committed customer lacks its audit event
    assert len(customers) >= KILL_AFTER


READ = "query { customers(first: 5) { nodes { id name } } }"


async def _mixed(
    base: str, token: str, worker: int, answered: list[str], sent: list[str], stop: asyncio.Event
) -> None:
    """Reads and creates, each with its own request id; notes the ids answered 200."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for n in range(10_000):
            request_id = f"mixed-{worker}-{n}"
            mutation = n % 3 == 0
            body: dict[str, object] = (
                {
                    "query": CREATE,
                    "variables": {
                        "input": {"name": f"客户{worker}-{n}", "email": f"m{worker}n{n}@e.com"}
                    },
                }
                if mutation
                else {"query": READ}
            )
            sent.append(request_id)
            try:
                response = await client.post(
                    "/graphql",
                    json=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-Purpose": "sales",
                        "X-Request-Id": request_id,
                    },
                )
            except httpx.TransportError:
                return
            if response.status_code == 200:
                answered.append(request_id)
            if stop.is_set():
                return


async def test_sigkill_under_mixed_load_loses_and_duplicates_no_entry(
    database: Database, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    """Entries are authenticated operations: every answered request has exactly one, no
    request has two, every committed create has its entry, and the ledger (sealed partly
    by the dead server's own sealer, the rest afterwards) verifies without a gap."""
    port = _free_port()
    env = {
        **os.environ,
        "CUSTOS_ENV": "dev",
        "CUSTOS_DATABASE_URL": database.url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_JWT_SECRET": settings.jwt_secret_value(),
        "CUSTOS_STATE_DIR": str(tmp_path / "server-state"),
        "CUSTOS_AUDIT_SEAL_INTERVAL_SECONDS": "0.05",
        "CUSTOS_AUDIT_BLOCK_SIZE": "16",
    }
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "server.app:app_factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    answered: list[str] = []
    sent: list[str] = []
    killed = False
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as probe:
            for _ in range(200):
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the server did not come up")
        token = issue_token(settings, subject="agent-1", roles=["agent"], team="east")
        stop = asyncio.Event()
        load = [asyncio.create_task(_mixed(base, token, w, answered, sent, stop)) for w in range(8)]
        # Load until the server's own sealer has sealed blocks and enough was answered.
        for _ in range(600):
            async with state.sessions() as session:
                sealed = await session.scalar(select(func.count()).select_from(AuditBlock))
            if sealed and len(answered) >= 60:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the server's sealer sealed nothing under load")
        server.send_signal(signal.SIGKILL)
        killed = True
        await asyncio.gather(*load)
    finally:
        if not killed:
            server.kill()
        await server.wait()
    assert server.returncode == -signal.SIGKILL

    await state.sealer.seal_pending(state.sessions)
    async with state.sessions() as session:
        recorded = Counter(
            str(r)
            for r in await session.scalars(
                select(AuditEvent.request_id).where(AuditEvent.request_id.startswith("mixed-"))
            )
        )
        customers = {str(c) for c in await session.scalars(select(Customer.id))}
        audited_creates = {
            str(r)
            for ids in await session.scalars(
                select(AuditAccess.record_ids).where(
                    AuditAccess.object_type == "customer", AuditAccess.action == "create"
                )
            )
            for r in ids
        }
        positions = list(
            await session.scalars(select(AuditEvent.position).order_by(AuditEvent.position))
        )
        report = await verify_ledger(session, state.services.audit.signer)
    assert not [rid for rid in answered if recorded[rid] != 1], "an answered request lost its entry"
    assert all(n == 1 for n in recorded.values()), "an entry was written twice"
    assert set(recorded) <= set(sent)
    assert customers <= audited_creates, "a committed create has no entry"
    assert positions == list(range(1, len(positions) + 1))
    assert None not in positions
    assert report.ok, report.problem
