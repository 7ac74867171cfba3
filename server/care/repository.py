"""What the care queue needs, one query per kind, under the caller's row scope: one
owner's customers, or (`owner_id` None) every customer in the scope, a manager's team."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.customer.repository import filter_predicates
from server.data.models import Complaint, Customer, CustomerKey, Interaction


class CareRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _mine(self, scope: ColumnElement[bool], owner_id: str | None) -> list[ColumnElement[bool]]:
        owner = [Customer.owner_id == owner_id] if owner_id is not None else []
        return [scope, *owner, *filter_predicates(None)]

    async def contacts(self, scope: ColumnElement[bool], owner_id: str | None) -> Sequence[Any]:
        """(id, owner_id, lifecycle, created_at, last_contact) per customer; last contact
        from interactions."""
        stmt = (
            select(
                Customer.id,
                Customer.owner_id,
                Customer.lifecycle,
                Customer.created_at,
                func.max(Interaction.occurred_at).label("last_contact"),
            )
            .outerjoin(Interaction, Interaction.customer_id == Customer.id)
            .where(*self._mine(scope, owner_id))
            .group_by(Customer.id, Customer.owner_id, Customer.lifecycle, Customer.created_at)
            .order_by(Customer.id)
        )
        return (await self.session.execute(stmt)).all()

    async def birthdays(self, scope: ColumnElement[bool], owner_id: str | None) -> Sequence[Any]:
        stmt = (
            select(
                Customer.id,
                Customer.owner_id,
                Customer.birthday,
                CustomerKey.kek_version,
                CustomerKey.wrapped_dek,
            )
            .join(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(*self._mine(scope, owner_id), Customer.birthday.is_not(None))
        )
        return (await self.session.execute(stmt)).all()

    async def follow_ups(
        self, scope: ColumnElement[bool], owner_id: str | None, until: datetime
    ) -> Sequence[Any]:
        stmt = (
            select(Complaint.id, Complaint.customer_id, Complaint.follow_up_due_at)
            .join(Customer, Customer.id == Complaint.customer_id)
            .where(
                *self._mine(scope, owner_id),
                Complaint.follow_up_due_at.is_not(None),
                Complaint.follow_up_due_at <= until,
                Complaint.followed_up_at.is_(None),
                Complaint.closed_at.is_(None),
            )
        )
        return (await self.session.execute(stmt)).all()
