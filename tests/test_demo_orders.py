"""Demo data exercises orders, loyalty, referrals and campaigns consistently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from server.analytics.repository import SegmentRepository, SegmentWindows, TierRule
from server.app import AppState
from server.data.models import (
    Campaign,
    CampaignRecipient,
    ComplaintEvent,
    Consent,
    Customer,
    LoyaltyEntry,
    Order,
    OrderItem,
    OrderStatusEvent,
    Referral,
)
from server.demo import DemoBuilder


async def test_demo_has_referrals_levels_and_consenting_campaign_recipients(
    state: AppState,
) -> None:
    async with state.sessions() as session, session.begin():
        report = await DemoBuilder(state.services.vault, seed=3).run(session, 120, batch=50)
    assert report.referrals > 0
    assert report.campaigns == 2
    assert sum(report.member_levels.values()) == 120
    async with state.sessions() as session:
        recipients = (await session.scalars(select(CampaignRecipient.customer_id))).all()
        consenting = set(
            (
                await session.scalars(
                    select(Consent.customer_id).where(
                        Consent.purpose == "marketing", Consent.withdrawn_at.is_(None)
                    )
                )
            ).all()
        )
        assert recipients
        assert set(recipients) <= consenting
        referred = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.referred_by_id.is_not(None))
        )
        assert referred == await session.scalar(select(func.count()).select_from(Referral))
        lowest = await session.scalar(select(func.min(LoyaltyEntry.balance_after)))
        assert lowest is not None
        assert lowest >= 0
        # The last entry of each customer carries the ledger's sum.
        sums = dict(
            (
                await session.execute(
                    select(LoyaltyEntry.customer_id, func.sum(LoyaltyEntry.points)).group_by(
                        LoyaltyEntry.customer_id
                    )
                )
            ).all()
        )
        for customer_id, total in sums.items():
            last = await session.scalar(
                select(LoyaltyEntry.balance_after)
                .where(LoyaltyEntry.customer_id == customer_id)
                .order_by(LoyaltyEntry.id.desc())
                .limit(1)
            )
            assert last == total
        converted = (
            await session.execute(
                select(CampaignRecipient.revenue, Order.total).join(
                    Order, Order.id == CampaignRecipient.order_id
                )
            )
        ).all()
        assert all(revenue == total for revenue, total in converted)


async def test_demo_data_agrees_with_the_rules_and_the_clock(state: AppState) -> None:
    """Walk-through defect: demo tiers disagreed with the segment rules until a refresh,
    status events lay up to a day in the future, referrals and conversions broke the
    rules the API enforces."""
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    async with state.sessions() as session, session.begin():
        await DemoBuilder(state.services.vault, seed=5, now=now).run(session, 150, batch=50)
    async with state.sessions() as session:
        ids = list((await session.scalars(select(Customer.id))).all())
        rules = await SegmentRepository(session).for_customers(
            now, TierRule(), SegmentWindows(), ids
        )
        stored = {
            c.id: (c.tier, c.lifecycle, c.need_type)
            for c in (await session.scalars(select(Customer))).all()
        }
        assert {r.id: (r.tier, r.lifecycle, r.need_type) for r in rules} == stored
        assert len({t for t, _, _ in stored.values()}) > 1
        latest = [
            await session.scalar(select(func.max(model.at)))
            for model in (OrderStatusEvent, ComplaintEvent, LoyaltyEntry)
        ]
        assert all(at is not None and at <= now for at in latest), latest
        assert await session.scalar(select(func.count()).where(Order.promised_at.is_not(None)))
        # A referrer joined before the customer they referred.
        referrer = Customer.__table__.alias("referrer")
        late = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .join(referrer, referrer.c.id == Customer.referred_by_id)
            .where(referrer.c.created_at >= Customer.created_at)
        )
        assert late == 0
        # A conversion is a paid order of the promoted product, placed in the window.
        conversions = (
            await session.execute(
                select(CampaignRecipient, Order, Campaign)
                .join(Order, Order.id == CampaignRecipient.order_id)
                .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
            )
        ).all()
        assert conversions
        for recipient, order, campaign in conversions:
            assert recipient.added_at <= order.ordered_at <= recipient.added_at + timedelta(30)
            assert order.status in ("paid", "shipped", "delivered")
            products = await session.scalars(
                select(OrderItem.product_id).where(OrderItem.order_id == order.id)
            )
            assert campaign.product_id in set(products.all())
