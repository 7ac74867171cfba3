"""Audit trail types: events, their accesses, the compliance filter and its connection."""

from __future__ import annotations

import datetime
import re
from typing import Any

import orjson
import strawberry

from schema.cost import assumed, cost
from schema.paging import Connection
from schema.types.enums import AuditOutcome, FieldAccessMode, OperationType, Purpose, enum_of
from schema.types.node import Node
from server.audit.service import AccessView, EventView


def domain_field_name(name: str) -> str:
    """`nationalId` and `national_id` both name the recorded field `national_id`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@strawberry.type(description="A field revealed by an access, and how (clear or masked).")
class AuditFieldAccess:
    name: str = strawberry.field(description="The field's domain name, e.g. national_id.")
    mode: FieldAccessMode = strawberry.field(description="How the field was touched.")


@strawberry.type(description="What one operation touched of one object type. Never values.")
class AuditAccess:
    object_type: str = strawberry.field(description="The type accessed (customer, order, ...).")
    action: str = strawberry.field(description="What was done: read, create, update, lookup, ...")
    fields: list[AuditFieldAccess] = strawberry.field(
        metadata=cost(size=assumed(40)), description="Fields revealed, each with its mode."
    )
    denied_fields: list[str] = strawberry.field(description="Fields refused to the caller.")
    changed_fields: list[str] = strawberry.field(description="Fields a change wrote.")
    record_count: int = strawberry.field(description="Records accessed.")
    record_ids: list[strawberry.ID] = strawberry.field(
        description="Their ids (when asked for: they are loaded apart)."
    )

    @classmethod
    def from_view(cls, view: AccessView) -> AuditAccess:
        return cls(
            object_type=view.object_type,
            action=view.action,
            fields=[
                AuditFieldAccess(name=n, mode=FieldAccessMode(m))
                for n, m in sorted(view.fields.items())
            ],
            denied_fields=view.denied_fields,
            changed_fields=view.changed_fields,
            record_count=view.record_count,
            record_ids=[strawberry.ID(str(r)) for r in view.record_ids or []],
        )


@strawberry.type(
    description="One audited operation: who, why, what, outcome; sealed into a signed block."
)
class AuditEvent(Node):
    id: strawberry.ID
    seq: int = strawberry.field(description="Arrival order (the order of search results).")
    occurred_at: datetime.datetime = strawberry.field(description="When the operation ran.")
    subject: str = strawberry.field(description="Who ran it.")
    roles: list[str] = strawberry.field(description="The roles it ran with.")
    api_key_id: strawberry.ID | None = strawberry.field(description="The API key used, if any.")
    purpose: Purpose | None = strawberry.field(description="The X-Purpose stated, if any.")
    operation_type: OperationType = strawberry.field(description="What kind of operation.")
    operation_name: str | None = strawberry.field(
        description="The GraphQL operation name or CLI command."
    )
    query_hash: str | None = strawberry.field(
        description="Keyed hash of the query text (never the text)."
    )
    client_addr: str | None = strawberry.field(description="The client's address.")
    user_agent: str | None = strawberry.field(description="The client's User-Agent.")
    request_id: str | None = strawberry.field(description="The request id (X-Request-Id).")
    outcome: AuditOutcome = strawberry.field(description="How the operation ended.")
    prev_hash: str | None = strawberry.field(
        description="The previous entry's hash, for entries written in the hash chain that "
        "preceded blocks; null since."
    )
    hash: str = strawberry.field(description="SHA-256 of the entry's content and accesses.")
    block: int | None = strawberry.field(description="Its block; null until sealed.")
    position: int | None = strawberry.field(
        description="Its place in the ledger (gap-free, assigned when sealed)."
    )
    accesses: list[AuditAccess] = strawberry.field(
        metadata=cost(size=assumed(5)), description="What the operation touched, per object type."
    )

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
            purpose=enum_of(Purpose, event.purpose),
            operation_type=OperationType(event.operation_type),
            operation_name=event.operation_name,
            query_hash=event.query_hash,
            client_addr=event.client_addr,
            user_agent=event.user_agent,
            request_id=event.request_id,
            outcome=AuditOutcome(event.outcome),
            prev_hash=event.prev_hash,
            hash=event.hash,
            block=event.block,
            position=event.position,
            accesses=[AuditAccess.from_view(a) for a in view.accesses],
        )


@strawberry.input(
    description="Audit search. Customer, record, object type and field criteria must "
    "hold together on one access."
)
class AuditEventFilter:
    subject: str | None = strawberry.field(default=None, description="Who ran the operation.")
    role: str | None = strawberry.field(default=None, description="A role it ran with.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A customer's id: every access naming it, to its file or through its "
        "records, attempts refused included.",
    )
    record_id: strawberry.ID | None = strawberry.field(
        default=None, description="Any record id (customer, order, audit event ...)."
    )
    object_type: str | None = strawberry.field(
        default=None, description="A type accessed (customer, order, ...)."
    )
    field: str | None = strawberry.field(
        default=None, description="A field revealed in any mode, e.g. nationalId."
    )
    purpose: Purpose | None = strawberry.field(default=None, description="The stated purpose.")
    outcome: AuditOutcome | None = strawberry.field(default=None, description="How it ended.")
    operation_type: OperationType | None = strawberry.field(
        default=None, description="The kind of operation."
    )
    since: datetime.datetime | None = strawberry.field(default=None, description="Inclusive.")
    until: datetime.datetime | None = strawberry.field(default=None, description="Exclusive.")
    within_days: int | None = strawberry.field(
        default=None, description="Only the last N days (server time); combines with since."
    )


@strawberry.type(description="Audit events, newest first.")
class AuditEventConnection(Connection[AuditEvent]):
    total_count: int = strawberry.field(description="Events matching the filter.")


@strawberry.type(
    description="An inclusion proof: the entry, the path from its leaf to its block's Merkle "
    "root, and the block head with its Ed25519 signature. `document` is the whole proof as "
    "JSON, for `custos audit verify-proof FILE` or the README's stand-alone check."
)
class AuditProof:
    event_id: strawberry.ID = strawberry.field(description="The audit entry the proof is for.")
    block: int = strawberry.field(description="The sealed block holding the entry.")
    position: int = strawberry.field(description="The entry's position in the whole ledger.")
    leaf_index: int = strawberry.field(description="The entry's leaf index in its block's tree.")
    tree_size: int = strawberry.field(description="How many entries the block's tree holds.")
    entry_hash: str = strawberry.field(description="Hex SHA-256 of the entry (the tree's leaf).")
    path: list[str] = strawberry.field(
        description="Hex sibling hashes from the leaf up to the block's Merkle root.",
        metadata=cost(size=assumed(20)),
    )
    block_head: str = strawberry.field(
        description="The signed block head: number, range, Merkle root and previous hash."
    )
    block_hash: str = strawberry.field(description="Hex SHA-256 of the block head.")
    signature: str = strawberry.field(description="Base64 Ed25519 signature of blockHead.")
    public_key: str = strawberry.field(description="Base64 raw Ed25519 public key.")
    document: str = strawberry.field(
        description="The whole proof as JSON, for `custos audit verify-proof` offline."
    )

    @classmethod
    def from_document(cls, proof: dict[str, Any]) -> AuditProof:
        entry = proof["entry"]
        return cls(
            event_id=strawberry.ID(entry["id"]),
            block=entry["block"],
            position=entry["position"],
            leaf_index=proof["leaf_index"],
            tree_size=proof["tree_size"],
            entry_hash=entry["hash"],
            path=list(proof["path"]),
            block_head=proof["block_head"],
            block_hash=proof["block_hash"],
            signature=proof["signature"],
            public_key=proof["public_key"],
            document=orjson.dumps(proof).decode(),
        )
