"""Customer files: authorize, fetch under row scope, reveal through the vault, audit.

Field modes and row scope are asked once per call of the caller's gate (which audits
every refusal); rows are then revealed in one loop with one data key per customer.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, Row, false, true
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.recorder import AuditRecorder
from server.authz.authorizer import FieldMode, RowScope
from server.caller import Caller
from server.clock import Clock
from server.customer.completeness import WEIGHTS, assess, months_before
from server.customer.fields import (
    BLIND_INDEXED,
    CHOICES,
    CUSTOMER_FIELD_CLASSES,
    EDITABLE,
    FILLABLE,
    NORMALISERS,
    SEALED_CUSTOMER_FIELDS,
    VERIFIED_AT,
)
from server.customer.repository import (
    COMPLETENESS,
    CustomerFilter,
    CustomerRepository,
    CustomerSort,
    outside_scope,
    scope_predicate,
)
from server.data.base import DataClass, new_id
from server.data.models import (
    Complaint,
    ComplaintEvent,
    ContactPoint,
    Customer,
    CustomerKey,
    CustomerNameToken,
    CustomerNote,
    DuplicateFlag,
    Interaction,
)
from server.errors import ConflictError, ForbiddenError, ValidationError, VaultError
from server.paging import Page, page_of
from server.vault import DataKey, FieldRef, Vault
from server.vault.masking import mask
from server.vault.names import name_parts, query_parts
from server.vault.normalise import (
    POINT_PHONE,
    POINT_WECHAT,
    normalise_bank_card,
    normalise_email,
    normalise_national_id,
    normalise_phone,
    normalise_wechat_id,
    point_search_key,
)

OBJECT = "customer"
TABLE = "customers"
CONTACT_POINTS = "customer_contact_points"
# Lookups by a contact value: the file's own indexed contacts, and WeChat IDs, which only
# contact points hold.
WECHAT = POINT_WECHAT
LOOKUP_FIELDS = (*BLIND_INDEXED, WECHAT)
LOOKUP_NORMALISERS: dict[str, Callable[[str], str]] = {
    **NORMALISERS,
    WECHAT: normalise_wechat_id,
}
# The contact-point kinds a lookup also searches (server/contact/service.py KINDS) ...
POINT_KINDS: dict[str, tuple[str, ...]] = {
    POINT_PHONE: ("mobile", "landline", "contact_person"),
    POINT_WECHAT: ("wechat",),
}
# ... and the customer field whose mode decides the lookup: a point's value is read as
# the phone is, so a WeChat ID is looked up under the same rule as a phone.
POINT_READ_AS = {WECHAT: "phone"}
DUPLICATE_FLAG = "duplicate_flag"
FLAG_FIELDS = ("existing_customer_id", "field", "new_customer_id")
# A verification stamp tells whether its contact exists: readable only where the contact is.
CONTACT_OF_STAMP: dict[str, str] = {stamp: contact for contact, stamp in VERIFIED_AT.items()}
# Sealed columns of the rows a customer owns: re-sealed under the survivor's key on merge.
SEALED_CHILDREN: dict[type[Any], tuple[str, ...]] = {
    ContactPoint: ("value", "person_name"),
    CustomerNote: ("body",),
    Interaction: ("subject", "notes"),
    Complaint: ("description", "resolution"),
    ComplaintEvent: ("note",),
}
MAX_TAGS = 50
TAG_PATTERN = re.compile(r"[\w .:\-]+")


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
class NewCustomer:
    name: str
    customer_number: str | None = None
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


class CustomerChanges(TypedDict, total=False):
    """A change to a file: a given key sets its field (None clears it), an absent one
    leaves it. The keys are the registry's editable fields."""

    name: str | None
    phone: str | None
    email: str | None
    national_id: str | None
    bank_card: str | None
    address: str | None
    birthday: date | None
    gender: str | None
    industry: str | None
    company_size: str | None
    region: str | None
    occupation: str | None
    source: str | None
    preferences: str | None
    potential_needs: str | None
    expectations: str | None
    price_sensitivity: str | None
    customization: str | None
    upgrade_intent: str | None
    preferred_channel: str | None
    need_type: str | None
    owner_id: str | None
    team: str | None


@dataclass(frozen=True, slots=True)
class SealedCustomer:
    customer: Customer
    key: CustomerKey
    data_key: DataKey
    contacts: dict[str, str | None]
    sealed_fields: list[str]
    # Rows of `customer_name_tokens`: what name search finds the file by.
    name_tokens: list[dict[str, Any]]


def _choice(field: str, value: str | None) -> str | None:
    """A closed-set value of a new file (an import may spell it `Female`), or refused."""
    if value is None:
        return None
    canonical = value.strip().lower()
    if canonical not in CHOICES[field]:
        raise ValidationError(f"{field} must be one of {', '.join(CHOICES[field])}", field=field)
    return canonical


