"""Complaint root fields: the list with filters, one complaint, the breakdown, and one
mutation per move of the state machine. Expected failures are `UserError` results."""

from __future__ import annotations

import datetime
import uuid
from collections import Counter
from typing import Annotated, Any, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import paged
from schema.mutations import run_mutation
from schema.paging import check_page_size, connection, keyset_cursor
from schema.selection import selected_names, top_level_names
from schema.types.common import UserError, parse_id, snake_names
from schema.types.complaint import (
    Complaint,
    ComplaintBreakdown,
    ComplaintBreakdownCell,
    ComplaintCategory,
    ComplaintConnection,
    ComplaintCount,
    ComplaintFilterInput,
    ComplaintPayload,
    OpenComplaintInput,
    ResolveComplaintInput,
)
from schema.types.enums import enum_of
from server.complaint.repository import ComplaintFilter
from server.complaint.service import NewComplaint, Resolution
from server.complaint.states import ComplaintMove

Ctx = Info[GraphQLContext, None]
CURSORS = keyset_cursor("complaint-opened")

ComplaintResult = Annotated[ComplaintPayload | UserError, strawberry.union("ComplaintResult")]


def _filter(value: ComplaintFilterInput | None) -> ComplaintFilter | None:
    if value is None:
        return None
    return ComplaintFilter(
        status=value.status.value if value.status is not None else None,
        category=value.category.value if value.category is not None else None,
        assignee_id=value.assignee,
        customer_id=parse_id(value.customer_id, "customerId") if value.customer_id else None,
        overdue=value.overdue,
    )


def _node_fields(info: Ctx, *paths: tuple[str, ...]) -> set[str]:
    return snake_names(selected_names(info, *paths))


async def _payload(info: Ctx, complaint_id: uuid.UUID) -> ComplaintPayload:
    ctx = info.context
    view = await ctx.services.complaints.get(
        ctx.session, ctx.caller, complaint_id, _node_fields(info, ("complaint",))
    )
    return ComplaintPayload(complaint=cast(Complaint, view))


async def _move(
    info: Ctx, id: strawberry.ID, move: ComplaintMove, **details: Any
) -> ComplaintPayload | UserError:
    ctx = info.context

    async def change() -> uuid.UUID:
        complaint_id = parse_id(id)
        await ctx.services.complaints.move(ctx.session, ctx.caller, complaint_id, move, **details)
        return complaint_id

    moved = await run_mutation(ctx, change)
    if isinstance(moved, UserError):
        return moved
    return await _payload(info, moved)


async def complaint_by_id(info: Ctx, complaint_id: uuid.UUID, selected: set[str]) -> Complaint:
    """One complaint with the fields `selected` (by `complaint` and `node`)."""
    ctx = info.context
    view = await ctx.services.complaints.get(
        ctx.session, ctx.caller, complaint_id, snake_names(selected)
    )
    return cast(Complaint, view)


@strawberry.type
class ComplaintQuery:
    @strawberry.field(
        metadata=paged(), description="Complaints whose customer the caller can see, newest first."
    )
    async def complaints(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: ComplaintFilterInput | None = None,
    ) -> ComplaintConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.complaints.page(
            ctx.session,
            ctx.caller,
            flt=_filter(filter),
            first=first,
            after=CURSORS.decode(after),
            fields=_node_fields(info, ("edges", "node"), ("nodes",)),
            with_total="totalCount" in top_level_names(info),
        )
        return connection(
            ComplaintConnection,
            page,
            after=after,
            cursor=lambda view: CURSORS.encode((view.get("opened_at"), view.id)),
        )

    @strawberry.field(description="One complaint; unknown and out-of-scope ids are NOT_FOUND.")
    async def complaint(self, info: Ctx, id: strawberry.ID) -> Complaint | None:
        return await complaint_by_id(info, parse_id(id), top_level_names(info))

    @strawberry.field(
        description="Complaints opened in [from, to) counted by category and root cause."
    )
    async def complaint_breakdown(
        self,
        info: Ctx,
        from_: Annotated[datetime.datetime, strawberry.argument(name="from")],
        to: datetime.datetime,
    ) -> ComplaintBreakdown:
        ctx = info.context
        cells = await ctx.services.complaints.breakdown(
            ctx.session, ctx.caller, opened_from=from_, opened_to=to
        )
        by_category: Counter[str | None] = Counter()
        by_cause: Counter[str | None] = Counter()
        for cell in cells:
            by_category[cell.category] += cell.count
            by_cause[cell.root_cause] += cell.count
        return ComplaintBreakdown(
            total=sum(c.count for c in cells),
            by_category=[
                ComplaintCount(key=enum_of(ComplaintCategory, k), count=n)
                for k, n in by_category.most_common()
            ],
            by_root_cause=[
                ComplaintCount(key=enum_of(ComplaintCategory, k), count=n)
                for k, n in by_cause.most_common()
            ],
            cells=[
                ComplaintBreakdownCell(
                    category=ComplaintCategory(c.category),
                    root_cause=enum_of(ComplaintCategory, c.root_cause),
                    count=c.count,
                )
                for c in cells
            ],
        )


