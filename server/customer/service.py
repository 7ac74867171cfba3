"""Customer files: authorize, fetch under row scope, reveal through the vault, audit.

Field modes and row scope are decided once per call from the caller's `AccessDecisions`;
rows are then revealed in one loop with one data key per customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, true
from sqlalchemy.ext.asyncio import AsyncSession

from server.authz.authorizer import FieldMode
from server.caller import Caller
from server.clock import Clock
from server.customer.fields import CUSTOMER_FIELD_CLASSES, SEALED_CUSTOMER_FIELDS
from server.customer.repository import CustomerFilter, CustomerRepository, scope_predicate
from server.data.base import new_id, utcnow
from server.data.models import Customer, CustomerKey
from server.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError, VaultError
from server.vault import DataKey, FieldRef, Vault
from server.vault.masking import mask
from server.vault.normalise import (
    normalise_bank_card,
    normalise_email,
    normalise_national_id,
    normalise_phone,
)

OBJECT = "customer"
TABLE = "customers"
BLIND_INDEXED = {"phone": "phone_bidx", "email": "email_bidx", "national_id": "national_id_bidx"}
NORMALISERS = {
    "phone": normalise_phone,
    "email": normalise_email,
    "national_id": normalise_national_id,
}


class FieldDenied:
    """Marks a field the caller may not read; resolving it raises FORBIDDEN at its path."""

    __slots__ = ()


class FieldUndecryptable:
    __slots__ = ()


DENIED = FieldDenied()
UNDECRYPTABLE = FieldUndecryptable()


class CustomerView:
    """A customer as this caller may see it: plain values, revealed or masked text."""

    __slots__ = ("id", "values")

    def __init__(self, customer_id: uuid.UUID, values: dict[str, Any]) -> None:
        self.id = customer_id
        self.values = values

    def get(self, name: str) -> Any:
        value = self.values.get(name)
        if value is DENIED:
            raise ForbiddenError(f"not allowed to read customer.{name}")
        if value is UNDECRYPTABLE:
            raise VaultError(f"customer.{name} cannot be decrypted")
        return value


@dataclass(frozen=True, slots=True)
class CustomerPage:
    views: list[CustomerView]
    has_next_page: bool
    total_count: int | None


@dataclass(frozen=True, slots=True)
class NewCustomer:
    name: str
    phone: str | None = None
    email: str | None = None
    national_id: str | None = None
    bank_card: str | None = None
    address: str | None = None
    birthday: date | None = None
    gender: str | None = None
    industry: str | None = None
    company_size: str | None = None
    region: str | None = None
    occupation: str | None = None
    source: str | None = None
    owner_id: str | None = None
    team: str | None = None
    tier: str | None = None
    lifecycle: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SealedCustomer:
    customer: Customer
    key: CustomerKey
    data_key: DataKey
    contacts: dict[str, str | None]
    sealed_fields: list[str]


class CustomerService:
    def __init__(self, vault: Vault, *, clock: Clock | None = None, review_months: int = 6) -> None:
        self.vault = vault
        self.clock = clock or Clock()
        # A file not reviewed for this many months counts as stale.
        self.review_months = review_months

    def _modes(self, caller: Caller, fields: Collection[str]) -> dict[str, FieldMode]:
        unknown = set(fields) - CUSTOMER_FIELD_CLASSES.keys()
        if unknown:
            raise ValidationError(f"unknown customer fields: {', '.join(sorted(unknown))}")
        return {
            name: caller.access.field_mode(OBJECT, name, CUSTOMER_FIELD_CLASSES[name])
            for name in fields
        }

    def _reveal_rows(
        self, caller: Caller, rows: Sequence[Row[Any]], modes: dict[str, FieldMode]
    ) -> list[CustomerView]:
        plain = [
            f
            for f, m in modes.items()
            if f not in SEALED_CUSTOMER_FIELDS and m is not FieldMode.NONE
        ]
        sealed = [
            (f, m is FieldMode.MASKED)
            for f, m in modes.items()
            if f in SEALED_CUSTOMER_FIELDS and m is not FieldMode.NONE
        ]
        denied = [f for f, m in modes.items() if m is FieldMode.NONE]
        vault = self.vault
        views: list[CustomerView] = []
        for row in rows:
            values: dict[str, Any] = {f: getattr(row, f) for f in plain}
            for f in denied:
                values[f] = DENIED
            if sealed:
                try:
                    key = vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
                except VaultError:
                    key = None
                for f, masked in sealed:
                    ciphertext = getattr(row, f)
                    if ciphertext is None:
                        values[f] = None
                    elif key is None:
                        values[f] = UNDECRYPTABLE
                    else:
                        try:
                            text = vault.reveal(key, FieldRef(TABLE, f, row.id), ciphertext)
                        except VaultError:
                            values[f] = UNDECRYPTABLE
                            continue
                        values[f] = mask(f, text) if masked else text
            views.append(CustomerView(row.id, values))
        caller.audit.read(
            OBJECT,
            (v.id for v in views),
            {f: m.value for f, m in modes.items() if m is not FieldMode.NONE},
            denied,
        )
        return views

    def _scope(self, caller: Caller) -> Any:
        scope = caller.access.row_scope(OBJECT)
        if scope is None:
            caller.audit.deny(OBJECT, "read")
            raise ForbiddenError("not allowed to read customers")
        return scope_predicate(scope, caller.principal)

    async def list(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        first: int,
        after: uuid.UUID | None,
        flt: CustomerFilter | None,
        fields: Collection[str],
        with_total: bool,
    ) -> CustomerPage:
        scope = self._scope(caller)
        modes = self._modes(caller, fields)
        repo = CustomerRepository(session)
        needs_keys = any(
            f in SEALED_CUSTOMER_FIELDS and m is not FieldMode.NONE for f, m in modes.items()
        )
        rows = await repo.page(
            scope=scope, flt=flt, after=after, limit=first, fields=modes, with_keys=needs_keys
        )
        total = await repo.count(scope=scope, flt=flt) if with_total else None
        views = self._reveal_rows(caller, rows[:first], modes)
        return CustomerPage(views, len(rows) > first, total)

    async def get_many(
        self,
        session: AsyncSession,
        caller: Caller,
        ids: Collection[uuid.UUID],
        fields: Collection[str],
    ) -> dict[uuid.UUID, CustomerView]:
        """Customers by id under row scope; ids the caller cannot see are simply absent."""
        scope = self._scope(caller)
        modes = self._modes(caller, fields)
        needs_keys = any(
            f in SEALED_CUSTOMER_FIELDS and m is not FieldMode.NONE for f, m in modes.items()
        )
        rows = await CustomerRepository(session).by_ids(
            ids, scope=scope, fields=modes, with_keys=needs_keys
        )
        return {view.id: view for view in self._reveal_rows(caller, rows, modes)}

    async def get(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, fields: Collection[str]
    ) -> CustomerView:
        views = await self.get_many(session, caller, [customer_id], fields)
        view = views.get(customer_id)
        if view is None:
            # Unknown and out-of-scope ids answer alike: existence is not leaked.
            raise NotFoundError("customer not found")
        return view

    async def find_by_contact(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        field: str,
        value: str,
        fields: Collection[str],
    ) -> CustomerView | None:
        """Equality lookup through the blind index, confirmed by decrypting candidates."""
        if field not in BLIND_INDEXED:
            raise ValidationError("lookup is by phone, email or nationalId")
        scope = self._scope(caller)
        if self._modes(caller, [field])[field] is FieldMode.NONE:
            caller.audit.deny(OBJECT, f"lookup:{field}")
            raise ForbiddenError(f"not allowed to look up customers by {field}")
        normalised = NORMALISERS[field](value)
        index = self.vault.blind_index(field, normalised)
        modes = self._modes(caller, fields)
        candidates = await CustomerRepository(session).by_blind_index(
            BLIND_INDEXED[field], index, scope=scope, fields=set(modes) | {field}
        )
        for row in candidates:
            if self._matches(row, field, normalised):
                return self._reveal_rows(caller, [row], modes)[0]
        return None

    def _matches(self, row: Row[Any], field: str, normalised: str) -> bool:
        ciphertext = getattr(row, field)
        if ciphertext is None:
            return False
        try:
            key = self.vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
            text = self.vault.reveal(key, FieldRef(TABLE, field, row.id), ciphertext)
        except VaultError:
            return False
        return NORMALISERS[field](text) == normalised

    async def create(self, session: AsyncSession, caller: Caller, data: NewCustomer) -> uuid.UUID:
        """Validate, check for duplicates by blind index, seal and store a new customer."""
        caller.access.require(OBJECT, "create")
        owner = data.owner_id
        if owner is None and "agent" in caller.principal.role_set:
            owner = caller.principal.subject
        sealed = self.seal_new(data, owner_id=owner, team=data.team or caller.principal.team)
        await self._refuse_duplicates(session, sealed.contacts)
        await CustomerRepository(session).add(sealed.customer, sealed.key)
        caller.audit.change(OBJECT, "create", sealed.customer.id, sealed.sealed_fields)
        return sealed.customer.id

    def seal_new(
        self, data: NewCustomer, *, owner_id: str | None, team: str | None
    ) -> SealedCustomer:
        """Validate and normalise a new customer, give it a data key, seal its fields.

        The one place a customer row is built, for the API, imports and demo data alike.
        """
        if not data.name.strip():
            raise ValidationError("name must not be empty")
        contacts = {
            "phone": normalise_phone(data.phone) if data.phone else None,
            "email": normalise_email(data.email) if data.email else None,
            "national_id": normalise_national_id(data.national_id) if data.national_id else None,
        }
        bank_card = normalise_bank_card(data.bank_card) if data.bank_card else None
        customer_id = new_id()
        key = self.vault.new_data_key(customer_id)
        sealed_values: dict[str, str | None] = {
            "name": data.name.strip(),
            "address": data.address,
            "birthday": data.birthday.isoformat() if data.birthday else None,
            "bank_card": bank_card,
            **contacts,
        }
        columns: dict[str, Any] = {
            f: self.vault.seal(key, FieldRef(TABLE, f, customer_id), v) if v is not None else None
            for f, v in sealed_values.items()
        }
        bidx_version = self.vault.keys.current_blind_index_version()
        for f, bidx_column in BLIND_INDEXED.items():
            value = contacts[f]
            columns[bidx_column] = self.vault.blind_index(f, value, bidx_version) if value else None
        customer = Customer(
            id=customer_id,
            gender=data.gender,
            industry=data.industry,
            company_size=data.company_size,
            region=data.region,
            occupation=data.occupation,
            source=data.source,
            owner_id=owner_id,
            team=team,
            tier=data.tier,
            lifecycle=data.lifecycle or "new",
            tags=[],
            created_at=data.created_at or utcnow(),
            bidx_key_version=bidx_version,
            **columns,
        )
        return SealedCustomer(
            customer=customer,
            key=CustomerKey(
                customer_id=customer_id, wrapped_dek=key.wrapped, kek_version=key.kek_version
            ),
            data_key=key,
            contacts=contacts,
            sealed_fields=sorted(f for f, v in sealed_values.items() if v is not None),
        )

    async def _refuse_duplicates(
        self, session: AsyncSession, contacts: dict[str, str | None]
    ) -> None:
        # Duplicates are checked across all customers, not the caller's scope: a second
        # file for the same person is wrong whoever owns the first.
        repo = CustomerRepository(session)
        for field, value in contacts.items():
            if value is None:
                continue
            index = self.vault.blind_index(field, value)
            rows = await repo.by_blind_index(
                BLIND_INDEXED[field], index, scope=true(), fields=[field]
            )
            if any(self._matches(row, field, value) for row in rows):
                raise ConflictError(
                    f"a customer with this {field} already exists", code="DUPLICATE_CUSTOMER"
                )
