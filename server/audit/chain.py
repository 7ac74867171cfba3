"""Hashing of audit entries: each hash covers the entry's content and the previous hash."""

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


def entry_hash(
    prev_hash: str, event: Mapping[str, Any], accesses: Iterable[Mapping[str, Any]]
) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update(canonical(event))
    for access in accesses:
        digest.update(canonical(access))
    return digest.hexdigest()


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
