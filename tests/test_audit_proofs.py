"""Inclusion proofs: `auditProof` for compliance, checked offline by `custos audit
verify-proof` and by the README's stand-alone recipe; any changed byte fails them."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from server.app import AppState
from server.audit.proof import check_proof
from server.cli import invoke
from server.config import Settings
from server.data.models import AuditEvent
from tests.conftest import Api
from tests.factories import make_customer
from tests.test_readme import README, fenced_blocks

PROOF = """
query Proof($event: ID!) {
  auditProof(eventId: $event) {
    eventId block position leafIndex treeSize entryHash path blockHead blockHash
    signature publicKey document
  }
}
"""
RECIPE = next(b.text for b in fenced_blocks(README.read_text()) if b.language == "python")


async def _sealed_entries(api: Api, state: AppState, count: int) -> list[str]:
    customer = await make_customer(state)
    token = api.token("support")
    for _ in range(count - 1):
        await api.gql(
            "query($id: ID!) { customer(id: $id) { name } }",
            {"id": str(customer)},
            token=token,
            purpose="support",
        )
    state.sealer.block_size = 4
    await state.sealer.seal_pending(state.sessions)
    async with state.sessions() as session:
        return [str(i) for i in await session.scalars(select(AuditEvent.id).order_by("seq"))]


async def _proof(api: Api, event_id: str) -> dict[str, Any]:
    payload = await api.gql(
        PROOF, {"event": event_id}, token=api.token("compliance"), purpose="compliance"
    )
    assert "errors" not in payload, payload
    proof: dict[str, Any] = payload["data"]["auditProof"]
    return proof


async def test_every_sealed_entry_has_a_proof_that_holds_offline(api: Api, state: AppState) -> None:
    ids = await _sealed_entries(api, state, 7)
    _, key = state.services.audit.public_key()
    for event_id in ids:
        proof = await _proof(api, event_id)
        document = orjson.loads(proof["document"])
        assert check_proof(document, public_key=key) == []
        assert (proof["eventId"], proof["publicKey"]) == (event_id, base64.b64encode(key).decode())
        assert proof["treeSize"] in (3, 4)  # blocks of four: 4 + 3 (the proof reads too)
    other = bytes(32)
    assert "the proof is signed with another key than the one given" in check_proof(
        document, public_key=other
    )


async def test_any_changed_byte_fails_the_proof(api: Api, state: AppState) -> None:
    ids = await _sealed_entries(api, state, 3)
    text = (await _proof(api, ids[1]))["document"].encode()
    assert check_proof(orjson.loads(text)) == []
    for index in range(len(text)):
        changed = bytearray(text)
        changed[index] ^= 0x01
        try:
            document = orjson.loads(bytes(changed))
        except orjson.JSONDecodeError:
            continue  # no longer a proof at all
        assert check_proof(document) != [], f"byte {index} changed and the proof still held"


async def test_verify_proof_on_the_command_line_and_the_readme_recipe(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    ids = await _sealed_entries(api, state, 2)
    document = (await _proof(api, ids[0]))["document"]
    _, key = state.services.audit.public_key()
    published = base64.b64encode(key).decode()
    good, bad = tmp_path / "proof.json", tmp_path / "bad.json"
    good.write_text(document)
    forged = orjson.loads(document)
    forged["path"] = [*forged["path"][::-1], "00" * 32]
    bad.write_text(orjson.dumps(forged).decode())

    # No database and no keyring: the command reads only the file.
    args = ["audit", "verify-proof", str(good), "--public-key", published]
    assert await asyncio.to_thread(invoke, args) == 0
    assert await asyncio.to_thread(invoke, ["audit", "verify-proof", str(bad)]) == 1

    recipe = tmp_path / "check_proof.py"
    recipe.write_text(RECIPE)
    ok = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(recipe), str(good), published],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert f"entry {ids[0]} is in block 1" in ok.stdout
    for path, key_text in ((bad, published), (good, base64.b64encode(bytes(32)).decode())):
        failed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, str(recipe), str(path), key_text],
            capture_output=True,
            text=True,
        )
        assert failed.returncode != 0


async def test_a_proof_needs_compliance_and_a_sealed_entry(api: Api, state: AppState) -> None:
    await make_customer(state)
    async with state.sessions() as session:
        event_id = str(await session.scalar(select(AuditEvent.id)))
    compliance = api.token("compliance")
    payload = (
        await api.post(PROOF, {"event": event_id}, token=compliance, purpose="compliance")
    ).json()
    assert payload["errors"][0]["extensions"]["code"] == "AUDIT_NOT_SEALED"
    await state.sealer.seal_pending(state.sessions)
    payload = (
        await api.post(PROOF, {"event": event_id}, token=api.token("agent"), purpose="support")
    ).json()
    assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert payload["data"] is None
    missing = "01900000-0000-7000-8000-000000000000"
    payload = (
        await api.post(PROOF, {"event": missing}, token=compliance, purpose="compliance")
    ).json()
    assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("text", ["{}", "[1]", '{"format": "custos-audit-proof/1"}'])
def test_a_malformed_proof_is_named_not_a_crash(text: str) -> None:
    assert check_proof(orjson.loads(text)) != []
