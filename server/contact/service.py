"""A customer's further contact points, sealed under the customer's data key.

Mobiles, landlines and WeChat IDs, and for company customers contact persons with their
own name and phone. A point is part of its customer's file: it is read under the
caller's read scope on customers, changed under its update scope, exported and erased
with the file. Its values are read in the mode of the customer field they are like: a
number or WeChat ID as `customer.phone`, a contact person's name as `customer.name`, so
a policy that masks a file's phone masks every other number of that file too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from server.authz.authorizer import FieldMode
from server.caller import Caller
from server.clock import Clock
from server.contact.repository import ContactPointRepository
from server.customer.fields import CUSTOMER_FIELD_CLASSES
from server.customer.repository import CustomerRepository, scope_predicate
from server.data.base import new_id
from server.data.models import ContactPoint
from server.errors import ForbiddenError, ValidationError, VaultError
from server.vault import DataKey, FieldRef, Vault
from server.vault.masking import mask
from server.vault.normalise import normalise_phone, wechat_id_is_valid

OBJECT = "customer"
AUDITED = "contact_point"
TABLE = "customer_contact_points"
MOBILE, LANDLINE, WECHAT, CONTACT_PERSON = "mobile", "landline", "wechat", "contact_person"
KINDS = (MOBILE, LANDLINE, WECHAT, CONTACT_PERSON)
# The customer field each sealed column is read like (its mode and its mask).
READ_AS = {"value": "phone", "person_name": "name"}
MAX_POINTS = 20
MAX_LABEL = 64
MAX_PERSON_NAME = 64
# Mainland landlines: trunk 0, a 2- to 3-digit area code and a 7- or 8-digit number,
# with an optional extension ("010-6552 9988 转 123" or "ext. 123").
_LANDLINE = re.compile(r"0(\d{9,11})")
_SEPARATORS = re.compile(r"[\s\-().]")
_EXTENSION = re.compile(r"(?:转|ext\.?|x|#)\s*(\d{1,6})$", re.IGNORECASE)


class _Denied:
    __slots__ = ()


DENIED = _Denied()


@dataclass(frozen=True, slots=True)
class NewContactPoint:
    kind: str
    value: str | None = None
    person_name: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class ContactPointView:
    """A point as this caller may see it: values in clear, masked, or denied."""

    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    label: str | None
    created_at: datetime
    updated_at: datetime
    values: dict[str, Any]

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is DENIED:
            raise ForbiddenError(f"not allowed to read contact_point.{name}")
        return value if isinstance(value, str) else None


class ContactPointService:
    def __init__(self, vault: Vault, *, clock: Clock | None = None) -> None:
        self.vault = vault
        self.clock = clock or Clock()

    def reads_in_clear(self, caller: Caller) -> bool:
        """Whether the caller reads points' values and names in clear: only then may a
        write tell it that a point it gives is one the file has."""
        return all(mode is FieldMode.CLEAR for mode in self._modes(caller).values())

    def _modes(self, caller: Caller) -> dict[str, FieldMode]:
        return {
            column: caller.gate.field_mode(OBJECT, field, CUSTOMER_FIELD_CLASSES[field])
            for column, field in READ_AS.items()
        }

    async def of_customers(
        self, session: AsyncSession, caller: Caller, customer_ids: Collection[uuid.UUID]
    ) -> list[ContactPointView]:
        """The points of customers the caller may read (others are simply absent)."""
        if not customer_ids:
            return []
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        modes = self._modes(caller)
        rows = await ContactPointRepository(session).of_customers(customer_ids, scope)
        views = [self._view(row[0], row.kek_version, row.wrapped_dek, modes) for row in rows]
        caller.audit.read(
            AUDITED,
            (v.id for v in views),
            {c: m.value for c, m in modes.items() if m is not FieldMode.NONE},
            [c for c, m in modes.items() if m is FieldMode.NONE],
        )
        if views:
            # Named by their customer too: "who saw customer X" (the audit search by
            # customer) finds whoever read only X's contact points.
            shown = modes["value"]
            caller.audit.read(
                OBJECT,
                {v.customer_id for v in views},
                {"contact_points": shown.value} if shown is not FieldMode.NONE else {},
            )
        return views

    def _view(
        self,
        point: ContactPoint,
        kek_version: int | None,
        wrapped: bytes | None,
        modes: dict[str, FieldMode],
    ) -> ContactPointView:
        values: dict[str, Any] = {}
        key: DataKey | None = None
        for column, field in READ_AS.items():
            ciphertext = getattr(point, column)
            mode = modes[column]
            if mode is FieldMode.NONE:
                values[column] = DENIED
                continue
            if ciphertext is None:
                values[column] = None
                continue
            try:
                key = key or self.vault.open_data_key(point.customer_id, kek_version, wrapped)
                text = self.vault.reveal(key, FieldRef(TABLE, column, point.id), ciphertext)
            except VaultError:
                values[column] = None
                continue
            values[column] = _masked(point.kind, field, text) if mode is FieldMode.MASKED else text
        return ContactPointView(
            point.id,
            point.customer_id,
            point.kind,
            point.label,
            point.created_at,
            point.updated_at,
            values,
        )

    async def get(
        self, session: AsyncSession, caller: Caller, point_id: uuid.UUID
    ) -> ContactPointView:
        customer_id = await ContactPointRepository(session).customer_of(point_id)
        views = await self.of_customers(session, caller, [customer_id] if customer_id else [])
        for view in views:
            if view.id == point_id:
                return view
        raise caller.gate.not_found(AUDITED, "read", point_id, what="contact point")

    async def _customer_for_update(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID
    ) -> DataKey:
        """The data key of a file the caller may change; NOT_FOUND for any other id."""
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "update"), caller.principal)
        found = await CustomerRepository(session).for_update(customer_id, scope)
        if found is None:
            raise caller.gate.not_found(OBJECT, "update", customer_id)
        _customer, key = found
        return self.vault.open_data_key(customer_id, key.kek_version, key.wrapped_dek)

    async def add(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, data: NewContactPoint
    ) -> uuid.UUID:
        key = await self._customer_for_update(session, caller, customer_id)
        values = _validated(data.kind, value=data.value, person_name=data.person_name)
        label = _label(data.label)
        repo = ContactPointRepository(session)
        if await repo.count_of(customer_id) >= MAX_POINTS:
            raise ValidationError(
                f"a customer has at most {MAX_POINTS} contact points", code="TOO_MANY"
            )
        now = self.clock.now()
        point_id = new_id()
        point = ContactPoint(
            id=point_id,
            customer_id=customer_id,
            kind=data.kind,
            label=label,
            created_at=now,
            updated_at=now,
            created_by=caller.principal.subject[:128],
            **self._sealed(key, point_id, values),
        )
        await repo.add(point)
        caller.audit.change(
            AUDITED, "create", point_id, sorted([*(c for c, v in values.items() if v), "kind"])
        )
        return point_id

    async def update(
        self,
        session: AsyncSession,
        caller: Caller,
        point_id: uuid.UUID,
        changes: dict[str, str | None],
    ) -> list[str]:
        """Change a point's value, contact person's name or label (a given key sets it,
        None clears it); its kind stays. Returns the changed column names."""
        unknown = set(changes) - {"value", "person_name", "label"}
        if unknown or not changes:
            raise ValidationError("change value, personName or label")
        point = await self._point_for_update(session, caller, point_id)
        key = await self._customer_for_update(session, caller, point.customer_id)
        current: dict[str, str | None] = {}
        for column in READ_AS:
            if column in changes:
                current[column] = changes[column]
            else:
                ciphertext = getattr(point, column)
                current[column] = (
                    self.vault.reveal(key, FieldRef(TABLE, column, point.id), ciphertext)
                    if ciphertext is not None
                    else None
                )
        values = _validated(point.kind, **current)
        sealed = self._sealed(key, point.id, values)
        for column in READ_AS:
            if column in changes:
                setattr(point, column, sealed[column])
        if "value" in changes:
            point.value_bidx = cast(int | None, sealed["value_bidx"])
            point.bidx_key_version = cast(int | None, sealed["bidx_key_version"])
        if "label" in changes:
            point.label = _label(changes["label"])
        point.updated_at = self.clock.now()
        await ContactPointRepository(session).flush()
        changed = sorted(changes)
        caller.audit.change(AUDITED, "update", point.id, changed)
        return changed

    async def remove(self, session: AsyncSession, caller: Caller, point_id: uuid.UUID) -> None:
        point = await self._point_for_update(session, caller, point_id)
        await self._customer_for_update(session, caller, point.customer_id)
        await ContactPointRepository(session).remove(point.id)
        caller.audit.change(AUDITED, "delete", point.id, ["kind", *READ_AS])

    async def _point_for_update(
        self, session: AsyncSession, caller: Caller, point_id: uuid.UUID
    ) -> ContactPoint:
        """A point of a file the caller may change; unknown ids and points of files
        outside its update scope alike answer NOT_FOUND."""
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "update"), caller.principal)
        repo = ContactPointRepository(session)
        point = await repo.get(point_id)
        if point is None or not await repo.live(point.customer_id, scope):
            raise caller.gate.not_found(AUDITED, "update", point_id, what="contact point")
        return point

    def sealed_row(
        self,
        key: DataKey,
        customer_id: uuid.UUID,
        point: NewContactPoint,
        *,
        created_by: str,
        at: datetime,
    ) -> dict[str, Any]:
        """A new point of a file as a row for a bulk insert (an import's batch): checked
        and sealed as `add` does; a bad value raises the same ValidationError."""
        values = _validated(point.kind, value=point.value, person_name=point.person_name)
        point_id = new_id()
        return {
            "id": point_id,
            "customer_id": customer_id,
            "kind": point.kind,
            "label": _label(point.label),
            "created_at": at,
            "updated_at": at,
            "created_by": created_by[:128],
            **self._sealed(key, point_id, values),
        }

    def opened(
        self, key: DataKey, point: ContactPoint
    ) -> tuple[str, str | None, str | None] | None:
        """A stored point as (kind, value, person name) in clear, for the server's own
        comparison (an import that must not add a point twice); None if it cannot be
        opened. Never an answer to a caller."""
        try:
            value, person = (
                self.vault.reveal(key, FieldRef(TABLE, column, point.id), ciphertext)
                if (ciphertext := getattr(point, column)) is not None
                else None
                for column in ("value", "person_name")
            )
        except VaultError:
            return None
        return point.kind, value, person

    def _sealed(
        self, key: DataKey, point_id: uuid.UUID, values: dict[str, str | None]
    ) -> dict[str, bytes | int | None]:
        """The point's stored columns: each value sealed, and the value's blind index under
        the current key version. Every writer of a point goes through here, so no point is
        stored unfindable."""
        columns: dict[str, bytes | int | None] = {
            column: self.vault.seal(key, FieldRef(TABLE, column, point_id), text)
            if text is not None
            else None
            for column, text in values.items()
        }
        if "value" in values:
            version = self.vault.keys.current_blind_index_version()
            value = values["value"]
            columns["value_bidx"] = (
                self.vault.contact_point_index(value, version) if value is not None else None
            )
            columns["bidx_key_version"] = version
        return columns


def canonical(point: NewContactPoint) -> tuple[str, str | None, str | None]:
    """A new point as (kind, value, person name) in the form it is stored in; refuses a
    bad one as `add` would."""
    values = _validated(point.kind, value=point.value, person_name=point.person_name)
    return point.kind, values["value"], values["person_name"]


def _masked(kind: str, field: str, text: str) -> str:
    """A number masked as a phone (its extension left out), a WeChat ID whole."""
    if kind == WECHAT and field == "phone":
        return mask("wechat", text)
    return mask(field, text.split(";", 1)[0])


def _validated(kind: str, *, value: str | None, person_name: str | None) -> dict[str, str | None]:
    """The point's sealed values in canonical form; a bad one refuses the whole write."""
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}", field="kind")
    value = (value or "").strip() or None
    person_name = (person_name or "").strip() or None
    if kind == CONTACT_PERSON:
        if person_name is None:
            raise ValidationError("a contact person needs a name", field="person_name")
        if len(person_name) > MAX_PERSON_NAME:
            raise ValidationError(
                f"a name is at most {MAX_PERSON_NAME} characters", field="person_name"
            )
        return {"value": _any_phone(value) if value else None, "person_name": person_name}
    if person_name is not None:
        raise ValidationError("only a contact person has a name", field="person_name")
    if value is None:
        raise ValidationError(f"a {kind} contact point needs a value", field="value")
    if kind == MOBILE:
        return {"value": _mobile(value), "person_name": None}
    if kind == LANDLINE:
        return {"value": _landline(value), "person_name": None}
    if not wechat_id_is_valid(value):
        raise ValidationError(
            "a WeChat ID is 6 to 20 letters, digits, _ or -, starting with a letter",
            code="INVALID_WECHAT_ID",
            field="value",
        )
    return {"value": value, "person_name": None}


