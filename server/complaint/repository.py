"""Complaint queries. Every read joins the complaint's customer under the caller's row
scope, so pages, counts and breakdowns only ever see visible rows."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.complaint.states import UNACKNOWLEDGED, UNRESOLVED, ComplaintStatus
from server.data.models import Complaint, ComplaintEvent, Customer, CustomerKey, Order


@dataclass(frozen=True, slots=True)
class ComplaintFilter:
    status: str | None = None
    category: str | None = None
    assignee_id: str | None = None
    customer_id: uuid.UUID | None = None
    # True: only complaints past a deadline now; False: only those within every deadline.
    overdue: bool | None = None


def overdue_predicate(now: datetime) -> ColumnElement[bool]:
    """Past a deadline that still applies: acknowledgement, resolution or follow-up."""
    return or_(
        and_(
            Complaint.status.in_([s.value for s in UNACKNOWLEDGED]),
            Complaint.acknowledged_at.is_(None),
            Complaint.acknowledge_due_at < now,
        ),
        and_(
            Complaint.status.in_([s.value for s in UNRESOLVED]),
            Complaint.resolve_due_at < now,
        ),
        and_(
            Complaint.status == ComplaintStatus.RESOLVED.value,
            Complaint.followed_up_at.is_(None),
            Complaint.follow_up_due_at < now,
        ),
    )


def _predicates(flt: ComplaintFilter | None, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Customer.erased_at.is_(None)]
    if flt is None:
        return conditions
    if flt.status is not None:
        conditions.append(Complaint.status == flt.status)
    if flt.category is not None:
        conditions.append(Complaint.category == flt.category)
    if flt.assignee_id is not None:
        conditions.append(Complaint.assignee_id == flt.assignee_id)
    if flt.customer_id is not None:
        conditions.append(Complaint.customer_id == flt.customer_id)
    if flt.overdue is True:
        conditions.append(overdue_predicate(now))
    elif flt.overdue is False:
        conditions.append(~overdue_predicate(now))
    return conditions


class ComplaintRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _select(self, scope: ColumnElement[bool]) -> Any:
        return (
            select(Complaint, CustomerKey.kek_version, CustomerKey.wrapped_dek)
            .join(Customer, Customer.id == Complaint.customer_id)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Complaint.customer_id)
            .where(scope)
        )

    async def page(
        self,
        *,
        scope: ColumnElement[bool],
        flt: ComplaintFilter | None,
        now: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Newest first by opening time; `limit + 1` rows after the (opened_at, id) cursor."""
        stmt = self._select(scope).where(*_predicates(flt, now))
        if after is not None:
            at, last_id = after
            stmt = stmt.where(
                or_(
                    Complaint.opened_at < at,
                    and_(Complaint.opened_at == at, Complaint.id < last_id),
                )
            )
        stmt = stmt.order_by(Complaint.opened_at.desc(), Complaint.id.desc()).limit(limit + 1)
        return (await self.session.execute(stmt)).all()

    async def count(
        self, *, scope: ColumnElement[bool], flt: ComplaintFilter | None, now: datetime
    ) -> int:
        stmt = (
            select(func.count())
            .select_from(Complaint)
            .join(Customer, Customer.id == Complaint.customer_id)
            .where(scope, *_predicates(flt, now))
        )
        return int(await self.session.scalar(stmt) or 0)

    async def by_id(
        self, complaint_id: uuid.UUID, *, scope: ColumnElement[bool], for_update: bool = False
    ) -> Row[Any] | None:
        stmt = self._select(scope).where(Complaint.id == complaint_id, Customer.erased_at.is_(None))
        if for_update:
            stmt = stmt.with_for_update(of=Complaint)
        return (await self.session.execute(stmt)).first()

    async def events_of(self, complaint_ids: Collection[uuid.UUID]) -> Sequence[Row[Any]]:
        """Status histories of many complaints in one statement, oldest move first, each
        event with its customer's wrapped data key (for a sealed note)."""
        stmt: Any = (
            select(ComplaintEvent, CustomerKey.kek_version, CustomerKey.wrapped_dek)
            .outerjoin(CustomerKey, CustomerKey.customer_id == ComplaintEvent.customer_id)
            .where(ComplaintEvent.complaint_id.in_(list(complaint_ids)))
            .order_by(ComplaintEvent.at, ComplaintEvent.id)
        )
        return (await self.session.execute(stmt)).all()

    async def order_of_customer(self, order_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
        stmt = select(Order.id).where(Order.id == order_id, Order.customer_id == customer_id)
        return (await self.session.scalar(stmt)) is not None

    async def add(self, complaint: Complaint, event: ComplaintEvent) -> None:
        self.session.add(complaint)
        await self.session.flush()
        self.session.add(event)
        await self.session.flush()

    async def add_event(self, event: ComplaintEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def breakdown(
        self, *, scope: ColumnElement[bool], opened_from: datetime, opened_to: datetime
    ) -> Sequence[Row[Any]]:
        """(category, root_cause, n) for complaints opened in [from, to), grouped in SQL."""
        stmt: Any = (
            select(Complaint.category, Complaint.root_cause, func.count().label("n"))
            .join(Customer, Customer.id == Complaint.customer_id)
            .where(
                scope,
                Customer.erased_at.is_(None),
                Complaint.opened_at >= opened_from,
                Complaint.opened_at < opened_to,
            )
            .group_by(Complaint.category, Complaint.root_cause)
            .order_by(Complaint.category, Complaint.root_cause)
        )
        return (await self.session.execute(stmt)).all()
