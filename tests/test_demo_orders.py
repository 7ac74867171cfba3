"""Demo data exercises orders, loyalty, referrals and campaigns consistently."""

from __future__ import annotations

from sqlalchemy import func, select

from server.app import AppState
from server.data.models import (
    CampaignRecipient,
    Consent,
    Customer,
    LoyaltyEntry,
    Order,
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
