"""Every customer field, declared once.

A `CustomerField` says what a column of `customers` is and where it may travel: its data
class, its GraphQL name, which inputs set it, whether the customer list filters on it,
how it is masked, what it weighs in the completeness score, its allowed values and
length, and its blind index and canonical form. Everything else is derived from
`CUSTOMER_FIELDS`: the model's data classes and text lengths
(`server/data/models/customer.py`), the domain's tables (`server/customer/fields.py`,
`server/customer/completeness.py`), the import columns (`server/imports/service.py`),
the masks and normalisers (`server/vault/`) and the GraphQL name mapping
(`schema/types/customer.py`). The hand-written types (the GraphQL inputs and output,
`NewCustomer`, `CustomerChanges`, `CustomerFilter`) are checked against it by
`tests/test_customer_fields.py`, so a field added or renamed in one place only fails a test.

This module depends on nothing above the data layer, so the model can read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypedDict

from server.data.base import DataClass

PUB, INT, PER, SEN = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.PERSONAL, DataClass.SENSITIVE


class Mask(enum.StrEnum):
    """The format-preserving mask a sealed field shows in `masked` mode (server/vault/masking)."""

    TEXT = "text"
    NAME = "name"
    PHONE = "phone"
    EMAIL = "email"
    NATIONAL_ID = "national_id"
    BANK_CARD = "bank_card"
    DATE = "date"


class Normaliser(enum.StrEnum):
    """The canonical form a value is checked, stored and compared in (server/vault/normalise)."""

    PHONE = "phone"
    EMAIL = "email"
    NATIONAL_ID = "national_id"
    BANK_CARD = "bank_card"


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerField:
    name: str
    """The domain name: model column, view key, import column and audit field name."""
    description: str
    """What the field holds, for people: the GraphQL description of every field named
    after it (output, inputs, filters) unless that field says more."""
    data_class: DataClass
    graphql_name: str | None = None
    """Overrides the GraphQL name, which is otherwise strawberry's camelCase of `name`."""
    readable: bool = True
    """The customer view may carry it; False for columns that never leave the server."""
    output: bool = True
    """A field of the GraphQL `Customer` type, resolved from the view."""
    new: bool = False
    """An argument of `NewCustomer`: a new file may be given it."""
    required: bool = False
    """A new file must have it (non-null in the create input, a required import column)."""
    creatable: bool = False
    """A field of `CreateCustomerInput`."""
    editable: bool = False
    """A field of `UpdateCustomerInput` and `CustomerChanges`."""
    importable: bool = False
    """A column of spreadsheet imports (`custos import customers`)."""
    row_importable: bool = False
    """A field of the rows of `importCustomers` (`ImportCustomerRowInput`)."""
    filterable: bool = False
    """An equality filter of the customer list and of campaign segments."""
    fillable: bool = False
    """A merge takes it from the duplicate when the survivor lacks it."""
    mask: Mask | None = None
    """The mask of a sealed field (every sealed field has one, no other field has)."""
    weight: int = 0
    """Its weight in the completeness score (weights sum to 100)."""
    choices: tuple[str, ...] = ()
    """Allowed values (a closed set, a GraphQL enum); empty means any."""
    max_length: int | None = None
    """The length of a text column (the model's `String(n)`)."""
    blind_index: str | None = None
    """The column holding its blind index: equality lookup and duplicate checks."""
    normaliser: Normaliser | None = None
    """The canonical form values are checked and stored in."""
    verified_at: str | None = None
    """The column stamped when the customer confirms it; cleared when it changes."""


LEVELS = ("low", "medium", "high")
# Segments the analytics jobs write (server/analytics): an import may bring its own, but
# only in this vocabulary.
TIERS = ("high", "mid", "low")
LIFECYCLES = ("new", "active", "at_risk", "churned", "won_back")
CHANNELS = ("phone", "email", "wechat", "sms", "chat", "visit", "meeting")
NEED_TYPES = ("quality", "value", "service")
GENDERS = ("female", "male", "other")


class _Flags(TypedDict, total=False):
    new: bool
    creatable: bool
    editable: bool
    importable: bool
    row_importable: bool
    readable: bool
    output: bool


# A basic fact: a file is created or imported with it, and an update may change it.
FACT: _Flags = {
    "new": True,
    "creatable": True,
    "editable": True,
    "importable": True,
    "row_importable": True,
}
# A column that never leaves the server: not in the view, the API or an export.
HIDDEN: _Flags = {"readable": False, "output": False}

