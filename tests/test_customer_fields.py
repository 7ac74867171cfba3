"""The customer field registry against everything that names customer fields.

A field added or renamed in one place and not the others fails here: the model's columns,
the GraphQL inputs and output, `NewCustomer`, `CustomerChanges`, `CustomerFilter`, the
import columns, and the explicit mappers between them.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
from typing import Any

from sqlalchemy import String
from strawberry.types.base import StrawberryOptional, get_object_definition
from strawberry.utils.str_converters import to_camel_case

from schema.build import build_schema
from schema.campaigns import CampaignSegmentInput
from schema.imports import ImportCustomerRowInput, row_values
from schema.types.customer import (
    GRAPHQL_NAMES,
    VIEW_FIELDS,
    CreateCustomerInput,
    Customer,
    CustomerFilterInput,
    UpdateCustomerInput,
    customer_changes,
    domain_fields,
    new_customer,
)
from server.app import AppState
from server.customer.completeness import WEIGHTS
from server.customer.fields import (
    CHOICES,
    CUSTOMER_FIELD_CLASSES,
    EDITABLE,
    FILLABLE,
    FILTERABLE,
    NORMALISERS,
    VERIFIED_AT,
)
from server.customer.repository import COMPLETENESS, CustomerFilter
from server.customer.service import CustomerChanges, NewCustomer
from server.data.customer_fields import (
    BLIND_INDEXED,
    CUSTOMER_FIELD_BY_NAME,
    CUSTOMER_FIELDS,
    CustomerField,
    Mask,
    Normaliser,
)
from server.data.models import Customer as CustomerRow
from server.imports import service as imports
from server.imports.columns import CONTACT_COLUMNS as ROW_CONTACT_COLUMNS
from server.imports.columns import NOTE_COLUMN
from server.privacy.service import EXPORT_HIDDEN
from server.vault.masking import MASKS, mask
from server.vault.normalise import NORMALISERS as NORMALISERS_BY_KIND
from server.vault.repository import CONTACT_COLUMNS
from tests.conftest import Api
from tests.factories import bank_card, national_id

# `Customer` fields with resolvers of their own, not read from the customer view.
COMPUTED = {
    "id",
    "segment",
    "churnRisk",
    "interactions",
    "timeline",
    "consents",
    "orders",
    "loyalty",
    "contactPoints",
    "notes",
}
# Filters that are not one field's equality: the creation-time range, a tag, the review
# cutoff (the last only inside the domain).
FILTER_EXTRAS = {"created_from", "created_to", "tag", "name"}
SCHEMA = build_schema()


def names(flag: str) -> set[str]:
    return {f.name for f in CUSTOMER_FIELDS if getattr(f, flag)}


def graphql_fields(strawberry_type: type) -> dict[str, Any]:
    """GraphQL name → strawberry field, as the served schema names them."""
    definition = get_object_definition(strawberry_type, strict=True)
    converter = SCHEMA.config.name_converter
    return {converter.get_graphql_name(f): f for f in definition.fields}


def assert_input_covers(
    strawberry_type: type,
    fields: set[str],
    *,
    creates: bool,
    beside: frozenset[str] = frozenset(),
) -> None:
    """The input's fields are exactly these registry fields (plus, `beside`, the columns
    that land next to the file rather than on it): GraphQL name and Python attribute as
    the registry says; an input that creates files has the required ones non-null, every
    other field is optional."""
    found = graphql_fields(strawberry_type)
    expected = {GRAPHQL_NAMES[n]: n for n in fields} | {to_camel_case(n): n for n in beside}
    assert {n: f.python_name for n, f in found.items()} == expected
    for graphql, field in found.items():
        required = (
            creates
            and field.python_name not in beside
            and CUSTOMER_FIELD_BY_NAME[field.python_name].required
        )
        assert isinstance(field.type, StrawberryOptional) is not required, graphql


# --- the registry itself ------------------------------------------------------------


def test_the_model_reads_its_columns_from_the_registry() -> None:
    columns = {c.key: c for c in CustomerRow.__table__.columns}
    assert set(columns) == set(CUSTOMER_FIELD_BY_NAME)
    assert len(CUSTOMER_FIELD_BY_NAME) == len(CUSTOMER_FIELDS)
    for name, col in columns.items():
        declared = CUSTOMER_FIELD_BY_NAME[name]
        assert col.info["data_class"] is declared.data_class, name
        if isinstance(col.type, String):
            assert col.type.length == declared.max_length, name
        else:
            assert declared.max_length is None, name


def test_the_registry_is_consistent() -> None:
    def implies(flag: str, *others: str) -> None:
        for f in CUSTOMER_FIELDS:
            if getattr(f, flag):
                assert all(getattr(f, o) for o in others), (f.name, flag, others)

    implies("creatable", "new", "importable", "readable")
    implies("importable", "new", "readable")
    implies("row_importable", "importable")
    implies("required", "new", "creatable")
    implies("fillable", "editable")
    for flag in ("output", "editable", "filterable", "new"):
        implies(flag, "readable")
    for f in CUSTOMER_FIELDS:
        # Every sealed field has a mask and nothing else has one.
        assert (f.mask is not None) is f.data_class.sealed, f.name
        # Choices and lengths constrain plain text; sealed values are opaque bytes.
        assert not (f.data_class.sealed and (f.choices or f.max_length)), f.name
        if f.blind_index is not None:
            assert f.normaliser is not None, f.name
            assert not CUSTOMER_FIELD_BY_NAME[f.blind_index].readable, f.name
        if f.verified_at is not None:
            assert f.verified_at in CUSTOMER_FIELD_BY_NAME, f.name
        if f.choices:
            # A closed set: an enum in GraphQL whose names are the values in upper case.
            assert all(c.upper().isidentifier() for c in f.choices), f.name
            assert f.max_length is not None, f.name
            assert max(map(len, f.choices)) <= f.max_length, f.name
    assert sum(f.weight for f in CUSTOMER_FIELDS) == 100
    assert len(set(GRAPHQL_NAMES.values())) == len(GRAPHQL_NAMES)


def test_masks_and_normalisers_exist_for_every_kind() -> None:
    assert set(MASKS) == set(Mask)
    assert set(NORMALISERS_BY_KIND) == set(Normaliser)
    assert mask("phone", "+8613812345678") == "138****5678"
    assert mask("birthday", "1990-05-17") == "1990-**-**"
    assert mask("notes", "anything") == "***"


def test_domain_tables_are_the_registry_flags() -> None:
    assert set(CUSTOMER_FIELD_CLASSES) == names("readable")
    assert names("readable") == set(CUSTOMER_FIELD_BY_NAME) - EXPORT_HIDDEN
    assert set(EDITABLE) == names("editable")
    assert set(FILLABLE) == names("fillable")
    assert set(FILTERABLE) == names("filterable")
    assert set(imports.CUSTOMER_COLUMNS) == names("importable")
    assert set(imports.REQUIRED_CUSTOMER_COLUMNS) == {"name"}
    assert set(CONTACT_COLUMNS) == set(BLIND_INDEXED) == {"phone", "email", "national_id"}
    assert set(NORMALISERS) == {"phone", "email", "national_id", "bank_card"}
    assert VERIFIED_AT == {"phone": "phone_verified_at", "email": "email_verified_at"}
    assert set(CHOICES) == {
        "gender",
        "tier",
        "lifecycle",
        "price_sensitivity",
        "customization",
        "upgrade_intent",
        "preferred_channel",
        "need_type",
    }
    # Missing and stale facts are listed in this order (README, completeness).
    assert list(WEIGHTS) == [
        "name",
        "phone",
        "email",
        "address",
        "birthday",
        "industry",
        "region",
        "occupation",
        "gender",
        "company_size",
        "preferences",
        "potential_needs",
        "expectations",
        "preferred_channel",
        "price_sensitivity",
        "customization",
        "upgrade_intent",
        "phone_verified_at",
        "email_verified_at",
    ]
    limits = {f.name: f.max_length for f in CUSTOMER_FIELDS if f.importable and f.max_length}
    assert limits == imports.PLAIN_LIMITS


# --- hand-written types against the registry ----------------------------------------


def test_graphql_inputs_cover_the_registry_fields() -> None:
    assert_input_covers(CreateCustomerInput, names("creatable"), creates=True)
    assert_input_covers(UpdateCustomerInput, names("editable"), creates=False)
    # A row also brings contact points and a note: sealed by their own services, not
    # fields of the file (consent columns are the CLI's only).
    assert_input_covers(
        ImportCustomerRowInput,
        names("row_importable"),
        creates=True,
        beside=ROW_CONTACT_COLUMNS | {NOTE_COLUMN},
    )
    filters = {
        n: f.python_name
        for n, f in graphql_fields(CustomerFilterInput).items()
        if f.python_name not in FILTER_EXTRAS
    }
    assert filters == {GRAPHQL_NAMES[n]: n for n in names("filterable")}
    segment = graphql_fields(CampaignSegmentInput)
    assert set(graphql_fields(CustomerFilterInput)) <= set(segment)


def test_domain_types_cover_the_registry_fields() -> None:
    new = {f.name: f for f in dataclasses.fields(NewCustomer)}
    assert set(new) == names("new")
    assert {n for n, f in new.items() if f.default is dataclasses.MISSING} == names("required")
    assert set(typing.get_type_hints(CustomerChanges)) == names("editable")
    assert CustomerChanges.__total__ is False
    flt = {f.name for f in dataclasses.fields(CustomerFilter)}
    assert flt == names("filterable") | FILTER_EXTRAS | {"reviewed_before"}


class Recording:
    """A stand-in view that records which field a resolver reads."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def get(self, name: str) -> str:
        self.read.append(name)
        return name


