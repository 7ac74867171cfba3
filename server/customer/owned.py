"""Records a customer owns (interactions, complaints, orders): who may see which rows.

A row of an owned type is visible exactly when the caller may act on the type and its
customer is visible under the caller's row scope for that action
(`caller.gate.row_scope(type, action)`, made a SQL predicate on `customers` by
`scope_predicate` and joined on `customer_id`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from server.authz.authorizer import FieldMode
from server.caller import Caller
from server.customer.repository import CustomerRepository
from server.customer.service import DENIED, UNDECRYPTABLE
from server.errors import ForbiddenError, NotFoundError, VaultError
from server.vault import DataKey, FieldRef, Vault
from server.vault.masking import mask


async def visible_customer_key(
    session: AsyncSession, vault: Vault, customer_id: uuid.UUID, scope: ColumnElement[bool]
) -> DataKey | None:
    """The data key of a live customer the caller can see; None alike for unknown and
    out-of-scope ids (the caller answers with `caller.gate.not_found`)."""
    row = await CustomerRepository(session).key_in_scope(customer_id, scope)
    if row is None:
        return None
    return vault.open_data_key(customer_id, row.kek_version, row.wrapped_dek)


async def refused_record(
    session: AsyncSession,
    caller: Caller,
    obj: str,
    action: str,
    model: type[Any],
    record_id: uuid.UUID,
) -> NotFoundError:
    """NOT_FOUND for a record id that is unknown or outside the caller's scope, audited
    with the id and, when the record exists, with its customer's id too: so the attempt
    shows in that customer's trail (`auditEvents(filter: {customerId})`)."""
    customer_id = await CustomerRepository(session).owner_of(model, record_id)
    return caller.gate.not_found(obj, action, record_id, customer_id=customer_id)


class RecordView:
    """An owned record as this caller may see it: plain values, revealed or masked text;
    a denied field raises FORBIDDEN at its own path when resolved."""

    __slots__ = ("id", "object_type", "values")

    def __init__(self, object_type: str, record_id: uuid.UUID, values: dict[str, Any]) -> None:
        self.object_type = object_type
        self.id = record_id
        self.values = values

    def get(self, name: str) -> Any:
        value = self.values.get(name)
        if value is DENIED:
            raise ForbiddenError(f"not allowed to read {self.object_type}.{name}")
        if value is UNDECRYPTABLE:
            raise VaultError(f"{self.object_type}.{name} cannot be decrypted")
        return value


def sealed_modes(
    caller: Caller, object_type: str, model: type[Any], fields: Collection[str]
) -> dict[str, FieldMode]:
    """Field modes for the sealed columns of `model` among `fields`, decided once."""
    modes: dict[str, FieldMode] = {}
    for name in fields:
        col = model.__table__.columns.get(name)
        if col is None or not col.info["data_class"].sealed:
            continue
        modes[name] = caller.gate.field_mode(object_type, name, col.info["data_class"])
    return modes


class SealedReader:
    """Reveals the sealed fields of owned rows with their customer's data key."""

    def __init__(self, vault: Vault, table: str, modes: dict[str, FieldMode]) -> None:
        self.vault = vault
        self.table = table
        self.modes = modes

    def reveal(
        self,
        row_id: uuid.UUID,
        customer_id: uuid.UUID,
        kek_version: int | None,
        wrapped: bytes | None,
        ciphertexts: dict[str, bytes | None],
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        key: DataKey | None = None
        key_failed = False
        for name, mode in self.modes.items():
            ciphertext = ciphertexts.get(name)
            if mode is FieldMode.NONE:
                values[name] = DENIED
                continue
            if ciphertext is None:
                values[name] = None
                continue
            if key is None and not key_failed:
                try:
                    key = self.vault.open_data_key(customer_id, kek_version, wrapped)
                except VaultError:
                    key_failed = True
            if key is None:
                values[name] = UNDECRYPTABLE
                continue
            try:
                text = self.vault.reveal(key, FieldRef(self.table, name, row_id), ciphertext)
            except VaultError:
                values[name] = UNDECRYPTABLE
                continue
            values[name] = mask(name, text) if mode is FieldMode.MASKED else text
        return values

    def audit_modes(self) -> dict[str, str]:
        return {f: m.value for f, m in self.modes.items() if m is not FieldMode.NONE}

    def denied(self) -> list[str]:
        return [f for f, m in self.modes.items() if m is FieldMode.NONE]
