"""Customer queries. Row scope arrives as a SQL predicate so pages and counts agree."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Text,
    and_,
    cast,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.authz.authorizer import RowScope
from server.customer.completeness import WEIGHTS
from server.customer.fields import FILTERABLE
from server.data.models import (
    Complaint,
    ComplaintEvent,
    Consent,
    ContactPoint,
    Customer,
    CustomerKey,
    CustomerNameToken,
    CustomerNote,
    DuplicateFlag,
    Interaction,
    LoyaltyEntry,
    Order,
    OrderItem,
    OrderStatusEvent,
    Referral,
)

# Derived customer fields the repository computes from presence, not from values.
COMPLETENESS = "completeness"
# Rows a customer owns that move to the survivor when two files are merged.
MOVED_ON_MERGE: tuple[type[Any], ...] = (
    ContactPoint,
    CustomerNote,
    Interaction,
    Complaint,
    ComplaintEvent,
    Order,
    OrderItem,
    OrderStatusEvent,
    Consent,
    LoyaltyEntry,
    Referral,
)


class CustomerSort(enum.StrEnum):
    """Sort orders of the customer list. Name and contacts are sealed and cannot be sorted
    in SQL; sorting is by unsealed timestamps, ties broken by id."""

    CREATED_ASC = "created_asc"
    CREATED_DESC = "created_desc"
    UPDATED_ASC = "updated_asc"
    UPDATED_DESC = "updated_desc"

    @property
    def column(self) -> str:
        return "created_at" if self.value.startswith("created") else "updated_at"

    @property
    def descending(self) -> bool:
        return self.value.endswith("desc")


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """The customer list's filters: one per registry field marked filterable (equality),
    plus the creation-time range, a tag and the review cutoff."""

    customer_number: str | None = None
    tier: str | None = None
    lifecycle: str | None = None
    need_type: str | None = None
    industry: str | None = None
    region: str | None = None
    owner_id: str | None = None
    team: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    tag: str | None = None
    # A name search (server/vault/names.py): matched through name tokens, confirmed by
    # decryption in the service; no SQL predicate of its own here.
    name: str | None = None
    # Files never reviewed or last reviewed before this instant.
    reviewed_before: datetime | None = None


def scope_predicate(scope: RowScope | None, principal: Principal) -> ColumnElement[bool]:
    if scope is RowScope.ALL:
        return true()
    if scope is RowScope.TEAM:
        return Customer.team == principal.team if principal.team else false()
    if scope is RowScope.OWN:
        return Customer.owner_id == principal.subject
    return false()


def outside_scope(
    scope: RowScope | None, principal: Principal, *, owner_id: str | None, team: str | None
) -> str | None:
    """`scope_predicate` for a row about to be written: None if a customer with this owner
    and team would be in the scope, else the field that takes it out (`owner_id` or
    `team`). A write must land where its writer may still act on it."""
    if scope is RowScope.ALL:
        return None
    if scope is RowScope.TEAM:
        return None if principal.team and team == principal.team else "team"
    if scope is RowScope.OWN:
        return None if owner_id == principal.subject else "owner_id"
    return "owner_id"


def filter_predicates(flt: CustomerFilter | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Customer.erased_at.is_(None),
        Customer.merged_into_id.is_(None),
    ]
    if flt is None:
        return conditions
    for attr in FILTERABLE:
        value = getattr(flt, attr)
        if value is not None:
            conditions.append(getattr(Customer, attr) == value)
    if flt.created_from is not None:
        conditions.append(Customer.created_at >= flt.created_from)
    if flt.created_to is not None:
        conditions.append(Customer.created_at < flt.created_to)
    if flt.tag is not None:
        # Tags are a JSON array; a tag's JSON spelling ("vip") inside the array's text is
        # an exact element match, the same on SQLite and PostgreSQL.
        conditions.append(cast(Customer.tags, Text).contains(json.dumps(flt.tag), autoescape=True))
    if flt.reviewed_before is not None:
        conditions.append(
            or_(Customer.reviewed_at.is_(None), Customer.reviewed_at < flt.reviewed_before)
        )
    return conditions


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _columns(self, fields: Collection[str], with_keys: bool) -> list[Any]:
        columns: list[Any] = [Customer.id]
        columns += [getattr(Customer, name) for name in fields if name not in ("id", COMPLETENESS)]
        if COMPLETENESS in fields:
            columns += [getattr(Customer, f).is_not(None).label(f"has_{f}") for f in WEIGHTS]
            if "reviewed_at" not in fields:
                columns.append(Customer.reviewed_at)
        if with_keys:
            columns += [CustomerKey.kek_version, CustomerKey.wrapped_dek]
        return columns

    async def page(
        self,
        *,
        scope: ColumnElement[bool],
        flt: CustomerFilter | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        fields: Collection[str],
        with_keys: bool,
        sort: CustomerSort = CustomerSort.CREATED_ASC,
    ) -> Sequence[Row[Any]]:
        """`limit + 1` rows after the (sort key, id) cursor, only the asked columns."""
        key = getattr(Customer, sort.column)
        stmt = select(*self._columns(fields, with_keys)).where(scope, *filter_predicates(flt))
        if with_keys:
            stmt = stmt.outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
        if after is not None:
            at, last_id = after
            if sort.descending:
                stmt = stmt.where(or_(key < at, and_(key == at, Customer.id < last_id)))
            else:
                stmt = stmt.where(or_(key > at, and_(key == at, Customer.id > last_id)))
        order = (key.desc(), Customer.id.desc()) if sort.descending else (key, Customer.id)
        stmt = stmt.order_by(*order).limit(limit + 1)
        return (await self.session.execute(stmt)).all()

    async def any_exist(self) -> bool:
        """Whether the table holds any customer at all (erased and merged included)."""
        return await self.session.scalar(select(Customer.id).limit(1)) is not None

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
        # Merged files stay readable by id (they show `mergedIntoId`); erased ones do not.
        stmt = select(*self._columns(fields, with_keys)).where(
            scope, Customer.id.in_(list(ids)), Customer.erased_at.is_(None)
        )
        if with_keys:
            stmt = stmt.outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
        return (await self.session.execute(stmt)).all()

    async def by_blind_index(
        self,
        column: str,
        values: Mapping[int, int],
        *,
        scope: ColumnElement[bool],
        fields: Collection[str],
    ) -> Sequence[Row[Any]]:
        """Candidates whose index matches under the key version their row was indexed with.

        `values` maps blind-index key version → index value; during a blind-index
        rotation rows carry either version, so each is matched under its own.
        """
        indexed = getattr(Customer, column)
        match = or_(
            *(
                and_(Customer.bidx_key_version == version, indexed == value)
                for version, value in values.items()
            )
        )
        stmt = (
            select(*self._columns(fields, True))
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(scope, match, *filter_predicates(None))
        )
        return (await self.session.execute(stmt)).all()

    async def by_contact_point_index(
        self,
        kinds: Collection[str],
        values: Mapping[int, int],
        *,
        scope: ColumnElement[bool],
        fields: Collection[str],
    ) -> Sequence[Row[Any]]:
        """Candidates holding a contact point of one of `kinds` whose index matches under
        the key version the point was indexed with (`values`: version → index), each with
        that point's id and sealed value (`point_id`, `point_value`) to confirm it by,
        customers in id order."""
        match = or_(
            *(
                and_(ContactPoint.bidx_key_version == version, ContactPoint.value_bidx == value)
                for version, value in values.items()
            )
        )
        stmt: Any = (
            select(
                *self._columns(fields, True),
                ContactPoint.id.label("point_id"),
                ContactPoint.value.label("point_value"),
            )
            .join(ContactPoint, ContactPoint.customer_id == Customer.id)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(scope, match, ContactPoint.kind.in_(list(kinds)), *filter_predicates(None))
            .order_by(Customer.id, ContactPoint.id)
        )
        return (await self.session.execute(stmt)).all()

    async def ids_by_number(
        self, numbers: Collection[str], scope: ColumnElement[bool]
    ) -> dict[str, uuid.UUID]:
        """Live customers inside `scope` by their customer number."""
        if not numbers:
            return {}
        rows = await self.session.execute(
            select(Customer.customer_number, Customer.id).where(
                Customer.customer_number.in_(list(numbers)), scope, *filter_predicates(None)
            )
        )
        return {number: customer_id for number, customer_id in rows if number}

    async def number_taken(self, number: str) -> bool:
        """Whether any file (erased and merged included) holds this customer number."""
        found = await self.session.scalar(
            select(Customer.id).where(Customer.customer_number == number).limit(1)
        )
        return found is not None

    async def readable_ids(
        self, ids: Collection[uuid.UUID], scope: ColumnElement[bool]
    ) -> set[uuid.UUID]:
        """Which of `ids` the scope predicate lets a caller read by id (merged files
        included, erased ones not, as `by_ids`)."""
        if not ids:
            return set()
        rows = await self.session.scalars(
            select(Customer.id).where(
                Customer.id.in_(list(ids)), scope, Customer.erased_at.is_(None)
            )
        )
        return set(rows)

    async def owner_of(self, model: type[Any], record_id: uuid.UUID) -> uuid.UUID | None:
        """The customer a record of `model` belongs to, whatever the caller's scope: only
        for the audit of a refused attempt, never for an answer."""
        found = await self.session.scalar(select(model.customer_id).where(model.id == record_id))
        return found if isinstance(found, uuid.UUID) else None

    async def visible(self, customer_id: uuid.UUID, scope: ColumnElement[bool]) -> bool:
        """Whether a live customer with this id is inside the scope predicate."""
        found = await self.session.scalar(
            select(Customer.id).where(Customer.id == customer_id, scope, *filter_predicates(None))
        )
        return found is not None

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

    async def add(
        self,
        customer: Customer,
        key: CustomerKey,
        name_tokens: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.session.add(customer)
        await self.session.flush()
        self.session.add(key)
        await self.session.flush()
        if name_tokens:
            await self.session.execute(insert(CustomerNameToken), list(name_tokens))

    async def replace_name_tokens(
        self, customer_id: uuid.UUID, name_tokens: Sequence[Mapping[str, Any]]
    ) -> None:
        await self.session.execute(
            delete(CustomerNameToken).where(CustomerNameToken.customer_id == customer_id)
        )
        if name_tokens:
            await self.session.execute(insert(CustomerNameToken), list(name_tokens))

    async def name_candidates(
        self,
        tokens: Mapping[int, Collection[tuple[str, int]]],
        *,
        scope: ColumnElement[bool],
        flt: CustomerFilter | None,
        sort: CustomerSort,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> Sequence[Row[Any]]:
        """Live customers in scope and filter holding any of the name tokens (by key
        version), with what confirming the match needs: id, sort key, sealed name, data
        key. In the list's order, from the cursor on."""
        match = or_(
            *(
                and_(
                    CustomerNameToken.key_version == version,
                    CustomerNameToken.kind == kind,
                    CustomerNameToken.token == token,
                )
                for version, pairs in tokens.items()
                for kind, token in pairs
            )
        )
        holders = select(CustomerNameToken.customer_id).where(match)
        key = getattr(Customer, sort.column)
        stmt: Any = (
            select(
                Customer.id,
                key.label("sort_key"),
                Customer.name,
                CustomerKey.kek_version,
                CustomerKey.wrapped_dek,
            )
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(scope, Customer.id.in_(holders), *filter_predicates(flt))
        )
        if after is not None:
            at, last_id = after
            if sort.descending:
                stmt = stmt.where(or_(key < at, and_(key == at, Customer.id < last_id)))
            else:
                stmt = stmt.where(or_(key > at, and_(key == at, Customer.id > last_id)))
        order = (key.desc(), Customer.id.desc()) if sort.descending else (key, Customer.id)
        return (await self.session.execute(stmt.order_by(*order))).all()

    async def for_update(
        self, customer_id: uuid.UUID, scope: ColumnElement[bool], *, lock: bool = True
    ) -> tuple[Customer, CustomerKey] | None:
        """A live, unmerged customer under the scope, with its key, locked for a change
        unless `lock` is false."""
        stmt = (
            select(Customer, CustomerKey)
            .join(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(Customer.id == customer_id, scope, *filter_predicates(None))
        )
        if lock:
            stmt = stmt.with_for_update(of=Customer)
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def flush(self) -> None:
        await self.session.flush()

    async def sealed_children(
        self, model: type[Any], columns: Collection[str], customer_id: uuid.UUID
    ) -> Sequence[Row[Any]]:
        """(id, sealed columns...) of the rows of `model` a customer owns."""
        stmt: Any = select(model.id, *(getattr(model, c) for c in columns)).where(
            model.customer_id == customer_id
        )
        return (await self.session.execute(stmt)).all()

    async def set_values(self, model: type[Any], row_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(update(model).where(model.id == row_id).values(**values))

    async def move_owned_rows(self, from_id: uuid.UUID, to_id: uuid.UUID) -> dict[str, int]:
        """Hand every owned row of one customer to another; counts by table."""
        moved: dict[str, int] = {}
        for model in MOVED_ON_MERGE:
            result: Any = await self.session.execute(
                update(model).where(model.customer_id == from_id).values(customer_id=to_id)
            )
            if result.rowcount:
                moved[model.__tablename__] = int(result.rowcount)
        # A referral of the duplicate as the referred person follows it when the survivor
        # has none (one referral per referred customer).
        survivor_referred = await self.session.scalar(
            select(Referral.id).where(Referral.referred_customer_id == to_id)
        )
        if survivor_referred is None:
            await self.session.execute(
                update(Referral)
                .where(Referral.referred_customer_id == from_id)
                .values(referred_customer_id=to_id)
            )
        await self.session.execute(
            update(Customer).where(Customer.referred_by_id == from_id).values(referred_by_id=to_id)
        )
        return moved

    async def rebalance_loyalty(self, customer_id: uuid.UUID) -> None:
        """Recompute running balances after two ledgers were merged, in time order."""
        stmt = (
            select(LoyaltyEntry.id, LoyaltyEntry.points)
            .where(LoyaltyEntry.customer_id == customer_id)
            .order_by(LoyaltyEntry.at, LoyaltyEntry.id)
        )
        balance = 0
        for entry_id, points in (await self.session.execute(stmt)).all():
            balance = max(balance + points, 0)
            await self.session.execute(
                update(LoyaltyEntry)
                .where(LoyaltyEntry.id == entry_id)
                .values(balance_after=balance)
            )

    async def candidates_by_blind_index(
        self,
        column: str,
        value: int,
        *,
        scope: ColumnElement[bool],
        excluding: uuid.UUID,
        contact: str,
    ) -> Sequence[Row[Any]]:
        """Live customers sharing one blind-index value, with the contact and key columns
        needed to confirm the match by decryption."""
        stmt: Any = (
            select(
                Customer.id,
                getattr(Customer, contact),
                CustomerKey.kek_version,
                CustomerKey.wrapped_dek,
            )
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(
                scope,
                getattr(Customer, column) == value,
                Customer.id != excluding,
                *filter_predicates(None),
            )
        )
        return (await self.session.execute(stmt)).all()

    # --- duplicate flags -------------------------------------------------------------

    async def add_duplicate_flags(self, rows: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
        """Store flags not stored yet (same two files and field); returns the new ids."""
        if not rows:
            return []
        stored = {
            (r.new_customer_id, r.existing_customer_id, r.field)
            for r in await self.session.execute(
                select(
                    DuplicateFlag.new_customer_id,
                    DuplicateFlag.existing_customer_id,
                    DuplicateFlag.field,
                ).where(DuplicateFlag.new_customer_id.in_({r["new_customer_id"] for r in rows}))
            )
        }
        fresh = [
            dict(r)
            for r in rows
            if (r["new_customer_id"], r["existing_customer_id"], r["field"]) not in stored
        ]
        if fresh:
            await self.session.execute(insert(DuplicateFlag), fresh)
        return [r["id"] for r in fresh]

    async def duplicate_flags(
        self,
        *,
        scope: ColumnElement[bool],
        fields: Collection[str],
        after: uuid.UUID | None,
        limit: int,
    ) -> Sequence[DuplicateFlag]:
        """Flags on `fields` whose two files are both live and inside the scope predicate,
        oldest first, `limit + 1` after the id cursor."""
        if not fields:
            return []
        live_in_scope = select(Customer.id).where(scope, *filter_predicates(None))
        stmt = select(DuplicateFlag).where(
            DuplicateFlag.field.in_(list(fields)),
            DuplicateFlag.new_customer_id.in_(live_in_scope),
            DuplicateFlag.existing_customer_id.in_(live_in_scope),
        )
        if after is not None:
            stmt = stmt.where(DuplicateFlag.id > after)
        stmt = stmt.order_by(DuplicateFlag.id).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()
