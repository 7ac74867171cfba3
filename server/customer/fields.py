"""The customer fields a caller can read, with their data classes (from the model)."""

from __future__ import annotations

from server.data.base import DataClass
from server.data.models import Customer

# Columns that never leave the server through the customer view.
HIDDEN = frozenset({"phone_bidx", "email_bidx", "national_id_bidx", "bidx_key_version"})

CUSTOMER_FIELD_CLASSES: dict[str, DataClass] = {
    col.key: col.info["data_class"] for col in Customer.__table__.columns if col.key not in HIDDEN
}
SEALED_CUSTOMER_FIELDS = frozenset(k for k, v in CUSTOMER_FIELD_CLASSES.items() if v.sealed)
