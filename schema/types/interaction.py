"""Interaction and timeline types. Values come pre-revealed from the interaction
service; a customer's interactions load through a per-request DataLoader so a page of
customers costs one statement for all their interactions."""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from schema.cost import PAGE, cost
from schema.execution import plain_leaf
from schema.paging import Connection, Cursor, Edge, check_page_size, connection, keyset_cursor
from schema.selection import selected_names
from schema.types.common import snake_names, view_field
from schema.types.node import NODE_ID_DESCRIPTION, Node, record_id
from server.customer.owned import RecordView
from server.interaction.repository import BreachKind, TimelineKind
from server.interaction.service import TimelineEntry as TimelineItem
from server.paging import Page

CURSORS = keyset_cursor("interaction-occurred")
TIMELINE_CURSORS = keyset_cursor("timeline")

BreachKindEnum = strawberry.enum(
    BreachKind,
    name="InteractionBreachKind",
    description="Which service-level deadline was missed: first response or solution.",
)
TimelineKindEnum = strawberry.enum(
    TimelineKind, name="TimelineKind", description="The kind of record a timeline entry is."
)


@strawberry.enum(description="How a contact happened (and a customer's preferred channel).")
class InteractionChannel(enum.Enum):
    PHONE = "phone"
    EMAIL = "email"
    WECHAT = "wechat"
    SMS = "sms"
    CHAT = "chat"
    VISIT = "visit"
    MEETING = "meeting"


