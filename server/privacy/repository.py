"""Queries for consent, data-subject export and erasure, and retention purges."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.base import Base
from server.data.models import (
    Consent,
    ContactPoint,
    Customer,
    CustomerKey,
    CustomerNameToken,
    CustomerNote,
)

# Tables holding one person's records, in the order an export lists them. Every other
# table with a `customer_id` column is exported too (after these), so a table added later
# is never silently left out.
EXPORT_ORDER = (
    "consents",
    "interactions",
    "complaints",
    "complaint_events",
    "orders",
    "order_items",
    "order_status_events",
    "loyalty_entries",
    "referrals",
    "campaign_recipients",
)


# Tables with a `customer_id` that hold no fact about the person: the file itself, its
# key, and its name-search handles (left out of exports like the blind-index columns).
NOT_EXPORTED = ("customers", "customer_keys", "customer_name_tokens")

# Rows deleted on erasure besides the shredding: search handles, and records that are
# nothing but the person's data (their ciphertexts are dead already; the rows go too).
ERASED_ROWS: tuple[type[Any], ...] = (CustomerNameToken, ContactPoint, CustomerNote)

# Merges chain (a duplicate of a duplicate); no real chain is this long, and a cycle
# written by hand into the database must not loop forever.
MAX_MERGE_DEPTH = 64


def customer_owned_tables() -> list[Table]:
    tables = {
        t.name: t
        for t in Base.metadata.sorted_tables
        if "customer_id" in t.c and t.name not in NOT_EXPORTED
    }
    ordered = [tables.pop(name) for name in EXPORT_ORDER if name in tables]
    return ordered + sorted(tables.values(), key=lambda t: t.name)


class PrivacyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def customer_with_key(
        self, customer_id: uuid.UUID, scope: ColumnElement[bool]
    ) -> Any | None:
        """The whole customer row plus its key columns, under the caller's row scope."""
        columns: list[Any] = [
            *Base.metadata.tables["customers"].c,
            CustomerKey.kek_version.label("key_kek_version"),
            CustomerKey.wrapped_dek.label("key_wrapped_dek"),
        ]
        stmt = (
            select(*columns)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(Customer.id == customer_id, Customer.merged_into_id.is_(None), scope)
        )
        return (await self.session.execute(stmt)).first()

    async def survivor_of(self, customer_id: uuid.UUID) -> uuid.UUID | None:
        """The file a customer was merged into, followed to the end (the id itself when
        it was never merged; None when there is no such customer)."""
        current = customer_id
        for _ in range(MAX_MERGE_DEPTH):
            row = (
                await self.session.execute(
                    select(Customer.id, Customer.merged_into_id).where(Customer.id == current)
                )
            ).first()
            if row is None:
                return None
            if row.merged_into_id is None:
                return current
            current = row.merged_into_id
        return None

    async def merged_into(self, survivor_id: uuid.UUID) -> list[uuid.UUID]:
        """Every customer merged into `survivor_id`, directly or through another merged
        one: the duplicates whose own values the survivor's file still answers for."""
        found: list[uuid.UUID] = []
        frontier = [survivor_id]
        for _ in range(MAX_MERGE_DEPTH):
            if not frontier:
                break
            rows = await self.session.scalars(
                select(Customer.id).where(Customer.merged_into_id.in_(frontier))
            )
            frontier = [i for i in rows.all() if i not in found and i != survivor_id]
            found.extend(frontier)
        return found

    async def customers_with_keys(self, ids: Collection[uuid.UUID]) -> Sequence[Any]:
        """Whole customer rows with their key columns, merged ones included, by id."""
        columns: list[Any] = [
            *Base.metadata.tables["customers"].c,
            CustomerKey.kek_version.label("key_kek_version"),
            CustomerKey.wrapped_dek.label("key_wrapped_dek"),
        ]
        stmt = (
            select(*columns)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(Customer.id.in_(list(ids)))
            .order_by(Customer.id)
        )
        return (await self.session.execute(stmt)).all()

    async def rows_of(self, table: Table, customer_id: uuid.UUID) -> Sequence[Any]:
        conditions = [table.c.customer_id == customer_id]
        if "referred_customer_id" in table.c:
            conditions.append(table.c.referred_customer_id == customer_id)
        order = [table.c[name] for name in ("id",) if name in table.c]
        stmt = select(table).where(or_(*conditions)).order_by(*order)
        return (await self.session.execute(stmt)).all()

    async def erase_customer(self, customer_id: uuid.UUID, now: datetime) -> None:
        """Mark erased, drop search handles and the wrapped key; ciphertexts stay dead."""
        await self.session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(
                phone_bidx=None,
                email_bidx=None,
                national_id_bidx=None,
                bidx_key_version=None,
                erased_at=now,
                updated_at=now,
            )
        )
        for model in ERASED_ROWS:
            await self.session.execute(delete(model).where(model.customer_id == customer_id))
        await self.session.execute(
            update(CustomerKey)
            .where(CustomerKey.customer_id == customer_id)
            .values(wrapped_dek=None, shredded_at=now)
        )
        await self.session.execute(
            update(Consent)
            .where(Consent.customer_id == customer_id, Consent.withdrawn_at.is_(None))
            .values(withdrawn_at=now)
        )

    # --- consent

    async def consents_of(self, customer_ids: Collection[uuid.UUID]) -> Sequence[Consent]:
        stmt = (
            select(Consent)
            .where(Consent.customer_id.in_(list(customer_ids)))
            .order_by(Consent.customer_id, Consent.granted_at, Consent.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def active_consent(self, customer_id: uuid.UUID, purpose: str) -> Consent | None:
        stmt = select(Consent).where(
            Consent.customer_id == customer_id,
            Consent.purpose == purpose,
            Consent.withdrawn_at.is_(None),
        )
        return (await self.session.scalars(stmt)).first()

    async def add_consent(self, consent: Consent) -> None:
        self.session.add(consent)
        await self.session.flush()

    async def withdraw(self, consent_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(Consent).where(Consent.id == consent_id).values(withdrawn_at=now)
        )

    async def consenting(self, customer_ids: Collection[uuid.UUID], purpose: str) -> set[uuid.UUID]:
        stmt = (
            select(Consent.customer_id)
            .join(Customer, Customer.id == Consent.customer_id)
            .where(
                Consent.customer_id.in_(list(customer_ids)),
                Consent.purpose == purpose,
                Consent.withdrawn_at.is_(None),
                Customer.erased_at.is_(None),
            )
            .distinct()
        )
        return set((await self.session.scalars(stmt)).all())

    # --- retention

    async def expired(
        self, table: Table, columns: Collection[str], age_column: str, cutoff: datetime
    ) -> list[uuid.UUID]:
        stmt = select(table.c.id).where(
            table.c[age_column] < cutoff,
            or_(*(table.c[name].is_not(None) for name in columns)),
        )
        return list((await self.session.scalars(stmt)).all())

    async def clear_values(
        self, table: Table, columns: Collection[str], ids: Collection[uuid.UUID]
    ) -> int:
        total = 0
        id_list = list(ids)
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            result = await self.session.execute(
                update(table).where(and_(table.c.id.in_(chunk))).values(**dict.fromkeys(columns))
            )
            total += int(getattr(result, "rowcount", 0) or 0)
        return total
