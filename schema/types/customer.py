"""The Customer type. Field values come pre-revealed from the customer service; a field
the caller may not read raises FORBIDDEN at its own path when resolved."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Iterable
from typing import Any, cast

import strawberry
from graphql import GraphQLInputObjectType, GraphQLObjectType, GraphQLSchema
from strawberry.dataloader import DataLoader
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case

from schema.context import GraphQLContext
from schema.cost import assumed, cost, paged
from schema.execution import plain_leaf
from schema.paging import Connection
from schema.types.analytics import ChurnRisk, CustomerSegment
from schema.types.consent import Consent, consent_loader
from schema.types.contact import ContactPoint, contact_points_of
from schema.types.enums import CustomerTier, Gender, Level, Lifecycle, NeedType, domain_value
from schema.types.interaction import (
    InteractionChannel,
    InteractionConnection,
    TimelineConnection,
    customer_interactions,
    customer_timeline,
)
from schema.types.loyalty import Loyalty
from schema.types.node import Node
from schema.types.note import CustomerNote, notes_of
from schema.types.order import OrderConnection, customer_orders
from server.customer.repository import COMPLETENESS, CustomerFilter
from server.customer.service import CustomerChanges, NewCustomer
from server.data.customer_fields import CUSTOMER_FIELDS
from server.loyalty.service import LoyaltySummary

# GraphQL names of the customer fields: strawberry's camelCase of the domain name unless
# the field registry (server/data/customer_fields.py) overrides it.
GRAPHQL_NAMES: dict[str, str] = {
    f.name: f.graphql_name or to_camel_case(f.name) for f in CUSTOMER_FIELDS
}
# GraphQL name → view field, for the `Customer` fields resolved from the customer view.
# Other fields (id, connections, analytics) have resolvers of their own.
VIEW_FIELDS: dict[str, str] = {
    **{GRAPHQL_NAMES[f.name]: f.name for f in CUSTOMER_FIELDS if f.output},
    # The birthday as a Date and its year alone: both reveal the sealed birthday.
    "birthDate": "birthday",
    "birthYear": "birthday",
    "completeness": COMPLETENESS,
}


# Types whose fields are named after customer fields, and how a registry description
# reads on them; a field that says more keeps its own (schema/build.py applies this).
DESCRIBED_FROM_REGISTRY = {
    "Customer": "{}",
    "CreateCustomerInput": "{}",
    "UpdateCustomerInput": "{}",
    "ImportCustomerRowInput": "{}",
    "CustomerFilterInput": "Only files whose value equals this. {}",
    "CampaignSegmentInput": "Only customers whose value equals this. {}",
}


def describe_customer_fields(schema: GraphQLSchema) -> None:
    """Describe the customer-named fields of these types from the field registry
    (server/data/customer_fields.py), where each field is declared once."""
    described = {GRAPHQL_NAMES[f.name]: f.description for f in CUSTOMER_FIELDS}
    for type_name, form in DESCRIBED_FROM_REGISTRY.items():
        named = schema.type_map[type_name]
        assert isinstance(named, GraphQLObjectType | GraphQLInputObjectType)
        for name, field in named.fields.items():
            if not field.description and name in described:
                field.description = form.format(described[name])


def domain_fields(graphql_names: Iterable[str]) -> set[str]:
    """The view fields a selection of `Customer` fields needs."""
    return {VIEW_FIELDS[n] for n in graphql_names if n in VIEW_FIELDS}


def graphql_name(domain_name: str) -> str:
    return GRAPHQL_NAMES[domain_name]


@strawberry.type(description="Weighted share of the facts a file holds, and its review state.")
class Completeness:
    score: int = strawberry.field(description="0 to 100; weights are listed in the README.")
    missing_fields: list[str] = strawberry.field(
        description="Weighted facts the file lacks, among those the caller may read."
    )
    stale_fields: list[str] = strawberry.field(
        description="Facts held but not reviewed for the configured number of months."
    )
    needs_review: bool = strawberry.field(
        description="Never reviewed, or not for the configured months."
    )
    review_due_at: datetime.datetime | None = strawberry.field(
        description="When the next review is due."
    )


@strawberry.enum(description="Customer list orders. Name is sealed, so it cannot be sorted.")
class CustomerSortOrder(enum.Enum):
    CREATED_ASC = "created_asc"
    CREATED_DESC = "created_desc"
    UPDATED_ASC = "updated_asc"
    UPDATED_DESC = "updated_desc"


@strawberry.enum(description="A contact a customer can confirm: phone or email.")
class ContactChannel(enum.Enum):
    PHONE = "phone"
    EMAIL = "email"


def _value(name: str) -> Any:
    # Plain: the view already holds the revealed value (or raises FORBIDDEN), so the
    # execution fast path may call this without resolve info.
    @plain_leaf
    def resolve(root: strawberry.Parent[Any]) -> Any:
        return root.get(name)

    return resolve


@plain_leaf
def _birth_date(root: strawberry.Parent[Any]) -> datetime.date | None:
    value = root.get("birthday")
    # Masked, the view holds 1990-**-**: not a date, and only its year is the caller's.
    if value is None or "*" in value:
        return None
    return datetime.date.fromisoformat(value)


@plain_leaf
def _birth_year(root: strawberry.Parent[Any]) -> int | None:
    value = root.get("birthday")
    return None if value is None else int(value[:4])


@plain_leaf
def _customer_id(root: strawberry.Parent[Any]) -> strawberry.ID:
    return strawberry.ID(str(root.id))


def _field(name: str, description: str | None = None) -> Any:
    return strawberry.field(
        resolver=_value(name), name=GRAPHQL_NAMES[name], description=description
    )


def loyalty_loader(ctx: GraphQLContext) -> DataLoader[uuid.UUID, LoyaltySummary | None]:
    """One loader per request: a page of customers asks for loyalty in one batch."""
    loader = ctx.loaders.get("loyalty")
    if loader is None:

        async def load(ids: list[uuid.UUID]) -> list[LoyaltySummary | None]:
            found = await ctx.services.loyalty.summaries(ctx.session, ctx.caller, ids)
            return [found.get(i) for i in ids]

        loader = ctx.loaders["loyalty"] = DataLoader(load_fn=load)
    return cast(DataLoader[uuid.UUID, LoyaltySummary | None], loader)


def _loader(info: Info[GraphQLContext, None], name: str, day: datetime.date, load: Any) -> Any:
    """One DataLoader per (field, day) per request, so a page of customers is one query."""
    key = f"{name}:{day.isoformat()}"
    loader = info.context.loaders.get(key)
    if loader is None:
        loader = info.context.loaders[key] = DataLoader(load_fn=load)
    return loader


async def resolve_segment(
    root: strawberry.Parent[Any],
    info: Info[GraphQLContext, None],
    as_of: datetime.date | None = None,
) -> CustomerSegment | None:
    ctx = info.context
    day = as_of or ctx.services.clock.now().date()

    async def load(ids: list[uuid.UUID]) -> list[CustomerSegment | None]:
        found = await ctx.services.analytics.segments_of(ctx.session, ctx.caller, ids, day)
        return [CustomerSegment.of(found[i]) if i in found else None for i in ids]

    result: CustomerSegment | None = await _loader(info, "segment", day, load).load(root.id)
    return result


async def resolve_churn_risk(
    root: strawberry.Parent[Any],
    info: Info[GraphQLContext, None],
    as_of: datetime.date | None = None,
) -> ChurnRisk | None:
    ctx = info.context
    day = as_of or ctx.services.clock.now().date()

    async def load(ids: list[uuid.UUID]) -> list[ChurnRisk | None]:
        found = await ctx.services.analytics.churn_risks(ctx.session, ctx.caller, ids, day)
        return [ChurnRisk.of(found[i]) if i in found else None for i in ids]

    result: ChurnRisk | None = await _loader(info, "churn", day, load).load(root.id)
    return result


@strawberry.type(description="A customer file as the caller may see it.")
class Customer(Node):
    id: strawberry.ID = strawberry.field(resolver=_customer_id)

    name: str | None = _field("name", "Personal: clear, masked (first character + **) or denied.")
    customer_number: str | None = _field(
        "customer_number", "The business's own customer number (unique)."
    )
    gender: Gender | None = _field("gender", "As the customer states it.")
    birthday: str | None = strawberry.field(
        resolver=_value("birthday"),
        description="Sensitive: ISO date; masked keeps the year only (1990-**-**).",
        deprecation_reason="A string only for its masked form: use birthDate (a Date, like "
        "the inputs' birthday) and birthYear.",
    )
    birth_date: datetime.date | None = strawberry.field(
        resolver=_birth_date,
        description="Sensitive: the birthday in clear; null where the caller reads it "
        "masked (birthYear still answers) or where none is held.",
    )
    birth_year: int | None = strawberry.field(
        resolver=_birth_year,
        description="Sensitive: the year of the birthday, in clear or masked mode.",
    )
    phone: str | None = _field("phone", "Sensitive: E.164; masked 138****5678.")
    email: str | None = _field("email", "Sensitive; masked a***@example.com.")
    national_id: str | None = _field("national_id", "Sensitive; masked keeps the last 4.")
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
    price_sensitivity: Level | None = _field("price_sensitivity", "How much price sways them.")
    customization: Level | None = _field("customization", "How much they want tailoring.")
    upgrade_intent: Level | None = _field("upgrade_intent", "How keen they are to upgrade.")
    preferred_channel: InteractionChannel | None = _field(
        "preferred_channel", "The channel they prefer to be contacted on."
    )
    tags: list[str] | None = _field("tags")
    tier: CustomerTier | None = _field("tier", "Value tier, as last segmented or imported.")
    lifecycle: Lifecycle | None = _field("lifecycle", "Lifecycle stage, as last segmented.")
    need_type: NeedType | None = _field("need_type", "What the customer values most.")
    member_level: str | None = _field("member_level")
    owner_id: str | None = _field("owner_id")
    team: str | None = _field("team")
    referred_by_id: strawberry.ID | None = _field(
        "referred_by_id", "The referrer's id; null unless the caller may read the referrer."
    )
    created_at: datetime.datetime | None = _field("created_at")
    updated_at: datetime.datetime | None = _field("updated_at")
    phone_verified_at: datetime.datetime | None = _field(
        "phone_verified_at", "Readable only where the phone is."
    )
    email_verified_at: datetime.datetime | None = _field(
        "email_verified_at", "Readable only where the email is."
    )
    reviewed_at: datetime.datetime | None = _field("reviewed_at")
    segment: CustomerSegment | None = strawberry.field(
        resolver=resolve_segment,
        # Quintiles over every customer as of the day, batched per page.
        metadata=cost(weight=5),
        description="RFM, tier, lifecycle, need type and grade as of a day (default today).",
    )
    churn_risk: ChurnRisk | None = strawberry.field(
        resolver=resolve_churn_risk,
        # The purchase model (fitted once per day) and the signals, batched per page.
        metadata=cost(weight=10),
        description="Churn risk as of a day (default today), with its signals in words.",
    )
    merged_into_id: strawberry.ID | None = _field(
        "merged_into_id", "Set when this file was merged into another (the survivor)."
    )

    @strawberry.field(description="How complete and current the file is (see README).")
    def completeness(self, root: strawberry.Parent[Any]) -> Completeness:
        value = root.get("completeness")
        return Completeness(
            score=value.score,
            missing_fields=[graphql_name(f) for f in value.missing_fields],
            stale_fields=[graphql_name(f) for f in value.stale_fields],
            needs_review=value.needs_review,
            review_due_at=value.review_due_at,
        )

    @strawberry.field(
        metadata=paged(), description="This customer's interactions, newest first (batched)."
    )
    async def interactions(
        self,
        root: strawberry.Parent[Any],
        info: strawberry.Info[Any, None],
        first: int = 20,
        after: str | None = None,
    ) -> InteractionConnection:
        return await customer_interactions(info, root.id, first, after)

    @strawberry.field(
        metadata=paged(), description="Interactions, orders and complaints by time, newest first."
    )
    async def timeline(
        self,
        root: strawberry.Parent[Any],
        info: strawberry.Info[Any, None],
        first: int = 20,
        after: str | None = None,
    ) -> TimelineConnection:
        return await customer_timeline(info, root.id, first, after)

    @strawberry.field(
        metadata=cost(size=assumed(4)),
        description="Further mobiles, landlines, WeChat IDs and contact persons, oldest "
        "first (batched per page).",
    )
    async def contact_points(
        self, root: strawberry.Parent[Any], info: Info[GraphQLContext, Any]
    ) -> list[ContactPoint]:
        return await contact_points_of(info, root.id)

    @strawberry.field(
        metadata=cost(size=assumed(5)),
        description="Free-text notes (备注), oldest first, each with its history (batched "
        "per page); texts masked or FORBIDDEN as the policy gives customer_note.body.",
    )
    async def notes(
        self, root: strawberry.Parent[Any], info: Info[GraphQLContext, Any]
    ) -> list[CustomerNote]:
        return await notes_of(info, root.id)

    @strawberry.field(
        metadata=cost(size=assumed(6)), description="Consent history per purpose, oldest first."
    )
    async def consents(
        self, root: strawberry.Parent[Any], info: Info[GraphQLContext, Any]
    ) -> list[Consent] | None:
        return await consent_loader(info).load(root.id)

    @strawberry.field(
        metadata=paged(),
        description="This customer's orders, oldest first; null and FORBIDDEN "
        "at its path without order access.",
    )
    async def orders(
        self,
        root: strawberry.Parent[Any],
        info: Info[GraphQLContext, None],
        first: int = 20,
        after: str | None = None,
    ) -> OrderConnection | None:
        return await customer_orders(info, root.id, first, after)

    @strawberry.field(
        description="Points, member level, ledger and referral count; null and "
        "FORBIDDEN at its path without loyalty access."
    )
    async def loyalty(
        self, root: strawberry.Parent[Any], info: Info[GraphQLContext, None]
    ) -> Loyalty | None:
        summary = await loyalty_loader(info.context).load(root.id)
        if summary is None:
            return None
        return Loyalty(
            customer_id=summary.customer_id,
            balance=summary.balance,
            earned=summary.earned,
            level=summary.level,
            referral_count=summary.referral_count,
        )


@strawberry.type(description="A Relay connection of customers under the caller's row scope.")
class CustomerConnection(Connection[Customer]):
    total_count: int = strawberry.field(description="Customers matching the filter in scope.")


@strawberry.input(description="Filters on the customer list; all given ones must match.")
class CustomerFilterInput:
    customer_number: str | None = strawberry.field(
        default=None, description="The business's own customer number, exactly."
    )
    tier: CustomerTier | None = None
    lifecycle: Lifecycle | None = None
    need_type: NeedType | None = None
    industry: str | None = None
    region: str | None = None
    owner_id: str | None = None
    team: str | None = None
    created_from: datetime.datetime | None = strawberry.field(
        default=None, description="Only files created at or after this instant."
    )
    created_to: datetime.datetime | None = strawberry.field(
        default=None, description="Only files created before this instant."
    )
    tag: str | None = strawberry.field(default=None, description="Only files with this tag.")
    name: str | None = strawberry.field(
        default=None,
        description="Customers with this name: a whole name (any word order for Latin "
        "script), one word of a Latin-script name (surname or given name), or a Chinese "
        "surname (one character, or a compound such as 欧阳). Exact parts, no prefixes; "
        "needs `name` in clear under the X-Purpose (else FORBIDDEN); audited as a lookup. "
        "Not a campaign segment filter.",
    )

    def to_filter(self) -> CustomerFilter:
        """The domain filter; fields the API does not expose keep their defaults."""
        return CustomerFilter(
            customer_number=self.customer_number,
            tier=domain_value(self.tier),
            lifecycle=domain_value(self.lifecycle),
            need_type=domain_value(self.need_type),
            industry=self.industry,
            region=self.region,
            owner_id=self.owner_id,
            team=self.team,
            created_from=self.created_from,
            created_to=self.created_to,
            tag=self.tag,
            name=self.name,
        )


@strawberry.input(description="A new customer file.")
class CreateCustomerInput:
    name: str
    customer_number: str | None = strawberry.field(
        default=None, description="The business's own customer number; unique."
    )
    phone: str | None = None
    email: str | None = None
    national_id: str | None = None
    bank_card: str | None = None
    address: str | None = None
    birthday: datetime.date | None = None
    gender: Gender | None = None
    industry: str | None = None
    company_size: str | None = None
    region: str | None = None
    occupation: str | None = None
    source: str | None = None
    owner_id: str | None = None
    team: str | None = None


def new_customer(input: CreateCustomerInput) -> NewCustomer:
    return NewCustomer(
        name=input.name,
        customer_number=input.customer_number,
        phone=input.phone,
        email=input.email,
        national_id=input.national_id,
        bank_card=input.bank_card,
        address=input.address,
        birthday=input.birthday,
        gender=domain_value(input.gender),
        industry=input.industry,
        company_size=input.company_size,
        region=input.region,
        occupation=input.occupation,
        source=input.source,
        owner_id=input.owner_id,
        team=input.team,
    )


@strawberry.type(description="A customer file was created.")
class CustomerCreated:
    customer: Customer = strawberry.field(description="The new file as the caller may see it.")


UNSET: Any = strawberry.UNSET


@strawberry.input(description="Fields to change; omitted ones stay, null clears one.")
class UpdateCustomerInput:
    name: str | None = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    national_id: str | None = UNSET
    bank_card: str | None = UNSET
    address: str | None = UNSET
    birthday: datetime.date | None = UNSET
    gender: Gender | None = UNSET
    industry: str | None = UNSET
    company_size: str | None = UNSET
    region: str | None = UNSET
    occupation: str | None = UNSET
    source: str | None = UNSET
    preferences: str | None = UNSET
    potential_needs: str | None = UNSET
    expectations: str | None = UNSET
    price_sensitivity: Level | None = UNSET
    customization: Level | None = UNSET
    upgrade_intent: Level | None = UNSET
    preferred_channel: InteractionChannel | None = UNSET
    need_type: NeedType | None = UNSET
    owner_id: str | None = UNSET
    team: str | None = UNSET


def customer_changes(input: UpdateCustomerInput) -> CustomerChanges:
    """The fields given (null included); omitted ones are left out."""
    changes: CustomerChanges = {}
    if input.name is not UNSET:
        changes["name"] = input.name
    if input.phone is not UNSET:
        changes["phone"] = input.phone
    if input.email is not UNSET:
        changes["email"] = input.email
    if input.national_id is not UNSET:
        changes["national_id"] = input.national_id
    if input.bank_card is not UNSET:
        changes["bank_card"] = input.bank_card
    if input.address is not UNSET:
        changes["address"] = input.address
    if input.birthday is not UNSET:
        changes["birthday"] = input.birthday
    if input.gender is not UNSET:
        changes["gender"] = domain_value(input.gender)
    if input.industry is not UNSET:
        changes["industry"] = input.industry
    if input.company_size is not UNSET:
        changes["company_size"] = input.company_size
    if input.region is not UNSET:
        changes["region"] = input.region
    if input.occupation is not UNSET:
        changes["occupation"] = input.occupation
    if input.source is not UNSET:
        changes["source"] = input.source
    if input.preferences is not UNSET:
        changes["preferences"] = input.preferences
    if input.potential_needs is not UNSET:
        changes["potential_needs"] = input.potential_needs
    if input.expectations is not UNSET:
        changes["expectations"] = input.expectations
    if input.price_sensitivity is not UNSET:
        changes["price_sensitivity"] = domain_value(input.price_sensitivity)
    if input.customization is not UNSET:
        changes["customization"] = domain_value(input.customization)
    if input.upgrade_intent is not UNSET:
        changes["upgrade_intent"] = domain_value(input.upgrade_intent)
    if input.preferred_channel is not UNSET:
        changes["preferred_channel"] = domain_value(input.preferred_channel)
    if input.need_type is not UNSET:
        changes["need_type"] = domain_value(input.need_type)
    if input.owner_id is not UNSET:
        changes["owner_id"] = input.owner_id
    if input.team is not UNSET:
        changes["team"] = input.team
    return changes


@strawberry.type(description="A customer file was changed.")
class CustomerUpdated:
    customer: Customer | None = strawberry.field(
        description="Null when the change moved the file out of the caller's scope."
    )
    changed_fields: list[str] = strawberry.field(
        description="The fields that changed, by GraphQL name."
    )


@strawberry.type(description="A duplicate file was folded into the survivor.")
class CustomersMerged:
    survivor: Customer = strawberry.field(description="The file that remains.")
    duplicate_id: strawberry.ID = strawberry.field(
        description="The file merged away (keeps mergedIntoId)."
    )
    filled_fields: list[str] = strawberry.field(
        description="Facts the survivor took from the duplicate."
    )


@strawberry.type(description="Another file sharing a contact with the one asked about.")
class DuplicateCandidate:
    customer: Customer = strawberry.field(description="The other file.")
    matched_on: list[str] = strawberry.field(description="phone, email and/or nationalId.")


@strawberry.type(
    description="Two files found to share a contact by a write whose caller could not be "
    "told (the other file outside its scope, or the field not in clear for it). Listed to "
    "callers whose scope covers both files and who read the field in clear."
)
class DuplicateFlag:
    id: strawberry.ID = strawberry.field(description="The flag's id.")
    customer_id: strawberry.ID = strawberry.field(description="The file the write made.")
    matched_customer_id: strawberry.ID = strawberry.field(
        description="The existing file it matched."
    )
    matched_on: str = strawberry.field(description="phone, email or nationalId.")
    raised_at: datetime.datetime = strawberry.field(description="When the write found the match.")
    raised_by: str = strawberry.field(description="Whose write it was.")
