"""Deterministic demo data: realistic customers, two years of orders, interactions and
complaints in every state. Sensitive values are sealed by the vault like any others."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.recorder import AuditRecorder
from server.auth.principal import Principal
from server.campaign.repository import CampaignRepository, Segment
from server.complaint.service import Resolution, apply_move
from server.complaint.states import ComplaintMove, ComplaintStatus, legal_paths_to
from server.complaint.states import target as complaint_target
from server.customer.repository import CustomerFilter
from server.customer.service import CustomerService, NewCustomer
from server.data.base import new_id
from server.data.models import (
    Campaign,
    Complaint,
    ComplaintEvent,
    Consent,
    Customer,
    CustomerKey,
    Interaction,
    LoyaltyEntry,
    Order,
    OrderItem,
    OrderStatusEvent,
    Product,
    Referral,
)
from server.loyalty.service import LoyaltyRules
from server.service_levels import ServiceLevels
from server.vault import DataKey, FieldRef, Vault
from server.vault.normalise import luhn_is_valid, national_id_check_char

SURNAMES_ZH = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
    "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_ZH = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌"
    "宇浩凯晨欣怡思雨佳琪子涵梓轩一诺"
)
FIRST_EN = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Emma",
    "Olivia",
    "Noah",
    "Liam",
    "Sophia",
    "Lucas",
]
LAST_EN = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Thompson",
    "White",
    "Lee",
]
REGIONS = [
    ("北京", "110101"),
    ("上海", "310101"),
    ("广州", "440103"),
    ("深圳", "440303"),
    ("杭州", "330102"),
    ("成都", "510104"),
    ("武汉", "420102"),
    ("南京", "320102"),
    ("西安", "610102"),
    ("重庆", "500101"),
]
STREETS = ["中山路", "人民路", "解放路", "建设路", "和平路", "长江路", "南京路", "科技园路"]
INDUSTRIES = [
    "retail",
    "manufacturing",
    "finance",
    "education",
    "healthcare",
    "it",
    "logistics",
    "hospitality",
]
COMPANY_SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
OCCUPATIONS = ["engineer", "teacher", "manager", "designer", "doctor", "sales", "owner", "student"]
CATEGORIES = {
    "appliances": [("Air purifier", 1299), ("Rice cooker", 399), ("Robot vacuum", 2199)],
    "electronics": [("Wireless earbuds", 599), ("Smart watch", 1499), ("Tablet", 2999)],
    "home": [("Bedding set", 459), ("Desk lamp", 189), ("Storage rack", 129)],
    "beauty": [("Face serum", 329), ("Sunscreen", 119), ("Hair dryer", 699)],
    "food": [("Green tea gift box", 268), ("Coffee beans", 98), ("Nut assortment", 158)],
    "sports": [("Yoga mat", 139), ("Running shoes", 699), ("Smart scale", 199)],
}
CHANNELS = ["phone", "email", "wechat", "sms", "chat", "visit", "meeting"]
INTERACTION_KINDS = ["consultation", "follow_up", "care", "promotion", "survey", "visit"]
COMPLAINT_CATEGORIES = [
    "product_quality",
    "service_attitude",
    "communication",
    "delivery",
    "billing",
    "other",
]
COMPLAINT_STATES = [status.value for status in ComplaintStatus]
DEMO_LEVELS = ServiceLevels()
NOTES = [
    "Asked about delivery time",
    "Interested in the new model",
    "Requested an invoice",
    "Follow-up on last purchase",
    "Birthday greeting sent",
    "Discussed membership upgrade",
]
DEMO_TAGS = ["vip", "wholesale", "回头客", "gift-buyer", "early-adopter"]
PREFERENCES = [
    "Prefers evening calls",
    "Likes new gadgets",
    "Buys gifts for family",
    "Wants eco-friendly packaging",
]
AGENTS = [("agent-1", "east"), ("agent-2", "east"), ("agent-3", "west"), ("agent-4", "west")]
SYSTEM = Principal(subject="system:demo", roles=("system",))


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


def _phone(rng: random.Random, index: int) -> str:
    prefix = rng.choice(["130", "135", "138", "139", "150", "158", "177", "186", "188", "199"])
    return f"{prefix}{(index * 7919 + rng.randrange(10_000)) % 100_000_000:08d}"


def _national_id(rng: random.Random, region_code: str, born: date) -> str:
    first17 = f"{region_code}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + national_id_check_char(first17)


def _bank_card(rng: random.Random) -> str:
    body = "62" + "".join(str(rng.randrange(10)) for _ in range(15))
    for check in range(10):
        if luhn_is_valid(body + str(check)):
            return body + str(check)
    raise AssertionError("a Luhn check digit always exists")


def _person(rng: random.Random, index: int) -> tuple[str, str]:
    if rng.random() < 0.7:
        name = rng.choice(SURNAMES_ZH) + "".join(
            rng.choice(GIVEN_ZH) for _ in range(rng.choice([1, 2]))
        )
        local = f"user{index}"
    else:
        first, last = rng.choice(FIRST_EN), rng.choice(LAST_EN)
        name = f"{first} {last}"
        local = f"{first}.{last}{index}".lower()
    return name, f"{local}@{rng.choice(['example.com', 'mail.example.cn', 'corp.example.org'])}"


class DemoBuilder:
    """Builds the demo data set; `progress` is called with the number of customers done."""

    def __init__(self, vault: Vault, *, seed: int, now: datetime | None = None) -> None:
        self.vault = vault
        self.customers = CustomerService(vault)
        self.rng = random.Random(seed)
        self.now = now or datetime.now(UTC)
        self.loyalty_rules = LoyaltyRules()
        # Per customer of this run: points balance, lifetime points earned, latest live order.
        self.balances: dict[uuid.UUID, int] = {}
        self.earned: dict[uuid.UUID, int] = {}
        self.last_order: dict[uuid.UUID, tuple[uuid.UUID, Decimal]] = {}
        self.created: list[uuid.UUID] = []
        self.referrers: set[uuid.UUID] = set()
        self._last_ledger_id: uuid.UUID | None = None

    async def products(self, session: AsyncSession) -> list[Product]:
        existing = (await session.scalars(select(Product))).all()
        if existing:
            return list(existing)
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
        session.add_all(products)
        await session.flush()
        return products

    async def run(
        self,
        session: AsyncSession,
        count: int,
        progress: Callable[[int], None] | None = None,
        batch: int = 200,
        *,
        audit: AuditRecorder | None = None,
    ) -> DemoReport:
        """Add `count` customers with their history; what is created is noted on `audit`
        (the command appends it as its one event, in the same transaction)."""
        report = DemoReport()
        products = await self.products(session)
        start = int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
        recorder = audit or AuditRecorder(SYSTEM)
        rows: dict[type[Any], list[dict[str, Any]]] = {}
        # New customers' key material is stored in bulk; the caller commits the database
        # transaction after this returns, so every stored key's secret is already durable.
        with self.vault.keys.bulk():
            for n in range(count):
                self._customer(start + n, products, rows, report, recorder)
                if (n + 1) % batch == 0 or n + 1 == count:
                    await self._flush(session, rows)
                    if progress:
                        progress(n + 1)
        await self._referral_levels(session, report)
        await self._campaigns(session, products, report, recorder)
        for level in (await session.scalars(select(Customer.member_level))).all():
            key = level or "none"
            report.member_levels[key] = report.member_levels.get(key, 0) + 1
        return report

    async def _referral_levels(self, session: AsyncSession, report: DemoReport) -> None:
        """Referral bonuses change the referrers' points after their own purchases, so
        their member level is set once all customers exist."""
        rows = [
            {"id": cid, "member_level": self.loyalty_rules.level_for(Decimal(points))}
            for cid, points in self.earned.items()
            if cid in self.referrers
        ]
        if rows:
            await session.execute(update(Customer), rows)

    async def _campaigns(
        self,
        session: AsyncSession,
        products: list[Product],
        report: DemoReport,
        recorder: AuditRecorder,
    ) -> None:
        """Two campaigns for new products, recipients chosen by the same SQL as the API
        (so only customers with active marketing consent), some responses and sales."""
        repo = CampaignRepository(session)
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
                created_by="system:demo",
            )
            await repo.add(campaign)
            recipients = []
            for cid in await repo.select_recipients(true(), segment):
                responded = self.rng.random() < 0.3
                order = self.last_order.get(cid) if responded and self.rng.random() < 0.3 else None
                recipients.append(
                    {
                        "id": new_id(),
                        "campaign_id": campaign.id,
                        "customer_id": cid,
                        "added_at": campaign.created_at,
                        "responded_at": campaign.created_at + timedelta(days=2)
                        if responded
                        else None,
                        "converted_at": campaign.created_at + timedelta(days=5) if order else None,
                        "order_id": order[0] if order else None,
                        "revenue": order[1] if order else None,
                    }
                )
            await repo.add_recipients(recipients)
            recorder.change("campaign", "create", campaign.id, ["name", "segment", "recipients"])
            report.campaigns += 1
            report.campaign_recipients += len(recipients)

    async def _flush(
        self, session: AsyncSession, rows: dict[type[Any], list[dict[str, Any]]]
    ) -> None:
        for model in (
            Customer,
            CustomerKey,
            Consent,
            Order,
            OrderItem,
            OrderStatusEvent,
            Referral,
            LoyaltyEntry,
            Interaction,
            Complaint,
            ComplaintEvent,
        ):
            if rows.get(model):
                await session.execute(insert(model), rows[model])
        rows.clear()

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

    def _customer(
        self,
        index: int,
        products: list[Product],
        rows: dict[type[Any], list[dict[str, Any]]],
        report: DemoReport,
        recorder: AuditRecorder,
    ) -> None:
        rng = self.rng
        region, code = rng.choice(REGIONS)
        born = date(rng.randrange(1960, 2004), rng.randrange(1, 13), rng.randrange(1, 29))
        name, email = _person(rng, index)
        created = self.now - timedelta(days=rng.randrange(1, 730), minutes=rng.randrange(1440))
        owner, team = rng.choice(AGENTS)
        sealed = self.customers.seal_new(
            NewCustomer(
                name=name,
                phone=_phone(rng, index),
                email=email,
                national_id=_national_id(rng, code, born),
                bank_card=_bank_card(rng),
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
        key = sealed.data_key
        cid = customer.id
        values = {c.key: getattr(customer, c.key) for c in Customer.__table__.columns}
        values["tier"] = rng.choice(["high", "mid", "mid", "low", "low", "low"])
        values["lifecycle"] = rng.choice(
            ["new", "active", "active", "at_risk", "churned", "won_back"]
        )
        values["need_type"] = rng.choice(["quality", "value", "service"])
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
                key, "customers", "preferences", cid, rng.choice(PREFERENCES)
            )
        values["phone_verified_at"] = created if rng.random() < 0.7 else None
        values["email_verified_at"] = created if rng.random() < 0.5 else None
        # About one customer in eight was referred by an earlier one; the referrer earns
        # the referral bonus when the referred customer joins.
        if self.created and rng.random() < 0.125:
            referrer = rng.choice(self.created)
            referral_id = new_id()
            values["referred_by_id"] = referrer
            bonus = self.loyalty_rules.referral_bonus
            rows.setdefault(Referral, []).append(
                {
                    "id": referral_id,
                    "customer_id": referrer,
                    "referred_customer_id": cid,
                    "at": created,
                    "bonus_points": bonus,
                }
            )
            self.balances[referrer] = self.balances.get(referrer, 0) + bonus
            self.earned[referrer] = self.earned.get(referrer, 0) + bonus
            rows.setdefault(LoyaltyEntry, []).append(
                {
                    "id": self._ledger_id(),
                    "customer_id": referrer,
                    "at": created,
                    "points": bonus,
                    "reason": "referral",
                    "order_id": None,
                    "referral_id": referral_id,
                    "balance_after": self.balances[referrer],
                    "actor": "system:demo",
                }
            )
            self.referrers.add(referrer)
            report.referrals += 1
        self.created.append(cid)
        rows.setdefault(Customer, []).append(values)
        rows.setdefault(CustomerKey, []).append(
            {
                "customer_id": cid,
                "wrapped_dek": sealed.key.wrapped_dek,
                "kek_version": sealed.key.kek_version,
                "created_at": created,
            }
        )
        for purpose in ("marketing", "analytics", "third_party_sharing"):
            if (
                rng.random()
                < {"marketing": 0.6, "analytics": 0.8, "third_party_sharing": 0.2}[purpose]
            ):
                rows.setdefault(Consent, []).append(
                    {
                        "id": new_id(),
                        "customer_id": cid,
                        "purpose": purpose,
                        "granted_at": created,
                        "withdrawn_at": None,
                        "source": "signup form",
                        "recorded_by": "system:demo",
                    }
                )
        balance = 0
        span = max(1, (self.now - created).days)
        order_dates = sorted(
            created + timedelta(days=rng.randrange(0, span))
            for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 8, 12]))
        )
        for ordered in order_dates:
            order_id = new_id()
            total = Decimal(0)
            cost = Decimal(0)
            for product in rng.sample(products, rng.randrange(1, 4)):
                quantity = rng.randrange(1, 4)
                line = product.unit_price * quantity
                total += line
                cost += product.unit_cost * quantity
                rows.setdefault(OrderItem, []).append(
                    {
                        "id": new_id(),
                        "order_id": order_id,
                        "customer_id": cid,
                        "product_id": product.id,
                        "quantity": quantity,
                        "unit_price": product.unit_price,
                        "unit_cost": product.unit_cost,
                        "line_total": line,
                    }
                )
            status = rng.choice(["delivered"] * 6 + ["paid", "shipped", "cancelled", "returned"])
            rows.setdefault(Order, []).append(
                {
                    "id": order_id,
                    "customer_id": cid,
                    "ordered_at": ordered,
                    "status": status,
                    "channel": rng.choice(["web", "store", "app"]),
                    "currency": "CNY",
                    "total": total,
                    "cost_total": cost,
                    "external_ref": None,
                }
            )
            path = {
                "paid": ["created", "paid"],
                "shipped": ["created", "paid", "shipped"],
                "delivered": ["created", "paid", "shipped", "delivered"],
                "cancelled": ["created", "cancelled"],
                "returned": ["created", "paid", "shipped", "delivered", "returned"],
            }[status]
            for step, state in enumerate(path):
                rows.setdefault(OrderStatusEvent, []).append(
                    {
                        "id": new_id(),
                        "order_id": order_id,
                        "customer_id": cid,
                        "status": state,
                        "at": ordered + timedelta(hours=step * 20),
                        "actor": "system:demo",
                        "tracking_note": None,
                    }
                )
            if status in ("paid", "shipped", "delivered"):
                points = self.loyalty_rules.points_for(total)
                balance += points
                rows.setdefault(LoyaltyEntry, []).append(
                    {
                        "id": self._ledger_id(),
                        "customer_id": cid,
                        "at": ordered,
                        "points": points,
                        "reason": "purchase",
                        "order_id": order_id,
                        "referral_id": None,
                        "balance_after": balance,
                        "actor": "system:demo",
                    }
                )
            if status in ("paid", "shipped", "delivered"):
                self.last_order[cid] = (order_id, total)
            report.orders += 1
        self.balances[cid] = balance
        self.earned[cid] = balance
        values["member_level"] = self.loyalty_rules.level_for(Decimal(balance))
        for _ in range(rng.randrange(0, 6)):
            occurred = created + timedelta(days=rng.randrange(0, max(1, (self.now - created).days)))
            interaction_id = new_id()
            direction = rng.choice(["inbound", "outbound"])
            kind = "consultation" if direction == "inbound" else rng.choice(INTERACTION_KINDS)
            responded = occurred + timedelta(minutes=rng.randrange(5, 200))
            rows.setdefault(Interaction, []).append(
                {
                    "id": interaction_id,
                    "customer_id": cid,
                    "occurred_at": occurred,
                    "channel": rng.choice(CHANNELS),
                    "direction": direction,
                    "kind": kind,
                    "complex": rng.random() < 0.2,
                    "agent_id": owner,
                    "subject": None,
                    "notes": self._seal(
                        key, "interactions", "notes", interaction_id, rng.choice(NOTES)
                    ),
                    "first_response_due_at": occurred + timedelta(hours=2)
                    if direction == "inbound"
                    else None,
                    "first_responded_at": responded if direction == "inbound" else None,
                    "solution_due_at": occurred + timedelta(hours=24)
                    if direction == "inbound"
                    else None,
                    "solved_at": responded + timedelta(hours=rng.randrange(0, 30))
                    if direction == "inbound"
                    else None,
                }
            )
            report.interactions += 1
        if rng.random() < 0.15 or index % 50 < len(COMPLAINT_STATES):
            self._complaint(cid, key, owner, created, rows, report, index)
        report.customers += 1
        recorder.change("customer", "create", cid, sealed.sealed_fields)

    def _complaint(
        self,
        cid: uuid.UUID,
        key: DataKey,
        owner: str,
        created: datetime,
        rows: dict[type[Any], list[dict[str, Any]]],
        report: DemoReport,
        index: int,
    ) -> None:
        rng = self.rng
        state = (
            COMPLAINT_STATES[index % len(COMPLAINT_STATES)]
            if index % 50 < len(COMPLAINT_STATES)
            else rng.choice(COMPLAINT_STATES)
        )
        goal = ComplaintStatus(state)
        span = max(1, (self.now - created).days - 3)
        opened = created + timedelta(days=rng.randrange(0, span))
        severity = rng.choice(["low", "normal", "high"])
        deadline = DEMO_LEVELS.complaint_deadlines[severity]
        complaint_id = new_id()
        complaint = Complaint(
            id=complaint_id,
            customer_id=cid,
            opened_at=opened,
            category=rng.choice(COMPLAINT_CATEGORIES),
            severity=severity,
            status=ComplaintStatus.OPEN.value,
            assignee_id=owner,
            order_id=None,
            description=self._seal(
                key, "complaints", "description", complaint_id, "Customer reported a problem"
            ),
            escalation_level=0,
            acknowledge_due_at=opened + deadline.acknowledge,
            resolve_due_at=opened + deadline.resolve,
        )
        events: list[tuple[ComplaintStatus | None, ComplaintStatus, datetime]] = [
            (None, ComplaintStatus.OPEN, opened)
        ]
        # Every history is a legal path of the state machine; most closed files are rated.
        moves = legal_paths_to(goal)
        if goal is ComplaintStatus.CLOSED and rng.random() < 0.7:
            moves.insert(moves.index(ComplaintMove.CLOSE), ComplaintMove.RATE)
        at = opened
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
                    key, "complaints", "resolution", complaint_id, resolution.text
                )
            complaint.status = to.value
            events.append((status, to, at))
        rows.setdefault(Complaint, []).append(
            {c.key: getattr(complaint, c.key) for c in Complaint.__table__.columns}
        )
        for from_status, to_status, when in events:
            rows.setdefault(ComplaintEvent, []).append(
                {
                    "id": new_id(),
                    "complaint_id": complaint_id,
                    "customer_id": cid,
                    "from_status": from_status.value if from_status else None,
                    "to_status": to_status.value,
                    "actor": "system:demo" if from_status is None else owner,
                    "at": when,
                    "note": None,
                }
            )
        report.complaints += 1
        report.complaint_states[state] = report.complaint_states.get(state, 0) + 1
