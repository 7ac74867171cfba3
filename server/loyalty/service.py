"""Loyalty: a reasoned points ledger that never goes negative, member levels, referrals.

Every ledger change locks the customer's row first, so two concurrent redeems are
serialised and the second sees the first one's entry: the balance cannot be overdrawn.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from sqlalchemy.ext.asyncio import AsyncSession

from server.caller import Caller
from server.customer.repository import CustomerRepository, scope_predicate
from server.data.base import new_id
from server.data.models import LoyaltyEntry, Order, Referral
from server.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from server.loyalty.repository import LoyaltyRepository
from server.paging import Page, page_of

REASONS = ("purchase", "referral", "redeem", "order_reversal")
# How far up the chain of referrers a new referral is checked for a cycle.
MAX_REFERRAL_CHAIN = 1000


@dataclass(frozen=True, slots=True)
class LoyaltyRules:
    """Configurable earning, referral and level rules.

    `level_basis` is "points" (lifetime earned points, so redeeming never demotes) or
    "spend" (total of paid, shipped and delivered orders). Thresholds ascend.
    """

    points_per_currency_unit: Decimal = Decimal("0.1")
    referral_bonus: int = 200
    level_basis: str = "points"
    thresholds: tuple[tuple[str, Decimal], ...] = field(
        default=(
            ("bronze", Decimal(0)),
            ("silver", Decimal(1000)),
            ("gold", Decimal(5000)),
            ("platinum", Decimal(20000)),
        )
    )

    @staticmethod
    def parse_levels(text: str) -> tuple[tuple[str, Decimal], ...]:
        """`bronze:0,silver:1000`: names with ascending thresholds."""
        levels: list[tuple[str, Decimal]] = []
        for part in text.split(","):
            name, _, threshold = part.strip().partition(":")
            try:
                value = Decimal(threshold)
            except InvalidOperation:
                raise ConfigError(f"member level {name!r} needs a numeric threshold") from None
            if not name or (levels and value <= levels[-1][1]):
                raise ConfigError("member levels are name:threshold with ascending thresholds")
            levels.append((name, value))
        return tuple(levels)

    def level_for(self, measure: Decimal) -> str | None:
        level = None
        for name, minimum in self.thresholds:
            if measure >= minimum:
                level = name
        return level

    def points_for(self, amount: Decimal) -> int:
        return int((amount * self.points_per_currency_unit).to_integral_value(ROUND_FLOOR))


@dataclass(frozen=True, slots=True)
class LoyaltySummary:
    customer_id: uuid.UUID
    balance: int
    earned: int
    level: str | None
    referral_count: int


class LoyaltyService:
    def __init__(self, now: Callable[[], datetime], rules: LoyaltyRules | None = None) -> None:
        self.now = now
        self.rules = rules or LoyaltyRules()

    async def _visible(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, action: str, obj: str
    ) -> None:
        scope = scope_predicate(caller.gate.row_scope(obj, action), caller.principal)
        if not await CustomerRepository(session).visible(customer_id, scope):
            raise caller.gate.not_found(obj, action, customer_id, what="customer")

    async def append(
        self,
        session: AsyncSession,
        customer_id: uuid.UUID,
        points: int,
        reason: str,
        actor: str,
        *,
        order_id: uuid.UUID | None = None,
        referral_id: uuid.UUID | None = None,
    ) -> LoyaltyEntry:
        """Lock, check the balance, write the entry, recompute the level. No policy here:
        callers have decided access already."""
        if reason not in REASONS:
            raise ValidationError(f"reason must be one of {', '.join(REASONS)}")
        repo = LoyaltyRepository(session)
        if not await repo.lock_customer(customer_id):
            raise NotFoundError("customer not found")
        balance = await repo.balance(customer_id)
        if balance + points < 0:
            raise ConflictError(
                f"not enough points: balance is {balance}", code="INSUFFICIENT_POINTS"
            )
        # The ledger reads in id order: ids ascend strictly per customer, even for two
        # entries made within one millisecond (ids are time-ordered only to the ms).
        entry_id = new_id()
        last = await repo.last_entry_id(customer_id)
        if last is not None and entry_id <= last:
            entry_id = uuid.UUID(int=last.int + 1)
        entry = LoyaltyEntry(
            id=entry_id,
            customer_id=customer_id,
            at=self.now(),
            points=points,
            reason=reason,
            order_id=order_id,
            referral_id=referral_id,
            balance_after=balance + points,
            actor=actor,
        )
        await repo.add_entry(entry)
        await self.recompute_level(session, customer_id)
        return entry

    async def recompute_level(self, session: AsyncSession, customer_id: uuid.UUID) -> str | None:
        repo = LoyaltyRepository(session)
        if self.rules.level_basis == "spend":
            measure = await repo.spend(customer_id)
        else:
            measure = Decimal(await repo.earned(customer_id))
        level = self.rules.level_for(measure)
        await repo.set_level(customer_id, level)
        return level

    async def earn_for_order(self, session: AsyncSession, order: Order, actor: str) -> None:
        points = self.rules.points_for(order.total)
        if points > 0:
            await self.append(
                session, order.customer_id, points, "purchase", actor, order_id=order.id
            )
        elif self.rules.level_basis == "spend":
            await self.recompute_level(session, order.customer_id)

    async def reverse_for_order(self, session: AsyncSession, order: Order, actor: str) -> None:
        """Take back what an order earned, as far as the balance allows (points already
        redeemed stay redeemed: the ledger never goes negative)."""
        repo = LoyaltyRepository(session)
        earned = await repo.points_for_order(order.id)
        if earned <= 0:
            return
        await repo.lock_customer(order.customer_id)
        take = min(earned, await repo.balance(order.customer_id))
        if take > 0:
            await self.append(
                session, order.customer_id, -take, "order_reversal", actor, order_id=order.id
            )
        else:
            await self.recompute_level(session, order.customer_id)

    async def redeem(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, points: int
    ) -> LoyaltyEntry:
        if points <= 0:
            raise ValidationError("points to redeem must be positive", field="points")
        await self._visible(session, caller, customer_id, "update", "loyalty")
        entry = await self.append(session, customer_id, -points, "redeem", caller.principal.subject)
        caller.audit.change("loyalty", "redeem", entry.id, ["points"])
        return entry

    async def record_referral(
        self,
        session: AsyncSession,
        caller: Caller,
        referrer_id: uuid.UUID,
        referred_id: uuid.UUID,
    ) -> Referral:
        if referrer_id == referred_id:
            raise ValidationError("a customer cannot refer themselves", field="referred_id")
        scope = scope_predicate(caller.gate.row_scope("referral", "create"), caller.principal)
        customers = CustomerRepository(session)
        for customer_id in (referrer_id, referred_id):
            if not await customers.visible(customer_id, scope):
                raise caller.gate.not_found("referral", "create", customer_id, what="customer")
        repo = LoyaltyRepository(session)
        if await repo.referral_of(referred_id) is not None:
            raise ConflictError("this customer was already referred", code="ALREADY_REFERRED")
        if referred_id in await repo.referrers_of(referrer_id, MAX_REFERRAL_CHAIN):
            # A refers B, B refers A: each would earn the bonus for the other.
            raise ConflictError(
                "the referred customer is among the referrer's own referrers",
                code="REFERRAL_CYCLE",
            )
        referrer_since = await repo.relationship_start(referrer_id)
        referred_since = await repo.relationship_start(referred_id)
        if referrer_since is None or referred_since is None or referred_since < referrer_since:
            # Someone who was a customer (or buying) before the referrer cannot have been
            # brought in by them.
            raise ConflictError(
                "the referred customer's relationship began before the referrer's",
                code="REFERRAL_NOT_NEW",
            )
        referral = Referral(
            id=new_id(),
            customer_id=referrer_id,
            referred_customer_id=referred_id,
            at=self.now(),
            bonus_points=self.rules.referral_bonus,
        )
        await repo.add_referral(referral)
        if self.rules.referral_bonus > 0:
            await self.append(
                session,
                referrer_id,
                self.rules.referral_bonus,
                "referral",
                caller.principal.subject,
                referral_id=referral.id,
            )
        caller.audit.change(
            "referral", "create", referral.id, ["customer_id", "referred_customer_id"]
        )
        caller.audit.change("customer", "update", referred_id, ["referred_by_id"])
        return referral

    async def summary(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID
    ) -> LoyaltySummary:
        summary = (await self.summaries(session, caller, [customer_id])).get(customer_id)
        if summary is None:
            raise caller.gate.not_found("loyalty", "read", customer_id, what="customer")
        return summary

    async def summaries(
        self, session: AsyncSession, caller: Caller, customer_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, LoyaltySummary]:
        """Loyalty of many customers in three grouped queries (a page of customers asks
        once, not once per row); ids outside the caller's scope are absent."""
        scope = scope_predicate(caller.gate.row_scope("loyalty", "read"), caller.principal)
        repo = LoyaltyRepository(session)
        levels = await repo.levels(customer_ids, scope)
        points = await repo.points(levels)
        referrals = await repo.referral_counts(levels)
        summaries = {
            cid: LoyaltySummary(
                customer_id=cid,
                balance=points.get(cid, (0, 0))[0],
                earned=points.get(cid, (0, 0))[1],
                level=level,
                referral_count=referrals.get(cid, 0),
            )
            for cid, level in levels.items()
        }
        caller.audit.read("loyalty", summaries, {"balance": "clear", "level": "clear"})
        return summaries

    async def entries(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        *,
        first: int,
        after: uuid.UUID | None,
    ) -> Page[LoyaltyEntry]:
        await self._visible(session, caller, customer_id, "read", "loyalty")
        rows = await LoyaltyRepository(session).entries(customer_id, after=after, limit=first)
        page = page_of(rows, first)
        caller.audit.read(
            "loyalty", (e.id for e in page.items), {"points": "clear", "reason": "clear"}
        )
        return page
