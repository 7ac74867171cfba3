"""Audit trail types: events, their accesses, the compliance filter and its connection."""

from __future__ import annotations

import datetime
import re

import strawberry

from schema.cost import assumed, cost
from schema.paging import Connection
from server.audit.service import AccessView, EventView


def domain_field_name(name: str) -> str:
    """`nationalId` and `national_id` both name the recorded field `national_id`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@strawberry.type(description="A field revealed by an access, and how (clear or masked).")
class AuditFieldAccess:
    name: str
    mode: str


@strawberry.type(description="What one operation touched of one object type. Never values.")
class AuditAccess:
    object_type: str
    action: str
    fields: list[AuditFieldAccess] = strawberry.field(metadata=cost(size=assumed(40)))
    denied_fields: list[str]
    changed_fields: list[str]
    record_count: int
    record_ids: list[strawberry.ID]

    @classmethod
    def from_view(cls, view: AccessView) -> AuditAccess:
        return cls(
            object_type=view.object_type,
            action=view.action,
            fields=[AuditFieldAccess(name=n, mode=m) for n, m in sorted(view.fields.items())],
            denied_fields=view.denied_fields,
            changed_fields=view.changed_fields,
            record_count=view.record_count,
            record_ids=[strawberry.ID(str(r)) for r in view.record_ids or []],
        )


@strawberry.type(description="One audited operation: who, why, what, outcome; hash-chained.")
class AuditEvent:
    id: strawberry.ID
    seq: int
    occurred_at: datetime.datetime
    subject: str
    roles: list[str]
    api_key_id: strawberry.ID | None
    purpose: str | None
    operation_type: str
    operation_name: str | None
    query_hash: str | None
    client_addr: str | None
    user_agent: str | None
    request_id: str | None
    outcome: str = strawberry.field(description="ok, partial, denied or error.")
    prev_hash: str
    hash: str
    accesses: list[AuditAccess] = strawberry.field(metadata=cost(size=assumed(5)))

    @classmethod
    def from_view(cls, view: EventView) -> AuditEvent:
        event = view.event
        occurred = event.occurred_at
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=datetime.UTC)
        return cls(
            id=strawberry.ID(str(event.id)),
            seq=event.seq,
            occurred_at=occurred,
            subject=event.subject,
            roles=list(event.roles),
            api_key_id=strawberry.ID(str(event.api_key_id)) if event.api_key_id else None,
            purpose=event.purpose,
            operation_type=event.operation_type,
            operation_name=event.operation_name,
            query_hash=event.query_hash,
            client_addr=event.client_addr,
            user_agent=event.user_agent,
            request_id=event.request_id,
            outcome=event.outcome,
            prev_hash=event.prev_hash,
            hash=event.hash,
            accesses=[AuditAccess.from_view(a) for a in view.accesses],
        )


@strawberry.input(
    description="Audit search. Customer, record, object type and field criteria must "
    "hold together on one access."
)
class AuditEventFilter:
    subject: str | None = None
    role: str | None = None
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A customer's id: every access naming it, to its file or through its "
        "records, attempts refused included.",
    )
    record_id: strawberry.ID | None = strawberry.field(
        default=None, description="Any record id (customer, order, audit event ...)."
    )
    object_type: str | None = None
    field: str | None = strawberry.field(
        default=None, description="A field revealed in any mode, e.g. nationalId."
    )
    purpose: str | None = None
    outcome: str | None = strawberry.field(default=None, description="ok, partial, denied, error.")
    operation_type: str | None = strawberry.field(
        default=None, description="query, mutation or cli."
    )
    since: datetime.datetime | None = strawberry.field(default=None, description="Inclusive.")
    until: datetime.datetime | None = strawberry.field(default=None, description="Exclusive.")
    within_days: int | None = strawberry.field(
        default=None, description="Only the last N days (server time); combines with since."
    )


@strawberry.type(description="Audit events, newest first.")
class AuditEventConnection(Connection[AuditEvent]):
    total_count: int
