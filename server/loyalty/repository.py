"""The points ledger, member levels and referrals."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.customer.repository import filter_predicates
from server.data.models import Customer, LoyaltyEntry, Order, Referral

SPENDING_STATUSES = ("paid", "shipped", "delivered")


class LoyaltyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_customer(self, customer_id: uuid.UUID) -> bool:
        """Serialise ledger writers of one customer until the transaction ends.

        A no-op UPDATE takes the row lock on PostgreSQL (a second writer waits, then reads
        the first one's entry) and the write lock on SQLite; it works on both without
        dialect branches. False when the customer does not exist.
        """
        result = await self.session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(member_level=Customer.member_level)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def balance(self, customer_id: uuid.UUID) -> int:
        stmt = select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
            LoyaltyEntry.customer_id == customer_id
        )
        return int(await self.session.scalar(stmt) or 0)

    async def last_entry_id(self, customer_id: uuid.UUID) -> uuid.UUID | None:
        # PostgreSQL has no max(uuid): order and take one (the customer index serves it).
        return await self.session.scalar(
            select(LoyaltyEntry.id)
            .where(LoyaltyEntry.customer_id == customer_id)
            .order_by(LoyaltyEntry.id.desc())
            .limit(1)
        )

    async def earned(self, customer_id: uuid.UUID) -> int:
        stmt = select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
            LoyaltyEntry.customer_id == customer_id, LoyaltyEntry.reason != "redeem"
        )
        return int(await self.session.scalar(stmt) or 0)

    async def spend(self, customer_id: uuid.UUID) -> Decimal:
        stmt = select(func.coalesce(func.sum(Order.total), 0)).where(
            Order.customer_id == customer_id, Order.status.in_(SPENDING_STATUSES)
        )
        return Decimal(await self.session.scalar(stmt) or 0)

    async def points_for_order(self, order_id: uuid.UUID) -> int:
        stmt = select(func.coalesce(func.sum(LoyaltyEntry.points), 0)).where(
            LoyaltyEntry.order_id == order_id
        )
        return int(await self.session.scalar(stmt) or 0)

    async def add_entry(self, entry: LoyaltyEntry) -> None:
        self.session.add(entry)
        await self.session.flush()

    async def set_level(self, customer_id: uuid.UUID, level: str | None) -> None:
        await self.session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(member_level=level)
            .execution_options(synchronize_session=False)
        )

    async def levels(
        self, ids: Collection[uuid.UUID], scope: ColumnElement[bool]
    ) -> dict[uuid.UUID, str | None]:
        """Member levels of the live customers among `ids` inside the scope: the keys are
        exactly the visible customers."""
        rows = await self.session.execute(
            select(Customer.id, Customer.member_level).where(
                Customer.id.in_(list(ids)), scope, *filter_predicates(None)
            )
        )
        return {row.id: row.member_level for row in rows}

    async def points(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
        """(balance, lifetime earned) per customer, one grouped query."""
        earned = case((LoyaltyEntry.reason != "redeem", LoyaltyEntry.points), else_=0)
        rows = await self.session.execute(
            select(LoyaltyEntry.customer_id, func.sum(LoyaltyEntry.points), func.sum(earned))
            .where(LoyaltyEntry.customer_id.in_(list(ids)))
            .group_by(LoyaltyEntry.customer_id)
        )
        return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in rows}

    async def referral_counts(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
        rows = await self.session.execute(
            select(Referral.customer_id, func.count())
            .where(Referral.customer_id.in_(list(ids)))
            .group_by(Referral.customer_id)
        )
        return {row[0]: int(row[1]) for row in rows}

    async def entries(
        self, customer_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[LoyaltyEntry]:
        stmt = select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id)
        if after is not None:
            stmt = stmt.where(LoyaltyEntry.id > after)
        stmt = stmt.order_by(LoyaltyEntry.id).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    async def referrers_of(self, customer_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
        """Who referred this customer, who referred that one, and so on (at most `limit`)."""
        chain: list[uuid.UUID] = []
        current: uuid.UUID | None = customer_id
        while current is not None and len(chain) < limit:
            current = await self.session.scalar(
                select(Customer.referred_by_id).where(Customer.id == current)
            )
            if current is None or current in chain:
                break
            chain.append(current)
        return chain

    async def relationship_start(self, customer_id: uuid.UUID) -> datetime | None:
        """When the customer's relationship with the business began: the earlier of the
        file's creation and the first order not cancelled."""
        first_order = (
            select(func.min(Order.ordered_at))
            .where(Order.customer_id == customer_id, Order.status != "cancelled")
            .scalar_subquery()
        )
        row = (
            await self.session.execute(
                select(Customer.created_at, first_order).where(Customer.id == customer_id)
            )
        ).first()
        if row is None:
            return None
        created, ordered = row
        return min(created, ordered) if ordered is not None else created

    async def referral_of(self, referred_id: uuid.UUID) -> Referral | None:
        return await self.session.scalar(
            select(Referral).where(Referral.referred_customer_id == referred_id)
        )

    async def add_referral(self, referral: Referral) -> None:
        self.session.add(referral)
        await self.session.flush()
        await self.session.execute(
            update(Customer)
            .where(Customer.id == referral.referred_customer_id)
            .values(referred_by_id=referral.customer_id)
            .execution_options(synchronize_session=False)
        )
