"""Products and orders: totals computed here in exact decimals, status moves by a state
machine with a tracking timeline, loyalty points earned when an order is paid."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.caller import Caller
from server.customer.owned import refused_record
from server.customer.repository import CustomerRepository, scope_predicate
from server.data.base import new_id
from server.data.models import Order, OrderItem, OrderStatusEvent, Product
from server.errors import ConflictError, NotFoundError, ValidationError
from server.loyalty.service import LoyaltyService
from server.order.repository import OrderFilter, OrderRepository, ProductRepository
from server.paging import Page, items_of, page_of, pages_of, refill

CENT = Decimal("0.01")
MAX_MONEY = Decimal("999999999999.99")
# created → paid → shipped → delivered; cancelled before shipping; returned after delivery.
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset({"returned"}),
    "cancelled": frozenset(),
    "returned": frozenset(),
}
STATUSES = tuple(TRANSITIONS)
# What `updateProduct` may change (the SKU is the product's key: never changed).
PRODUCT_CHANGES = frozenset({"name", "category", "unit_price", "unit_cost", "is_new", "active"})
# Statuses whose delivery promise may still change: once delivered, cancelled or returned,
# the promise is what on-time delivery was measured against.
PROMISE_OPEN = ("created", "paid", "shipped")
# How far ahead delivery may be promised.
MAX_PROMISE_AHEAD = timedelta(days=366)
ORDER_READ_FIELDS = {"status": "clear", "total": "clear", "cost_total": "clear"}


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def money(value: Decimal | str | int, what: str, field: str | None = None) -> Decimal:
    """An exact, non-negative amount with at most two decimals; floats never get here.
    `field` names the input field (ValidationError.field)."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValidationError(
            f"{what} is not a decimal amount", code="INVALID_AMOUNT", field=field
        ) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_MONEY:
        raise ValidationError(
            f"{what} must be between 0 and {MAX_MONEY}", code="INVALID_AMOUNT", field=field
        )
    if amount != amount.quantize(CENT):
        raise ValidationError(
            f"{what} has more than two decimals", code="INVALID_AMOUNT", field=field
        )
    return amount.quantize(CENT)


@dataclass(frozen=True, slots=True)
class NewProduct:
    sku: str
    name: str
    category: str
    unit_price: Decimal
    unit_cost: Decimal
    is_new: bool = False


@dataclass(frozen=True, slots=True)
class NewOrderItem:
    product_id: uuid.UUID
    quantity: int
    unit_price: Decimal | None = None


@dataclass(slots=True)
class OrderView:
    order: Order
    items: list[OrderItem] = field(default_factory=list)
    timeline: list[OrderStatusEvent] = field(default_factory=list)


