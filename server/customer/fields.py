"""The customer domain's field tables, all derived from the field registry
(server/data/customer_fields.py): declare a field there, not here."""

from __future__ import annotations

from collections.abc import Callable

from server.data.base import DataClass
from server.data.customer_fields import BLIND_INDEXED, CUSTOMER_FIELDS
from server.vault.normalise import CUSTOMER_NORMALISERS

__all__ = [
    "BLIND_INDEXED",
    "CHOICES",
    "CUSTOMER_FIELD_CLASSES",
    "EDITABLE",
    "FILLABLE",
    "FILTERABLE",
    "IMPORTABLE",
    "NORMALISERS",
    "REQUIRED",
    "SEALED_CUSTOMER_FIELDS",
    "VERIFIED_AT",
]

# The fields a caller can read, with their data classes.
CUSTOMER_FIELD_CLASSES: dict[str, DataClass] = {
    f.name: f.data_class for f in CUSTOMER_FIELDS if f.readable
}
SEALED_CUSTOMER_FIELDS = frozenset(k for k, v in CUSTOMER_FIELD_CLASSES.items() if v.sealed)
# What `updateCustomer` may change. Segments (tier, lifecycle) belong to analytics;
# verification and review stamps have their own mutations.
EDITABLE = frozenset(f.name for f in CUSTOMER_FIELDS if f.editable)
# Facts a survivor takes from its duplicate when it lacks them.
FILLABLE = tuple(sorted(f.name for f in CUSTOMER_FIELDS if f.fillable))
# Allowed values of the fields that have a fixed set.
CHOICES: dict[str, tuple[str, ...]] = {f.name: f.choices for f in CUSTOMER_FIELDS if f.choices}
# Canonical forms: values are checked and stored normalised (and blind-indexed so).
NORMALISERS: dict[str, Callable[[str], str]] = CUSTOMER_NORMALISERS
# Contact → the column stamped when the customer confirms it.
VERIFIED_AT: dict[str, str] = {
    f.name: f.verified_at for f in CUSTOMER_FIELDS if f.verified_at is not None
}
# Equality filters of the customer list and campaign segments.
FILTERABLE = tuple(f.name for f in CUSTOMER_FIELDS if f.filterable)
# Spreadsheet import columns, and those a row must have.
IMPORTABLE = frozenset(f.name for f in CUSTOMER_FIELDS if f.importable)
REQUIRED = frozenset(f.name for f in CUSTOMER_FIELDS if f.required)
