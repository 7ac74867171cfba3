"""Hashing of audit entries.

An entry's hash is SHA-256 of its document: the canonical JSON of its event fields and
its accesses (`entry_document`). Entries written before the ledger had blocks were
chained instead: their hash also covers the previous entry's hash and their `seq`
(`chain_bytes`); both kinds are leaves of the blocks the sealer builds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def canonical(content: Mapping[str, Any]) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_SORT_KEYS)


def chain_bytes(
    prev_hash: str, event: Mapping[str, Any], accesses: Iterable[Mapping[str, Any]]
) -> bytes:
    """What a chained (pre-block) entry's hash covers."""
    return prev_hash.encode() + canonical(event) + b"".join(canonical(a) for a in accesses)


def entry_hash(
    prev_hash: str, event: Mapping[str, Any], accesses: Iterable[Mapping[str, Any]]
) -> str:
    """The hash of a chained (pre-block) entry."""
    return hashlib.sha256(chain_bytes(prev_hash, event, accesses)).hexdigest()


def entry_document(event: Mapping[str, Any], accesses: Iterable[Mapping[str, Any]]) -> bytes:
    """What an entry's hash covers: its event fields (without `seq`, which is only its
    arrival order) and its accesses, in the order they were recorded."""
    content = {key: value for key, value in event.items() if key != "seq"}
    return canonical({"event": content, "accesses": list(accesses)})


def document_hash(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


def stored_bytes(event: Any, accesses: Iterable[Mapping[str, Any]]) -> bytes:
    """The bytes a stored entry's `hash` must be the SHA-256 of (either kind)."""
    if event.prev_hash is not None:
        return chain_bytes(event.prev_hash, event_content(event), accesses)
    return entry_document(event_content(event), accesses)


def event_content(event: Any) -> dict[str, Any]:
    """The hashed fields of an event (an ORM row or anything with the same attributes)."""
    occurred_at = event.occurred_at
    if occurred_at.tzinfo is None:
        # SQLite returns naive datetimes; the chain always hashes UTC.
        from datetime import UTC

        occurred_at = occurred_at.replace(tzinfo=UTC)
    return {
        "id": str(event.id),
        "seq": event.seq,
        "occurred_at": occurred_at.isoformat(),
        "subject": event.subject,
        "roles": list(event.roles),
        "api_key_id": str(event.api_key_id) if event.api_key_id else None,
        "purpose": event.purpose,
        "operation_type": event.operation_type,
        "operation_name": event.operation_name,
        "query_hash": event.query_hash,
        "client_addr": event.client_addr,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "outcome": event.outcome,
    }


def access_content(
    object_type: str,
    action: str,
    fields: Mapping[str, str],
    denied_fields: Iterable[str],
    changed_fields: Iterable[str],
    record_ids: Iterable[str],
) -> dict[str, Any]:
    return {
        "object_type": object_type,
        "action": action,
        "fields": dict(sorted(fields.items())),
        "denied_fields": sorted(denied_fields),
        "changed_fields": sorted(changed_fields),
        "record_ids": sorted(record_ids),
    }
