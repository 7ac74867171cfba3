"""Complaint types. Values come pre-revealed from the complaint service; the status
history loads through a per-request DataLoader (one statement per page)."""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from schema.cost import assumed, cost
from schema.paging import Connection
from schema.types.common import view_field
from server.complaint.states import ComplaintStatus

ComplaintStatusEnum = strawberry.enum(ComplaintStatus, name="ComplaintStatus")


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
    from_status: ComplaintStatusEnum | None  # type: ignore[valid-type]
    to_status: ComplaintStatusEnum  # type: ignore[valid-type]
    actor: str
    at: datetime.datetime


def _status(root: strawberry.Parent[Any]) -> ComplaintStatus:
    return ComplaintStatus(root.get("status"))


def _category(root: strawberry.Parent[Any]) -> ComplaintCategory:
    return ComplaintCategory(root.get("category"))


def _root_cause(root: strawberry.Parent[Any]) -> ComplaintCategory | None:
    value = root.get("root_cause")
    return ComplaintCategory(value) if value is not None else None


@strawberry.type(description="A complaint as the caller may see it.")
class Complaint:
    @strawberry.field
    def id(self, root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(str(root.id))

    @strawberry.field
    def customer_id(self, root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(str(root.get("customer_id")))

    status: ComplaintStatusEnum = strawberry.field(resolver=_status)  # type: ignore[valid-type]
    opened_at: datetime.datetime = view_field("opened_at")
    category: ComplaintCategory = strawberry.field(resolver=_category)
    severity: str = view_field("severity")
    assignee_id: str | None = view_field("assignee_id")
    description: str | None = view_field("description", "Sensitive: clear, masked or denied.")
    resolution: str | None = view_field("resolution", "Sensitive: clear, masked or denied.")
    root_cause: ComplaintCategory | None = strawberry.field(resolver=_root_cause)
    compensation: Decimal | None = view_field("compensation", "Exact decimal amount.")
    escalation_level: int = view_field("escalation_level")
    acknowledge_due_at: datetime.datetime | None = view_field("acknowledge_due_at")
    acknowledged_at: datetime.datetime | None = view_field("acknowledged_at")
    resolve_due_at: datetime.datetime | None = view_field("resolve_due_at")
    resolved_at: datetime.datetime | None = view_field("resolved_at")
    follow_up_due_at: datetime.datetime | None = view_field("follow_up_due_at")
    followed_up_at: datetime.datetime | None = view_field("followed_up_at")
    rating: int | None = view_field("rating")
    closed_at: datetime.datetime | None = view_field("closed_at")
    overdue: bool = view_field("overdue", "Past a deadline that still applies, now.")

    @strawberry.field(
        metadata=cost(size=assumed(10)),
        description="Every move of the state machine, oldest first.",
    )
    async def events(
        self, root: strawberry.Parent[Any], info: Info[Any, None]
    ) -> list[ComplaintEvent]:
        ctx = info.context
        loader = ctx.loaders.get("complaint_events")
        if loader is None:

            async def load(ids: list[uuid.UUID]) -> list[list[ComplaintEvent]]:
                history = await ctx.services.complaints.events(ctx.session, ctx.caller, ids)
                return [
                    [
                        ComplaintEvent(
                            from_status=ComplaintStatus(e.from_status) if e.from_status else None,
                            to_status=ComplaintStatus(e.to_status),
                            actor=e.actor,
                            at=e.at,
                        )
                        for e in history[i]
                    ]
                    for i in ids
                ]

            loader = ctx.loaders["complaint_events"] = DataLoader(load_fn=load)
        result: list[ComplaintEvent] = await loader.load(root.id)
        return result


@strawberry.type(description="Complaints under the caller's row scope, newest first.")
class ComplaintConnection(Connection[Complaint]):
    total_count: int | None = strawberry.field(description="Complaints matching the filter.")


@strawberry.input
class ComplaintFilterInput:
    status: ComplaintStatusEnum | None = None  # type: ignore[valid-type]
    category: ComplaintCategory | None = None
    assignee: str | None = strawberry.field(default=None, description="Assignee's subject.")
    customer_id: strawberry.ID | None = None
    overdue: bool | None = strawberry.field(
        default=None, description="true: past a deadline now; false: within every deadline."
    )


@strawberry.input
class OpenComplaintInput:
    customer_id: strawberry.ID
    category: ComplaintCategory
    severity: str = strawberry.field(description="A severity with configured deadlines.")
    description: str
    order_id: strawberry.ID | None = None
    assignee_id: str | None = None


@strawberry.input
class ResolveComplaintInput:
    resolution: str
    root_cause: ComplaintCategory
    compensation: Decimal | None = None
    note: str | None = None


@strawberry.type
class ComplaintPayload:
    complaint: Complaint


@strawberry.type
class ComplaintBreakdownCell:
    category: str
    root_cause: str | None
    count: int


@strawberry.type
class ComplaintCount:
    key: str | None
    count: int


@strawberry.type(description="Complaints opened in a period, counted by category and cause.")
class ComplaintBreakdown:
    total: int
    by_category: list[ComplaintCount] = strawberry.field(metadata=cost(size=assumed(7)))
    by_root_cause: list[ComplaintCount] = strawberry.field(metadata=cost(size=assumed(7)))
    cells: list[ComplaintBreakdownCell] = strawberry.field(metadata=cost(size=assumed(42)))
