"""`Query.node(id:)`: refetch any `Node` by its id alone.

The id's kind picks the path, and the path is the kind's own root field's (`customer`,
`order`, `complaint`, ...): the same gate, row scope, field modes and audit. A record the
caller may not see answers exactly like an id nothing holds: null and NOT_FOUND with one
message, whether the kind's gate refused the type, the row scope left the record out, or
no record has the id; so `node` tells no one more than the root fields do.
"""

from __future__ import annotations

import base64
import binascii
import uuid

import strawberry
from strawberry.types import Info

from schema.audit import audit_event_by_id
from schema.campaigns import campaign_by_id
from schema.complaints import complaint_by_id
from schema.context import GraphQLContext
from schema.customers import customer_by_id
from schema.interactions import interaction_by_id
from schema.orders import order_by_id
from schema.selection import selected_names_on
from schema.tasks import task_by_id
from schema.types.common import parse_id
from schema.types.node import Node
from server.errors import ForbiddenError, NotFoundError

Ctx = Info[GraphQLContext, None]

# The GraphQL type of each record kind (server/records).
NODE_TYPES = {
    "customer": "Customer",
    "order": "Order",
    "complaint": "Complaint",
    "interaction": "Interaction",
    "task": "Task",
    "campaign": "Campaign",
    "audit_event": "AuditEvent",
}


def node_id(value: strawberry.ID) -> tuple[uuid.UUID, str | None]:
    """A node id: the record's own id, or a Relay-style global id (base64 of
    `Type:id`, as other servers build them), with the type it names."""
    text = str(value)
    try:
        return uuid.UUID(text), None
    except ValueError:
        pass
    try:
        decoded = base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    type_name, _, record = decoded.partition(":")
    if type_name in NODE_TYPES.values():
        return parse_id(record), type_name
    return parse_id(text), None


async def _fetch(info: Ctx, kind: str, record_id: uuid.UUID) -> Node:
    names = {NODE_TYPES[kind], "Node"}
    selected = selected_names_on(info, names)
    if kind == "customer":
        return await customer_by_id(info, record_id, selected)
    if kind == "order":
        return await order_by_id(info, record_id)
    if kind == "complaint":
        return await complaint_by_id(info, record_id, selected)
    if kind == "interaction":
        return await interaction_by_id(info, record_id, selected)
    if kind == "task":
        return await task_by_id(info, record_id, selected)
    if kind == "campaign":
        return await campaign_by_id(info, record_id)
    return await audit_event_by_id(
        info, record_id, selected, selected_names_on(info, names, "accesses")
    )


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Any record by its id, through the same access checks and audit as "
        "its type's own root field; unknown ids and records outside the caller's reach "
        "are alike NOT_FOUND."
    )
    async def node(self, info: Ctx, id: strawberry.ID) -> Node | None:
        ctx = info.context
        record_id, type_name = node_id(id)
        kind = await ctx.services.records.kind_of(ctx.session, record_id)
        if kind is None or (type_name is not None and NODE_TYPES[kind] != type_name):
            raise ctx.caller.gate.not_found("node", "read", record_id)
        try:
            return await _fetch(info, kind, record_id)
        except (NotFoundError, ForbiddenError):
            # The kind's gate has audited the refusal; the answer must not name the kind.
            raise NotFoundError("node not found") from None