def _bad_number(kind: str) -> ValidationError:
    return ValidationError(
        f"value is not a valid {kind} number", code="INVALID_PHONE", field="value"
    )


def _mobile(value: str) -> str:
    try:
        number = normalise_phone(value)
    except ValidationError:
        raise _bad_number("mobile") from None
    if number.startswith("+86") and not re.fullmatch(r"\+861\d{10}", number):
        raise _bad_number("mobile")
    return number


def _landline(value: str) -> str:
    """E.164 with the extension kept after `;ext=` (RFC 3966)."""
    if len(value) > 40:
        raise _bad_number("landline")
    text = value.strip()
    extension = _EXTENSION.search(text)
    if extension is not None:
        text = text[: extension.start()].strip()
    digits = _SEPARATORS.sub("", text)
    national = _LANDLINE.fullmatch(digits)
    if national is not None:
        number = "+86" + national.group(1)
    else:
        try:
            number = normalise_phone(text)
        except ValidationError:
            raise _bad_number("landline") from None
        if re.fullmatch(r"\+861\d{10}", number):
            # A mainland mobile is not a landline.
            raise _bad_number("landline")
    return number + (f";ext={extension.group(1)}" if extension else "")


def _any_phone(value: str) -> str:
    try:
        return _mobile(value)
    except ValidationError:
        pass
    try:
        return _landline(value)
    except ValidationError:
        raise _bad_number("phone") from None


def _label(label: str | None) -> str | None:
    text = (label or "").strip() or None
    if text is not None and len(text) > MAX_LABEL:
        raise ValidationError(f"a label is at most {MAX_LABEL} characters", field="label")
    return text