def test_the_customer_type_resolves_registry_fields_from_the_view() -> None:
    fields = graphql_fields(Customer)
    from_view = {n for n in fields if n in VIEW_FIELDS}
    derived = {"completeness", "birthDate", "birthYear"}
    assert from_view == {GRAPHQL_NAMES[n] for n in names("output")} | derived
    assert set(fields) - from_view == COMPUTED
    for graphql in from_view - derived:
        view = Recording()
        resolver = fields[graphql].base_resolver
        assert resolver is not None, graphql
        assert resolver.wrapped_func(view) == VIEW_FIELDS[graphql]
        assert view.read == [VIEW_FIELDS[graphql]]
    assert domain_fields({"nationalId", "completeness", "orders", "__typename"}) == {
        "national_id",
        COMPLETENESS,
    }


# --- the explicit mappers carry every field -------------------------------------------


def sample(field: CustomerField) -> Any:
    """A distinct, valid value for a field a caller may give."""
    if field.name == "birthday":
        return datetime.date(1990, 5, 17)
    if field.choices:
        return field.choices[-1]
    return f"{field.name} value"


def test_create_input_maps_every_field() -> None:
    given = {f.name: sample(f) for f in CUSTOMER_FIELDS if f.creatable}
    data = new_customer(CreateCustomerInput(**given))
    assert {n: getattr(data, n) for n in given} == given
    assert (data.tier, data.lifecycle, data.created_at) == (None, None, None)


