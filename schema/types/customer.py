"""The Customer type. Field values come pre-revealed from the customer service; a field
the caller may not read raises FORBIDDEN at its own path when resolved."""

from __future__ import annotations

import datetime
from typing import Any

import strawberry

from schema.execution import plain_leaf
from schema.types.common import PageInfo

# GraphQL field name → domain field name, for fields whose names differ.
GRAPHQL_TO_DOMAIN = {
    "nationalId": "national_id",
    "bankCard": "bank_card",
    "companySize": "company_size",
    "needType": "need_type",
    "memberLevel": "member_level",
    "ownerId": "owner_id",
    "referredById": "referred_by_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "phoneVerifiedAt": "phone_verified_at",
    "emailVerifiedAt": "email_verified_at",
    "reviewedAt": "reviewed_at",
    "potentialNeeds": "potential_needs",
    "priceSensitivity": "price_sensitivity",
    "upgradeIntent": "upgrade_intent",
    "preferredChannel": "preferred_channel",
}
COMPUTED = frozenset({"id", "__typename"})


def domain_fields(graphql_names: set[str]) -> set[str]:
    return {GRAPHQL_TO_DOMAIN.get(n, n) for n in graphql_names if n not in COMPUTED}


def _value(name: str) -> Any:
    # Plain: the view already holds the revealed value (or raises FORBIDDEN), so the
    # execution fast path may call this without resolve info.
    @plain_leaf
    def resolve(root: strawberry.Parent[Any]) -> Any:
        return root.get(name)

    return resolve


@plain_leaf
def _customer_id(root: strawberry.Parent[Any]) -> strawberry.ID:
    return strawberry.ID(str(root.id))


def _field(name: str, description: str | None = None) -> Any:
    return strawberry.field(resolver=_value(name), description=description)


@strawberry.type(description="A customer file as the caller may see it.")
class Customer:
    id: strawberry.ID = strawberry.field(resolver=_customer_id)

    name: str | None = _field("name", "Personal: clear, masked (first character) or denied.")
    gender: str | None = _field("gender")
    birthday: str | None = _field("birthday", "Sensitive: ISO date; masked hides the year.")
    phone: str | None = _field("phone", "Sensitive: E.164; masked 138****5678.")
    email: str | None = _field("email", "Sensitive; masked a***@example.com.")
    national_id: str | None = _field("national_id", "Sensitive; masked first 4 and last 4.")
    bank_card: str | None = _field("bank_card", "Sensitive; masked **** 1234.")
    address: str | None = _field("address", "Sensitive.")
    industry: str | None = _field("industry")
    company_size: str | None = _field("company_size")
    region: str | None = _field("region")
    occupation: str | None = _field("occupation")
    source: str | None = _field("source")
    preferences: str | None = _field("preferences")
    potential_needs: str | None = _field("potential_needs")
    expectations: str | None = _field("expectations")
    price_sensitivity: str | None = _field("price_sensitivity")
    customization: str | None = _field("customization")
    upgrade_intent: str | None = _field("upgrade_intent")
    preferred_channel: str | None = _field("preferred_channel")
    tags: list[str] | None = _field("tags")
    tier: str | None = _field("tier", "Value tier: high, mid or low.")
    lifecycle: str | None = _field("lifecycle", "new, active, at_risk, churned or won_back.")
    need_type: str | None = _field("need_type")
    member_level: str | None = _field("member_level")
    owner_id: str | None = _field("owner_id")
    team: str | None = _field("team")
    referred_by_id: strawberry.ID | None = _field("referred_by_id")
    created_at: datetime.datetime | None = _field("created_at")
    updated_at: datetime.datetime | None = _field("updated_at")
    phone_verified_at: datetime.datetime | None = _field("phone_verified_at")
    email_verified_at: datetime.datetime | None = _field("email_verified_at")
    reviewed_at: datetime.datetime | None = _field("reviewed_at")


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type(description="A Relay connection of customers under the caller's row scope.")
class CustomerConnection:
    edges: list[CustomerEdge]
    nodes: list[Customer]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Customers matching the filter in scope.")


@strawberry.input(description="Filters on the customer list; all given ones must match.")
class CustomerFilterInput:
    tier: str | None = None
    lifecycle: str | None = None
    need_type: str | None = None
    industry: str | None = None
    region: str | None = None
    owner_id: str | None = None
    team: str | None = None
    created_from: datetime.datetime | None = None
    created_to: datetime.datetime | None = None


@strawberry.input
class CreateCustomerInput:
    name: str
    phone: str | None = None
    email: str | None = None
    national_id: str | None = None
    bank_card: str | None = None
    address: str | None = None
    birthday: datetime.date | None = None
    gender: str | None = None
    industry: str | None = None
    company_size: str | None = None
    region: str | None = None
    occupation: str | None = None
    source: str | None = None
    owner_id: str | None = None
    team: str | None = None


@strawberry.type
class CustomerCreated:
    customer: Customer