@strawberry.enum(description="Who reached out: the customer (inbound) or we (outbound).")
class InteractionDirection(enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@strawberry.enum(description="What a contact was about.")
class InteractionKind(enum.Enum):
    CONSULTATION = "consultation"
    FOLLOW_UP = "follow_up"
    CARE = "care"
    PROMOTION = "promotion"
    SURVEY = "survey"
    VISIT = "visit"


def _enum(enum_type: type[enum.Enum], name: str) -> Any:
    @plain_leaf
    def resolve(root: strawberry.Parent[Any]) -> Any:
        return enum_type(root.get(name))

    return resolve


@strawberry.type(description="One contact with a customer as the caller may see it.")
class Interaction(Node):
    id: strawberry.ID = strawberry.field(resolver=record_id, description=NODE_ID_DESCRIPTION)

    @strawberry.field(description="The customer contacted.")
    def customer_id(self, root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(str(root.get("customer_id")))

    occurred_at: datetime.datetime = view_field("occurred_at", "When the contact happened.")
    channel: InteractionChannel = strawberry.field(
        resolver=_enum(InteractionChannel, "channel"), description="How."
    )
    direction: InteractionDirection = strawberry.field(
        resolver=_enum(InteractionDirection, "direction"), description="Who reached out."
    )
    kind: InteractionKind = strawberry.field(
        resolver=_enum(InteractionKind, "kind"), description="What it was about."
    )
    agent_id: str | None = view_field("agent_id", "The agent who handled it.")
    subject: str | None = view_field("subject", "Sensitive: clear, masked or denied.")
    notes: str | None = view_field("notes", "Sensitive: clear, masked or denied.")
    first_response_due_at: datetime.datetime | None = view_field(
        "first_response_due_at", "Inbound consultations: the first-answer deadline."
    )
    first_responded_at: datetime.datetime | None = view_field(
        "first_responded_at", "When it was first answered."
    )
    solution_due_at: datetime.datetime | None = view_field(
        "solution_due_at", "Inbound consultations: the solution deadline."
    )
    solved_at: datetime.datetime | None = view_field("solved_at", "When it was solved.")
    first_response_breached: bool = view_field(
        "first_response_breached", "Answered late, or unanswered past the deadline."
    )
    solution_breached: bool = view_field(
        "solution_breached", "Solved late, or unsolved past the deadline."
    )


@strawberry.type(description="Interactions, newest first.")
class InteractionConnection(Connection[Interaction]):
    total_count: int | None = strawberry.field(
        default=None, description="Only on root lists (breaches)."
    )

    @classmethod
    def of(
        cls,
        page: Page[RecordView],
        after: str | None,
        cursors: Cursor[tuple[datetime.datetime, uuid.UUID]] = CURSORS,
        key: str = "occurred_at",
    ) -> InteractionConnection:
        """Edges whose cursors carry the list's sort key (`key`) and the id."""
        return connection(
            cls, page, after=after, cursor=lambda view: cursors.encode((view.get(key), view.id))
        )


@strawberry.type(description="One entry of a customer's timeline (no sealed values).")
class TimelineEntry:
    kind: TimelineKindEnum = strawberry.field(description="What kind of record.")  # type: ignore[valid-type]
    record_id: strawberry.ID = strawberry.field(
        description="The record's id (a Node: refetch with node(id:))."
    )
    at: datetime.datetime = strawberry.field(description="When it happened.")
    title: str = strawberry.field(description="Channel and direction, order channel, category.")
    status: str = strawberry.field(description="Interaction kind, order or complaint status.")
    amount: Decimal | None = strawberry.field(description="Order total or compensation.")


# Named before the generic naming rule (`TimelineEntryEdge`); clients know these names.
@strawberry.type(description="One timeline entry with its cursor.")
class TimelineEdge(Edge[TimelineEntry]):
    pass


@strawberry.type(description="Interactions, orders and complaints by time, newest first.")
class TimelineConnection(Connection[TimelineEntry]):
    # The same edges under their published name (a list is invariant for mypy).
    edges: list[TimelineEdge] = strawberry.field(
        metadata=cost(size=PAGE), description="The page's entries with their cursors."
    )  # type: ignore[assignment]


async def customer_interactions(
    info: Info[Any, None], customer_id: uuid.UUID, first: int, after: str | None
) -> InteractionConnection:
    """`Customer.interactions`: batched across every customer of the response."""
    ctx = info.context
    check_page_size(first, ctx.max_page_size)
    fields = frozenset(snake_names(selected_names(info, ("edges", "node"), ("nodes",))))
    decoded = CURSORS.decode(after)
    loader_key = ("customer_interactions", first, after, fields)
    loader = ctx.loaders.get(loader_key)
    if loader is None:

        async def load(ids: list[uuid.UUID]) -> list[Page[RecordView]]:
            pages = await ctx.services.interactions.pages_for_customers(
                ctx.session, ctx.caller, ids, first=first, after=decoded, fields=fields
            )
            return [pages[i] for i in ids]

        loader = ctx.loaders[loader_key] = DataLoader(load_fn=load)
    page: Page[RecordView] = await loader.load(customer_id)
    return InteractionConnection.of(page, after)


async def customer_timeline(
    info: Info[Any, None], customer_id: uuid.UUID, first: int, after: str | None
) -> TimelineConnection:
    """`Customer.timeline`: batched across every customer of the response."""
    ctx = info.context
    check_page_size(first, ctx.max_page_size)
    decoded = TIMELINE_CURSORS.decode(after)
    loader_key = ("customer_timeline", first, after)
    loader = ctx.loaders.get(loader_key)
    if loader is None:

        async def load(ids: list[uuid.UUID]) -> list[Page[TimelineItem]]:
            pages = await ctx.services.interactions.timelines(
                ctx.session, ctx.caller, ids, first=first, after=decoded
            )
            return [pages[i] for i in ids]

        loader = ctx.loaders[loader_key] = DataLoader(load_fn=load)
    page: Page[TimelineItem] = await loader.load(customer_id)
    return connection(
        TimelineConnection,
        page,
        after=after,
        cursor=lambda e: TIMELINE_CURSORS.encode((e.at, e.record_id)),
        node=lambda e: TimelineEntry(
            kind=e.kind,
            record_id=strawberry.ID(str(e.record_id)),
            at=e.at,
            title=e.title,
            status=e.status,
            amount=e.amount,
        ),
    )