class CustomerService:
    def __init__(self, vault: Vault, *, clock: Clock | None = None, review_months: int = 6) -> None:
        self.vault = vault
        self.clock = clock or Clock()
        # A file not reviewed for this many months counts as stale.
        self.review_months = review_months

    def _modes(self, caller: Caller, fields: Collection[str]) -> dict[str, FieldMode]:
        unknown = set(fields) - CUSTOMER_FIELD_CLASSES.keys() - {COMPLETENESS}
        if unknown:
            raise ValidationError(f"unknown customer fields: {', '.join(sorted(unknown))}")
        # Completeness is derived from which facts are present: internal, like a count.
        return {name: self._mode(caller, name) for name in fields}

    def reads_in_clear(self, caller: Caller, name: str) -> bool:
        """Whether the caller reads the customer field `name` in clear under the
        request's purpose: only then may a write tell it whether a value it gives equals
        the file's (an answer on a masked field would confirm guesses of the hidden part)."""
        return self._mode(caller, name) is FieldMode.CLEAR

    def _mode(self, caller: Caller, name: str) -> FieldMode:
        if name == COMPLETENESS:
            # Scored and listed only over the facts the caller may read, so it tells
            # nothing those fields do not: any caller who reads the file reads it.
            return FieldMode.CLEAR
        mode = caller.gate.field_mode(
            OBJECT, name, CUSTOMER_FIELD_CLASSES.get(name, DataClass.INTERNAL)
        )
        contact = CONTACT_OF_STAMP.get(name)
        if contact is not None and self._mode(caller, contact) is FieldMode.NONE:
            return FieldMode.NONE
        return mode

    def _readable_facts(self, caller: Caller) -> builtins.list[str]:
        """The weighted facts whose presence the caller may learn: those it may read in
        some mode. Completeness scores and lists only these."""
        return [f for f in WEIGHTS if self._mode(caller, f) is not FieldMode.NONE]

    def _reveal_rows(
        self, caller: Caller, rows: Sequence[Row[Any]], modes: dict[str, FieldMode]
    ) -> list[CustomerView]:
        plain = [
            f
            for f, m in modes.items()
            if f not in SEALED_CUSTOMER_FIELDS and m is not FieldMode.NONE and f != COMPLETENESS
        ]
        scored = modes.get(COMPLETENESS, FieldMode.NONE) is not FieldMode.NONE
        facts = self._readable_facts(caller) if scored else []
        now = self.clock.now()
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
            if scored:
                values[COMPLETENESS] = assess(
                    {f: getattr(row, f"has_{f}") for f in facts},
                    row.reviewed_at,
                    now,
                    self.review_months,
                )
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
                            text = vault.reveal_at(key, TABLE, f, key.id_text, ciphertext)
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

    def _scope(self, caller: Caller, action: str = "read") -> Any:
        return scope_predicate(caller.gate.row_scope(OBJECT, action), caller.principal)

    def known_scope(self, caller: Caller) -> ColumnElement[bool]:
        """The files the caller may know exist: its read scope (none without customer read).
        Asked without refusing: a write does not need read access to be checked."""
        if not caller.gate.allows(OBJECT, "read"):
            return false()
        scope: ColumnElement[bool] = self._scope(caller)
        return scope

    async def _hide_unseen_referrers(
        self, session: AsyncSession, scope: Any, views: Sequence[CustomerView]
    ) -> None:
        """`referredById` names another file: null unless the caller may read that file,
        so an id never shows a customer outside the caller's scope exists."""
        referrers = {
            v.values["referred_by_id"]
            for v in views
            if isinstance(v.values.get("referred_by_id"), uuid.UUID)
        }
        if not referrers:
            return
        readable = await CustomerRepository(session).readable_ids(referrers, scope)
        for view in views:
            referrer = view.values.get("referred_by_id")
            if isinstance(referrer, uuid.UUID) and referrer not in readable:
                view.values["referred_by_id"] = None

    async def list(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        flt: CustomerFilter | None,
        fields: Collection[str],
        with_total: bool,
        sort: CustomerSort = CustomerSort.CREATED_ASC,
    ) -> Page[CustomerView]:
        check_filter(flt)
        if flt is not None and flt.name is not None:
            return await self._search_by_name(
                session,
                caller,
                flt=flt,
                name=flt.name,
                first=first,
                after=after,
                fields=fields,
                with_total=with_total,
                sort=sort,
            )
        scope = self._scope(caller)
        # The sort key is read too: the next page's cursor carries it.
        modes = self._modes(caller, {*fields, sort.column})
        repo = CustomerRepository(session)
        needs_keys = any(
            f in SEALED_CUSTOMER_FIELDS and m is not FieldMode.NONE for f, m in modes.items()
        )
        rows = await repo.page(
            scope=scope,
            flt=flt,
            after=after,
            limit=first,
            fields=modes,
            with_keys=needs_keys,
            sort=sort,
        )
        total = await repo.count(scope=scope, flt=flt) if with_total else None
        page = page_of(rows, first, total)
        await self._open_keys(page.items)
        views = self._reveal_rows(caller, page.items, modes)
        await self._hide_unseen_referrers(session, scope, views)
        return page.with_items(views)

    async def _search_by_name(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        flt: CustomerFilter,
        name: str,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        fields: Collection[str],
        with_total: bool,
        sort: CustomerSort,
    ) -> Page[CustomerView]:
        """The customer list narrowed to a name: candidates by name token under row scope
        and the other filters, each confirmed by decrypting its name (tokens are truncated,
        so most candidates of a short token are other names).

        A lookup by the value of `name`: only for a caller who reads names in clear under
        the request's purpose (a search on a masked name would confirm guesses of it), and
        audited as a `lookup` on `name`, hit or miss, with the ids the page shows.
        """
        caller.gate.require_clear(OBJECT, "name", CUSTOMER_FIELD_CLASSES["name"], action="lookup")
        scope = self._scope(caller)
        parts = query_parts(name)
        tokens = self.vault.name_query(name)
        modes = self._modes(caller, {*fields, sort.column})
        repo = CustomerRepository(session)
        # With a total, every candidate is confirmed (the count needs them all) and the
        # cursor applies after; without, confirmation stops once the page is full.
        candidates = await repo.name_candidates(
            tokens, scope=scope, flt=flt, sort=sort, after=None if with_total else after
        )
        matched: list[tuple[datetime, uuid.UUID]] = []
        wanted = first + 1
        for row in candidates:
            if not self._name_matches(row, parts):
                continue
            matched.append((row.sort_key, row.id))
            if not with_total and len(matched) >= wanted:
                break
        total = len(matched) if with_total else None
        if with_total and after is not None:
            matched = [m for m in matched if (m < after if sort.descending else m > after)]
        ids = [customer_id for _, customer_id in matched[:wanted]]
        caller.audit.lookup(OBJECT, "lookup", "name", hit=bool(ids), record_ids=ids[:first])
        needs_keys = any(
            f in SEALED_CUSTOMER_FIELDS and m is not FieldMode.NONE for f, m in modes.items()
        )
        rows = await repo.by_ids(ids, scope=scope, fields=modes, with_keys=needs_keys)
        position = {customer_id: i for i, customer_id in enumerate(ids)}
        ordered = sorted(rows, key=lambda row: position[row.id])
        page = page_of(ordered, first, total)
        views = self._reveal_rows(caller, page.items, modes)
        await self._hide_unseen_referrers(session, scope, views)
        return page.with_items(views)

    def _name_matches(self, row: Row[Any], parts: frozenset[tuple[str, str]]) -> bool:
        try:
            key = self.vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
            text = self.vault.reveal_at(key, TABLE, "name", key.id_text, row.name)
        except VaultError:
            return False
        return not parts.isdisjoint(name_parts(text))

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
        await self._open_keys(rows)
        views = self._reveal_rows(caller, rows, modes)
        await self._hide_unseen_referrers(session, scope, views)
        return {view.id: view for view in views}

    async def _open_keys(self, rows: Collection[Any]) -> None:
        """The rows' data keys, opened off the event loop where not cached yet."""
        await self.vault.open_data_keys(
            (row.id, getattr(row, "kek_version", None), getattr(row, "wrapped_dek", None))
            for row in rows
        )

    async def get(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, fields: Collection[str]
    ) -> CustomerView:
        views = await self.get_many(session, caller, [customer_id], fields)
        view = views.get(customer_id)
        if view is None:
            # Unknown and out-of-scope ids answer alike: existence is not leaked.
            raise caller.gate.not_found(OBJECT, "read", customer_id)
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
        """Equality lookup through the blind index, confirmed by decrypting candidates.

        The one way to find a file by a contact value (a rate limit hooks here). Only on a
        field the caller reads in clear under the request's purpose: a lookup on a masked
        field would confirm guesses of the hidden part. Hit or miss is audited as a
        `lookup` naming the field (never the value); a hit is also a read of what it shows.

        A phone is looked for in the file's own phone first, then in its contact points
        (mobiles, landlines, contact persons' phones); a WeChat ID in its WeChat points,
        read as the phone is. The first file confirmed answers, as for every lookup.
        """
        if field not in LOOKUP_FIELDS:
            raise ValidationError("lookup is by phone, email, nationalId or wechat")
        scope = self._scope(caller)
        read_as = POINT_READ_AS.get(field, field)
        caller.gate.require_clear(OBJECT, read_as, CUSTOMER_FIELD_CLASSES[read_as], action="lookup")
        normalised = LOOKUP_NORMALISERS[field](value)
        modes = self._modes(caller, fields)
        repo = CustomerRepository(session)
        found: Row[Any] | None = None
        if field in BLIND_INDEXED:
            candidates = await repo.by_blind_index(
                BLIND_INDEXED[field],
                self.vault.blind_indexes(field, normalised),
                scope=scope,
                fields=set(modes) | {field},
            )
            found = next((r for r in candidates if self._matches(r, field, normalised)), None)
        if found is None and field in POINT_KINDS:
            points = await repo.by_contact_point_index(
                POINT_KINDS[field],
                self.vault.contact_point_query(field, normalised),
                scope=scope,
                fields=set(modes),
            )
            found = next((r for r in points if self._point_matches(r, field, normalised)), None)
        if found is None:
            caller.audit.lookup(OBJECT, "lookup", field, hit=False)
            return None
        caller.audit.lookup(OBJECT, "lookup", field, hit=True, record_ids=[found.id])
        [view] = self._reveal_rows(caller, [found], modes)
        await self._hide_unseen_referrers(session, scope, [view])
        return view

    def _point_matches(self, row: Row[Any], kind: str, normalised: str) -> bool:
        """Whether the candidate's contact point really holds the value looked up."""
        if row.point_value is None:
            return False
        try:
            key = self.vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
            text = self.vault.reveal(
                key, FieldRef(CONTACT_POINTS, "value", row.point_id), row.point_value
            )
        except VaultError:
            return False
        return point_search_key(text) == (kind, normalised)

    async def find_by_number(
        self, session: AsyncSession, caller: Caller, number: str, fields: Collection[str]
    ) -> CustomerView | None:
        """The live customer with this customer number inside the caller's read scope, or
        None (unknown and out-of-scope numbers alike); audited as a lookup, hit or miss."""
        scope = self._scope(caller)
        found = await CustomerRepository(session).ids_by_number([number.strip()], scope)
        customer_id = next(iter(found.values()), None)
        caller.audit.lookup(
            OBJECT,
            "lookup",
            "customer_number",
            hit=customer_id is not None,
            record_ids=[customer_id] if customer_id is not None else [],
        )
        if customer_id is None:
            return None
        return (await self.get_many(session, caller, [customer_id], fields)).get(customer_id)

    async def check_number_free(
        self, session: AsyncSession, caller: Caller, number: str | None
    ) -> None:
        """A customer number is the business's key for a file: two files never share one.
        A clash says only that the number is in use (numbers are references the business
        hands out, not personal facts), whoever's file holds it — so, like every check by
        a value, it is audited (hit or miss, never the number) and probing leaves a trace."""
        if not number:
            return
        taken = await CustomerRepository(session).number_taken(number)
        caller.audit.lookup(OBJECT, "duplicate_check", "customer_number", hit=taken)
        if taken:
            raise ValidationError(
                "this customer number is already in use",
                code="CUSTOMER_NUMBER_TAKEN",
                field="customer_number",
            )

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
        scope = caller.gate.row_scope(OBJECT, "create")
        owner = data.owner_id
        if owner is None and scope is RowScope.OWN:
            # Whoever sees only their own customers owns what they create, or loses it.
            owner = caller.principal.subject
        team = data.team or caller.principal.team
        # A file lands only where its creator may create files: never planted in another
        # owner's or team's scope.
        outside = outside_scope(scope, caller.principal, owner_id=owner, team=team)
        if outside is not None:
            raise caller.gate.out_of_scope(OBJECT, "create", outside)
        self._normalised(data)  # bad input costs no key: refused before one is made
        key = await self.vault.create_data_key(new_id())
        sealed = self.seal_new(data, owner_id=owner, team=team, key=key)
        await self.check_number_free(session, caller, sealed.customer.customer_number)
        found = await self.check_duplicates(session, caller, sealed.contacts, sealed.customer.id)
        await CustomerRepository(session).add(sealed.customer, sealed.key, sealed.name_tokens)
        caller.audit.change(OBJECT, "create", sealed.customer.id, sealed.sealed_fields)
        self.audit_flags(caller.audit, await self.flag_duplicates(session, caller.audit, found))
        return sealed.customer.id

    def check_new(self, data: NewCustomer) -> None:
        """Refuse a new customer's bad input as `seal_new` would, without sealing it (an
        import's row for a file that is already there)."""
        self._normalised(data)

    @staticmethod
    def _normalised(data: NewCustomer) -> tuple[dict[str, str | None], str | None]:
        """The contacts and bank card of a new customer, normalised; refuses bad input."""
        if not data.name.strip():
            raise ValidationError("name must not be empty", field="name")
        for f, v in (("gender", data.gender), ("tier", data.tier), ("lifecycle", data.lifecycle)):
            _choice(f, v)
        contacts = {
            "phone": normalise_phone(data.phone) if data.phone else None,
            "email": normalise_email(data.email) if data.email else None,
            "national_id": normalise_national_id(data.national_id) if data.national_id else None,
        }
        return contacts, normalise_bank_card(data.bank_card) if data.bank_card else None

    def seal_new(
        self,
        data: NewCustomer,
        *,
        owner_id: str | None,
        team: str | None,
        key: DataKey | None = None,
    ) -> SealedCustomer:
        """Validate and normalise a new customer, give it a data key, seal its fields.

        The one place a customer row is built, for the API, imports and demo data alike.
        `key`: a data key made for it beforehand (off the event loop, `create`).
        """
        contacts, bank_card = self._normalised(data)
        gender, tier, lifecycle = (
            _choice(f, v)
            for f, v in (
                ("gender", data.gender),
                ("tier", data.tier),
                ("lifecycle", data.lifecycle),
            )
        )
        customer_id = key.customer_id if key is not None else new_id()
        created_at = data.created_at or self.clock.now()
        key = key or self.vault.new_data_key(customer_id)
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
        for name in ("tier", "lifecycle"):
            value = getattr(data, name)
            if value is not None and value not in CHOICES[name]:
                # Segments are the analytics jobs' vocabulary; an import may only use it.
                raise ValidationError(
                    f"{name} must be one of {', '.join(CHOICES[name])}", field=name
                )
        number = data.customer_number.strip() if data.customer_number else None
        customer = Customer(
            id=customer_id,
            customer_number=number or None,
            gender=gender,
            industry=data.industry,
            company_size=data.company_size,
            region=data.region,
            occupation=data.occupation,
            source=data.source,
            owner_id=owner_id,
            team=team,
            tier=tier,
            lifecycle=lifecycle or "new",
            tags=[],
            created_at=created_at,
            updated_at=created_at,
            bidx_key_version=bidx_version,
            **columns,
        )
        return SealedCustomer(
            customer=customer,
            key=CustomerKey(
                customer_id=customer_id,
                wrapped_dek=key.wrapped,
                kek_version=key.kek_version,
                created_at=created_at,
            ),
            data_key=key,
            contacts=contacts,
            sealed_fields=sorted(f for f, v in sealed_values.items() if v is not None),
            name_tokens=self.name_token_rows(customer_id, data.name.strip(), bidx_version),
        )

    def name_token_rows(
        self, customer_id: uuid.UUID, name: str, version: int
    ) -> builtins.list[dict[str, Any]]:
        """The `customer_name_tokens` rows of a name under one blind-index key version."""
        return CustomerNameToken.rows(customer_id, self.vault.name_tokens(name, version), version)

    async def duplicate_matches(
        self,
        session: AsyncSession,
        contacts: Mapping[str, str | None],
        *,
        known: ColumnElement[bool],
        excluding: uuid.UUID | None = None,
    ) -> dict[str, dict[uuid.UUID, bool]]:
        """For each given contact, the live files holding the same value (blind index,
        confirmed by decryption), each with whether it is inside `known` (the files the
        writer may know exist). Across all customers: a second file for the same person
        is wrong whoever owns the first."""
        repo = CustomerRepository(session)
        found: dict[str, dict[uuid.UUID, bool]] = {}
        for field, value in contacts.items():
            if value is None:
                continue
            rows = await repo.by_blind_index(
                BLIND_INDEXED[field],
                self.vault.blind_indexes(field, value),
                scope=true(),
                fields=[field],
            )
            matched = [
                row.id for row in rows if row.id != excluding and self._matches(row, field, value)
            ]
            inside = await repo.readable_ids(matched, known)
            found[field] = {m: m in inside for m in matched}
        return found

    async def check_duplicates(
        self,
        session: AsyncSession,
        caller: Caller,
        contacts: Mapping[str, str | None],
        checked_id: uuid.UUID,
        *,
        excluding: uuid.UUID | None = None,
    ) -> builtins.list[tuple[uuid.UUID, uuid.UUID, str]]:
        """The duplicate check of a write to file `checked_id` (created or updated).

        A match refuses the write (DUPLICATE_CUSTOMER) only when the caller could have
        found it anyway: the other file is in its read scope and it reads the field in
        clear under the request's purpose. Any other match must not answer (it would say
        that an unseen contact exists, or confirm a guess of a masked one): the write goes
        ahead and the match is returned as (checked file, other file, field) for
        `flag_duplicates`. Every field checked is audited as a `duplicate_check`: a hit
        with the ids of the files matched, a miss with the id of the file checked.
        """
        found = await self.duplicate_matches(
            session, contacts, known=self.known_scope(caller), excluding=excluding
        )
        refused: str | None = None
        unseen: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        for field, matches in found.items():
            caller.audit.lookup(
                OBJECT,
                "duplicate_check",
                field,
                hit=bool(matches),
                record_ids=list(matches) or [checked_id],
            )
            clear = field in self.clear_contacts(caller)
            for other, inside in matches.items():
                if clear and inside:
                    refused = refused or field
                else:
                    unseen.append((checked_id, other, field))
        if refused is not None:
            raise ConflictError(
                f"a customer with this {refused} already exists", code="DUPLICATE_CUSTOMER"
            )
        return unseen

    def clear_contacts(self, caller: Caller) -> frozenset[str]:
        """The searchable contacts the caller reads in clear under the request's purpose:
        the only ones a duplicate check may answer on."""
        return frozenset(f for f in BLIND_INDEXED if self._mode(caller, f) is FieldMode.CLEAR)

    async def flag_duplicates(
        self,
        session: AsyncSession,
        audit: AuditRecorder,
        found: Collection[tuple[uuid.UUID, uuid.UUID, str]],
    ) -> builtins.list[uuid.UUID]:
        """Store duplicate flags for matches the writer was not told about; returns the
        new flags' ids (the caller audits them once they are sure to stay)."""
        now = self.clock.now()
        return await CustomerRepository(session).add_duplicate_flags(
            [
                {
                    "id": new_id(),
                    "new_customer_id": new,
                    "existing_customer_id": existing,
                    "field": field,
                    "raised_at": now,
                    "raised_by": audit.principal.subject[:128],
                }
                for new, existing, field in found
            ]
        )

    def audit_flags(self, audit: AuditRecorder, flag_ids: Collection[uuid.UUID]) -> None:
        for flag_id in flag_ids:
            audit.change(DUPLICATE_FLAG, "create", flag_id, FLAG_FIELDS)

    async def list_duplicate_flags(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        first: int,
        after: uuid.UUID | None,
    ) -> Page[DuplicateFlag]:
        """Stored flags whose two files are both in the caller's read scope, on fields it
        reads in clear under the request's purpose (as a lookup would need)."""
        scope = self._scope(caller)
        fields = self.clear_contacts(caller)
        rows = await CustomerRepository(session).duplicate_flags(
            scope=scope, fields=fields, after=after, limit=first
        )
        page = page_of(rows, first)
        caller.audit.read(
            DUPLICATE_FLAG,
            (f.id for f in page.items),
            dict.fromkeys(FLAG_FIELDS, "clear"),
        )
        return page

    # --- changing a file -------------------------------------------------------------

    async def _locked(
        self,
        session: AsyncSession,
        caller: Caller,
        scope: Any,
        customer_id: uuid.UUID,
        *,
        lock: bool = True,
    ) -> tuple[Customer, DataKey]:
        """A file the caller may change (`update` scope); unknown and out-of-scope ids
        alike answer NOT_FOUND."""
        found = await CustomerRepository(session).for_update(customer_id, scope, lock=lock)
        if found is None:
            raise caller.gate.not_found(OBJECT, "update", customer_id)
        customer, key = found
        return customer, self.vault.open_data_key(customer.id, key.kek_version, key.wrapped_dek)

    async def update(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        changes: CustomerChanges,
    ) -> builtins.list[str]:
        """Change any editable fields (None clears one). Sealed values are sealed again,
        contacts re-indexed, re-verified and checked for duplicates. Returns the changed
        field names (what the audit records)."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValidationError(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
        if not changes:
            raise ValidationError("nothing to change")
        row_scope = caller.gate.row_scope(OBJECT, "update")
        scope = scope_predicate(row_scope, caller.principal)
        customer, key = await self._locked(session, caller, scope, customer_id)
        values = _validated(changes)
        if "owner_id" in values or "team" in values:
            # Handing a file on stays within the scope the caller may update.
            outside = outside_scope(
                row_scope,
                caller.principal,
                owner_id=values.get("owner_id", customer.owner_id),
                team=values.get("team", customer.team),
            )
            if outside is not None:
                raise caller.gate.out_of_scope(OBJECT, "update", outside, target=customer.id)
        contacts = {f: values[f] for f in BLIND_INDEXED if f in values and values[f] is not None}
        found = await self.check_duplicates(
            session, caller, contacts, customer.id, excluding=customer.id
        )
        bidx_version = customer.bidx_key_version or self.vault.keys.current_blind_index_version()
        for field, value in values.items():
            if field in SEALED_CUSTOMER_FIELDS:
                text = value.isoformat() if isinstance(value, date) else value
                sealed = (
                    self.vault.seal(key, FieldRef(TABLE, field, customer.id), text)
                    if text is not None
                    else None
                )
                setattr(customer, field, sealed)
                if field in BLIND_INDEXED:
                    setattr(
                        customer,
                        BLIND_INDEXED[field],
                        self.vault.blind_index(field, value, bidx_version) if value else None,
                    )
                    customer.bidx_key_version = bidx_version
                if field in VERIFIED_AT:
                    # A new contact is not the one that was verified.
                    setattr(customer, VERIFIED_AT[field], None)
            else:
                setattr(customer, field, value)
        customer.updated_at = self.clock.now()
        repo = CustomerRepository(session)
        await repo.flush()
        if "name" in values:
            # Tokens follow the row's blind-index version, as its contact indexes do.
            customer.bidx_key_version = bidx_version
            await repo.replace_name_tokens(
                customer.id, self.name_token_rows(customer.id, values["name"], bidx_version)
            )
            await repo.flush()
        changed = sorted(values)
        caller.audit.change(OBJECT, "update", customer.id, changed)
        self.audit_flags(caller.audit, await self.flag_duplicates(session, caller.audit, found))
        return changed

    async def verify_contact(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, channel: str
    ) -> None:
        """The customer confirmed this phone or email (e.g. answered a code sent to it)."""
        if channel not in VERIFIED_AT:
            raise ValidationError("channel must be phone or email", field="channel")
        scope = self._scope(caller, "update")
        customer, _key = await self._locked(session, caller, scope, customer_id)
        if getattr(customer, channel) is None:
            raise ConflictError(f"the customer has no {channel} to verify", code="NO_CONTACT")
        now = self.clock.now()
        setattr(customer, VERIFIED_AT[channel], now)
        customer.updated_at = now
        await CustomerRepository(session).flush()
        caller.audit.change(OBJECT, "verify", customer.id, [VERIFIED_AT[channel]])

    async def retag(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        *,
        add: Collection[str],
        remove: Collection[str],
    ) -> None:
        adding = [_tag(t, "add") for t in add]
        removing = {_tag(t, "remove") for t in remove}
        scope = self._scope(caller, "update")
        customer, _key = await self._locked(session, caller, scope, customer_id)
        tags = [t for t in (customer.tags or []) if t not in removing]
        tags += [t for t in dict.fromkeys(adding) if t not in tags]
        if len(tags) > MAX_TAGS:
            raise ValidationError(f"a customer has at most {MAX_TAGS} tags", field="add")
        customer.tags = tags
        customer.updated_at = self.clock.now()
        await CustomerRepository(session).flush()
        caller.audit.change(OBJECT, "tag", customer.id, ["tags"])

    async def mark_reviewed(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID
    ) -> None:
        scope = self._scope(caller, "update")
        customer, _key = await self._locked(session, caller, scope, customer_id)
        now = self.clock.now()
        customer.reviewed_at = now
        customer.updated_at = now
        await CustomerRepository(session).flush()
        caller.audit.change(OBJECT, "review", customer.id, ["reviewed_at"])

    def review_cutoff(self) -> datetime:
        """Files last reviewed before this instant are stale."""
        return months_before(self.clock.now(), self.review_months)

    async def duplicate_candidates(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID
    ) -> builtins.list[tuple[uuid.UUID, builtins.list[str]]]:
        """Other visible files with the same phone, email or national ID: found through
        the blind indexes, confirmed by decryption (values never leave the server).

        Only on fields the caller reads in clear under the request's purpose: a match on a
        masked field would confirm a guess written into a file of the caller's own. Each
        field checked is audited as a `duplicate_check` (hit: the files matched)."""
        scope = self._scope(caller, "update")
        customer, key = await self._locked(session, caller, scope, customer_id, lock=False)
        repo = CustomerRepository(session)
        matches: dict[uuid.UUID, list[str]] = {}
        for field, bidx_column in BLIND_INDEXED.items():
            ciphertext = getattr(customer, field)
            index = getattr(customer, bidx_column)
            if ciphertext is None or index is None:
                continue
            if self._mode(caller, field) is not FieldMode.CLEAR:
                continue
            own = self.vault.reveal(key, FieldRef(TABLE, field, customer.id), ciphertext)
            rows = await repo.candidates_by_blind_index(
                bidx_column, index, scope=scope, excluding=customer.id, contact=field
            )
            hits = [row.id for row in rows if self._matches(row, field, NORMALISERS[field](own))]
            caller.audit.lookup(
                OBJECT, "duplicate_check", field, hit=bool(hits), record_ids=hits or [customer.id]
            )
            for hit in hits:
                matches.setdefault(hit, []).append(field)
        return sorted(matches.items(), key=lambda item: item[0])

    async def merge(
        self,
        session: AsyncSession,
        caller: Caller,
        survivor_id: uuid.UUID,
        duplicate_id: uuid.UUID,
    ) -> builtins.list[str]:
        """Fold a duplicate file into its survivor, keeping all history.

        The duplicate's interactions, complaints, orders, consents, loyalty and referrals
        move to the survivor; their sealed values are opened with the duplicate's key and
        sealed again with the survivor's, still bound to their own row ids. Facts the
        survivor lacks are taken from the duplicate. The duplicate stays readable by id
        with `merged_into_id` set. Returns the survivor's filled field names.
        """
        if survivor_id == duplicate_id:
            raise ValidationError("a customer cannot be merged into itself", field="duplicate_id")
        scope = self._scope(caller, "update")
        survivor, survivor_key = await self._locked(session, caller, scope, survivor_id)
        duplicate, duplicate_key = await self._locked(session, caller, scope, duplicate_id)
        repo = CustomerRepository(session)
        for model, columns in SEALED_CHILDREN.items():
            table = model.__tablename__
            for row in await repo.sealed_children(model, columns, duplicate.id):
                resealed: dict[str, bytes] = {}
                for column in columns:
                    ciphertext = getattr(row, column)
                    if ciphertext is None:
                        continue
                    ref = FieldRef(table, column, row.id)
                    text = self.vault.reveal(duplicate_key, ref, ciphertext)
                    resealed[column] = self.vault.seal(survivor_key, ref, text)
                if resealed:
                    await repo.set_values(model, row.id, resealed)
        filled = self._fill_gaps(survivor, survivor_key, duplicate, duplicate_key)
        moved = await repo.move_owned_rows(duplicate.id, survivor.id)
        if "loyalty_entries" in moved:
            await repo.rebalance_loyalty(survivor.id)
        now = self.clock.now()
        duplicate.merged_into_id = survivor.id
        duplicate.updated_at = now
        survivor.updated_at = now
        await repo.flush()
        caller.audit.change(OBJECT, "merge", survivor.id, [*filled, *sorted(moved)])
        caller.audit.change(OBJECT, "merged", duplicate.id, ["merged_into_id"])
        return filled

    def _fill_gaps(
        self, survivor: Customer, survivor_key: DataKey, duplicate: Customer, duplicate_key: DataKey
    ) -> builtins.list[str]:
        filled: list[str] = []
        for field in FILLABLE:
            if getattr(survivor, field) is not None or getattr(duplicate, field) is None:
                continue
            value = getattr(duplicate, field)
            if field in SEALED_CUSTOMER_FIELDS:
                text = self.vault.reveal(duplicate_key, FieldRef(TABLE, field, duplicate.id), value)
                value = self.vault.seal(survivor_key, FieldRef(TABLE, field, survivor.id), text)
                if field in BLIND_INDEXED:
                    setattr(
                        survivor, BLIND_INDEXED[field], getattr(duplicate, BLIND_INDEXED[field])
                    )
                if field in VERIFIED_AT:
                    setattr(survivor, VERIFIED_AT[field], getattr(duplicate, VERIFIED_AT[field]))
            setattr(survivor, field, value)
            filled.append(field)
        tags = list(dict.fromkeys([*(survivor.tags or []), *(duplicate.tags or [])]))
        if tags != (survivor.tags or []):
            survivor.tags = tags
            filled.append("tags")
        return filled


def check_filter(flt: CustomerFilter | None) -> None:
    """A list filter that could match: a tag filter follows the rule of tags (a longer
    one could match nothing, and a 60,000-character one overflowed SQLite's LIKE)."""
    if flt is not None and flt.tag is not None:
        _tag(flt.tag, "tag")


def _tag(value: str, field: str) -> str:
    tag = value.strip()
    if not tag or len(tag) > 32 or not TAG_PATTERN.fullmatch(tag):
        raise ValidationError(
            "a tag is 1 to 32 letters, digits, spaces or - _ : . (no quotes or backslashes)",
            field=field,
        )
    return tag


def _validated(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise and check the new values; the first bad one refuses the whole change."""
    values: dict[str, Any] = {}
    for field, value in changes.items():
        if isinstance(value, str):
            value = value.strip() or None
        if field == "name" and value is None:
            raise ValidationError("name must not be empty", field="name")
        if value is None:
            values[field] = None
        elif field in NORMALISERS:
            values[field] = NORMALISERS[field](value)
        elif field in CHOICES and value not in CHOICES[field]:
            raise ValidationError(
                f"{field} must be one of {', '.join(CHOICES[field])}", field=field
            )
        else:
            values[field] = value
    return values
