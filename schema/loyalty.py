"""Loyalty root mutations: redeeming points and recording referrals."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.mutations import run_mutation
from schema.types.common import UserError, parse_id
from schema.types.loyalty import LoyaltyEntry, PointsRedeemed, ReferralRecorded

Ctx = Info[GraphQLContext, None]

RedeemPointsResult = Annotated[PointsRedeemed | UserError, strawberry.union("RedeemPointsResult")]
RecordReferralResult = Annotated[
    ReferralRecorded | UserError, strawberry.union("RecordReferralResult")
]


@strawberry.type
class LoyaltyMutation:
    @strawberry.mutation(
        description="Redeem points; refused with INSUFFICIENT_POINTS if the "
        "balance would go negative."
    )
    async def redeem_points(
        self, info: Ctx, customer_id: strawberry.ID, points: int
    ) -> RedeemPointsResult:
        ctx = info.context
        entry = await run_mutation(
            ctx,
            lambda: ctx.services.loyalty.redeem(
                ctx.session, ctx.caller, parse_id(customer_id, "customerId"), points
            ),
        )
        if isinstance(entry, UserError):
            return entry
        return PointsRedeemed(entry=LoyaltyEntry.from_row(entry), balance=entry.balance_after)

    @strawberry.mutation(
        description="Record that one customer referred another; the referrer earns the "
        "referral bonus. Refused for a cycle (REFERRAL_CYCLE) and for a referred customer "
        "whose relationship began before the referrer's (REFERRAL_NOT_NEW)."
    )
    async def record_referral(
        self, info: Ctx, referrer_id: strawberry.ID, referred_id: strawberry.ID
    ) -> RecordReferralResult:
        ctx = info.context
        referral = await run_mutation(
            ctx,
            lambda: ctx.services.loyalty.record_referral(
                ctx.session,
                ctx.caller,
                parse_id(referrer_id, "referrerId"),
                parse_id(referred_id, "referredId"),
            ),
        )
        if isinstance(referral, UserError):
            return referral
        return ReferralRecorded(
            referral_id=strawberry.ID(str(referral.id)),
            referrer_id=strawberry.ID(str(referral.customer_id)),
            referred_id=strawberry.ID(str(referral.referred_customer_id)),
            bonus_points=referral.bonus_points,
        )
