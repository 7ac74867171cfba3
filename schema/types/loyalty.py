"""A customer's loyalty account: points balance, member level, ledger and referrals."""

from __future__ import annotations

import datetime
import uuid

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.types.common import PageInfo, check_page_size, decode_cursor, encode_cursor
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


@strawberry.type
class LoyaltyEntryEdge:
    cursor: str
    node: LoyaltyEntry


@strawberry.type
class LoyaltyEntryConnection:
    edges: list[LoyaltyEntryEdge]
    nodes: list[LoyaltyEntry]
    page_info: PageInfo


@strawberry.type(description="Points, member level and referrals of one customer.")
class Loyalty:
    customer_id: strawberry.Private[uuid.UUID]
    balance: int
    earned: int = strawberry.field(description="Lifetime points earned (before redeeming).")
    level: str | None
    referral_count: int

    @strawberry.field(description="The ledger, oldest first.")
    async def entries(
        self, info: Info[GraphQLContext, None], first: int = 20, after: str | None = None
    ) -> LoyaltyEntryConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.loyalty.entries(
            ctx.session, ctx.caller, self.customer_id, first=first, after=decode_cursor(after)
        )
        nodes = [LoyaltyEntry.from_row(e) for e in page.entries]
        edges = [
            LoyaltyEntryEdge(cursor=encode_cursor(e.id), node=n)
            for e, n in zip(page.entries, nodes, strict=True)
        ]
        return LoyaltyEntryConnection(
            edges=edges,
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
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
