"""The read shapes Custos and the peer are compared on, as pairs of queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bench.load import Request

CUSTOMER_FIELDS = "id name phone email tier lifecycle"
LIST_FIELDS = "id name phone email tier lifecycle region industry team createdAt"
INTERACTION_FIELDS = "id channel occurredAt notes"
MEDIA = "application/graphql-response+json"
# Custos lists customers by (created_at, id); the peer is asked for the same order.
PEER_ORDER = "[CREATED_AT_ASC, ID_ASC]"


@dataclass(frozen=True)
class Shape:
    name: str
    custos: str
    peer: str
    variables: dict[str, Any]
    at_least: int  # records an answer must hold for the comparison to count

    def custos_request(self, token: str, purpose: str = "support") -> Request:
        body = orjson.dumps({"query": self.custos, "variables": self.variables})
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": MEDIA,
            "X-Purpose": purpose,
        }
        return Request("/graphql", body, headers)

    def peer_request(self) -> Request:
        body = orjson.dumps({"query": self.peer, "variables": self.variables})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        return Request("/graphql", body, headers)


def shapes(customer_id: str) -> list[Shape]:
    """by id, a list of 1,000 and 50 customers x 20 interactions, in Custos's orders:
    customers by (created_at, id), interactions newest first."""
    return [
        Shape(
            "by_id",
            f"query One($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}",
            f"query One($id: UUID!) {{ customerById(id: $id) {{ {CUSTOMER_FIELDS} }} }}",
            {"id": customer_id},
            1,
        ),
        Shape(
            "list_1000",
            f"query List($first: Int!) {{ customers(first: $first) "
            f"{{ edges {{ node {{ {LIST_FIELDS} }} }} }} }}",
            "query List($first: Int!) { allCustomers(first: $first, "
            f"orderBy: {PEER_ORDER}) {{ edges {{ node {{ {LIST_FIELDS} }} }} }} }}",
            {"first": 1000},
            1000,
        ),
        Shape(
            "nested_50x20",
            "query Nested { customers(first: 50) { edges { node { id name interactions(first: 20) "
            f"{{ edges {{ node {{ {INTERACTION_FIELDS} }} }} }} }} }} }} }}",
            f"query Nested {{ allCustomers(first: 50, orderBy: {PEER_ORDER}) "
            "{ edges { node { id name interactionsByCustomerId(first: 20, "
            "orderBy: [OCCURRED_AT_DESC, ID_DESC]) "
            f"{{ edges {{ node {{ {INTERACTION_FIELDS} }} }} }} }} }} }} }}",
            {},
            50 * 20 + 50,
        ),
    ]


LOG_INTERACTION = (
    "mutation Log($input: LogInteractionInput!) { logInteraction(input: $input) "
    "{ __typename ... on InteractionPayload { interaction { id } } "
    "... on UserError { code } } }"
)


def log_interaction(token: str, customer_id: str, n: int) -> Request:
    data = {
        "customerId": customer_id,
        "channel": "PHONE",
        "direction": "OUTBOUND",
        "kind": "FOLLOW_UP",
        "subject": f"Follow-up {n}",
        "notes": f"Discussed the renewal, call {n}",
    }
    body = orjson.dumps({"query": LOG_INTERACTION, "variables": {"input": data}})
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": MEDIA,
        "X-Purpose": "support",
    }
    return Request("/graphql", body, headers)
