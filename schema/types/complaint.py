"""Complaint types. Values come pre-revealed from the complaint service; the status
history loads through a per-request DataLoader (one statement per page)."""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal
from typing import Any, cast

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from schema.cost import assumed, cost
from schema.paging import Connection
from schema.selection import selected_names
from schema.types.common import view_field
from schema.types.node import NODE_ID_DESCRIPTION, Node, record_id
from server.complaint.states import ComplaintStatus

ComplaintStatusEnum = strawberry.enum(
    ComplaintStatus,
    name="ComplaintStatus",
    description="Where a complaint stands: registered, acknowledged, investigated, "
    "resolved, followed up, closed (or escalated, reopened).",
)


@strawberry.enum(description="Root-cause and complaint categories.")
class ComplaintCategory(enum.Enum):
    PRODUCT_QUALITY = "product_quality"
    SERVICE_ATTITUDE = "service_attitude"
    COMMUNICATION = "communication"
    DELIVERY = "delivery"
    BILLING = "billing"
    OTHER = "other"


@strawberry.type(description="One move of a complaint: who, when, from which state to which.")
class ComplaintEvent:
    @strawberry.field(description="The state before; null for the opening.")
    def from_status(self, root: strawberry.Parent[Any]) -> ComplaintStatusEnum | None:  # type: ignore[valid-type]
        value = root.get("from_status")
        return ComplaintStatus(value) if value else None

    @strawberry.field(description="The state after.")
    def to_status(self, root: strawberry.Parent[Any]) -> ComplaintStatusEnum:  # type: ignore[valid-type]
        return ComplaintStatus(root.get("to_status"))

    actor: str = view_field("actor", "Who moved it.")
    at: datetime.datetime = view_field("at", "When.")
    note: str | None = view_field(
        "note",
        "The note written with the move. Sensitive: sealed with the customer's key; "
        "clear, masked or denied by complaint_event.note.",
    )


def _status(root: strawberry.Parent[Any]) -> ComplaintStatus:
    return ComplaintStatus(root.get("status"))


def _category(root: strawberry.Parent[Any]) -> ComplaintCategory:
    return ComplaintCategory(root.get("category"))


def _root_cause(root: strawberry.Parent[Any]) -> ComplaintCategory | None:
    value = root.get("root_cause")
    return ComplaintCategory(value) if value is not None else None


@strawberry.type(description="A complaint as the caller may see it.")
class Complaint(Node):
    id: strawberry.ID = strawberry.field(resolver=record_id, description=NODE_ID_DESCRIPTION)

    @strawberry.field(description="The customer complaining.")
    def customer_id(self, root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(str(root.get("customer_id")))

    status: ComplaintStatusEnum = strawberry.field(  # type: ignore[valid-type]
        resolver=_status, description="Where the complaint stands in its workflow."
    )
    opened_at: datetime.datetime = view_field("opened_at", "When it was registered.")
    category: ComplaintCategory = strawberry.field(
        resolver=_category, description="What it is about."
    )
    severity: str = view_field(
        "severity",
        "One of the configured severities (CUSTOS_COMPLAINT_DEADLINES); sets the deadlines.",
    )
    assignee_id: str | None = view_field("assignee_id", "Who handles it.")
    description: str | None = view_field("description", "Sensitive: clear, masked or denied.")
    resolution: str | None = view_field("resolution", "Sensitive: clear, masked or denied.")
    root_cause: ComplaintCategory | None = strawberry.field(
        resolver=_root_cause, description="The cause found on resolution."
    )
    compensation: Decimal | None = view_field("compensation", "Exact decimal amount.")
    escalation_level: int = view_field("escalation_level", "How many times it was escalated.")
    acknowledge_due_at: datetime.datetime | None = view_field(
        "acknowledge_due_at", "Deadline to acknowledge."
    )
    acknowledged_at: datetime.datetime | None = view_field(
        "acknowledged_at", "When it was acknowledged."
    )
    resolve_due_at: datetime.datetime | None = view_field("resolve_due_at", "Deadline to resolve.")
    resolved_at: datetime.datetime | None = view_field("resolved_at", "When it was resolved.")
    follow_up_due_at: datetime.datetime | None = view_field(
        "follow_up_due_at", "Deadline to follow up after resolution."
    )
    followed_up_at: datetime.datetime | None = view_field(
        "followed_up_at", "When it was followed up."
    )
    rating: int | None = view_field("rating", "The customer's rating of the resolution, 1 to 5.")
    closed_at: datetime.datetime | None = view_field("closed_at", "When it was closed.")
    overdue: bool = view_field("overdue", "Past a deadline that still applies, now.")

    @strawberry.field(
        metadata=cost(size=assumed(10)),
        description="Every move of the state machine, oldest first.",
    )
    async def events(
        self, root: strawberry.Parent[Any], info: Info[Any, None]
    ) -> list[ComplaintEvent]:
        ctx = info.context
        # Notes are revealed (and audited) only where the query asks for them.
        with_note = "note" in selected_names(info)
        name = "complaint_events_notes" if with_note else "complaint_events"
        loader = ctx.loaders.get(name)
        if loader is None:

            async def load(ids: list[uuid.UUID]) -> list[list[ComplaintEvent]]:
                history = await ctx.services.complaints.events(
                    ctx.session, ctx.caller, ids, with_note=with_note
                )
                return [cast(list[ComplaintEvent], history[i]) for i in ids]

            loader = ctx.loaders[name] = DataLoader(load_fn=load)
        result: list[ComplaintEvent] = await loader.load(root.id)
        return result


@strawberry.type(description="Complaints under the caller's row scope, newest first.")
class ComplaintConnection(Connection[Complaint]):
    total_count: int | None = strawberry.field(description="Complaints matching the filter.")


@strawberry.input(description="Filters on the complaint list; all given ones must match.")
class ComplaintFilterInput:
    status: ComplaintStatusEnum | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only complaints in this state."
    )
    category: ComplaintCategory | None = strawberry.field(
        default=None, description="Only this category."
    )
    assignee: str | None = strawberry.field(default=None, description="Assignee's subject.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this customer's complaints."
    )
    overdue: bool | None = strawberry.field(
        default=None, description="true: past a deadline now; false: within every deadline."
    )


