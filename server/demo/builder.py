"""Deterministic demo data: realistic customers, two years of orders, interactions and
complaints in every state. Sensitive values are sealed by the vault like any others.

Every value comes from one seeded random generator, drawn in a fixed order; each step
below draws its values in turn, so the same seed and `now` give the same data set.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.analytics.repository import SegmentRepository, SegmentWindows, TierRule
from server.audit.recorder import AuditRecorder
from server.campaign.repository import CampaignRepository, Segment
from server.clock import Clock
from server.complaint.service import Resolution, apply_move
from server.complaint.states import ComplaintMove, ComplaintStatus, legal_paths_to
from server.complaint.states import target as complaint_target
from server.customer.repository import CustomerFilter
from server.customer.service import CustomerService, NewCustomer, SealedCustomer
from server.data.base import new_id
from server.data.models import (
    Campaign,
    Complaint,
    ComplaintEvent,
    Consent,
    Customer,
    CustomerKey,
    CustomerNameToken,
    Interaction,
    LoyaltyEntry,
    Order,
    OrderItem,
    OrderStatusEvent,
    Product,
    Referral,
)
from server.demo import data
from server.demo.data import (
    ACTOR,
    AGENTS,
    CATEGORIES,
    CHANNELS,
    COMPANY_SIZES,
    COMPLAINT_CATEGORIES,
    COMPLAINT_STATES,
    CONSENT_SHARES,
    DEMO_LEVELS,
    DEMO_TAGS,
    EARNING_STATUSES,
    INDUSTRIES,
    INTERACTION_KINDS,
    NOTES,
    OCCUPATIONS,
    ORDER_PATHS,
    ORDER_STATUSES,
    PREFERENCES,
    REGIONS,
    STREETS,
)
from server.demo.repository import DemoRepository, Rows
from server.loyalty.service import LoyaltyRules
from server.service_levels import ComplaintDeadline
from server.vault import DataKey, FieldRef, Vault

# Generated rows are written every this many customers (bounded memory per statement).
INSERT_BATCH = 200


@dataclass
class DemoReport:
    customers: int = 0
    orders: int = 0
    interactions: int = 0
    complaints: int = 0
    complaint_states: dict[str, int] = field(default_factory=dict)
    referrals: int = 0
    campaigns: int = 0
    campaign_recipients: int = 0
    member_levels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _NewFile:
    """A sealed customer file and what its history is built from."""

    sealed: SealedCustomer
    values: dict[str, Any]
    created: datetime
    owner: str

    @property
    def id(self) -> uuid.UUID:
        return self.sealed.customer.id

    @property
    def key(self) -> DataKey:
        return self.sealed.data_key


class DemoBuilder:
    """Builds the demo data set; `progress` is called with the number of customers done."""

    def __init__(
        self,
        vault: Vault,
        *,
        seed: int,
        now: datetime | None = None,
        tier_rule: TierRule | None = None,
        segment_windows: SegmentWindows | None = None,
    ) -> None:
        self.vault = vault
        # Tier, lifecycle and need type are computed by the segment rules once the
        # history exists (`finish`), as a refresh would, never drawn at random.
        self.tier_rule = tier_rule or TierRule()
        self.segment_windows = segment_windows or SegmentWindows()
        self.customers = CustomerService(vault)
        self.rng = random.Random(seed)
        self.now = now or Clock().now()
        self.loyalty_rules = LoyaltyRules()
        self.report = DemoReport()
        self.audit: AuditRecorder | None = None
        # Rows generated and not yet written, by model.
        self.rows: Rows = {}
        # Per customer of this run: points balance, lifetime points earned.
        self.balances: dict[uuid.UUID, int] = {}
        self.earned: dict[uuid.UUID, int] = {}
        self.created: list[uuid.UUID] = []
        self.created_at: dict[uuid.UUID, datetime] = {}
        self.referrers: set[uuid.UUID] = set()
        self.converted: set[uuid.UUID] = set()
        self._last_ledger_id: uuid.UUID | None = None
        self._products: list[Product] = []
        self._next_index = 0

    async def run(
        self,
        session: AsyncSession,
        count: int,
        progress: Callable[[int], None] | None = None,
        batch: int = 200,
        *,
        audit: AuditRecorder | None = None,
    ) -> DemoReport:
        """Add `count` customers with their history in `session`'s transaction; what is
        created is noted on `audit` (the caller appends it as one event, in the same
        transaction). `custos demo` runs the same steps, committing as it goes."""
        self.audit = audit
        await self.begin(session)
        done = 0
        while done < count:
            size = min(batch, count - done)
            await self.add_customers(session, size)
            done += size
            if progress:
                progress(done)
        return await self.finish(session)

    async def begin(self, session: AsyncSession) -> None:
        """The first step: the catalogue, and where this run's customer numbers start."""
        self.report = DemoReport()
        self._products = await self.products(session)
        self._next_index = await DemoRepository(session).customer_count()

    async def add_customers(self, session: AsyncSession, count: int) -> None:
        """The next `count` customers with their history, written in bulk. The key store
        commits the new customers' secrets when this returns, so every data key written
        here refers to a durable secret before the caller commits."""
        repo = DemoRepository(session)
        with self.vault.keys.bulk():
            for n in range(count):
                self._customer(self._next_index, self._products)
                self._next_index += 1
                if (n + 1) % INSERT_BATCH == 0:
                    await repo.insert(self.rows)
            await repo.insert(self.rows)

    async def finish(self, session: AsyncSession) -> DemoReport:
        """The last step, once every customer exists: referrers' member levels, the
        campaigns and the level counts of the report."""
        repo = DemoRepository(session)
        await repo.refresh_statistics()
        segments = SegmentRepository(session)
        # Segments before the campaigns (one targets the high tier), and again after
        # them: their conversions are orders too.
        await segments.refresh(self.now, self.tier_rule, self.segment_windows)
        await self._campaigns(session, self._products)
        await segments.refresh(self.now, self.tier_rule, self.segment_windows)
        await self._member_levels(repo)
        for level in await repo.member_levels():
            key = level or "none"
            self.report.member_levels[key] = self.report.member_levels.get(key, 0) + 1
        return self.report

    async def products(self, session: AsyncSession) -> list[Product]:
        """The catalogue: the one already there, or one product line per category whose
        last product is new."""
        repo = DemoRepository(session)
        existing = await repo.products()
        if existing:
            return existing
        products: list[Product] = []
        for category, items in CATEGORIES.items():
            for i, (name, price) in enumerate(items):
                launched = self.now - timedelta(days=self.rng.randrange(30, 900))
                is_new = i == len(items) - 1
                if is_new:
                    launched = self.now - timedelta(days=self.rng.randrange(10, 80))
                products.append(
                    Product(
                        id=new_id(),
                        sku=f"{category[:3].upper()}-{i + 1:03d}",
                        name=name,
                        category=category,
                        unit_price=Decimal(price),
                        unit_cost=(Decimal(price) * Decimal("0.6")).quantize(Decimal("0.01")),
                        is_new=is_new,
                        launched_at=launched,
                    )
                )
        await repo.add_products(products)
        return products

    # --- one customer and their history ------------------------------------------------

    def _customer(self, index: int, products: list[Product]) -> None:
        file = self._new_file(index)
        self._profile(file)
        if self.created and self.rng.random() < 0.125:
            self._referral(file)
        self.created.append(file.id)
        self.created_at[file.id] = file.created
        self._add(Customer, file.values)
        self._add(
            CustomerKey,
            {
                "customer_id": file.id,
                "wrapped_dek": file.sealed.key.wrapped_dek,
                "kek_version": file.sealed.key.kek_version,
                "created_at": file.created,
            },
        )
        for token in file.sealed.name_tokens:
            self._add(CustomerNameToken, token)
        self._consents(file)
        balance = self._orders(file, products)
        self.balances[file.id] = balance
        self.earned[file.id] = balance
        file.values["member_level"] = self.loyalty_rules.level_for(Decimal(balance))
        self._interactions(file)
        if self.rng.random() < 0.15 or index % 50 < len(COMPLAINT_STATES):
            self._complaint(file, index)
        self.report.customers += 1
        self._note("customer", file.id, file.sealed.sealed_fields)

    def _new_file(self, index: int) -> _NewFile:
        """Basic facts, sealed by the customer service like any other new file."""
        rng = self.rng
        region, code = rng.choice(REGIONS)
        born = date(rng.randrange(1960, 2004), rng.randrange(1, 13), rng.randrange(1, 29))
        name, email = data.person(rng, index)
        created = self.now - timedelta(days=rng.randrange(1, 730), minutes=rng.randrange(1440))
        owner, team = rng.choice(AGENTS)
        sealed = self.customers.seal_new(
            NewCustomer(
                name=name,
                phone=data.phone(rng, index),
                email=email,
                national_id=data.national_id(rng, code, born),
                bank_card=data.bank_card(rng),
                address=f"{region}市{rng.choice(STREETS)}{rng.randrange(1, 999)}号",
                birthday=born,
                gender=rng.choice(["female", "male"]),
                industry=rng.choice(INDUSTRIES),
                company_size=rng.choice(COMPANY_SIZES),
                region=region,
                occupation=rng.choice(OCCUPATIONS),
                source=rng.choice(["web", "store", "referral", "event", "import"]),
                created_at=created,
            ),
            owner_id=owner,
            team=team,
        )
        customer = sealed.customer
        values = {c.key: getattr(customer, c.key) for c in Customer.__table__.columns}
        return _NewFile(sealed, values, created, owner)

    def _profile(self, file: _NewFile) -> None:
        """Segments, needs, tags, review and verification of the file."""
        rng, values, created = self.rng, file.values, file.created
        # Placeholders until `finish` computes the segments from the history.
        values["tier"], values["lifecycle"], values["need_type"] = "low", "new", "value"
        values["price_sensitivity"] = rng.choice(["low", "medium", "high"])
        values["preferred_channel"] = rng.choice(CHANNELS)
        values["updated_at"] = created
        values["reviewed_at"] = (
            min(created + timedelta(days=rng.randrange(0, 200)), self.now)
            if rng.random() < 0.6
            else None
        )
        values["upgrade_intent"] = rng.choice(["low", "medium", "high", None])
        values["customization"] = rng.choice(["low", "medium", "high", None])
        values["tags"] = rng.sample(DEMO_TAGS, rng.randrange(0, 3))
        if rng.random() < 0.5:
            values["preferences"] = self._seal(
                file.key, "customers", "preferences", file.id, rng.choice(PREFERENCES)
            )
        values["phone_verified_at"] = created if rng.random() < 0.7 else None
        values["email_verified_at"] = created if rng.random() < 0.5 else None

    def _referral(self, file: _NewFile) -> None:
        """About one customer in eight was referred by one who joined before them (a
        referral service would refuse anything else); the referrer earns the referral
        bonus when the referred customer joins."""
        referrer = self.rng.choice(self.created)
        if self.created_at[referrer] >= file.created:
            return
        referral_id = new_id()
        file.values["referred_by_id"] = referrer
        bonus = self.loyalty_rules.referral_bonus
        self._add(
            Referral,
            {
                "id": referral_id,
                "customer_id": referrer,
                "referred_customer_id": file.id,
                "at": file.created,
                "bonus_points": bonus,
            },
        )
        self.balances[referrer] = self.balances.get(referrer, 0) + bonus
        self.earned[referrer] = self.earned.get(referrer, 0) + bonus
        balance = self.balances[referrer]
        self._ledger(referrer, file.created, bonus, balance, "referral", referral_id=referral_id)
        self.referrers.add(referrer)
        self.report.referrals += 1

    def _consents(self, file: _NewFile) -> None:
        for purpose, share in CONSENT_SHARES.items():
            if self.rng.random() < share:
                self._add(
                    Consent,
                    {
                        "id": new_id(),
                        "customer_id": file.id,
                        "purpose": purpose,
                        "granted_at": file.created,
                        "withdrawn_at": None,
                        "source": "signup form",
                        "recorded_by": ACTOR,
                    },
                )

    def _orders(self, file: _NewFile, products: list[Product]) -> int:
        """Orders between joining and now; returns the points they earned."""
        rng = self.rng
        span = max(1, (self.now - file.created).days)
        order_dates = sorted(
            file.created + timedelta(days=rng.randrange(0, span))
            for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 8, 12]))
        )
        balance = 0
        for ordered in order_dates:
            balance = self._order(file.id, ordered, products, balance)
        return balance

    def _order(
        self, cid: uuid.UUID, ordered: datetime, products: list[Product], balance: int
    ) -> int:
        """One order with its items, status history and points; returns the balance."""
        rng = self.rng
        order_id = new_id()
        total, cost = self._order_items(cid, order_id, products)
        status = rng.choice(ORDER_STATUSES)
        channel = rng.choice(["web", "store", "app"])
        # Delivery is promised for orders sent out (not those taken away in a store).
        promised = ordered + timedelta(days=rng.choice([2, 3, 3, 5]))
        path = ORDER_PATHS[status]
        gaps = [timedelta(hours=rng.randrange(4, 40)) for _ in path[1:]]
        # Every step has happened by now: a history squeezed into the time there was.
        room = self.now - ordered
        taken = sum(gaps, timedelta())
        if taken > room:
            gaps = [gap * (room / taken) for gap in gaps]
        self._add(
            Order,
            {
                "id": order_id,
                "customer_id": cid,
                "ordered_at": ordered,
                "status": status,
                "channel": channel,
                "currency": "CNY",
                "total": total,
                "cost_total": cost,
                "external_ref": None,
                "promised_at": promised if channel != "store" else None,
            },
        )
        at = ordered
        for step, state in enumerate(path):
            at += gaps[step - 1] if step else timedelta()
            self._add(
                OrderStatusEvent,
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "customer_id": cid,
                    "status": state,
                    "at": at,
                    "actor": ACTOR,
                    "tracking_note": None,
                },
            )
        if status in EARNING_STATUSES:
            points = self.loyalty_rules.points_for(total)
            balance += points
            self._ledger(cid, ordered, points, balance, "purchase", order_id=order_id)
        self.report.orders += 1
        return balance

    def _order_items(
        self, cid: uuid.UUID, order_id: uuid.UUID, products: list[Product]
    ) -> tuple[Decimal, Decimal]:
        """One to three products, one to three of each; returns the total and the cost."""
        rng = self.rng
        total = cost = Decimal(0)
        for product in rng.sample(products, rng.randrange(1, 4)):
            quantity = rng.randrange(1, 4)
            line = product.unit_price * quantity
            total += line
            cost += product.unit_cost * quantity
            self._add(
                OrderItem,
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "customer_id": cid,
                    "product_id": product.id,
                    "quantity": quantity,
                    "unit_price": product.unit_price,
                    "unit_cost": product.unit_cost,
                    "line_total": line,
                },
            )
        return total, cost

    def _interactions(self, file: _NewFile) -> None:
        rng = self.rng
        for _ in range(rng.randrange(0, 6)):
            days = max(1, (self.now - file.created).days)
            occurred = file.created + timedelta(days=rng.randrange(0, days))
            interaction_id = new_id()
            direction = rng.choice(["inbound", "outbound"])
            inbound = direction == "inbound"
            kind = "consultation" if inbound else rng.choice(INTERACTION_KINDS)
            responded = occurred + timedelta(minutes=rng.randrange(5, 200))
            row = {
                "id": interaction_id,
                "customer_id": file.id,
                "occurred_at": occurred,
                "channel": rng.choice(CHANNELS),
                "direction": direction,
                "kind": kind,
                "complex": rng.random() < 0.2,
                "agent_id": file.owner,
                "subject": None,
                "notes": self._seal(
                    file.key, "interactions", "notes", interaction_id, rng.choice(NOTES)
                ),
                "first_response_due_at": occurred + timedelta(hours=2) if inbound else None,
                "first_responded_at": responded if inbound else None,
                "solution_due_at": occurred + timedelta(hours=24) if inbound else None,
                "solved_at": min(responded + timedelta(hours=rng.randrange(0, 30)), self.now)
                if inbound
                else None,
            }
            self._add(Interaction, row)
            self.report.interactions += 1

    def _complaint(self, file: _NewFile, index: int) -> None:
        """A complaint whose history is a legal path of the state machine to a state; the
        first customers of every fifty cover every state in turn."""
        rng = self.rng
        state = (
            COMPLAINT_STATES[index % len(COMPLAINT_STATES)]
            if index % 50 < len(COMPLAINT_STATES)
            else rng.choice(COMPLAINT_STATES)
        )
        span = max(1, (self.now - file.created).days - 3)
        opened = file.created + timedelta(days=rng.randrange(0, span))
        severity = rng.choice(["low", "normal", "high"])
        deadline = DEMO_LEVELS.complaint_deadlines[severity]
        complaint_id = new_id()
        complaint = Complaint(
            id=complaint_id,
            customer_id=file.id,
            opened_at=opened,
            category=rng.choice(COMPLAINT_CATEGORIES),
            severity=severity,
            status=ComplaintStatus.OPEN.value,
            assignee_id=file.owner,
            order_id=None,
            description=self._seal(
                file.key, "complaints", "description", complaint_id, "Customer reported a problem"
            ),
            escalation_level=0,
            acknowledge_due_at=opened + deadline.acknowledge,
            resolve_due_at=opened + deadline.resolve,
        )
        events = self._complaint_moves(file, complaint, ComplaintStatus(state), deadline)
        self._add(
            Complaint, {c.key: getattr(complaint, c.key) for c in Complaint.__table__.columns}
        )
        for from_status, to_status, when in events:
            self._add(
                ComplaintEvent,
                {
                    "id": new_id(),
                    "complaint_id": complaint_id,
                    "customer_id": file.id,
                    "from_status": from_status.value if from_status else None,
                    "to_status": to_status.value,
                    "actor": ACTOR if from_status is None else file.owner,
                    "at": when,
                    "note": None,
                },
            )
        self.report.complaints += 1
        self.report.complaint_states[state] = self.report.complaint_states.get(state, 0) + 1

    def _complaint_moves(
        self,
        file: _NewFile,
        complaint: Complaint,
        goal: ComplaintStatus,
        deadline: ComplaintDeadline,
    ) -> list[tuple[ComplaintStatus | None, ComplaintStatus, datetime]]:
        """Walk the complaint to `goal` through the service's own moves; most closed files
        are rated. Returns the status history, opening first."""
        rng = self.rng
        at = complaint.opened_at
        events: list[tuple[ComplaintStatus | None, ComplaintStatus, datetime]] = [
            (None, ComplaintStatus.OPEN, at)
        ]
        moves = legal_paths_to(goal)
        if goal is ComplaintStatus.CLOSED and rng.random() < 0.7:
            moves.insert(moves.index(ComplaintMove.CLOSE), ComplaintMove.RATE)
        for step in moves:
            at += timedelta(minutes=rng.randrange(10, 300))
            status = ComplaintStatus(complaint.status)
            to = complaint_target(status, step)
            assert to is not None, f"demo path {moves} is not legal"
            resolution = (
                Resolution(
                    "Replaced the item",
                    rng.choice(COMPLAINT_CATEGORIES),
                    Decimal(rng.choice([0, 20, 50, 100])),
                )
                if step is ComplaintMove.RESOLVE
                else None
            )
            rating = rng.randrange(1, 6) if step is ComplaintMove.RATE else None
            apply_move(complaint, step, at, deadline, resolution, rating, None)
            if resolution is not None:
                complaint.resolution = self._seal(
                    file.key, "complaints", "resolution", complaint.id, resolution.text
                )
            complaint.status = to.value
            events.append((status, to, at))
        return events

    # --- after every customer exists ---------------------------------------------------

    async def _member_levels(self, repo: DemoRepository) -> None:
        """Referral bonuses and campaign conversions change points after a customer's own
        purchases, so those member levels are set once all customers exist."""
        await repo.set_member_levels(
            {
                cid: self.loyalty_rules.level_for(Decimal(points))
                for cid, points in self.earned.items()
                if cid in self.referrers or cid in self.converted
            }
        )

    async def _campaigns(self, session: AsyncSession, products: list[Product]) -> None:
        """Two campaigns for new products, recipients chosen by the same SQL as the API
        (so only customers with active marketing consent), some responses and sales."""
        new_products = [p for p in products if p.is_new]
        segments = [
            (
                "Autumn launch: " + new_products[0].name,
                new_products[0],
                Segment(
                    CustomerFilter(region=REGIONS[0][0]),
                    bought_category=new_products[0].category,
                    never_bought_product_id=new_products[0].id,
                ),
            ),
            (
                "VIP preview: " + new_products[1].name,
                new_products[1],
                Segment(CustomerFilter(tier="high"), never_bought_product_id=new_products[1].id),
            ),
        ]
        for name, product, segment in segments:
            await self._campaign(session, name, product, segment)

    async def _campaign(
        self, session: AsyncSession, name: str, product: Product, segment: Segment
    ) -> None:
        campaign = Campaign(
            id=new_id(),
            name=name,
            product_id=product.id,
            segment={
                k: v
                for k, v in {
                    "region": segment.customers.region,
                    "tier": segment.customers.tier,
                    "bought_category": segment.bought_category,
                    "never_bought_product_id": str(segment.never_bought_product_id),
                }.items()
                if v is not None
            },
            channel="wechat",
            status="active",
            created_at=self.now - timedelta(days=14),
            created_by=ACTOR,
        )
        campaigns = CampaignRepository(session)
        await campaigns.add(campaign)
        demo = DemoRepository(session)
        recipients = [
            self._recipient(campaign, product, cid)
            for cid in await demo.campaign_recipients(segment)
        ]
        await demo.insert(self.rows)  # the conversions' orders first
        await campaigns.add_recipients(recipients)
        if self.audit is not None:
            self.audit.change("campaign", "create", campaign.id, ["name", "segment", "recipients"])
        self.report.campaigns += 1
        self.report.campaign_recipients += len(recipients)

    def _recipient(self, campaign: Campaign, product: Product, cid: uuid.UUID) -> dict[str, Any]:
        """About three in ten recipients respond; a tenth convert: they buy the promoted
        product five days after the campaign reached them, as a conversion must."""
        responded = self.rng.random() < 0.3
        order = (
            self._conversion_order(cid, product, campaign.created_at + timedelta(days=5))
            # Only this run's customers: their points balance is known here.
            if responded and self.rng.random() < 0.3 and cid in self.balances
            else None
        )
        return {
            "id": new_id(),
            "campaign_id": campaign.id,
            "customer_id": cid,
            "added_at": campaign.created_at,
            "responded_at": campaign.created_at + timedelta(days=2) if responded else None,
            "converted_at": campaign.created_at + timedelta(days=5) if order else None,
            "order_id": order[0] if order else None,
            "revenue": order[1] if order else None,
        }

    def _conversion_order(
        self, cid: uuid.UUID, product: Product, ordered: datetime
    ) -> tuple[uuid.UUID, Decimal]:
        """A delivered order of one promoted product, with its timeline and points."""
        order_id = new_id()
        self._add(
            Order,
            {
                "id": order_id,
                "customer_id": cid,
                "ordered_at": ordered,
                "status": "delivered",
                "channel": "web",
                "currency": "CNY",
                "total": product.unit_price,
                "cost_total": product.unit_cost,
                "external_ref": None,
                "promised_at": ordered + timedelta(days=3),
            },
        )
        self._add(
            OrderItem,
            {
                "id": new_id(),
                "order_id": order_id,
                "customer_id": cid,
                "product_id": product.id,
                "quantity": 1,
                "unit_price": product.unit_price,
                "unit_cost": product.unit_cost,
                "line_total": product.unit_price,
            },
        )
        for hours, state in zip((0, 2, 20, 50), ORDER_PATHS["delivered"], strict=True):
            self._add(
                OrderStatusEvent,
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "customer_id": cid,
                    "status": state,
                    "at": ordered + timedelta(hours=hours),
                    "actor": ACTOR,
                    "tracking_note": None,
                },
            )
        points = self.loyalty_rules.points_for(product.unit_price)
        balance = self.balances.get(cid, 0) + points
        self.balances[cid] = balance
        self.earned[cid] = self.earned.get(cid, 0) + points
        self._ledger(cid, ordered, points, balance, "purchase", order_id=order_id)
        self.converted.add(cid)
        self.report.orders += 1
        return order_id, product.unit_price

    # --- helpers -----------------------------------------------------------------------

    def _add(self, model: type[Any], row: dict[str, Any]) -> None:
        self.rows.setdefault(model, []).append(row)

    def _ledger(
        self,
        cid: uuid.UUID,
        at: datetime,
        points: int,
        balance: int,
        reason: str,
        *,
        order_id: uuid.UUID | None = None,
        referral_id: uuid.UUID | None = None,
    ) -> None:
        self._add(
            LoyaltyEntry,
            {
                "id": self._ledger_id(),
                "customer_id": cid,
                "at": at,
                "points": points,
                "reason": reason,
                "order_id": order_id,
                "referral_id": referral_id,
                "balance_after": balance,
                "actor": ACTOR,
            },
        )

    def _note(self, object_type: str, record_id: uuid.UUID, fields: list[str]) -> None:
        if self.audit is not None:
            self.audit.change(object_type, "create", record_id, fields)

    def _ledger_id(self) -> uuid.UUID:
        """Ledger ids strictly ascend, so `balance_after` reads in id order even for
        entries made within one millisecond (ids are time-ordered only to the ms)."""
        candidate = new_id()
        if self._last_ledger_id is not None and candidate <= self._last_ledger_id:
            candidate = uuid.UUID(int=self._last_ledger_id.int + 1)
        self._last_ledger_id = candidate
        return candidate

    def _seal(self, key: DataKey, table: str, column: str, row_id: uuid.UUID, value: str) -> bytes:
        return self.vault.seal(key, FieldRef(table, column, row_id), value)
