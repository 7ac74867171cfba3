"""A customer's loyalty account: points balance, member level, ledger and referrals."""

from __future__ import annotations

import datetime
import uuid

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import paged
from schema.paging import Connection, check_page_size, connection, id_cursor
from server.data.models import LoyaltyEntry as LoyaltyEntryRow


@strawberry.type(description="One reasoned change of a customer's points.")
class LoyaltyEntry:
    id: strawberry.ID
    at: datetime.datetime
    points: int
    reason: str = strawberry.field(description="purchase, referral, redeem or order_reversal.")
    balance_after: int
    order_id: strawberry.ID | None
    actor: str

    @classmethod
    def from_row(cls, row: LoyaltyEntryRow) -> LoyaltyEntry:
        return cls(
            id=strawberry.ID(str(row.id)),
            at=row.at,
            points=row.points,
            reason=row.reason,
            balance_after=row.balance_after,
            order_id=strawberry.ID(str(row.order_id)) if row.order_id else None,
            actor=row.actor,
        )


CURSORS = id_cursor("loyalty-entry")


@strawberry.type(description="Points, member level and referrals of one customer.")
class Loyalty:
    customer_id: strawberry.Private[uuid.UUID]
    balance: int
    earned: int = strawberry.field(description="Lifetime points earned (before redeeming).")
    level: str | None
    referral_count: int

    @strawberry.field(metadata=paged(), description="The ledger, oldest first.")
    async def entries(
        self, info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
    ) -> Connection[LoyaltyEntry]:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.loyalty.entries(
            ctx.session, ctx.caller, self.customer_id, first=first, after=CURSORS.decode(after)
        )
        return connection(
            Connection[LoyaltyEntry],
            page,
            after=after,
            cursor=lambda entry: CURSORS.encode(entry.id),
            node=LoyaltyEntry.from_row,
        )


@strawberry.type
class PointsRedeemed:
    entry: LoyaltyEntry
    balance: int


@strawberry.type
class ReferralRecorded:
    referral_id: strawberry.ID
    referrer_id: strawberry.ID
    referred_id: strawberry.ID
    bonus_points: int