@strawberry.input(description="A complaint to register.")
class OpenComplaintInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer complaining.")
    category: ComplaintCategory = strawberry.field(description="What it is about.")
    severity: str = strawberry.field(description="A severity with configured deadlines.")
    description: str = strawberry.field(description="What happened (sealed: sensitive).")
    order_id: strawberry.ID | None = strawberry.field(
        default=None, description="The order concerned, if any."
    )
    assignee_id: str | None = strawberry.field(
        default=None, description="Who handles it; default the caller."
    )


@strawberry.input(description="How a complaint was resolved.")
class ResolveComplaintInput:
    resolution: str = strawberry.field(description="What was done (sealed: sensitive).")
    root_cause: ComplaintCategory = strawberry.field(description="The cause found.")
    compensation: Decimal | None = strawberry.field(
        default=None, description="Compensation given, an exact amount."
    )
    note: str | None = strawberry.field(default=None, description="A note on the move.")


@strawberry.type(description="A complaint was opened or moved.")
class ComplaintPayload:
    complaint: Complaint = strawberry.field(description="The complaint as the caller may see it.")


@strawberry.type(description="Complaints of one category with one root cause.")
class ComplaintBreakdownCell:
    category: ComplaintCategory = strawberry.field(description="What the complaint was about.")
    root_cause: ComplaintCategory | None = strawberry.field(
        description="The cause found on resolution; null while unresolved."
    )
    count: int = strawberry.field(description="Complaints in the cell.")


@strawberry.type(description="Complaints counted by one category (or cause).")
class ComplaintCount:
    key: ComplaintCategory | None = strawberry.field(
        description="The category or root cause; null counts the unresolved (by cause)."
    )
    count: int = strawberry.field(description="Complaints with it.")


@strawberry.type(description="Complaints opened in a period, counted by category and cause.")
class ComplaintBreakdown:
    total: int = strawberry.field(description="Complaints opened in the period.")
    by_category: list[ComplaintCount] = strawberry.field(
        metadata=cost(size=assumed(7)), description="Counts by category, largest first."
    )
    by_root_cause: list[ComplaintCount] = strawberry.field(
        metadata=cost(size=assumed(7)), description="Counts by root cause, largest first."
    )
    cells: list[ComplaintBreakdownCell] = strawberry.field(
        metadata=cost(size=assumed(42)), description="Counts by category and root cause."
    )
