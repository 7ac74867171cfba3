"""A customer's loyalty account: points balance, member level, ledger and referrals."""

from __future__ import annotations

import datetime
import uuid

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import paged
from schema.paging import Connection, check_page_size, connection, id_cursor
from schema.types.enums import LoyaltyReason
from server.data.models import LoyaltyEntry as LoyaltyEntryRow


@strawberry.type(description="One reasoned change of a customer's points.")
class LoyaltyEntry:
    id: strawberry.ID = strawberry.field(description="The entry's id.")
    at: datetime.datetime = strawberry.field(description="When.")
    points: int = strawberry.field(description="Points added (negative: taken).")
    reason: LoyaltyReason = strawberry.field(description="Why the points changed.")
    balance_after: int = strawberry.field(description="The balance after it.")
    order_id: strawberry.ID | None = strawberry.field(description="The order it came from, if any.")
    actor: str = strawberry.field(description="Who or what made it.")

    @classmethod
    def from_row(cls, row: LoyaltyEntryRow) -> LoyaltyEntry:
        return cls(
            id=strawberry.ID(str(row.id)),
            at=row.at,
            points=row.points,
            reason=LoyaltyReason(row.reason),
            balance_after=row.balance_after,
            order_id=strawberry.ID(str(row.order_id)) if row.order_id else None,
            actor=row.actor,
        )


CURSORS = id_cursor("loyalty-entry")


@strawberry.type(description="Points, member level and referrals of one customer.")
class Loyalty:
    customer_id: strawberry.Private[uuid.UUID]
    balance: int = strawberry.field(description="Points to spend now.")
    earned: int = strawberry.field(description="Lifetime points earned (before redeeming).")
    level: str | None = strawberry.field(description="Member level (configured names, e.g. gold).")
    referral_count: int = strawberry.field(description="Customers this one referred.")

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


@strawberry.type(description="Points were redeemed.")
class PointsRedeemed:
    entry: LoyaltyEntry = strawberry.field(description="The ledger entry.")
    balance: int = strawberry.field(description="The balance now.")


@strawberry.type(description="A referral was recorded and its bonus granted.")
class ReferralRecorded:
    referral_id: strawberry.ID = strawberry.field(description="The referral's id.")
    referrer_id: strawberry.ID = strawberry.field(description="The customer who referred.")
    referred_id: strawberry.ID = strawberry.field(description="The customer referred.")
    bonus_points: int = strawberry.field(description="Points granted to the referrer.")