class OrderService:
    def __init__(self, now: Callable[[], datetime], loyalty: LoyaltyService) -> None:
        self.now = now
        self.loyalty = loyalty

    # Products -------------------------------------------------------------------------

    async def products(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        first: int,
        after: uuid.UUID | None,
        category: str | None,
    ) -> Page[Product]:
        caller.gate.require("product", "read")
        rows = await ProductRepository(session).page(after=after, limit=first, category=category)
        return page_of(rows, first)

    async def create_product(
        self, session: AsyncSession, caller: Caller, data: NewProduct
    ) -> Product:
        caller.gate.require("product", "manage")
        sku, name, category = data.sku.strip(), data.name.strip(), data.category.strip()
        if not sku or not name or not category:
            raise ValidationError("sku, name and category must not be empty")
        if len(sku) > 64 or len(name) > 200 or len(category) > 64:
            raise ValidationError("sku, name or category is too long")
        repo = ProductRepository(session)
        if await repo.sku_exists(sku):
            raise ConflictError("a product with this sku exists", code="DUPLICATE_SKU")
        product = Product(
            id=new_id(),
            sku=sku,
            name=name,
            category=category,
            unit_price=money(data.unit_price, "unitPrice", "unit_price"),
            unit_cost=money(data.unit_cost, "unitCost", "unit_cost"),
            is_new=data.is_new,
            launched_at=self.now() if data.is_new else None,
        )
        await repo.add(product)
        caller.audit.change("product", "create", product.id, ["sku", "unit_price", "unit_cost"])
        return product

    async def update_product(
        self,
        session: AsyncSession,
        caller: Caller,
        product_id: uuid.UUID,
        changes: Mapping[str, Any],
    ) -> Product:
        """Change a product's name, category, prices, new flag or whether it is sold
        (`active`); past orders keep the prices they were made at."""
        caller.gate.require("product", "manage")
        unknown = set(changes) - PRODUCT_CHANGES
        if unknown:
            raise ValidationError(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
        if not changes:
            raise ValidationError("nothing to change")
        repo = ProductRepository(session)
        product = (await repo.by_ids([product_id])).get(product_id)
        if product is None:
            raise NotFoundError("product not found")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("name", "category"):
                text = str(value or "").strip()
                limit = 200 if name == "name" else 64
                if not 1 <= len(text) <= limit:
                    raise ValidationError(f"{name} is 1 to {limit} characters", field=name)
                values[name] = text
            elif name in ("unit_price", "unit_cost"):
                if value is None:
                    raise ValidationError(f"{name} must not be empty", field=name)
                values[name] = money(value, to_camel(name), name)
            elif value is None:
                raise ValidationError(f"{name} must not be empty", field=name)
            else:
                values[name] = bool(value)
        if values.get("is_new") and not product.is_new and product.launched_at is None:
            values["launched_at"] = self.now()
        for name, value in values.items():
            setattr(product, name, value)
        await repo.flush()
        caller.audit.change("product", "update", product.id, sorted(values))
        return product

    # Orders ---------------------------------------------------------------------------

    async def create_order(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        items: Sequence[NewOrderItem],
        *,
        channel: str | None = None,
        promised_at: datetime | None = None,
    ) -> uuid.UUID:
        scope = scope_predicate(caller.gate.row_scope("order", "create"), caller.principal)
        if channel is not None and not 1 <= len(channel) <= 16:
            raise ValidationError("channel is 1 to 16 characters", field="channel")
        if promised_at is not None:
            self._check_promise(promised_at, self.now())
        if not items:
            raise ValidationError("an order needs at least one item", field="items")
        repo = OrderRepository(session)
        if not await CustomerRepository(session).visible(customer_id, scope):
            raise caller.gate.not_found("order", "create", customer_id, what="customer")
        products = await ProductRepository(session).by_ids({i.product_id for i in items})
        order_id = new_id()
        total = cost_total = Decimal("0.00")
        rows: list[OrderItem] = []
        # Ids in ascending order keep the items in the order they were given (ids made
        # within one millisecond are otherwise random relative to each other).
        item_ids = sorted(new_id() for _ in items)
        for index, item in enumerate(items):
            product = products.get(item.product_id)
            if product is None:
                raise NotFoundError(f"product of item {index + 1} not found")
            if not product.active:
                raise ValidationError(
                    f"product of item {index + 1} is no longer sold",
                    code="PRODUCT_INACTIVE",
                    field=f"items.{index}.product_id",
                )
            if not 1 <= item.quantity <= 100_000:
                raise ValidationError(
                    f"quantity of item {index + 1} must be 1 to 100000",
                    field=f"items.{index}.quantity",
                )
            unit_price = (
                money(
                    item.unit_price, f"unitPrice of item {index + 1}", f"items.{index}.unit_price"
                )
                if item.unit_price is not None
                else product.unit_price
            )
            line_total = unit_price * item.quantity
            total += line_total
            cost_total += product.unit_cost * item.quantity
            rows.append(
                OrderItem(
                    id=item_ids[index],
                    order_id=order_id,
                    customer_id=customer_id,
                    product_id=product.id,
                    quantity=item.quantity,
                    unit_price=unit_price,
                    unit_cost=product.unit_cost,
                    line_total=line_total,
                )
            )
        if total > MAX_MONEY:
            raise ValidationError("order total is too large", code="INVALID_AMOUNT")
        now = self.now()
        order = Order(
            id=order_id,
            customer_id=customer_id,
            ordered_at=now,
            status="created",
            channel=channel,
            currency="CNY",
            total=total,
            cost_total=cost_total,
            promised_at=promised_at,
        )
        event = OrderStatusEvent(
            id=new_id(),
            order_id=order_id,
            customer_id=customer_id,
            status="created",
            at=now,
            actor=caller.principal.subject,
        )
        await repo.add(order, rows, event)
        changed = ["status", "total", "items"] + (["promised_at"] if promised_at else [])
        caller.audit.change("order", "create", order_id, changed)
        return order_id

    def _check_promise(self, promised_at: datetime, ordered_at: datetime) -> None:
        if promised_at.tzinfo is None:
            raise ValidationError("promisedAt must carry a timezone", field="promised_at")
        if promised_at < ordered_at:
            raise ValidationError(
                "promisedAt must not be before the order was placed", field="promised_at"
            )
        if promised_at > ordered_at + MAX_PROMISE_AHEAD:
            raise ValidationError(
                "promisedAt is more than a year after the order", field="promised_at"
            )

    async def set_promise(
        self,
        session: AsyncSession,
        caller: Caller,
        order_id: uuid.UUID,
        promised_at: datetime | None,
    ) -> uuid.UUID:
        """Set (or, with None, withdraw) when delivery is promised, while the order is
        not yet delivered, cancelled or returned."""
        scope = scope_predicate(caller.gate.row_scope("order", "update"), caller.principal)
        repo = OrderRepository(session)
        order = await repo.get(order_id, scope)
        if order is None:
            raise await refused_record(session, caller, "order", "update", Order, order_id)
        if promised_at is not None:
            self._check_promise(promised_at, order.ordered_at)
        if not await repo.set_promise(order_id, promised_at, PROMISE_OPEN):
            raise ConflictError(
                f"the delivery promise of a {order.status} order cannot change",
                code="PROMISE_CLOSED",
            )
        caller.audit.change("order", "update", order_id, ["promised_at"])
        return order_id

    async def update_status(
        self,
        session: AsyncSession,
        caller: Caller,
        order_id: uuid.UUID,
        status: str,
        tracking_note: str | None = None,
    ) -> uuid.UUID:
        scope = scope_predicate(caller.gate.row_scope("order", "update"), caller.principal)
        if status not in TRANSITIONS:
            raise ValidationError(f"status must be one of {', '.join(STATUSES)}", field="status")
        if tracking_note is not None and len(tracking_note) > 200:
            raise ValidationError("trackingNote is at most 200 characters", field="tracking_note")
        repo = OrderRepository(session)
        order = await repo.get(order_id, scope)
        if order is None:
            raise await refused_record(session, caller, "order", "update", Order, order_id)
        current = order.status
        if status not in TRANSITIONS[current]:
            raise ConflictError(
                f"an order cannot move from {current} to {status}", code="ILLEGAL_TRANSITION"
            )
        if not await repo.move_status(order_id, current, status):
            raise ConflictError("the order changed meanwhile; reload it", code="STALE_ORDER")
        await repo.add_event(
            OrderStatusEvent(
                id=new_id(),
                order_id=order_id,
                customer_id=order.customer_id,
                status=status,
                at=self.now(),
                actor=caller.principal.subject,
                tracking_note=tracking_note,
            )
        )
        actor = caller.principal.subject
        if status == "paid":
            await self.loyalty.earn_for_order(session, order, actor)
        elif status == "returned" or (status == "cancelled" and current == "paid"):
            await self.loyalty.reverse_for_order(session, order, actor)
        caller.audit.change("order", "update", order_id, ["status"])
        return order_id

    async def get(
        self,
        session: AsyncSession,
        caller: Caller,
        order_id: uuid.UUID,
        *,
        with_items: bool = True,
        with_timeline: bool = True,
    ) -> OrderView:
        scope = scope_predicate(caller.gate.row_scope("order", "read"), caller.principal)
        order = await OrderRepository(session).get(order_id, scope)
        if order is None:
            raise await refused_record(session, caller, "order", "read", Order, order_id)
        views = await self._views(session, caller, [order], with_items, with_timeline)
        return views[0]

    async def page(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        flt: OrderFilter,
        first: int,
        after: uuid.UUID | None,
        with_items: bool,
        with_timeline: bool,
        with_total: bool = False,
    ) -> Page[OrderView]:
        scope = scope_predicate(caller.gate.row_scope("order", "read"), caller.principal)
        repo = OrderRepository(session)
        rows = await repo.page(scope=scope, flt=flt, after=after, limit=first)
        total = await repo.count(scope=scope, flt=flt) if with_total else None
        page = page_of(rows, first, total)
        return page.with_items(
            await self._views(session, caller, page.items, with_items, with_timeline)
        )

    async def pages_for_customers(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_ids: Collection[uuid.UUID],
        *,
        first: int,
        after: uuid.UUID | None,
        with_items: bool,
        with_timeline: bool,
        with_total: bool,
    ) -> dict[uuid.UUID, Page[OrderView]]:
        """Each customer's first orders for a whole page of customers: a constant number
        of statements however many customers there are."""
        scope = scope_predicate(caller.gate.row_scope("order", "read"), caller.principal)
        repo = OrderRepository(session)
        rows = await repo.pages_for_customers(customer_ids, scope=scope, after=after, limit=first)
        totals = await repo.counts_for_customers(customer_ids, scope=scope) if with_total else None
        pages = pages_of(
            customer_ids, rows, key=lambda order: order.customer_id, first=first, totals=totals
        )
        views = await self._views(session, caller, items_of(pages), with_items, with_timeline)
        return refill(pages, views)

    async def _views(
        self,
        session: AsyncSession,
        caller: Caller,
        orders: Sequence[Order],
        with_items: bool,
        with_timeline: bool,
    ) -> list[OrderView]:
        """Items and timelines of a whole page in two queries, only when selected."""
        views = {o.id: OrderView(o) for o in orders}
        repo = OrderRepository(session)
        if with_items:
            for item in await repo.items_for(views):
                views[item.order_id].items.append(item)
        if with_timeline:
            for event in await repo.events_for(views):
                views[event.order_id].timeline.append(event)
        caller.audit.read("order", views, ORDER_READ_FIELDS)
        return list(views.values())
