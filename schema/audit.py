"""Audit root fields: the compliance search over the trail, readable with `audit`/`read`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import paged
from schema.paging import check_page_size, connection, seq_cursor
from schema.selection import selected_names, top_level_names
from schema.types.audit import (
    AuditEvent,
    AuditEventConnection,
    AuditEventFilter,
    AuditProof,
    domain_field_name,
)
from schema.types.common import parse_id
from schema.types.enums import domain_value
from server.audit.repository import AuditFilter
from server.errors import ValidationError

Ctx = Info[GraphQLContext, None]
CURSORS = seq_cursor("audit-event")


# A century: the window's start stays a day every database (and Python) can hold.
MAX_WITHIN_DAYS = 36_500


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _filter(value: AuditEventFilter | None, now: datetime) -> AuditFilter:
    if value is None:
        return AuditFilter()
    since = _aware(value.since)
    if value.within_days is not None:
        if not 1 <= value.within_days <= MAX_WITHIN_DAYS:
            raise ValidationError(
                f"withinDays must be between 1 and {MAX_WITHIN_DAYS}", field="within_days"
            )
        window = now - timedelta(days=value.within_days)
        since = max(since, window) if since is not None else window
    object_type = value.object_type
    record_id = None
    if value.customer_id is not None:
        # Any access naming the customer: its own file, and what was done or attempted
        # through its records (an interaction logged for it, a refused order of its).
        record_id = parse_id(value.customer_id, "customerId")
    if value.record_id is not None:
        if record_id is not None:
            raise ValidationError("give customerId or recordId, not both")
        record_id = parse_id(value.record_id, "recordId")
    return AuditFilter(
        subject=value.subject,
        role=value.role,
        purpose=domain_value(value.purpose),
        outcome=domain_value(value.outcome),
        operation_type=domain_value(value.operation_type),
        since=since,
        until=_aware(value.until),
        record_id=record_id,
        object_type=object_type,
        field=domain_field_name(value.field) if value.field else None,
    )


async def audit_event_by_id(
    info: Ctx, event_id: uuid.UUID, selected: set[str], selected_accesses: set[str]
) -> AuditEvent:
    """One audit event with what `selected` (and below `accesses`) needs (by
    `auditEvent` and `node`)."""
    ctx = info.context
    view = await ctx.services.audit.event(
        ctx.session,
        ctx.caller,
        event_id,
        with_accesses="accesses" in selected,
        with_record_ids="recordIds" in selected_accesses,
    )
    return AuditEvent.from_view(view)


@strawberry.type
class AuditQuery:
    @strawberry.field(
        metadata=paged(), description="Audit events matching the filter, newest first."
    )
    async def audit_events(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: AuditEventFilter | None = None,
    ) -> AuditEventConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        node_fields = selected_names(info, ("edges", "node"), ("nodes",))
        access_fields = selected_names(info, ("edges", "node", "accesses"), ("nodes", "accesses"))
        page = await ctx.services.audit.events(
            ctx.session,
            ctx.caller,
            flt=_filter(filter, ctx.services.clock.now()),
            first=first,
            before_seq=CURSORS.decode(after),
            with_total="totalCount" in top_level_names(info),
            with_accesses="accesses" in node_fields,
            with_record_ids="recordIds" in access_fields,
        )
        return connection(
            AuditEventConnection,
            page,
            after=after,
            cursor=lambda view: CURSORS.encode(view.event.seq),
            node=AuditEvent.from_view,
        )

    @strawberry.field(description="One audit event by id.")
    async def audit_event(self, info: Ctx, id: strawberry.ID) -> AuditEvent:
        return await audit_event_by_id(
            info,
            parse_id(id),
            top_level_names(info),
            selected_names(info, ("accesses",)),
        )

    @strawberry.field(
        description="An inclusion proof of one audit event in its signed block (once sealed: "
        "AUDIT_NOT_SEALED until then, usually under a second)."
    )
    async def audit_proof(self, info: Ctx, event_id: strawberry.ID) -> AuditProof:
        ctx = info.context
        proof = await ctx.services.audit.proof(
            ctx.session, ctx.caller, parse_id(event_id, "eventId")
        )
        return AuditProof.from_document(proof.document)