def test_update_input_maps_given_fields_only() -> None:
    given = {f.name: sample(f) for f in CUSTOMER_FIELDS if f.editable}
    assert customer_changes(UpdateCustomerInput(**given)) == given
    assert customer_changes(UpdateCustomerInput()) == {}
    assert customer_changes(UpdateCustomerInput(region=None, team="east")) == {
        "region": None,
        "team": "east",
    }


def test_filter_input_maps_every_filter() -> None:
    moment = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    given: dict[str, Any] = {n: f"{n} value" for n in FILTERABLE}
    given |= {"created_from": moment, "created_to": moment, "tag": "vip"}
    for input_type in (CustomerFilterInput, CampaignSegmentInput):
        flt = input_type(**given).to_filter()
        assert {n: getattr(flt, n) for n in given} == given
        assert flt.reviewed_before is None


def test_import_rows_and_columns_map_every_field() -> None:
    given = {f.name: sample(f) for f in CUSTOMER_FIELDS if f.row_importable}
    assert row_values(ImportCustomerRowInput(**given)) == given
    assert row_values(ImportCustomerRowInput(name="only")) == {"name": "only"}
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    # Birthday and customer since (created_at) are parsed as dates before this.
    text = {n: f"{n} value" for n in names("importable") - {"birthday", "created_at"}}
    born = datetime.date(1990, 5, 17)
    data = imports.new_customer(text, born, now)
    assert {n: getattr(data, n) for n in text} == text
    assert (data.birthday, data.created_at) == (born, now)


# --- through the API ----------------------------------------------------------------

CREATE = """
mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  ... on CustomerCreated { customer { id %s } } ... on UserError { code message } } }
"""
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) { updateCustomer(id: $id, input: $input) {
  ... on CustomerUpdated { changedFields customer { %s } } ... on UserError { code message } } }
"""
VALID = {
    "team": "east",
    "phone": "+8613912345678",
    "email": "li@example.com",
    "national_id": national_id(7),
    "bank_card": bank_card(7),
    "birthday": "1990-05-17",
}


def api_value(field: CustomerField) -> Any:
    """A value the service keeps as given (already in canonical form)."""
    if field.name in VALID:
        return VALID[field.name]
    if field.choices:
        return field.choices[-1].upper()  # the GraphQL enum value
    return f"{field.name[:6]}-x"


async def test_every_creatable_and_editable_field_round_trips(api: Api, state: AppState) -> None:
    # A manager sees identity numbers masked and everything else of the team's files clear.
    manager = api.token("manager", subject="mgr-east", team="east")
    creatable = [f for f in CUSTOMER_FIELDS if f.creatable]
    selection = " ".join(GRAPHQL_NAMES[f.name] for f in creatable)
    given = {GRAPHQL_NAMES[f.name]: api_value(f) for f in creatable}
    body = await api.gql(CREATE % selection, {"input": given}, token=manager, purpose="support")
    created = body["data"]["createCustomer"]["customer"]
    customer_id = created.pop("id")
    masked = {"national_id", "bank_card"}
    assert created == {
        GRAPHQL_NAMES[f.name]: mask(f.name, v) if f.name in masked else v
        for f in creatable
        for v in [api_value(f)]
    }

    editable = [f for f in CUSTOMER_FIELDS if f.editable]
    selection = " ".join(GRAPHQL_NAMES[f.name] for f in editable)
    changed = {
        GRAPHQL_NAMES[f.name]: f.choices[0].upper() if f.choices else f"{f.name[:6]}-y"
        for f in editable
        if f.normaliser is None and f.name not in ("birthday", "owner_id", "team")
    }
    body = await api.gql(
        UPDATE % selection, {"id": customer_id, "input": changed}, token=manager, purpose="support"
    )
    updated = body["data"]["updateCustomer"]
    assert sorted(updated["changedFields"]) == sorted(changed)
    assert {k: updated["customer"][k] for k in changed} == changed
