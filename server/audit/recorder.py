"""Collects what one operation touched and writes it as one audit entry.

Services call `read`, `change` and `deny`. A mutation's entry is appended with `commit`
inside the mutation's transaction, so the entry and the data commit together or not at
all; a read's entry is `prepare`d and group-committed with other requests' entries
(`server.audit.group_commit`) before its response leaves. Only ids, field names and
modes are recorded, never values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.chain import access_content, document_hash, entry_document, event_content
from server.audit.repository import AuditRepository, PreparedEntry
from server.auth.principal import Principal
from server.data.base import new_id, utcnow
from server.vault.signing import SigningKeys, query_hash

# Accesses that are searches by a field's value: they happened even when the operation's
# changes are rolled back, so, like reads and denials, they are never discarded.
SEARCHES = frozenset({"lookup", "duplicate_check"})


@dataclass
class _Access:
    object_type: str
    action: str
    fields: dict[str, str]
    denied_fields: list[str]
    changed_fields: list[str]
    record_ids: list[uuid.UUID] = field(default_factory=list)


class AuditRecorder:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self._accesses: dict[tuple[object, ...], _Access] = {}
        self.denials = 0

    def read(
        self,
        object_type: str,
        record_ids: Iterable[uuid.UUID],
        fields: Mapping[str, str],
        denied: Iterable[str] = (),
    ) -> None:
        """Records of one type were returned with these fields in these modes."""
        denied_list = sorted(denied)
        if denied_list:
            self.denials += 1
        self._add(object_type, "read", dict(fields), denied_list, [], record_ids)

    def change(
        self,
        object_type: str,
        action: str,
        record_id: uuid.UUID | None,
        changed_fields: Iterable[str] = (),
    ) -> None:
        """A record was created, updated or erased; field names only, never values."""
        self._add(
            object_type, action, {}, [], sorted(changed_fields), [record_id] if record_id else []
        )

    def lookup(
        self,
        object_type: str,
        action: str,
        field: str,
        *,
        hit: bool,
        record_ids: Iterable[uuid.UUID] = (),
    ) -> None:
        """A search by the value of `field` (never the value itself): `action` is `lookup`
        (a caller asked for a record by it) or `duplicate_check` (a write checked it),
        recorded as `{field: "hit" | "miss"}` with the ids the search concerned."""
        if action not in SEARCHES:
            raise ValueError(f"not a search action: {action}")
        self._add(object_type, action, {field: "hit" if hit else "miss"}, [], [], record_ids)

    def export(
        self,
        object_type: str,
        record_ids: Iterable[uuid.UUID],
        fields: Mapping[str, str],
        exported: Iterable[str],
    ) -> None:
        """Records were handed over whole (a data-subject export): the fields revealed
        with their modes, as a read records them (so "who saw field X" finds the
        export), and every exported column as `table.column`."""
        self._add(object_type, "export", dict(fields), [], sorted(exported), record_ids)

    def deny(self, object_type: str, action: str, record_id: uuid.UUID | None = None) -> None:
        self.denials += 1
        self._add(object_type, action, {}, ["*"], [], [record_id] if record_id else [])

    def discard_changes(self) -> None:
        """The operation's data changes were rolled back: they must not be claimed."""
        self._accesses = {
            key: access
            for key, access in self._accesses.items()
            if access.action == "read" or access.action in SEARCHES or access.denied_fields
        }

    def mark(self) -> dict[tuple[object, ...], int]:
        """Where the record stands now; `discard_changes_since` returns to it."""
        return {key: len(access.record_ids) for key, access in self._accesses.items()}

    def discard_changes_since(self, mark: dict[tuple[object, ...], int]) -> None:
        """A savepoint rolled back: changes recorded after `mark` did not happen. Reads,
        searches and denials stay, as in `discard_changes`."""
        for key, access in list(self._accesses.items()):
            if access.action == "read" or access.action in SEARCHES or access.denied_fields:
                continue
            kept = mark.get(key)
            if kept is None:
                del self._accesses[key]
            else:
                del access.record_ids[kept:]

    def _add(
        self,
        object_type: str,
        action: str,
        fields: dict[str, str],
        denied: list[str],
        changed: list[str],
        record_ids: Iterable[uuid.UUID],
    ) -> None:
        key = (object_type, action, tuple(sorted(fields.items())), tuple(denied), tuple(changed))
        access = self._accesses.get(key)
        if access is None:
            access = _Access(object_type, action, fields, denied, changed)
            self._accesses[key] = access
        access.record_ids.extend(record_ids)

    def prepare(
        self,
        *,
        operation_type: str,
        operation_name: str | None,
        query: str | None,
        outcome: str,
        occurred_at: datetime | None = None,
        keys: SigningKeys | None = None,
    ) -> PreparedEntry:
        """This operation's entry, hashed and ready to append (`seq` comes at insert).

        `keys` key the query hash (without them no query hash is stored)."""
        principal = self.principal
        occurred = (occurred_at or utcnow()).astimezone(UTC)
        event: dict[str, object] = {
            "id": new_id(),
            # Hashed as UTC: the databases hand instants back in UTC (or naive).
            "occurred_at": occurred,
            "subject": _fit(principal.subject, 128),
            "roles": sorted(principal.roles),
            "api_key_id": principal.api_key_id,
            "purpose": principal.purpose,
            "operation_type": _fit(operation_type, 16),
            "operation_name": _fit(operation_name, 128),
            # Keyed: an unkeyed hash of a known template would confirm guessed values.
            "query_hash": query_hash(keys, query) if query and keys is not None else None,
            "client_addr": _fit(principal.client_addr, 64),
            "user_agent": _fit(principal.user_agent, 256),
            "request_id": _fit(principal.request_id, 64),
            "outcome": outcome,
            "prev_hash": None,
        }
        rows: list[tuple[dict[str, object], list[uuid.UUID]]] = []
        hashed = []
        for access in self._accesses.values():
            unique_ids = list(dict.fromkeys(access.record_ids))
            rows.append(
                (
                    {
                        "object_type": access.object_type,
                        "action": access.action,
                        "fields": access.fields,
                        "denied_fields": access.denied_fields,
                        "changed_fields": access.changed_fields,
                        "record_count": len(unique_ids),
                    },
                    unique_ids,
                )
            )
            hashed.append(
                access_content(
                    access.object_type,
                    access.action,
                    access.fields,
                    access.denied_fields,
                    access.changed_fields,
                    (str(r) for r in unique_ids),
                )
            )
        content = event_content(_Row({**event, "seq": None}))
        event["hash"] = document_hash(entry_document(content, hashed))
        return PreparedEntry(event, rows)

    async def commit(
        self,
        session: AsyncSession,
        *,
        operation_type: str,
        operation_name: str | None,
        query: str | None,
        outcome: str,
        occurred_at: datetime | None = None,
        keys: SigningKeys | None = None,
    ) -> uuid.UUID:
        """Append this operation's entry inside the caller's transaction (a mutation's,
        a command's step): it commits with the data or not at all. No lock is taken: the
        sealer orders entries later."""
        entry = self.prepare(
            operation_type=operation_type,
            operation_name=operation_name,
            query=query,
            outcome=outcome,
            occurred_at=occurred_at,
            keys=keys,
        )
        await AuditRepository(session).append_entries([entry])
        return entry.id


def _fit(value: str | None, width: int) -> str | None:
    """Client-supplied text is cut to its column: a long header must not fail the audit."""
    return value[:width] if value else None


class JobAudit(Protocol):
    """The audit of a job that runs its own transactions (key rotation): the job notes
    what it did on `audit` and appends its one event with `record`, in its last one."""

    audit: AuditRecorder

    async def record(self, session: AsyncSession) -> uuid.UUID: ...

    async def record_step(self, session: AsyncSession, detail: str) -> uuid.UUID:
        """Append an event for what the job noted so far (`<name> <detail>`) inside
        `session`'s transaction; the job's own event stays due."""
        ...


class _Row:
    """Attribute view of an event dict, so hashing shares `event_content` with verify."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.__dict__.update(values)
