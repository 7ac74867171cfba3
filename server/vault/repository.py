"""Key-management queries: rotation runs and their cursors, wrapped data keys, blind indexes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.customer_fields import BLIND_INDEXED
from server.data.models import (
    ContactPoint,
    Customer,
    CustomerKey,
    CustomerNameToken,
    KeyRotation,
)

# The blind-indexed contact columns, from the customer field registry.
CONTACT_COLUMNS = tuple(BLIND_INDEXED)


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def unfinished_rotation(self, kind: str) -> KeyRotation | None:
        stmt = (
            select(KeyRotation)
            .where(KeyRotation.kind == kind, KeyRotation.finished_at.is_(None))
            .order_by(KeyRotation.id.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()

    async def start_rotation(
        self, kind: str, from_version: int | None, to_version: int, now: datetime
    ) -> KeyRotation:
        rotation = KeyRotation(
            kind=kind,
            from_version=from_version,
            to_version=to_version,
            cursor=None,
            done=0,
            started_at=now,
            detail={},
        )
        self.session.add(rotation)
        await self.session.flush()
        return rotation

    async def advance(
        self, rotation_id: int, cursor: uuid.UUID | None, rewrapped: int, passes: int
    ) -> None:
        await self.session.execute(
            update(KeyRotation)
            .where(KeyRotation.id == rotation_id)
            .values(cursor=cursor, done=KeyRotation.done + rewrapped, detail={"passes": passes})
        )

    async def finish(self, rotation_id: int, now: datetime) -> None:
        await self.session.execute(
            update(KeyRotation).where(KeyRotation.id == rotation_id).values(finished_at=now)
        )

    # --- data keys (KEK rotation)

    async def keys_to_rewrap(
        self, to_version: int, after: uuid.UUID | None, limit: int
    ) -> Sequence[Row[Any]]:
        columns: list[Any] = [
            CustomerKey.customer_id,
            CustomerKey.kek_version,
            CustomerKey.wrapped_dek,
        ]
        stmt = select(*columns).where(CustomerKey.wrapped_dek.is_not(None))
        if after is not None:
            stmt = stmt.where(CustomerKey.customer_id > after)
        stmt = stmt.order_by(CustomerKey.customer_id).limit(limit)
        return (await self.session.execute(stmt)).all()

    async def count_keys_not_at(self, version: int) -> int:
        stmt = select(func.count()).where(
            CustomerKey.wrapped_dek.is_not(None), CustomerKey.kek_version != version
        )
        return int(await self.session.scalar(stmt) or 0)

    async def count_keys_at(self, version: int) -> int:
        stmt = select(func.count()).where(
            CustomerKey.wrapped_dek.is_not(None), CustomerKey.kek_version == version
        )
        return int(await self.session.scalar(stmt) or 0)

    async def replace_wrapped_key(
        self,
        customer_id: uuid.UUID,
        old_wrapped: bytes,
        new_version: int,
        new_wrapped: bytes,
        now: datetime,
    ) -> bool:
        """Compare-and-set: a key erased or rewrapped meanwhile is left alone."""
        result = await self.session.execute(
            update(CustomerKey)
            .where(CustomerKey.customer_id == customer_id, CustomerKey.wrapped_dek == old_wrapped)
            .values(wrapped_dek=new_wrapped, kek_version=new_version, rotated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    # --- blind indexes

    async def customers_to_reindex(self, after: uuid.UUID | None, limit: int) -> Sequence[Row[Any]]:
        columns: list[Any] = [
            Customer.id,
            Customer.bidx_key_version,
            Customer.name,
            Customer.phone,
            Customer.email,
            Customer.national_id,
            CustomerKey.kek_version,
            CustomerKey.wrapped_dek,
        ]
        stmt = (
            select(*columns)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(Customer.erased_at.is_(None))
        )
        if after is not None:
            stmt = stmt.where(Customer.id > after)
        stmt = stmt.order_by(Customer.id).limit(limit)
        return (await self.session.execute(stmt)).all()

    async def count_indexed_not_at(self, version: int) -> int:
        """Live customers, and contact points, whose indexes are not under `version`."""
        customers = select(func.count()).where(
            Customer.erased_at.is_(None), Customer.bidx_key_version.is_distinct_from(version)
        )
        points = select(func.count()).where(ContactPoint.bidx_key_version.is_distinct_from(version))
        return int(await self.session.scalar(customers) or 0) + int(
            await self.session.scalar(points) or 0
        )

    async def count_indexed_at(self, version: int) -> int:
        """Live customers, and contact points, indexed under `version`."""
        customers = select(func.count()).where(
            Customer.erased_at.is_(None), Customer.bidx_key_version == version
        )
        points = select(func.count()).where(ContactPoint.bidx_key_version == version)
        return int(await self.session.scalar(customers) or 0) + int(
            await self.session.scalar(points) or 0
        )

    async def points_to_reindex(
        self, customer_ids: Collection[uuid.UUID], to_version: int
    ) -> Sequence[Row[Any]]:
        """The contact points of these customers not yet indexed under `to_version`."""
        if not customer_ids:
            return []
        stmt: Any = select(
            ContactPoint.id,
            ContactPoint.customer_id,
            ContactPoint.value,
            ContactPoint.bidx_key_version,
        ).where(
            ContactPoint.customer_id.in_(list(customer_ids)),
            ContactPoint.bidx_key_version.is_distinct_from(to_version),
        )
        return (await self.session.execute(stmt)).all()

    async def replace_point_index(self, row: Row[Any], new_version: int, index: int | None) -> bool:
        """Compare-and-set on the point's sealed value and the version it was read at: a
        point changed meanwhile was indexed by its writer."""
        result = await self.session.execute(
            update(ContactPoint)
            .where(
                ContactPoint.id == row.id,
                ContactPoint.value.is_not_distinct_from(row.value),
                ContactPoint.bidx_key_version.is_not_distinct_from(row.bidx_key_version),
            )
            .values(value_bidx=index, bidx_key_version=new_version)
        )
        return bool(getattr(result, "rowcount", 0))

    async def replace_blind_indexes(
        self,
        row: Row[Any],
        new_version: int,
        indexes: dict[str, int | None],
        name_tokens: list[dict[str, Any]],
    ) -> bool:
        """Compare-and-set on the name and contact ciphertexts and the version the row was
        read at; the name tokens are replaced with the indexes."""
        result = await self.session.execute(
            update(Customer)
            .where(
                Customer.id == row.id,
                Customer.bidx_key_version.is_not_distinct_from(row.bidx_key_version),
                Customer.name == row.name,
                *(
                    getattr(Customer, column).is_not_distinct_from(getattr(row, column))
                    for column in CONTACT_COLUMNS
                ),
            )
            .values(
                bidx_key_version=new_version,
                **{BLIND_INDEXED[column]: indexes[column] for column in CONTACT_COLUMNS},
            )
        )
        if not getattr(result, "rowcount", 0):
            return False
        await self.session.execute(
            delete(CustomerNameToken).where(CustomerNameToken.customer_id == row.id)
        )
        if name_tokens:
            await self.session.execute(insert(CustomerNameToken), name_tokens)
        return True