@strawberry.type
class ComplaintMutation:
    @strawberry.mutation(description="Register a complaint; deadlines follow its severity.")
    async def open_complaint(self, info: Ctx, input: OpenComplaintInput) -> ComplaintResult:
        ctx = info.context

        async def open_complaint() -> uuid.UUID:
            data = NewComplaint(
                customer_id=parse_id(input.customer_id, "customerId"),
                category=input.category.value,
                severity=input.severity,
                description=input.description,
                order_id=parse_id(input.order_id, "orderId") if input.order_id else None,
                assignee_id=input.assignee_id,
            )
            return await ctx.services.complaints.open(ctx.session, ctx.caller, data)

        opened = await run_mutation(ctx, open_complaint)
        if isinstance(opened, UserError):
            return opened
        return await _payload(info, opened)

    @strawberry.mutation(
        description="Acknowledge a complaint to the customer (stops the acknowledge clock)."
    )
    async def acknowledge_complaint(
        self, info: Ctx, id: strawberry.ID, note: str | None = None
    ) -> ComplaintResult:
        return await _move(info, id, ComplaintMove.ACKNOWLEDGE, note=note)

    @strawberry.mutation(description="Start investigating an acknowledged complaint.")
    async def start_complaint_work(
        self, info: Ctx, id: strawberry.ID, note: str | None = None
    ) -> ComplaintResult:
        return await _move(info, id, ComplaintMove.START_WORK, note=note)

    @strawberry.mutation(description="Record the resolution (sealed), root cause, compensation.")
    async def resolve_complaint(
        self, info: Ctx, id: strawberry.ID, input: ResolveComplaintInput
    ) -> ComplaintResult:
        resolution = Resolution(
            text=input.resolution.strip(),
            root_cause=input.root_cause.value,
            compensation=input.compensation,
        )
        return await _move(info, id, ComplaintMove.RESOLVE, resolution=resolution, note=input.note)

    @strawberry.mutation(description="Record the follow-up with the customer after resolution.")
    async def follow_up_complaint(
        self, info: Ctx, id: strawberry.ID, note: str | None = None
    ) -> ComplaintResult:
        return await _move(info, id, ComplaintMove.FOLLOW_UP, note=note)

    @strawberry.mutation(description="The customer's rating of the handling, 1 to 5.")
    async def rate_complaint(self, info: Ctx, id: strawberry.ID, rating: int) -> ComplaintResult:
        return await _move(info, id, ComplaintMove.RATE, rating=rating)

    @strawberry.mutation(description="Close a followed-up complaint.")
    async def close_complaint(
        self, info: Ctx, id: strawberry.ID, note: str | None = None
    ) -> ComplaintResult:
        return await _move(info, id, ComplaintMove.CLOSE, note=note)

    @strawberry.mutation(
        description="Reopen a resolved or closed complaint; its deadlines run again."
    )
    async def reopen_complaint(
        self, info: Ctx, id: strawberry.ID, note: str | None = None
    ) -> ComplaintResult:
        return await _move(info, id, ComplaintMove.REOPEN, note=note)

    @strawberry.mutation(description="Raise the escalation level, optionally to a new assignee.")
    async def escalate_complaint(
        self,
        info: Ctx,
        id: strawberry.ID,
        assignee_id: str | None = None,
        note: str | None = None,
    ) -> ComplaintResult:
        return await _move(info, id, ComplaintMove.ESCALATE, assignee_id=assignee_id, note=note)
