"""Which document a request runs: its text, a persisted one, or a refusal.

Automatic Persisted Queries (Apollo's protocol): a client sends
`extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}` without the text; an
unknown hash answers `PERSISTED_QUERY_NOT_FOUND` and the client sends text and hash once,
which registers it in this process (a bounded cache: each worker learns a document on
its first miss). `CUSTOS_PERSISTED_QUERIES=false` answers `PERSISTED_QUERY_NOT_SUPPORTED`.

Trusted documents (`CUSTOS_TRUSTED_DOCUMENTS=true`): only documents registered with
`custos documents add` or listed in `CUSTOS_TRUSTED_DOCUMENTS_FILE` run. A hash nobody
registered is `PERSISTED_QUERY_NOT_FOUND` (404); a text whose hash is not registered is
`PERSISTED_QUERY_NOT_IN_LIST` (403); nothing registers itself.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.config import Settings
from server.documents.manifest import SHA256, documents_of, sha256_hex
from server.documents.repository import TrustedDocumentRepository
from server.errors import ConfigError, ValidationError
from server.graphql_http import GraphQLRequest, HttpProblem

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
# Apollo clients retry with the full text on these two, which arrive as GraphQL errors
# of a 200 answer that no cache may keep.
_RETRY_HEADERS = {"Cache-Control": "private, no-cache, must-revalidate"}
APQ_CACHE_SIZE = 2_000


def requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    """The SHA-256 a request names in `extensions.persistedQuery`, checked for shape."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict):
        raise HttpProblem(400, "extensions.persistedQuery must be an object", "BAD_REQUEST")
    if persisted.get("version") != 1:
        raise HttpProblem(400, "persistedQuery version 1 is the only one", "BAD_REQUEST")
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not SHA256.fullmatch(digest.lower()):
        raise HttpProblem(
            400, "persistedQuery.sha256Hash must be 64 hexadecimal digits", "BAD_REQUEST"
        )
    return digest.lower()


class DocumentStore:
    """One process's view of persisted and trusted documents."""

    def __init__(self, settings: Settings) -> None:
        self.automatic = settings.persisted_queries
        self.trusted_only = settings.trusted_documents
        self._max_document = settings.max_body_bytes
        self._cache: OrderedDict[str, str] = OrderedDict()
        # Registered documents seen once: a registration is never withdrawn while running.
        self._trusted: dict[str, str] = {}
        if settings.trusted_documents_file is not None:
            try:
                self._trusted.update(documents_of(settings.trusted_documents_file))
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"CUSTOS_TRUSTED_DOCUMENTS_FILE: unreadable ({type(exc).__name__})"
                ) from None
            except ValidationError as error:
                raise ConfigError(f"CUSTOS_TRUSTED_DOCUMENTS_FILE: {error.message}") from None

    async def resolve(self, request: GraphQLRequest, session: AsyncSession) -> GraphQLRequest:
        """The request with the text it runs, or an `HttpProblem` saying why none. Asked
        once the caller is authenticated: an anonymous flood of hashes reads nothing."""
        digest = requested_hash(request.extensions)
        if self.trusted_only:
            return await self._trusted_document(request, digest, session)
        if digest is None:
            return request
        if not self.automatic:
            raise HttpProblem(200, "PersistedQueryNotSupported", NOT_SUPPORTED, _RETRY_HEADERS)
        if request.query:
            if sha256_hex(request.query) != digest:
                raise HttpProblem(400, "provided sha does not match query", "BAD_REQUEST")
            self._remember(digest, request.query)
            return request
        document = self._cache.get(digest)
        if document is not None:
            self._cache.move_to_end(digest)
        else:
            document = await self._registered(digest, session)
        if document is None:
            raise HttpProblem(200, "PersistedQueryNotFound", NOT_FOUND, _RETRY_HEADERS)
        return dataclasses.replace(request, query=document)

    async def _trusted_document(
        self, request: GraphQLRequest, digest: str | None, session: AsyncSession
    ) -> GraphQLRequest:
        if digest is None:
            # Text without a hash runs only if that very text is registered.
            if await self._registered(sha256_hex(request.query), session) is None:
                raise HttpProblem(403, "only trusted documents run on this server", NOT_IN_LIST)
            return request
        document = await self._registered(digest, session)
        if document is None:
            raise HttpProblem(404, "PersistedQueryNotFound", NOT_FOUND)
        if request.query and request.query != document:
            raise HttpProblem(400, "provided sha does not match query", "BAD_REQUEST")
        return dataclasses.replace(request, query=document)

    async def _registered(self, digest: str, session: AsyncSession) -> str | None:
        found = self._trusted.get(digest)
        if found is None:
            found = await TrustedDocumentRepository(session).document(digest)
            if found is not None:
                self._trusted[digest] = found
        return found

    def _remember(self, digest: str, document: str) -> None:
        if len(document) > self._max_document:
            return
        self._cache[digest] = document
        self._cache.move_to_end(digest)
        while len(self._cache) > APQ_CACHE_SIZE:
            self._cache.popitem(last=False)