# The completeness score lists missing and stale facts in this order (weighted ones first
# within basic facts and needs, as the README lists them).
CUSTOMER_FIELDS: tuple[CustomerField, ...] = (
    CustomerField(name="id", description="The file's id.", data_class=PUB, output=False),
    # When the person became a customer (the business's own "customer since" for imported
    # files, so they do not count as new): new-customer counts and lifecycle read it.
    CustomerField(
        name="created_at",
        description="When the person became a customer.",
        data_class=INT,
        new=True,
        importable=True,
    ),
    CustomerField(name="updated_at", description="When the file last changed.", data_class=INT),
    # The business's own customer number ("C-00017"): unique, an equality filter, and an
    # order import's `customer_ref`. Not personal: a reference the business assigns.
    CustomerField(
        name="customer_number",
        description="The business's own customer number (unique).",
        data_class=INT,
        new=True,
        creatable=True,
        importable=True,
        row_importable=True,
        filterable=True,
        max_length=32,
    ),
    # Basic facts. Name is personal; contact and identity facts are sensitive.
    CustomerField(
        name="name",
        description="The customer's name.",
        data_class=PER,
        **FACT,
        required=True,
        mask=Mask.NAME,
        weight=10,
    ),
    CustomerField(
        name="phone",
        description="Mobile or landline phone, stored in E.164.",
        data_class=SEN,
        **FACT,
        fillable=True,
        mask=Mask.PHONE,
        weight=10,
        blind_index="phone_bidx",
        normaliser=Normaliser.PHONE,
        verified_at="phone_verified_at",
    ),
    CustomerField(
        name="email",
        description="Email address, stored lower-cased.",
        data_class=SEN,
        **FACT,
        fillable=True,
        mask=Mask.EMAIL,
        weight=10,
        blind_index="email_bidx",
        normaliser=Normaliser.EMAIL,
        verified_at="email_verified_at",
    ),
    CustomerField(
        name="address",
        description="Postal address.",
        data_class=SEN,
        **FACT,
        fillable=True,
        mask=Mask.TEXT,
        weight=5,
    ),
    CustomerField(
        name="birthday",
        description="Date of birth.",
        data_class=SEN,
        **FACT,
        fillable=True,
        mask=Mask.DATE,
        weight=5,
    ),
    CustomerField(
        name="industry",
        description="The customer's industry.",
        data_class=INT,
        **FACT,
        fillable=True,
        filterable=True,
        weight=5,
        max_length=64,
    ),
    CustomerField(
        name="region",
        description="Region or city.",
        data_class=INT,
        **FACT,
        fillable=True,
        filterable=True,
        weight=5,
        max_length=64,
    ),
    CustomerField(
        name="occupation",
        description="The customer's occupation.",
        data_class=INT,
        **FACT,
        fillable=True,
        weight=4,
        max_length=64,
    ),
    CustomerField(
        name="gender",
        description="Gender, as the customer states it.",
        data_class=INT,
        **FACT,
        fillable=True,
        weight=3,
        choices=GENDERS,
        max_length=16,
    ),
    CustomerField(
        name="company_size",
        description="Size of the customer's company, in the source's words.",
        data_class=INT,
        **FACT,
        fillable=True,
        weight=3,
        max_length=32,
    ),
    CustomerField(
        name="national_id",
        description="National ID number (checked: length and check digit).",
        data_class=SEN,
        **FACT,
        fillable=True,
        mask=Mask.NATIONAL_ID,
        blind_index="national_id_bidx",
        normaliser=Normaliser.NATIONAL_ID,
    ),
    CustomerField(
        name="bank_card",
        description="Bank card number (checked: Luhn).",
        data_class=SEN,
        **FACT,
        fillable=True,
        mask=Mask.BANK_CARD,
        normaliser=Normaliser.BANK_CARD,
    ),
    CustomerField(
        name="source",
        description="Where the customer came from (campaign, referral, import ...).",
        data_class=INT,
        **FACT,
        fillable=True,
        max_length=32,
    ),
    # Needs profile. Free-text needs are personal; scales and choices are internal.
    CustomerField(
        name="preferences",
        description="What the customer likes, in free text.",
        data_class=PER,
        editable=True,
        fillable=True,
        mask=Mask.TEXT,
        weight=8,
    ),
    CustomerField(
        name="potential_needs",
        description="Needs the customer may have, in free text.",
        data_class=PER,
        editable=True,
        fillable=True,
        mask=Mask.TEXT,
        weight=7,
    ),
    CustomerField(
        name="expectations",
        description="What the customer expects of us, in free text.",
        data_class=PER,
        editable=True,
        fillable=True,
        mask=Mask.TEXT,
        weight=5,
    ),
    CustomerField(
        name="preferred_channel",
        description="The channel the customer prefers to be contacted on.",
        data_class=INT,
        editable=True,
        fillable=True,
        weight=5,
        choices=CHANNELS,
        max_length=16,
    ),
    CustomerField(
        name="price_sensitivity",
        description="How much price sways the customer.",
        data_class=INT,
        editable=True,
        fillable=True,
        weight=4,
        choices=LEVELS,
        max_length=16,
    ),
    CustomerField(
        name="customization",
        description="How much the customer wants things tailored.",
        data_class=INT,
        editable=True,
        fillable=True,
        weight=3,
        choices=LEVELS,
        max_length=16,
    ),
    CustomerField(
        name="upgrade_intent",
        description="How keen the customer is to upgrade.",
        data_class=INT,
        editable=True,
        fillable=True,
        weight=3,
        choices=LEVELS,
        max_length=16,
    ),
    CustomerField(name="tags", description="Free labels; filter the list by one.", data_class=INT),
    # Segmentation, kept current by the analytics jobs; imports may bring their own.
    CustomerField(
        name="tier",
        description="Value tier, as last segmented or imported.",
        data_class=INT,
        new=True,
        importable=True,
        row_importable=True,
        filterable=True,
        choices=TIERS,
        max_length=8,
    ),
    CustomerField(
        name="lifecycle",
        description="Lifecycle stage, as last segmented.",
        data_class=INT,
        new=True,
        importable=True,
        filterable=True,
        choices=LIFECYCLES,
        max_length=16,
    ),
    CustomerField(
        name="need_type",
        description="What the customer values most.",
        data_class=INT,
        editable=True,
        fillable=True,
        filterable=True,
        choices=NEED_TYPES,
        max_length=24,
    ),
    CustomerField(
        name="member_level", description="Loyalty member level.", data_class=INT, max_length=16
    ),
    # Ownership: row scope `own` is owner_id = subject, `team` is team = principal team.
    CustomerField(
        name="owner_id",
        description="The account manager's subject (row scope own).",
        data_class=INT,
        **FACT,
        filterable=True,
        max_length=128,
    ),
    CustomerField(
        name="team",
        description="The owning team (row scope team).",
        data_class=INT,
        **FACT,
        filterable=True,
        max_length=64,
    ),
    CustomerField(
        name="referred_by_id",
        description="The referrer's id; null unless the caller may read the referrer.",
        data_class=INT,
    ),
    CustomerField(
        name="merged_into_id",
        description="Set when this file was merged into another (the survivor).",
        data_class=INT,
    ),
    # Verification and review stamps have their own mutations.
    CustomerField(
        name="phone_verified_at",
        description="When the customer confirmed the phone; readable only where the phone is.",
        data_class=INT,
        weight=3,
    ),
    CustomerField(
        name="email_verified_at",
        description="When the customer confirmed the email; readable only where the email is.",
        data_class=INT,
        weight=2,
    ),
    CustomerField(
        name="reviewed_at",
        description="When the file was last reviewed as current.",
        data_class=INT,
    ),
    CustomerField(
        name="erased_at",
        description="When the file was erased (crypto-shredded).",
        data_class=INT,
        output=False,
    ),
    # Blind indexes: truncated keyed HMACs of normalised values, for equality lookup only.
    CustomerField(
        name="phone_bidx", description="Blind index of the phone.", data_class=INT, **HIDDEN
    ),
    CustomerField(
        name="email_bidx", description="Blind index of the email.", data_class=INT, **HIDDEN
    ),
    CustomerField(
        name="national_id_bidx",
        description="Blind index of the national ID.",
        data_class=INT,
        **HIDDEN,
    ),
    CustomerField(
        name="bidx_key_version",
        description="Key version of the blind indexes.",
        data_class=INT,
        **HIDDEN,
    ),
)

CUSTOMER_FIELD_BY_NAME: dict[str, CustomerField] = {f.name: f for f in CUSTOMER_FIELDS}
"""The declaration of each field by its domain name."""

BLIND_INDEXED: dict[str, str] = {
    f.name: f.blind_index for f in CUSTOMER_FIELDS if f.blind_index is not None
}
"""Searchable field → the column holding its blind index."""
