"""Task queries. Every read goes through `visible`: a task on a customer is visible when
its customer is visible under the caller's row scope; a task without a customer by the
same scope applied to the task itself (all, its team, or assigned to / created by the
caller)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.authz.authorizer import RowScope
from server.customer.repository import scope_predicate
from server.data.models import Customer, CustomerKey, Order, Task

OPEN, DONE, CANCELLED = "open", "done", "cancelled"
# Orders that count as buying again (the analytics' sold orders).
NOT_SOLD = ("cancelled", "returned")


@dataclass(frozen=True, slots=True)
class TaskFilter:
    # None: every status; default lists show open tasks.
    status: str | None = OPEN
    assignee_id: str | None = None
    customer_id: uuid.UUID | None = None
    source: str | None = None
    due_before: datetime | None = None
    overdue: bool | None = None
    # Open tasks snoozed past now are left out unless asked for.
    include_snoozed: bool = False


def visible(scope: RowScope | None, principal: Principal) -> ColumnElement[bool]:
    """Tasks the caller may see under `scope` (needs the outer join on `customers`)."""
    if scope is RowScope.ALL:
        own: ColumnElement[bool] = true()
    elif scope is RowScope.TEAM:
        own = Task.team == principal.team if principal.team else false()
    elif scope is RowScope.OWN:
        own = or_(Task.assignee_id == principal.subject, Task.created_by == principal.subject)
    else:
        own = false()
    return or_(
        and_(
            Task.customer_id.is_not(None),
            Customer.erased_at.is_(None),
            scope_predicate(scope, principal),
        ),
        and_(Task.customer_id.is_(None), own),
    )


def _predicates(flt: TaskFilter, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.status is not None:
        conditions.append(Task.status == flt.status)
    if flt.assignee_id is not None:
        conditions.append(Task.assignee_id == flt.assignee_id)
    if flt.customer_id is not None:
        conditions.append(Task.customer_id == flt.customer_id)
    if flt.source is not None:
        conditions.append(Task.source == flt.source)
    if flt.due_before is not None:
        conditions.append(Task.due_at < flt.due_before)
    if flt.overdue is True:
        conditions.append(and_(Task.status == OPEN, Task.due_at < now))
    elif flt.overdue is False:
        conditions.append(or_(Task.status != OPEN, Task.due_at >= now))
    if not flt.include_snoozed:
        conditions.append(or_(Task.snoozed_until.is_(None), Task.snoozed_until <= now))
    return conditions


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _select(self, predicate: ColumnElement[bool]) -> Any:
        return (
            select(Task, CustomerKey.kek_version, CustomerKey.wrapped_dek)
            .outerjoin(Customer, Customer.id == Task.customer_id)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Task.customer_id)
            .where(predicate)
        )

    async def page(
        self,
        predicate: ColumnElement[bool],
        flt: TaskFilter,
        *,
        now: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Soonest due first, so overdue tasks lead; `limit + 1` rows after the cursor."""
        stmt = self._select(predicate).where(*_predicates(flt, now))
        if after is not None:
            at, last_id = after
            stmt = stmt.where(or_(Task.due_at > at, and_(Task.due_at == at, Task.id > last_id)))
        stmt = stmt.order_by(Task.due_at, Task.id).limit(limit + 1)
        return (await self.session.execute(stmt)).all()

    async def count(self, predicate: ColumnElement[bool], flt: TaskFilter, now: datetime) -> int:
        stmt = (
            select(func.count())
            .select_from(Task)
            .outerjoin(Customer, Customer.id == Task.customer_id)
            .where(predicate, *_predicates(flt, now))
        )
        return int(await self.session.scalar(stmt) or 0)

    async def by_id(
        self, task_id: uuid.UUID, predicate: ColumnElement[bool], *, for_update: bool = False
    ) -> Row[Any] | None:
        stmt = self._select(predicate).where(Task.id == task_id)
        if for_update:
            stmt = stmt.with_for_update(of=Task)
        return (await self.session.execute(stmt)).first()

    async def by_source_key(self, customer_id: uuid.UUID, source_key: str) -> Task | None:
        stmt = select(Task).where(Task.customer_id == customer_id, Task.source_key == source_key)
        return (await self.session.scalars(stmt)).first()

    async def with_keys(
        self, customer_ids: Collection[uuid.UUID], *, done_since: datetime
    ) -> Sequence[Task]:
        """Generated tasks of these customers still relevant to a care queue: open ones,
        and those done since `done_since`."""
        if not customer_ids:
            return []
        stmt = select(Task).where(
            Task.customer_id.in_(list(customer_ids)),
            Task.source_key.is_not(None),
            or_(Task.status == OPEN, and_(Task.status == DONE, Task.done_at >= done_since)),
        )
        return (await self.session.scalars(stmt)).all()

    async def open_with_key_prefix(self, customer_id: uuid.UUID, prefix: str) -> Task | None:
        stmt = select(Task).where(
            Task.customer_id == customer_id,
            Task.status == OPEN,
            Task.source_key.startswith(prefix, autoescape=True),
        )
        return (await self.session.scalars(stmt)).first()

    async def customer_team(self, customer_id: uuid.UUID) -> tuple[str | None, str | None]:
        """(team, owner) of a customer the caller was shown to see."""
        row = (
            await self.session.execute(
                select(Customer.team, Customer.owner_id).where(Customer.id == customer_id)
            )
        ).first()
        return (row.team, row.owner_id) if row is not None else (None, None)

    async def add(self, task: Task) -> None:
        self.session.add(task)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def outcomes(
        self,
        predicate: ColumnElement[bool],
        *,
        created_from: datetime,
        created_to: datetime,
        won_back_within: timedelta,
        postgres: bool,
    ) -> Sequence[Row[Any]]:
        """Retention tasks created in [from, to) per (action, signal): how many, how many
        done, and how many whose customer bought (a sold order) within the window after
        the task was done."""
        if postgres:
            deadline: Any = Task.done_at + literal(won_back_within)
        else:
            # SQLite keeps UTC text; datetime() gives the same layout to compare with.
            deadline = func.datetime(Task.done_at, f"+{won_back_within.total_seconds()} seconds")
        bought = exists().where(
            Order.customer_id == Task.customer_id,
            Order.status.notin_(NOT_SOLD),
            Order.ordered_at > Task.done_at,
            Order.ordered_at <= deadline,
        )
        done = Task.status == DONE
        stmt: Any = (
            select(
                Task.action,
                Task.signal,
                func.count().label("suggested"),
                func.count(case((done, 1))).label("done"),
                func.count(case((and_(done, bought), 1))).label("won_back"),
            )
            .select_from(Task)
            .outerjoin(Customer, Customer.id == Task.customer_id)
            .where(
                predicate,
                Task.source == "retention",
                Task.created_at >= created_from,
                Task.created_at < created_to,
            )
            .group_by(Task.action, Task.signal)
            .order_by(Task.action, Task.signal)
        )
        return (await self.session.execute(stmt)).all()
