"""The committed SDL is the schema the server serves: regenerate with `make schema`."""

from __future__ import annotations

import enum
from pathlib import Path

from graphql import GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from schema.build import build_schema, print_sdl
from schema.types import enums
from schema.types.interaction import InteractionChannel
from server.audit.service import OUTCOMES
from server.auth.principal import PURPOSES
from server.authz.vocabulary import EFFECTS, MODES, ROW_SCOPES
from server.care.service import DATED_REASONS
from server.data.customer_fields import (
    CHANNELS,
    GENDERS,
    LEVELS,
    LIFECYCLES,
    NEED_TYPES,
    TIERS,
)
from server.loyalty.service import REASONS as LOYALTY_REASONS
from server.order.service import STATUSES as ORDER_STATUSES

SDL = Path(__file__).resolve().parents[1] / "schema" / "schema.graphql"
BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def test_committed_schema_is_current() -> None:
    assert SDL.read_text() == print_sdl(), "schema/schema.graphql is stale: run `make schema`"


def test_contract_names_exist() -> None:
    sdl = print_sdl()
    for name in (
        "customers(first: Int! = 20, after: String = null, filter: CustomerFilterInput = null",
        "customer(id: ID = null, customerNumber: String = null): Customer",
        "customerNumber: String",
        "customerByContact(",
        "totalCount: Int!",
        "nationalId: String",
        "bankCard: String",
        "lifecycle: Lifecycle",
        "tier: CustomerTier",
    ):
        assert name in sdl, name


def test_every_type_and_field_is_described() -> None:
    """Typed clients turn descriptions into doc comments: none may be missing."""
    schema = build_schema()._schema
    missing: list[str] = []
    for name, named in schema.type_map.items():
        if name.startswith("__") or name in BUILT_IN_SCALARS:
            continue
        if not named.description:
            missing.append(name)
        if isinstance(named, GraphQLObjectType | GraphQLInputObjectType | GraphQLInterfaceType):
            missing += [f"{name}.{f}" for f, field in named.fields.items() if not field.description]
    assert missing == []


def test_closed_sets_are_the_domains() -> None:
    """Each enum lists exactly its domain's values, so a resolver can hand the domain's
    string over and an input's `.value` is one the service accepts."""
    closed: list[tuple[type[enum.Enum], tuple[str, ...]]] = [
        (enums.CustomerTier, TIERS),
        (enums.Lifecycle, LIFECYCLES),
        (enums.NeedType, NEED_TYPES),
        (enums.Gender, GENDERS),
        (enums.Level, LEVELS),
        (InteractionChannel, CHANNELS),
        (enums.OrderStatus, ORDER_STATUSES),
        (enums.AuditOutcome, OUTCOMES),
        (enums.Purpose, PURPOSES),
        (enums.FieldMode, MODES),
        (enums.PolicyEffect, EFFECTS),
        (enums.RowScope, ROW_SCOPES),
        (enums.LoyaltyReason, LOYALTY_REASONS),
        (enums.FieldAccessMode, ("clear", "masked", "hit", "miss")),
        (enums.CareReason, (*DATED_REASONS, "complaint_follow_up")),
    ]
    for kind, values in closed:
        assert sorted(m.value for m in kind) == sorted(values), kind.__name__
        assert all(m.name == m.value.upper() for m in kind), kind.__name__


def test_node_types_refetch_by_id() -> None:
    sdl = print_sdl()
    assert "node(id: ID!): Node" in sdl
    for name in ("Customer", "Order", "Complaint", "Interaction", "Task", "Campaign"):
        assert f"type {name} implements Node" in sdl, name
    assert '@deprecated(reason: "A string only for its masked form' in sdl
    assert "completeness: Completeness!" in sdl
