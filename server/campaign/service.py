"""Campaigns: promote a product to a segment of customers who consented to marketing,
then record responses and conversions and report the results.

Creating one needs `X-Purpose: marketing`. A campaign follows row scope: its maker and
callers with a recipient in their scope see it, and its results count only the
recipients in the caller's scope; other ids answer NOT_FOUND like unknown ones. Marketing
consent is asked again at every use: a recipient who withdrew drops out of the results
and no response or conversion is recorded for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from server.authz.authorizer import RowScope
from server.caller import Caller
from server.campaign.repository import CampaignRepository, CampaignTotals, Segment
from server.customer.repository import CustomerRepository, scope_predicate
from server.customer.service import check_filter
from server.data.base import new_id
from server.data.models import Campaign
from server.errors import ConflictError, NotFoundError, ValidationError
from server.loyalty.repository import SPENDING_STATUSES
from server.order.repository import ProductRepository

RATE = Decimal("0.0001")
MARKETING = "marketing"


@dataclass(frozen=True, slots=True)
class CampaignResults:
    campaign_id: uuid.UUID
    reach: int
    responses: int
    conversions: int
    response_rate: Decimal
    conversion_rate: Decimal
    revenue: Decimal


def rate(part: int, whole: int) -> Decimal:
    """part / whole to four decimals; an empty campaign has rate 0, not an error."""
    if whole == 0:
        return Decimal("0.0000")
    return (Decimal(part) / Decimal(whole)).quantize(RATE)


def results_of(campaign_id: uuid.UUID, totals: CampaignTotals) -> CampaignResults:
    return CampaignResults(
        campaign_id=campaign_id,
        reach=totals.reach,
        responses=totals.responses,
        conversions=totals.conversions,
        response_rate=rate(totals.responses, totals.reach),
        conversion_rate=rate(totals.conversions, totals.reach),
        revenue=totals.revenue.quantize(Decimal("0.01")),
    )


def _segment_json(segment: Segment) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in segment.customers.__dataclass_fields__:
        value = getattr(segment.customers, name)
        if value is not None:
            values[name] = value.isoformat() if isinstance(value, datetime) else value
    for name in ("tag", "bought_category", "never_bought_product_id"):
        value = getattr(segment, name)
        if value is not None:
            values[name] = str(value)
    return values


class CampaignService:
    def __init__(self, now: Callable[[], datetime], *, conversion_days: int = 30) -> None:
        self.now = now
        # An order counts as a conversion when placed within this many days after the
        # campaign reached the customer (CUSTOS_CAMPAIGN_CONVERSION_DAYS).
        self.conversion_days = conversion_days

    async def create(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        name: str,
        product_id: uuid.UUID | None,
        segment: Segment,
        channel: str | None = None,
    ) -> tuple[Campaign, int]:
        """Store the campaign and its recipients: the segment within the caller's row
        scope, only customers with active marketing consent, never erased or merged ones."""
        # Needs X-Purpose: marketing (REQUIRED_PURPOSES in server/authz/vocabulary.py).
        scope = scope_predicate(caller.gate.row_scope("campaign", "create"), caller.principal)
        if not name.strip() or len(name) > 200:
            raise ValidationError("name must be 1 to 200 characters", field="name")
        if channel is not None and not 1 <= len(channel) <= 16:
            raise ValidationError("channel is 1 to 16 characters", field="channel")
        check_filter(segment.customers)
        if product_id is not None and not await ProductRepository(session).by_ids([product_id]):
            raise NotFoundError("product not found")
        repo = CampaignRepository(session)
        now = self.now()
        campaign = Campaign(
            id=new_id(),
            name=name.strip(),
            product_id=product_id,
            segment=_segment_json(segment),
            channel=channel,
            status="active",
            created_at=now,
            created_by=caller.principal.subject,
        )
        await repo.add(campaign)
        recipients = await repo.select_recipients(scope, segment)
        await repo.add_recipients(
            [
                {"id": new_id(), "campaign_id": campaign.id, "customer_id": cid, "added_at": now}
                for cid in recipients
            ]
        )
        caller.audit.change("campaign", "create", campaign.id, ["name", "segment", "recipients"])
        return campaign, len(recipients)

    async def _recipient_in_scope(
        self, session: AsyncSession, caller: Caller, campaign_id: uuid.UUID, customer_id: uuid.UUID
    ) -> Any:
        row_scope = caller.gate.row_scope("campaign", "update")
        scope = scope_predicate(row_scope, caller.principal)
        repo = CampaignRepository(session)
        found = await repo.visible(
            campaign_id, scope, caller.principal.subject, every=row_scope is RowScope.ALL
        )
        if found is None:
            raise caller.gate.not_found("campaign", "update", campaign_id)
        if not await CustomerRepository(session).visible(customer_id, scope):
            raise caller.gate.not_found("campaign", "update", customer_id, what="customer")
        recipient = await repo.recipient(campaign_id, customer_id)
        if recipient is None:
            raise NotFoundError("this customer is not a recipient of the campaign")
        if not await repo.consents_to_marketing(customer_id):
            # Consent is asked at every use, not only when the recipients were chosen.
            raise ConflictError(
                "the customer no longer consents to marketing", code="NO_MARKETING_CONSENT"
            )
        return recipient

    async def record_response(
        self, session: AsyncSession, caller: Caller, campaign_id: uuid.UUID, customer_id: uuid.UUID
    ) -> None:
        recipient = await self._recipient_in_scope(session, caller, campaign_id, customer_id)
        if recipient.responded_at is None:
            await CampaignRepository(session).update_recipient(
                recipient.id, responded_at=self.now()
            )
        caller.audit.change("campaign_recipient", "update", recipient.id, ["responded_at"])

    async def record_conversion(
        self,
        session: AsyncSession,
        caller: Caller,
        campaign_id: uuid.UUID,
        customer_id: uuid.UUID,
        order_id: uuid.UUID,
    ) -> None:
        """A recipient's order as the campaign's conversion: a paid order (paid, shipped or
        delivered), placed within the conversion window after the campaign reached the
        customer, holding the campaign's product when it promotes one. A conversion whose
        order is cancelled or returned later drops out of the results."""
        recipient = await self._recipient_in_scope(session, caller, campaign_id, customer_id)
        repo = CampaignRepository(session)
        order = await repo.order(order_id)
        if order is None or order.customer_id != customer_id:
            raise NotFoundError("order not found for this customer")
        if order.status not in SPENDING_STATUSES:
            raise ConflictError(
                f"a {order.status} order is not a conversion: it must be paid",
                code="ORDER_NOT_CONVERTIBLE",
            )
        window_end = recipient.added_at + timedelta(days=self.conversion_days)
        if not recipient.added_at <= order.ordered_at <= window_end:
            raise ConflictError(
                f"the order was not placed within {self.conversion_days} days after the "
                "campaign reached the customer",
                code="OUTSIDE_CAMPAIGN_WINDOW",
            )
        campaign = await repo.get(campaign_id)
        if (
            campaign is not None
            and campaign.product_id is not None
            and not await repo.order_has_product(order_id, campaign.product_id)
        ):
            raise ConflictError(
                "the order does not hold the campaign's product", code="NOT_CAMPAIGN_PRODUCT"
            )
        if recipient.converted_at is not None:
            raise ConflictError("this recipient already converted", code="ALREADY_CONVERTED")
        now = self.now()
        await repo.update_recipient(
            recipient.id,
            responded_at=recipient.responded_at or now,
            converted_at=now,
            order_id=order_id,
            revenue=order.total,
        )
        caller.audit.change(
            "campaign_recipient", "update", recipient.id, ["converted_at", "order_id", "revenue"]
        )

    async def _visible(
        self, session: AsyncSession, caller: Caller, campaign_id: uuid.UUID
    ) -> tuple[Campaign, ColumnElement[bool]]:
        """A campaign the caller may read, with its read scope; unknown ids and campaigns
        outside the scope answer NOT_FOUND alike (audited with the id)."""
        row_scope = caller.gate.row_scope("campaign", "read", target=campaign_id)
        scope = scope_predicate(row_scope, caller.principal)
        campaign = await CampaignRepository(session).visible(
            campaign_id, scope, caller.principal.subject, every=row_scope is RowScope.ALL
        )
        if campaign is None:
            raise caller.gate.not_found("campaign", "read", campaign_id)
        return campaign, scope

    async def get(self, session: AsyncSession, caller: Caller, campaign_id: uuid.UUID) -> Campaign:
        campaign, _scope = await self._visible(session, caller, campaign_id)
        caller.audit.read("campaign", [campaign_id], {"name": "clear", "segment": "clear"})
        return campaign

    async def results(
        self, session: AsyncSession, caller: Caller, campaign_id: uuid.UUID
    ) -> CampaignResults:
        """Results over the recipients in the caller's scope who consent to marketing now."""
        _campaign, scope = await self._visible(session, caller, campaign_id)
        caller.audit.read("campaign", [campaign_id], {"name": "clear", "segment": "clear"})
        totals = await CampaignRepository(session).totals(campaign_id, scope)
        return results_of(campaign_id, totals)
