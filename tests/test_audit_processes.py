"""The chain under real concurrency and real crashes: several writer processes, and a
server killed with SIGKILL in the middle of a burst of mutations."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from server.app import AppState
from server.audit.checkpoints import CheckpointSigner
from server.audit.recorder import AuditRecorder
from server.audit.verify import verify_chain
from server.auth.principal import Principal
from server.auth.tokens import issue_token
from server.config import Settings
from server.data.engine import create_engine, create_session_factory
from server.data.models import AuditAccess, AuditAccessRecord, AuditCheckpoint, AuditEvent, Customer
from server.vault import LocalKeyring
from tests.conftest import Database

pytestmark = pytest.mark.slow

WRITERS = 4
EVENTS_PER_WRITER = 25
CHECKPOINT_EVERY = 10


def _append_events(url: str, keyring: str, writer: int) -> None:
    """One writer process: its own engine, one transaction per event, checkpoints on."""

    async def run() -> None:
        engine = create_engine(url, null_pool=True)
        sessions = create_session_factory(engine)
        signer = CheckpointSigner(
            LocalKeyring.load(Path(keyring), create=False), every=CHECKPOINT_EVERY
        )
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
                    checkpoints=signer,
                )
        await engine.dispose()

    asyncio.run(run())


async def test_concurrent_writer_processes_keep_one_valid_chain(
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
        seqs = list(await session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        checkpoints = list(await session.scalars(select(AuditCheckpoint.seq)))
        report = await verify_chain(session, state.services.audit.signer, batch_size=7)
    assert seqs == list(range(1, total + 1))
    assert sorted(checkpoints) == list(range(CHECKPOINT_EVERY, total + 1, CHECKPOINT_EVERY))
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
            for r in await session.scalars(
                select(AuditAccessRecord.record_id)
                .join(AuditAccess, AuditAccess.id == AuditAccessRecord.access_id)
                .where(AuditAccess.object_type == "customer", AuditAccess.action == "create")
            )
        }
        report = await verify_chain(session, state.services.audit.signer)
    assert report.ok, report.problem
    assert set(acked) <= customers  # every acknowledged create was durable
    assert customers <= audited_creates  # and no committed customer lacks its audit event
    assert len(customers) >= KILL_AFTER
