"""`custos audit ...` as an operator runs it: a real process against the test database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from server.app import AppState
from server.config import Settings
from server.data.models import AuditEvent
from tests.conftest import Database
from tests.factories import make_customer

pytestmark = pytest.mark.slow


async def _custos(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "CUSTOS_ENV": "dev",
        "CUSTOS_DATABASE_URL": settings.database_url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_STATE_DIR": str(settings.state_dir),
        "COLUMNS": "200",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from server.cli import main; main()",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_verify_export_seal_status_and_a_tampered_entry(
    state: AppState, settings: Settings, database: Database, tmp_path: Path
) -> None:
    customers = [await make_customer(state) for _ in range(3)]

    code, _, err = await _custos(settings, "audit", "verify")
    assert code == 0, err
    assert "0 sealed entries, 3 not sealed yet" in err

    code, out, err = await _custos(settings, "audit", "export", "--format", "jsonl")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    # The export records itself (seq 4) and commits that before writing a line.
    assert [line["seq"] for line in lines] == [1, 2, 3, 4]
    assert (lines[3]["operation_type"], lines[3]["subject"][:4]) == ("cli", "cli:")
    assert lines[0]["accesses"][0]["record_ids"] == [str(customers[0])]
    code, out, _ = await _custos(
        settings, "audit", "export", "--format", "csv", "--since", "2000-01-01"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["seq"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert rows[4]["operation_type"] == "cli"
    code, out, _ = await _custos(settings, "audit", "export", "--until", "2000-01-01")
    assert out == ""

    code, _, err = await _custos(settings, "audit", "status")
    assert code == 0, err
    assert "blocks: 0" in err
    assert "unsealed entries: 6" in err
    code, _, err = await _custos(settings, "audit", "seal")
    assert code == 0, err
    assert "sealed 6 entries into 1 blocks (through block 1)" in err
    code, _, err = await _custos(settings, "audit", "seal")
    assert (code, err) == (0, "nothing to seal\n")
    code, _, err = await _custos(settings, "audit", "status")
    assert "blocks: 1" in err
    assert "last position: 6" in err
    assert "unsealed entries: 0" in err
    code, _, err = await _custos(settings, "audit", "verify", "--from-block", "1")
    assert code == 0, err
    assert "1 signed blocks from block 1" in err
    code, _, err = await _custos(settings, "audit", "public-key")
    assert code == 0, err
    assert "(key version 1)" in err

    async with state.sessions() as session, session.begin():
        if database.backend == "postgresql":
            await session.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            await session.execute(text("DROP TRIGGER audit_events_no_update"))
        await session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(outcome="ok!"))
        tampered = await session.scalar(select(AuditEvent.id).where(AuditEvent.seq == 2))
    code, _, err = await _custos(settings, "audit", "verify")
    assert code == 1
    assert "altered entry at position 2" in err
    assert "in block 1" in err
    assert str(tampered) in err


async def test_prune_signs_the_boundary_and_the_rest_verifies(
    state: AppState, settings: Settings
) -> None:
    for _ in range(3):
        await make_customer(state)
    await state.sealer.seal_pending(state.sessions)
    code, _, err = await _custos(settings, "audit", "prune", "--before", "2999-01-01")
    assert code == 0, err
    assert "pruned 3 events" in err
    code, _, err = await _custos(settings, "audit", "verify")
    assert code == 0, err
    # The pruned block's head stays and verifies; the prune's own entry is not sealed yet.
    assert "1 signed blocks" in err
    assert "0 sealed entries, 1 not sealed yet" in err
    code, _, err = await _custos(settings, "audit", "prune")
    assert code == 0, err
    assert "nothing to prune" in err
