"""Customer queries. Row scope arrives as a SQL predicate so pages and counts agree."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.authz.authorizer import RowScope
from server.data.models import Customer, CustomerKey


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    tier: str | None = None
    lifecycle: str | None = None
    need_type: str | None = None
    industry: str | None = None
    region: str | None = None
    owner_id: str | None = None
    team: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def scope_predicate(scope: RowScope | None, principal: Principal) -> ColumnElement[bool]:
    if scope is RowScope.ALL:
        return true()
    if scope is RowScope.TEAM:
        return Customer.team == principal.team if principal.team else false()
    if scope is RowScope.OWN:
        return Customer.owner_id == principal.subject
    return false()


def filter_predicates(flt: CustomerFilter | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Customer.erased_at.is_(None),
        Customer.merged_into_id.is_(None),
    ]
    if flt is None:
        return conditions
    for attr in ("tier", "lifecycle", "need_type", "industry", "region", "owner_id", "team"):
        value = getattr(flt, attr)
        if value is not None:
            conditions.append(getattr(Customer, attr) == value)
    if flt.created_from is not None:
        conditions.append(Customer.created_at >= flt.created_from)
    if flt.created_to is not None:
        conditions.append(Customer.created_at < flt.created_to)
    return conditions


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _columns(self, fields: Collection[str], with_keys: bool) -> list[Any]:
        columns: list[Any] = [Customer.id]
        columns += [getattr(Customer, name) for name in fields if name != "id"]
        if with_keys:
            columns += [CustomerKey.kek_version, CustomerKey.wrapped_dek]
        return columns

    async def page(
        self,
        *,
        scope: ColumnElement[bool],
        flt: CustomerFilter | None,
        after: uuid.UUID | None,
        limit: int,
        fields: Collection[str],
        with_keys: bool,
    ) -> Sequence[Row[Any]]:
        """`limit + 1` rows after the cursor, in id (creation) order, only the asked columns."""
        stmt = select(*self._columns(fields, with_keys)).where(scope, *filter_predicates(flt))
        if with_keys:
            stmt = stmt.outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
        if after is not None:
            stmt = stmt.where(Customer.id > after)
        stmt = stmt.order_by(Customer.id).limit(limit + 1)
        return (await self.session.execute(stmt)).all()

    async def count(self, *, scope: ColumnElement[bool], flt: CustomerFilter | None) -> int:
        stmt = select(func.count()).select_from(Customer).where(scope, *filter_predicates(flt))
        return int(await self.session.scalar(stmt) or 0)

    async def by_ids(
        self,
        ids: Collection[uuid.UUID],
        *,
        scope: ColumnElement[bool],
        fields: Collection[str],
        with_keys: bool,
    ) -> Sequence[Row[Any]]:
        stmt = select(*self._columns(fields, with_keys)).where(
            scope, Customer.id.in_(list(ids)), *filter_predicates(None)
        )
        if with_keys:
            stmt = stmt.outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
        return (await self.session.execute(stmt)).all()

    async def by_blind_index(
        self,
        column: str,
        value: int,
        *,
        scope: ColumnElement[bool],
        fields: Collection[str],
    ) -> Sequence[Row[Any]]:
        stmt = (
            select(*self._columns(fields, True))
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(scope, getattr(Customer, column) == value, *filter_predicates(None))
        )
        return (await self.session.execute(stmt)).all()

    async def key_in_scope(
        self, customer_id: uuid.UUID, scope: ColumnElement[bool]
    ) -> Row[Any] | None:
        """The wrapped data key of a live customer under the scope predicate."""
        stmt: Any = (
            select(CustomerKey.kek_version, CustomerKey.wrapped_dek)
            .join(Customer, Customer.id == CustomerKey.customer_id)
            .where(Customer.id == customer_id, scope, *filter_predicates(None))
        )
        return (await self.session.execute(stmt)).first()

    async def add(self, customer: Customer, key: CustomerKey) -> None:
        self.session.add(customer)
        await self.session.flush()
        self.session.add(key)
        await self.session.flush()
