"""Free-text notes on customer files (备注), with their history.

A note is written and edited by whoever may update the file (its update row scope on
customers); nothing is overwritten: each edit adds a version, sealed under the
customer's data key and bound to its own row, with who wrote it and when. Notes are read
under the caller's read scope on customers, in the mode the policy gives
`customer_note.body` (clear for the file's managers and agents and for support, masked
for compliance, none for others); exported and erased with the file.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.authz.authorizer import FieldMode
from server.caller import Caller
from server.clock import Clock
from server.customer.repository import CustomerRepository, scope_predicate
from server.data.base import DataClass, new_id
from server.data.models import CustomerNote
from server.errors import ForbiddenError, ValidationError, VaultError
from server.note.repository import NoteRepository
from server.vault import DataKey, FieldRef, Vault
from server.vault.masking import mask_text

CUSTOMER = "customer"
OBJECT = "customer_note"
TABLE = "customer_notes"
MAX_BODY = 4000
MAX_NOTES = 200


class _Denied:
    __slots__ = ()


DENIED = _Denied()


@dataclass(frozen=True, slots=True)
class NoteVersionView:
    version: int
    written_at: datetime
    written_by: str
    body: Any

    def text(self) -> str | None:
        if self.body is DENIED:
            raise ForbiddenError("not allowed to read customer_note.body")
        return self.body if isinstance(self.body, str) else None


@dataclass(frozen=True, slots=True)
class NoteView:
    """A note as this caller may see it: every version, the newest last."""

    id: uuid.UUID
    customer_id: uuid.UUID
    versions: list[NoteVersionView]

    @property
    def current(self) -> NoteVersionView:
        return self.versions[-1]

    @property
    def first(self) -> NoteVersionView:
        return self.versions[0]


class NoteService:
    def __init__(self, vault: Vault, *, clock: Clock | None = None) -> None:
        self.vault = vault
        self.clock = clock or Clock()

    def reads_in_clear(self, caller: Caller) -> bool:
        """Whether the caller reads notes in clear: only then may a write tell it that a
        note it gives is one the file has."""
        return caller.gate.field_mode(OBJECT, "body", DataClass.PERSONAL) is FieldMode.CLEAR

    async def of_customers(
        self, session: AsyncSession, caller: Caller, customer_ids: Collection[uuid.UUID]
    ) -> list[NoteView]:
        """The notes of customers the caller may read (others are simply absent)."""
        if not customer_ids:
            return []
        scope = scope_predicate(caller.gate.row_scope(CUSTOMER, "read"), caller.principal)
        mode = caller.gate.field_mode(OBJECT, "body", DataClass.PERSONAL)
        rows = await NoteRepository(session).of_customers(customer_ids, scope)
        notes: dict[uuid.UUID, NoteView] = {}
        keys: dict[uuid.UUID, DataKey | None] = {}
        for row in rows:
            version: CustomerNote = row[0]
            body: Any = DENIED
            if mode is not FieldMode.NONE:
                body = self._open(version, row.kek_version, row.wrapped_dek, keys)
                if body is not None and mode is FieldMode.MASKED:
                    body = mask_text(body)
            note = notes.setdefault(
                version.note_id, NoteView(version.note_id, version.customer_id, [])
            )
            note.versions.append(
                NoteVersionView(version.version, version.written_at, version.written_by, body)
            )
        caller.audit.read(
            OBJECT,
            (row[0].id for row in rows),
            {"body": mode.value} if mode is not FieldMode.NONE else {},
            ["body"] if mode is FieldMode.NONE else [],
        )
        if notes:
            # Named by their customer too: "who saw customer X" (the audit search by
            # customer) finds whoever read only X's notes.
            caller.audit.read(
                CUSTOMER,
                {n.customer_id for n in notes.values()},
                {"notes": mode.value} if mode is not FieldMode.NONE else {},
            )
        return list(notes.values())

    def _open(
        self,
        version: CustomerNote,
        kek_version: int | None,
        wrapped: bytes | None,
        keys: dict[uuid.UUID, DataKey | None],
    ) -> str | None:
        if version.customer_id not in keys:
            try:
                keys[version.customer_id] = self.vault.open_data_key(
                    version.customer_id, kek_version, wrapped
                )
            except VaultError:
                keys[version.customer_id] = None
        key = keys[version.customer_id]
        if key is None:
            return None
        try:
            return self.vault.reveal(key, FieldRef(TABLE, "body", version.id), version.body)
        except VaultError:
            return None

    async def get(self, session: AsyncSession, caller: Caller, note_id: uuid.UUID) -> NoteView:
        latest = await NoteRepository(session).latest(note_id)
        notes = await self.of_customers(session, caller, [latest.customer_id] if latest else [])
        for note in notes:
            if note.id == note_id:
                return note
        raise caller.gate.not_found(OBJECT, "read", note_id, what="note")

    async def add(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, body: str
    ) -> uuid.UUID:
        """A new note on a file the caller may update (else NOT_FOUND); returns its id."""
        text = _body(body)
        key = await self._file_key(session, caller, customer_id)
        if await NoteRepository(session).count_of(customer_id) >= MAX_NOTES:
            raise ValidationError(f"a customer has at most {MAX_NOTES} notes", code="TOO_MANY")
        note_id = new_id()
        await self._write(session, caller, key, customer_id, note_id, 1, text)
        return note_id

    async def edit(
        self, session: AsyncSession, caller: Caller, note_id: uuid.UUID, body: str
    ) -> int:
        """A new version of a note of a file the caller may update; unknown notes and
        notes of other files alike answer NOT_FOUND. Returns the new version number."""
        # The caller's update scope first: a caller with none is refused, not told
        # whether the note exists.
        scope = scope_predicate(caller.gate.row_scope(CUSTOMER, "update"), caller.principal)
        text = _body(body)
        latest = await NoteRepository(session).latest(note_id)
        if latest is None:
            raise caller.gate.not_found(OBJECT, "update", note_id, what="note")
        found = await CustomerRepository(session).for_update(latest.customer_id, scope)
        if found is None:
            raise caller.gate.not_found(OBJECT, "update", note_id, what="note")
        _customer, stored = found
        key = self.vault.open_data_key(latest.customer_id, stored.kek_version, stored.wrapped_dek)
        # Read again under the file's lock: two edits at once get consecutive versions.
        latest = await NoteRepository(session).latest(note_id) or latest
        version = latest.version + 1
        await self._write(session, caller, key, latest.customer_id, note_id, version, text)
        return version

    async def _file_key(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID
    ) -> DataKey:
        scope = scope_predicate(caller.gate.row_scope(CUSTOMER, "update"), caller.principal)
        found = await CustomerRepository(session).for_update(customer_id, scope)
        if found is None:
            raise caller.gate.not_found(CUSTOMER, "update", customer_id)
        _customer, stored = found
        return self.vault.open_data_key(customer_id, stored.kek_version, stored.wrapped_dek)

    def sealed_row(
        self, key: DataKey, customer_id: uuid.UUID, body: str, *, written_by: str, at: datetime
    ) -> dict[str, Any]:
        """A new note (its first version) as a row for a bulk insert (an import's batch):
        checked and sealed as `add` does."""
        text = _body(body)
        row_id = new_id()
        return {
            "id": row_id,
            "note_id": new_id(),
            "customer_id": customer_id,
            "version": 1,
            "body": self.vault.seal(key, FieldRef(TABLE, "body", row_id), text),
            "written_at": at,
            "written_by": written_by[:128],
        }

    def current_texts(self, key: DataKey, versions: Collection[CustomerNote]) -> set[str]:
        """The current text of each note among `versions` (a file's rows), in clear for
        the server's own comparison (an import that must not add a note twice)."""
        latest: dict[uuid.UUID, CustomerNote] = {}
        for version in versions:
            if version.note_id not in latest or version.version > latest[version.note_id].version:
                latest[version.note_id] = version
        texts: set[str] = set()
        for version in latest.values():
            try:
                texts.add(self.vault.reveal(key, FieldRef(TABLE, "body", version.id), version.body))
            except VaultError:
                continue
        return texts

    async def _write(
        self,
        session: AsyncSession,
        caller: Caller,
        key: DataKey,
        customer_id: uuid.UUID,
        note_id: uuid.UUID,
        version: int,
        text: str,
    ) -> None:
        row_id = new_id()
        await NoteRepository(session).add(
            CustomerNote(
                id=row_id,
                note_id=note_id,
                customer_id=customer_id,
                version=version,
                body=self.vault.seal(key, FieldRef(TABLE, "body", row_id), text),
                written_at=self.clock.now(),
                written_by=caller.principal.subject[:128],
            )
        )
        caller.audit.change(OBJECT, "create" if version == 1 else "update", row_id, ["body"])


def note_body(body: str) -> str:
    """A note's text as stored; refuses an empty or overlong one as `add` would."""
    return _body(body)


def _body(body: str) -> str:
    text = body.strip()
    if not text:
        raise ValidationError("a note needs text", field="body")
    if len(text) > MAX_BODY:
        raise ValidationError(f"a note is at most {MAX_BODY} characters", field="body")
    return text
