"""Reading documents to trust: a manifest file or GraphQL files.

Manifests in the formats clients' build tools write: graphql-codegen's client preset
(`{"<sha256>": "<document>"}`), Apollo's persisted-query manifest (`{"format":
"apollo-persisted-query-manifest", "operations": [{"id", "name", "body"}]}`) or a plain
list of documents. Every id must be the SHA-256 of its document's text, as clients
compute it for Automatic Persisted Queries."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson

from server.errors import ValidationError

SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"\b(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def operation_name(document: str) -> str | None:
    """The first named operation of a document (for listings), if any."""
    match = _NAME.search(document)
    return match.group(1)[:128] if match else None


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, code="INVALID_MANIFEST")


def _entries(payload: Any) -> list[tuple[Any, Any]]:
    if isinstance(payload, list):
        return [(None, body) for body in payload]
    if isinstance(payload, dict) and isinstance(payload.get("operations"), list):
        entries = []
        for operation in payload["operations"]:
            if not isinstance(operation, dict):
                raise _invalid("every operation of the manifest is an object with id and body")
            entries.append((operation.get("id"), operation.get("body")))
        return entries
    if isinstance(payload, dict):
        return list(payload.items())
    raise _invalid("a manifest is a JSON object or list")


def documents_of(path: Path) -> dict[str, str]:
    """The documents of a manifest (`.json`) or of one GraphQL file, by SHA-256.

    Refuses an entry whose id is not the SHA-256 of its text, naming its position only."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".json":
        if not text.strip():
            raise _invalid(f"{path.name}: empty document")
        return {sha256_hex(text): text}
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _invalid(f"{path.name}: not valid JSON") from None
    documents: dict[str, str] = {}
    for index, (given, body) in enumerate(_entries(payload)):
        if not isinstance(body, str) or not body.strip():
            raise _invalid(f"{path.name}: entry {index} has no document text")
        digest = sha256_hex(body)
        if given is not None and (not isinstance(given, str) or given.lower() != digest):
            raise _invalid(f"{path.name}: entry {index}: its id is not the SHA-256 of its document")
        documents[digest] = body
    return documents
