"""Weaker finding: an unkeyed query hash gave back what the query held.

The audit's `queryHash` was the SHA-256 of the query text: with a known template and a
phone seen masked (158****2205), hashing the 10,000 candidates found the phone in under a
millisecond. It is now an HMAC under a key derived from the keyring's signing key, named
by version (`<version>:<hex>`); a holder of the keyring checks a text against an event
(`custos audit query EVENT_ID`, `AuditService.query_matches`), nobody else can.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import uuid

import pytest
from sqlalchemy import select

from server.app import AppState
from server.config import Settings
from server.data.models import AuditEvent
from tests.conftest import Api
from tests.factories import make_customer

TEMPLATE = 'query {{ customerByContact(phone: "158{middle}2205") {{ id }} }}'


async def _looked_up(api: Api, state: AppState) -> tuple[str, AuditEvent]:
    await make_customer(state, phone="15812342205")
    query = TEMPLATE.format(middle="1234")
    body = await api.gql(query, token=api.token("support", subject="sue"), purpose="support")
    assert body["data"]["customerByContact"] is not None
    async with state.sessions() as session:
        event = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event is not None
    return query, event


async def test_the_query_hash_cannot_be_searched_for_the_masked_digits(
    api: Api, state: AppState
) -> None:
    _query, event = await _looked_up(api, state)
    stored = event.query_hash
    assert stored is not None
    assert len(stored) == 64
    candidates = (TEMPLATE.format(middle=f"{n:04d}") for n in range(10_000))
    hits = [c for c in candidates if hashlib.sha256(c.encode()).hexdigest() == stored]
    assert hits == []
    # Compliance sees the same keyed value through the API.
    listed = await api.gql(
        "{ auditEvents(first: 50) { nodes { id queryHash } } }",
        token=api.token("compliance", subject="carol"),
        purpose="compliance",
    )
    hashes = {n["id"]: n["queryHash"] for n in listed["data"]["auditEvents"]["nodes"]}
    assert hashes[str(event.id)] == stored


async def test_a_keyring_holder_can_verify_the_query_of_an_event(api: Api, state: AppState) -> None:
    query, event = await _looked_up(api, state)
    audit = state.services.audit
    async with state.sessions() as session:
        assert await audit.query_matches(session, event.id, query) is True
        wrong = TEMPLATE.format(middle="1235")
        assert await audit.query_matches(session, event.id, wrong) is False
        assert await audit.query_matches(session, uuid.uuid4(), query) is None


@pytest.mark.slow
async def test_the_cli_checks_a_query_against_an_event(
    api: Api, state: AppState, settings: Settings
) -> None:
    query, event = await _looked_up(api, state)
    env = {
        **os.environ,
        "CUSTOS_ENV": "dev",
        "CUSTOS_DATABASE_URL": settings.database_url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_STATE_DIR": str(settings.state_dir),
    }
    codes = []
    for text in (query, TEMPLATE.format(middle="0000")):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from server.cli import main; main()",
            "audit",
            "query",
            str(event.id),
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await process.communicate(text.encode())
        codes.append(process.returncode)
    assert codes == [0, 1]
