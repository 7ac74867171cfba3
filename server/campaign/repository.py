"""Campaign recipients are selected in SQL: the segment's filters, the caller's row scope
and active marketing consent, set-based over the customers table. Consent is asked again
at every later use: results and recording count only recipients who consent now."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.customer.repository import CustomerFilter, filter_predicates
from server.data.models import (
    Campaign,
    CampaignRecipient,
    Consent,
    Customer,
    Order,
    OrderItem,
    Product,
)
from server.loyalty.repository import SPENDING_STATUSES


@dataclass(frozen=True, slots=True)
class Segment:
    customers: CustomerFilter
    tag: str | None = None
    bought_category: str | None = None
    never_bought_product_id: uuid.UUID | None = None


def has_marketing_consent() -> ColumnElement[bool]:
    """A live `marketing` consent row exists (granted, not withdrawn)."""
    return exists(
        select(Consent.id).where(
            Consent.customer_id == Customer.id,
            Consent.purpose == "marketing",
            Consent.withdrawn_at.is_(None),
        )
    )


def has_tag(tag: str) -> ColumnElement[bool]:
    # Tags are a JSON array written by the ORM's serializer; the JSON text of the tag,
    # quotes included, matches exactly one element on SQLite and PostgreSQL alike.
    needle = json.dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(Customer.tags, String).like(f"%{needle}%", escape="\\")


def segment_predicates(segment: Segment) -> list[ColumnElement[bool]]:
    conditions = filter_predicates(segment.customers)
    conditions.append(has_marketing_consent())
    if segment.tag is not None:
        conditions.append(has_tag(segment.tag))
    if segment.bought_category is not None:
        conditions.append(
            exists(
                select(OrderItem.id)
                .join(Product, Product.id == OrderItem.product_id)
                .join(Order, Order.id == OrderItem.order_id)
                .where(
                    OrderItem.customer_id == Customer.id,
                    Product.category == segment.bought_category,
                    Order.status.in_(SPENDING_STATUSES),
                )
            )
        )
    if segment.never_bought_product_id is not None:
        conditions.append(
            ~exists(
                select(OrderItem.id)
                .join(Order, Order.id == OrderItem.order_id)
                .where(
                    OrderItem.customer_id == Customer.id,
                    OrderItem.product_id == segment.never_bought_product_id,
                    Order.status.in_(SPENDING_STATUSES),
                )
            )
        )
    return conditions


@dataclass(frozen=True, slots=True)
class CampaignTotals:
    reach: int
    responses: int
    conversions: int
    revenue: Decimal


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, campaign: Campaign) -> None:
        self.session.add(campaign)
        await self.session.flush()

    async def select_recipients(
        self, scope: ColumnElement[bool], segment: Segment
    ) -> Sequence[uuid.UUID]:
        stmt = select(Customer.id).where(scope, *segment_predicates(segment)).order_by(Customer.id)
        return (await self.session.scalars(stmt)).all()

    async def add_recipients(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(CampaignRecipient), rows)

    async def get(self, campaign_id: uuid.UUID) -> Campaign | None:
        return await self.session.get(Campaign, campaign_id)

    async def visible(
        self,
        campaign_id: uuid.UUID,
        scope: ColumnElement[bool],
        created_by: str,
        *,
        every: bool = False,
    ) -> Campaign | None:
        """The campaign if the caller may see every campaign (row scope all), made it, or
        has one of its recipients in its scope."""
        stmt = select(Campaign).where(Campaign.id == campaign_id)
        if not every:
            reaches_scope = exists(
                select(CampaignRecipient.id)
                .join(Customer, Customer.id == CampaignRecipient.customer_id)
                .where(CampaignRecipient.campaign_id == Campaign.id, scope)
            )
            stmt = stmt.where(or_(Campaign.created_by == created_by, reaches_scope))
        return await self.session.scalar(stmt)

    async def consents_to_marketing(self, customer_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(Customer.id).where(Customer.id == customer_id, has_marketing_consent())
        )
        return found is not None

    async def recipient(
        self, campaign_id: uuid.UUID, customer_id: uuid.UUID
    ) -> CampaignRecipient | None:
        return await self.session.scalar(
            select(CampaignRecipient).where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.customer_id == customer_id,
            )
        )

    async def update_recipient(self, recipient_id: uuid.UUID, **values: Any) -> None:
        await self.session.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.id == recipient_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def totals(self, campaign_id: uuid.UUID, scope: ColumnElement[bool]) -> CampaignTotals:
        """Counts over the recipients in `scope` who are live and consent to marketing now:
        a recipient who withdrew drops out of reach, responses and revenue alike. A
        conversion whose order was cancelled or returned since no longer counts."""
        converted = and_(
            CampaignRecipient.converted_at.is_not(None), Order.status.in_(SPENDING_STATUSES)
        )
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.count(CampaignRecipient.responded_at),
                    func.count(case((converted, 1))),
                    func.coalesce(func.sum(case((converted, CampaignRecipient.revenue))), 0),
                )
                .join(Customer, Customer.id == CampaignRecipient.customer_id)
                .outerjoin(Order, Order.id == CampaignRecipient.order_id)
                .where(
                    CampaignRecipient.campaign_id == campaign_id,
                    scope,
                    *filter_predicates(None),
                    has_marketing_consent(),
                )
            )
        ).one()
        return CampaignTotals(int(row[0]), int(row[1]), int(row[2]), Decimal(row[3] or 0))

    async def order(self, order_id: uuid.UUID) -> Order | None:
        return await self.session.get(Order, order_id)

    async def order_has_product(self, order_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        stmt = select(OrderItem.id).where(
            OrderItem.order_id == order_id, OrderItem.product_id == product_id
        )
        return (await self.session.scalars(stmt.limit(1))).first() is not None
