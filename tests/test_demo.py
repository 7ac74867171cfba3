"""Demo data: deterministic for a seed, realistic formats, complaints in every state."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from server.data.engine import create_engine, create_session_factory
from server.data.migrate import upgrade_to_head
from server.data.models import Customer, CustomerKey
from server.demo import COMPLAINT_STATES, DemoBuilder, DemoReport, data
from server.vault import FieldRef, LocalKeyring, Vault
from server.vault.normalise import luhn_is_valid, national_id_is_valid

NOW = datetime(2026, 6, 1, tzinfo=UTC)
FIELDS = ("name", "phone", "email", "national_id", "bank_card")


async def _build(url: str, vault: Vault, seed: int) -> tuple[DemoReport, list[tuple[str, ...]]]:
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            report = await DemoBuilder(vault, seed=seed, now=NOW).run(session, 60)
            rows = (await session.execute(select(Customer, CustomerKey).join(CustomerKey))).all()
            people = []
            for customer, key_row in rows:
                key = vault.open_data_key(customer.id, key_row.kek_version, key_row.wrapped_dek)
                revealed = [
                    vault.reveal(key, FieldRef("customers", f, customer.id), getattr(customer, f))
                    for f in FIELDS
                ]
                people.append((*revealed, customer.region or "", customer.tier or ""))
            return report, sorted(people)
    finally:
        await engine.dispose()


def _demo(
    tmp_path: Path, name: str, vault: Vault, seed: int
) -> tuple[DemoReport, list[tuple[str, ...]]]:
    url = f"sqlite+aiosqlite:///{tmp_path / name}"
    upgrade_to_head(url)
    return asyncio.run(_build(url, vault, seed))


def test_same_seed_same_data_and_every_complaint_state(tmp_path: Path) -> None:
    vault = Vault(LocalKeyring.load(tmp_path / "k.json", create=True))
    first = _demo(tmp_path, "a.db", vault, 3)
    second = _demo(tmp_path, "b.db", vault, 3)
    other = _demo(tmp_path, "c.db", vault, 4)
    assert first == second
    assert first[1] != other[1]
    report, people = first
    assert report.customers == len(people) == 60
    assert set(report.complaint_states) == set(COMPLAINT_STATES)
    assert any(not name.isascii() for name, *_ in people)
    assert any(name.isascii() for name, *_ in people)
    for _, phone, email, national_id, bank_card, _, _ in people:
        assert phone.startswith("+861")
        assert len(phone) == 14
        assert "@" in email
        assert national_id_is_valid(national_id)
        assert luhn_is_valid(bank_card)


def test_generated_identity_numbers_are_valid() -> None:
    rng = random.Random(1)
    for _ in range(50):
        assert national_id_is_valid(data.national_id(rng, "110101", date(1990, 5, 17)))
        assert luhn_is_valid(data.bank_card(rng))
