"""Data-subject rights over GraphQL: consent per purpose, export of one person, erasure.

Erasure is crypto-shredding: the customer's shred secret is destroyed at the key
provider, so the wrapped DEK (wherever a copy of it lives, backups included) no longer
opens, and every sealed value of the person in every table is dead. Non-personal facts
(orders, totals, timestamps) stay for aggregates.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from server.caller import Caller
from server.customer.repository import scope_predicate
from server.data.base import Base, DataClass, new_id
from server.data.customer_fields import CUSTOMER_FIELDS
from server.data.models import Consent
from server.errors import ConflictError, ValidationError, VaultError
from server.privacy.repository import PrivacyRepository, customer_owned_tables
from server.vault import DataKey, FieldRef, Vault

CUSTOMERS = Base.metadata.tables["customers"]
CUSTOMER = "customer"
CONSENT = "consent"
CONSENT_PURPOSES = ("marketing", "analytics", "third_party_sharing")
# Columns an export leaves out: search handles and key bookkeeping, not facts about anyone
# (the registry's unreadable fields).
EXPORT_HIDDEN = frozenset(f.name for f in CUSTOMER_FIELDS if not f.readable)


async def has_consent(
    session: AsyncSession, customer_ids: Collection[uuid.UUID], purpose: str
) -> set[uuid.UUID]:
    """The subset of `customer_ids` with an active (granted, not withdrawn) consent.

    Set-based: one SQL query for any number of ids. Erased customers never consent. For
    system jobs (campaign targeting, partner sharing) that gate on consent; it does no
    authorization of its own.
    """
    if purpose not in CONSENT_PURPOSES:
        raise ValidationError(
            f"purpose must be one of {', '.join(CONSENT_PURPOSES)}", code="BAD_PURPOSE"
        )
    if not customer_ids:
        return set()
    return await PrivacyRepository(session).consenting(customer_ids, purpose)


@dataclass(frozen=True, slots=True)
class ConsentView:
    id: uuid.UUID
    customer_id: uuid.UUID
    purpose: str
    granted_at: datetime
    withdrawn_at: datetime | None
    source: str
    recorded_by: str

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    @classmethod
    def of(cls, row: Consent) -> ConsentView:
        return cls(
            row.id,
            row.customer_id,
            row.purpose,
            row.granted_at,
            row.withdrawn_at,
            row.source,
            row.recorded_by,
        )


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    customer_id: uuid.UUID
    erased_at: datetime
    # The survivor and every duplicate merged into it: all erased together.
    erased_ids: tuple[uuid.UUID, ...] = ()


class PrivacyService:
    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    async def _customer(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, obj: str, action: str
    ) -> Any:
        """The customer an `action` on `obj` is about, under the caller's row scope for it;
        unknown and out-of-scope ids alike answer NOT_FOUND."""
        scope = caller.gate.row_scope(obj, action, target=customer_id)
        row = await PrivacyRepository(session).customer_with_key(
            customer_id, scope_predicate(scope, caller.principal)
        )
        if row is None:
            raise caller.gate.not_found(obj, action, customer_id, what=CUSTOMER)
        return row

    async def _file(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, action: str
    ) -> list[Any]:
        """One person's whole file for an export or erasure, by any of its ids: the
        surviving customer (under the caller's row scope for `action`) first, then every
        duplicate merged into it, whose own values belong to the same person."""
        scope = caller.gate.row_scope(CUSTOMER, action, target=customer_id)
        repo = PrivacyRepository(session)
        survivor_id = await repo.survivor_of(customer_id)
        survivor = None
        if survivor_id is not None:
            survivor = await repo.customer_with_key(
                survivor_id, scope_predicate(scope, caller.principal)
            )
        if survivor is None:
            raise caller.gate.not_found(CUSTOMER, action, customer_id, what=CUSTOMER)
        merged = await repo.merged_into(survivor.id)
        return [survivor, *(await repo.customers_with_keys(merged) if merged else [])]

    # --- consent

    async def consents(
        self, session: AsyncSession, caller: Caller, customer_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[ConsentView]]:
        """Consent history (newest last) of customers the caller has already been shown."""
        caller.gate.require(CONSENT, "read")
        rows = await PrivacyRepository(session).consents_of(customer_ids)
        found: dict[uuid.UUID, list[ConsentView]] = {cid: [] for cid in customer_ids}
        for row in rows:
            found[row.customer_id].append(ConsentView.of(row))
        caller.audit.read(CONSENT, (r.id for r in rows), {"purpose": "clear", "source": "clear"})
        return found

    def _purpose(self, purpose: str) -> str:
        if purpose not in CONSENT_PURPOSES:
            raise ValidationError(
                f"purpose must be one of {', '.join(CONSENT_PURPOSES)}", code="BAD_PURPOSE"
            )
        return purpose

    async def grant_consent(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        purpose: str,
        source: str,
        *,
        now: datetime,
    ) -> ConsentView:
        """Record a grant. Granting an already active purpose returns it unchanged."""
        caller.gate.require(CONSENT, "update", target=customer_id)
        purpose = self._purpose(purpose)
        source = source.strip()
        if not source or len(source) > 64:
            raise ValidationError(
                "source must be 1 to 64 characters", code="BAD_SOURCE", field="source"
            )
        customer = await self._customer(session, caller, customer_id, CONSENT, "update")
        if customer.erased_at is not None:
            raise ConflictError("this customer has been erased", code="ERASED")
        repo = PrivacyRepository(session)
        active = await repo.active_consent(customer_id, purpose)
        if active is not None:
            return ConsentView.of(active)
        consent = Consent(
            id=new_id(),
            customer_id=customer_id,
            purpose=purpose,
            granted_at=now,
            source=source,
            recorded_by=caller.principal.subject,
        )
        await repo.add_consent(consent)
        caller.audit.change(CONSENT, "grant", consent.id, ["purpose", "source"])
        return ConsentView.of(consent)

    async def withdraw_consent(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        purpose: str,
        *,
        now: datetime,
    ) -> ConsentView:
        caller.gate.require(CONSENT, "update", target=customer_id)
        purpose = self._purpose(purpose)
        await self._customer(session, caller, customer_id, CONSENT, "update")
        repo = PrivacyRepository(session)
        active = await repo.active_consent(customer_id, purpose)
        if active is None:
            raise ConflictError("no active consent for this purpose", code="NOT_GRANTED")
        await repo.withdraw(active.id, now)
        caller.audit.change(CONSENT, "withdraw", active.id, ["withdrawn_at"])
        view = ConsentView.of(active)
        return ConsentView(
            view.id,
            view.customer_id,
            view.purpose,
            view.granted_at,
            now,
            view.source,
            view.recorded_by,
        )

    # --- export

    async def export(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID
    ) -> dict[str, Any]:
        """Everything held about one person, decrypted, as JSON-ready data: by the id of
        the surviving file or of any duplicate merged into it, the survivor's records and
        each merged duplicate's own values (`merged_customers`)."""
        # Export needs `X-Purpose: compliance` (vocabulary REQUIRED_PURPOSES): the gate
        # asks for it with the scope.
        survivor, *merged = await self._file(session, caller, customer_id, "export")
        if survivor.erased_at is not None:
            raise ConflictError("this customer has been erased", code="ERASED")
        key = self.vault.open_data_key(
            survivor.id, survivor.key_kek_version, survivor.key_wrapped_dek
        )
        repo = PrivacyRepository(session)
        exported: dict[str, set[str]] = {}
        undecryptable: list[str] = []
        customer = self._record(
            key, CUSTOMERS, survivor, exported, undecryptable, hidden=EXPORT_HIDDEN
        )
        result: dict[str, Any] = {"customer": customer}
        result["merged_customers"] = [
            self._merged_record(row, exported, undecryptable) for row in merged
        ]
        for table in customer_owned_tables():
            rows = await repo.rows_of(table, survivor.id)
            result[str(table.name)] = [
                self._record(key, table, r, exported, undecryptable) for r in rows
            ]
        result["undecryptable"] = sorted(set(undecryptable))
        # Everything went out in clear: the customer's fields by name (as reads record
        # them), the owned tables' as `table.column`.
        fields = {name: "clear" for name in exported.get(CUSTOMERS.name, ())}
        fields |= {
            f"{table}.{name}": "clear"
            for table, names in exported.items()
            if table != CUSTOMERS.name
            for name in names
        }
        caller.audit.export(
            CUSTOMER,
            [survivor.id, *(row.id for row in merged)],
            fields,
            (f"{table}.{name}" for table, names in exported.items() for name in names),
        )
        return result

    def _merged_record(
        self, row: Any, exported: dict[str, set[str]], undecryptable: list[str]
    ) -> dict[str, Any]:
        """A merged duplicate's own values, opened with its own key."""
        try:
            key: DataKey | None = self.vault.open_data_key(
                row.id, row.key_kek_version, row.key_wrapped_dek
            )
        except VaultError:
            key = None
        return self._record(key, CUSTOMERS, row, exported, undecryptable, hidden=EXPORT_HIDDEN)

    def _record(
        self,
        key: DataKey | None,
        table: Table | Any,
        row: Any,
        exported: dict[str, set[str]],
        undecryptable: list[str],
        hidden: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for column in table.c:
            name = column.key
            # A search handle (a blind index and its key version) is no fact about the
            # person: left out like the customer's own blind indexes.
            if name in hidden or column.info.get("search_handle"):
                continue
            value = getattr(row, name)
            data_class = column.info.get("data_class")
            if value is not None and isinstance(data_class, DataClass) and data_class.sealed:
                try:
                    if key is None:
                        raise VaultError("the data key does not open")
                    value = self.vault.reveal(key, FieldRef(table.name, name, row.id), value)
                except VaultError:
                    undecryptable.append(f"{table.name}.{name}")
                    value = None
            record[str(name)] = _json_value(value)
            exported.setdefault(str(table.name), set()).add(str(name))
        return record

    # --- erasure

    async def erase(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, *, now: datetime
    ) -> ErasureReceipt:
        """Crypto-shred one person, by the id of the surviving file or of any duplicate
        merged into it: the survivor and every merged duplicate, each with its own key.
        Erasing an erased customer is refused (ALREADY_ERASED).

        The shred secrets are destroyed at the key provider before the database commits:
        if the transaction then fails, the data is unreadable but not yet marked erased,
        and erasing again completes it (erasure never half-fails towards keeping data).
        """
        survivor, *merged = await self._file(session, caller, customer_id, "erase")
        if survivor.erased_at is not None:
            raise ConflictError("this customer is already erased", code="ALREADY_ERASED")
        sealed = [
            f"{table.name}.{column.key}"
            for table in (CUSTOMERS, *customer_owned_tables())
            for column in table.c
            if isinstance(column.info.get("data_class"), DataClass)
            and column.info["data_class"].sealed
        ]
        repo = PrivacyRepository(session)
        erased: list[uuid.UUID] = []
        for row in (survivor, *merged):
            if row.erased_at is not None and row is not survivor:
                continue
            self.vault.shred(row.id)
            await repo.erase_customer(row.id, now)
            caller.audit.change(CUSTOMER, "erase", row.id, sealed)
            erased.append(row.id)
        return ErasureReceipt(customer_id, now, tuple(erased))


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
