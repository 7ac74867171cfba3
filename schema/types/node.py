"""The Relay `Node` interface: records a client can refetch by id alone (`Query.node`).

Ids are random UUIDs, unique across every kind of record, so a record's own `id` is its
global id. The records reach GraphQL as the services' views (a customer view, an owned
record view) as often as typed objects, so the concrete type is read off the value here
rather than by `isinstance` checks on each implementing type.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLAbstractType, GraphQLResolveInfo, GraphQLSchema
from strawberry.types.base import has_object_definition

from schema.execution import plain_leaf
from server.customer.owned import RecordView
from server.customer.service import CustomerView

# Owned-record views name their kind; these kinds are Node types.
VIEW_TYPES = {"complaint": "Complaint", "interaction": "Interaction", "task": "Task"}


def node_type_name(value: Any) -> str | None:
    """The GraphQL type of a value a Node field resolved to."""
    if isinstance(value, CustomerView):
        return "Customer"
    if isinstance(value, RecordView):
        return VIEW_TYPES.get(value.object_type)
    if has_object_definition(value):
        name: str = value.__strawberry_definition__.name
        return name
    return None


NODE_ID_DESCRIPTION = "Globally unique: no two records of any type share an id."


@strawberry.interface(
    description="A record with a globally unique id: refetch it with `Query.node(id:)`."
)
class Node:
    id: strawberry.ID = strawberry.field(description=NODE_ID_DESCRIPTION)

    @classmethod
    def resolve_type(
        cls, obj: Any, info: GraphQLResolveInfo[Any], abstract_type: GraphQLAbstractType
    ) -> str | None:
        return node_type_name(obj)


@plain_leaf
def record_id(root: strawberry.Parent[Any]) -> strawberry.ID:
    """The id of a view (customer or owned record) as a GraphQL ID."""
    return strawberry.ID(str(root.id))


def drop_type_checks(schema: GraphQLSchema) -> None:
    """Node's own `resolve_type` names the type, so the implementing types need no
    `is_type_of` (strawberry adds one that rejects views, and its presence would keep
    them off the execution fast path). Their `id` reads as the interface's."""
    for named in schema.type_map.values():
        interfaces = getattr(named, "interfaces", None)
        if interfaces and any(i.name == "Node" for i in interfaces):
            named.is_type_of = None  # type: ignore[attr-defined]
            id_field = named.fields["id"]  # type: ignore[attr-defined]
            id_field.description = id_field.description or NODE_ID_DESCRIPTION
