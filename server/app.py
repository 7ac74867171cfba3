"""The ASGI application: the one place that mounts the GraphQL schema.

A request: limits and negotiation → authentication → the operation in one transaction →
its audit entry → response. A mutation runs in a write transaction and its entry commits
with its changes; a read runs in a read transaction (deferred on SQLite: no write lock)
and its entry is group-committed with other requests' entries. Either way the response
leaves only once the entry is durable; if it cannot be, the client gets a 503, never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError, get_operation_ast, parse
from graphql import OperationType as GraphQLOperationType
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from schema.build import build_schema
from schema.context import GraphQLContext
from server.audit.group_commit import EntryNotDurable, GroupCommit
from server.audit.recorder import AuditRecorder
from server.audit.repository import AuditRepository, PreparedEntry
from server.audit.sealer import Sealer, sealing
from server.auth.api_keys import parse_prefix
from server.auth.principal import PURPOSES, Principal, PrincipalKind
from server.auth.repository import ApiKeyRepository
from server.auth.tokens import TokenVerifier
from server.authz.authorizer import Authorizer
from server.authz.service import with_assigned_roles
from server.caller import Caller, caller_for
from server.config import Settings, load_settings
from server.console.routes import Console, ConsoleBackend
from server.data.engine import (
    create_engine,
    create_read_session_factory,
    create_session_factory,
    is_busy,
    is_stale_connection,
    ping,
)
from server.data.migrate import head_revision
from server.data.write_queue import WriteQueue, write_queue
from server.documents.persisted import DocumentStore
from server.errors import (
    AuditWriteError,
    AuthenticationError,
    ConfigError,
    CustosError,
    DatabaseBusy,
    ForbiddenError,
    RequestTimeout,
)
from server.graphiql import ASSET_PATH, graphiql_asset, graphiql_page
from server.graphql_http import (
    GRAPHQL_RESPONSE,
    GraphQLRequest,
    HttpProblem,
    check_content_type,
    describe_unexpected,
    format_error,
    is_persisted_get,
    is_request_error,
    negotiate,
    parse_body,
    parse_query_params,
    problem_body,
    read_body,
)
from server.inputs import text_problem
from server.observability import metrics
from server.observability.health import Readiness
from server.observability.requests import RequestLayer, RequestRecord, new_request_id, record_of
from server.ratelimit import Admission, RateLimits
from server.security.stream import BAD_PURPOSE, record_refusal
from server.services import Services
from server.users.service import Accounts, ActiveSession
from server.vault.keyring import LocalKeyring

log = logging.getLogger("custos.http")


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    services: Services
    schema: strawberry.Schema
    tokens: TokenVerifier
    writes: WriteQueue
    readiness: Readiness
    documents: DocumentStore
    read_sessions: async_sessionmaker[AsyncSession]
    ledger: GroupCommit
    sealer: Sealer
    rate_limits: RateLimits | None = None


def build_state(settings: Settings) -> AppState:
    keyring = LocalKeyring.load(settings.keyring, create=settings.env == "dev")
    engine = create_engine(settings.database_url, pool=settings.pool)
    services = Services.build(keyring, settings=settings)
    sessions = create_session_factory(engine)
    writes = write_queue(settings.database_url, settings.db_busy_seconds)
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=create_read_session_factory(engine),
        ledger=GroupCommit(sessions, turn=writes.turn),
        sealer=Sealer(keyring, lambda: services.clock.now(), block_size=settings.audit_block_size),
        services=services,
        schema=build_schema(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            max_fields=settings.max_fields,
            max_cost=settings.max_query_cost,
            max_page_size=settings.max_page_size,
            max_input_string=settings.max_input_string,
            max_input_list=settings.max_input_list,
            suggestions=settings.suggestions,
            open_introspection=settings.env == "dev",
        ),
        tokens=TokenVerifier(settings),
        writes=writes,
        readiness=Readiness(
            sessions=create_session_factory(engine),
            clock=services.clock,
            keyring=settings.keyring,
            head=head_revision(),
        ),
        documents=DocumentStore(settings),
        rate_limits=RateLimits.from_settings(settings),
    )


def create_app(settings: Settings | None = None, *, migrate: bool | None = None) -> Starlette:
    settings = settings or load_settings()
    state = build_state(settings)
    metrics.setup(settings.metrics_path)
    metrics.watch_pool(state.engine.sync_engine.pool)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if migrate if migrate is not None else settings.env == "dev":
            from server.data.migrate import upgrade_to_head

            await asyncio.to_thread(upgrade_to_head, settings.database_url)
        async with state.sessions() as session, session.begin():
            await state.services.authorizer.ensure_seeded(session)
        async with sealing(
            state.sealer,
            state.sessions,
            state.read_sessions,
            state.settings.audit_seal_interval_seconds,
            state.writes.turn,
        ):
            yield
            await state.ledger.close()
        if state.rate_limits is not None:
            await state.rate_limits.close()
        await state.engine.dispose()

    async def graphql(request: Request) -> Response:
        return await handle_graphql(state, request)

    async def graphiql_static(request: Request) -> Response:
        return graphiql_asset(state.settings, request)

    async def healthz(_: Request) -> Response:
        try:
            await ping(state.sessions)
        except (SQLAlchemyError, OSError, TimeoutError):
            return Response(b'{"status":"unavailable"}', 503, media_type="application/json")
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def livez(_: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(_: Request) -> Response:
        problems = await state.readiness.problems()
        if problems:
            body = orjson.dumps({"status": "unavailable", "reasons": problems})
            return Response(body, 503, media_type="application/json")
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def metrics_endpoint(request: Request) -> Response:
        return await handle_metrics(state, request)

    console = Console(
        ConsoleBackend(
            settings=state.settings,
            sessions=state.sessions,
            services=state.services,
            accounts=Accounts(state.services.clock, state.settings, state.services.vault),
            rate_limits=state.rate_limits,
            graphql=lambda request, active, query, variables, purpose: console_graphql(
                state, request, active, query, variables, purpose
            ),
            principal=lambda session, request, active: console_principal(
                session,
                request,
                active,
                active.purpose,
                secrets.token_hex(8),
                state.services.authorizer,
            ),
            record=lambda session, recorder, name, outcome: console_record(
                state, session, recorder, name, outcome
            ),
        )
    )

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route(f"{ASSET_PATH}/{{name}}", graphiql_static, methods=["GET"]),
            *console.routes(),
        ],
        middleware=edge_middleware(settings),
        lifespan=lifespan,
    )
    app.state.custos = state
    return app


def edge_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: the request id, log line and metrics see every answer (404s,
    preflights, crashes); the client's address is the peer's unless the peer is a trusted
    proxy; CORS answers preflights for the configured origins only."""
    layers = [
        Middleware(RequestLayer),
        # Only listed proxies' X-Forwarded-For/-Proto count: by default none, so a client
        # can never write another address into the audit.
        Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list),
    ]
    origins = settings.cors_origin_list
    if origins:
        layers.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-Purpose", "X-Request-Id"],
                expose_headers=[
                    "X-Request-Id",
                    "Retry-After",
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                ],
                max_age=600,
            )
        )
    return layers


async def scrape(sessions: async_sessionmaker[AsyncSession], clock: Any) -> bytes:
    """The `/metrics` body: every worker's metrics, and the audit's freshness read now."""
    from server.audit.repository import AuditRepository

    extra = []
    try:
        async with sessions() as session:
            latest, seq, checkpoint = await AuditRepository(session).freshness()
    except (SQLAlchemyError, OSError, TimeoutError):
        extra.append(
            metrics.gauge("custos_database_up", "Whether the last scrape reached the database", 0)
        )
    else:
        extra.append(
            metrics.gauge("custos_database_up", "Whether the last scrape reached the database", 1)
        )
        age = (clock.now() - latest).total_seconds() if latest is not None else 0.0
        extra.append(
            metrics.gauge(
                "custos_audit_latest_entry_age_seconds",
                "Seconds since the newest audit entry was appended (the seal lag stands in "
                "for this once entries are sealed into blocks)",
                max(age, 0.0),
            )
        )
        extra.append(
            metrics.gauge(
                "custos_audit_entries_since_checkpoint",
                "Audit entries appended after the newest signed checkpoint",
                max(seq - checkpoint, 0),
            )
        )
    return metrics.exposition(extra)


async def handle_metrics(state: AppState, request: Request) -> Response:
    """`/metrics` on the API port: a bearer token whose roles may `scrape` `metrics`
    (admin by default). A refusal is audited like any other."""
    record = record_of(request.scope)
    request_id = record.request_id if record else new_request_id()
    media = "application/json"
    try:
        if state.rate_limits is not None:
            await state.rate_limits.check_address(_client_address(request))
        async with state.sessions() as session, session.begin():
            principal = await _authenticate(state, session, request, None, request_id)
            if record is not None:
                record.subject = principal.subject
            await state.services.authorizer.refresh(session)
            caller = caller_for(principal, state.services.authorizer)
            try:
                caller.gate.require("metrics", "scrape")
            except ForbiddenError as error:
                await caller.audit.commit(
                    session,
                    operation_type="unknown",
                    operation_name="metrics",
                    query=None,
                    outcome="denied",
                    occurred_at=state.services.clock.now(),
                    keys=state.services.audit.keys,
                )
                _note_codes(record, [error.code])
                return _problem(403, error.message, error.code, media)
    except HttpProblem as problem:
        _note_codes(record, [problem.code])
        return _problem(problem.status, problem.message, problem.code, media, problem.headers)
    except AuthenticationError as error:
        await _authentication_failed(state, request, error, request_id, record)
        return _problem(
            401, error.message, error.code, media, {"WWW-Authenticate": 'Bearer realm="custos"'}
        )
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.error("database failure request_id=%s type=%s", request_id, type(exc).__name__)
        _note_codes(record, ["DATABASE_UNAVAILABLE"])
        return _problem(503, "the database is unavailable", "DATABASE_UNAVAILABLE", media)
    body = await scrape(state.sessions, state.services.clock)
    return Response(body, media_type=metrics.CONTENT_TYPE)


def create_metrics_app(settings: Settings) -> Starlette:
    """`/metrics` without a token, for `CUSTOS_METRICS_PORT` (a port for the scraper
    inside the network, never the public one)."""
    from server.clock import Clock

    engine = create_engine(settings.database_url, pool=settings.pool)
    sessions = create_session_factory(engine)
    clock = Clock()

    async def metrics_endpoint(_: Request) -> Response:
        return Response(await scrape(sessions, clock), media_type=metrics.CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    return Starlette(
        routes=[Route("/metrics", metrics_endpoint, methods=["GET"])],
        middleware=[Middleware(RequestLayer)],
        lifespan=lifespan,
    )


def _note_codes(record: RequestRecord | None, codes: list[str]) -> None:
    if record is not None:
        record.error_codes.extend(codes)


async def _authentication_failed(
    state: AppState,
    request: Request,
    error: AuthenticationError,
    request_id: str,
    record: RequestRecord | None,
) -> None:
    if state.rate_limits is not None:
        await state.rate_limits.failed_authentication(_client_address(request))
    await _security_refusal(state, request, error.code, request_id)
    _note_codes(record, [error.code])


def _problem(
    status: int, message: str, code: str, media: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(problem_body(message, code), status, headers=headers, media_type=media)


async def handle_graphql(state: AppState, request: Request) -> Response:
    record = record_of(request.scope)
    request_id = record.request_id if record else new_request_id()
    media = "application/json"
    try:
        get = request.method == "GET"
        if get:
            if state.settings.graphiql and "text/html" in request.headers.get("accept", ""):
                return graphiql_page(state.settings, request)
            if not is_persisted_get(request.query_params):
                raise HttpProblem(
                    405,
                    "GraphQL requests are POST only (GET: persisted queries by hash)",
                    "METHOD_NOT_ALLOWED",
                    {"Allow": "POST"},
                )
        elif request.method != "POST":
            raise HttpProblem(
                405, "GraphQL requests are POST only", "METHOD_NOT_ALLOWED", {"Allow": "POST"}
            )
        media = negotiate(request.headers.get("accept"))
        if state.rate_limits is not None:
            await state.rate_limits.check_address(_client_address(request))
        if get:
            gql = parse_query_params(request.query_params)
        else:
            check_content_type(request.headers.get("content-type"))
            body = await read_body(request, state.settings.max_body_bytes)
            gql = parse_body(body)
        purpose = request.headers.get("x-purpose")
        if purpose is not None and purpose not in PURPOSES:
            raise HttpProblem(400, f"X-Purpose must be one of {', '.join(PURPOSES)}", BAD_PURPOSE)
        try:
            response = await _execute(
                state, request, gql, media, request_id, purpose, record, queries_only=get
            )
        except _StaleConnection:
            # The pooled connection had died (no ping on checkout) and nothing committed:
            # once more, on a fresh connection.
            response = await _execute(
                state,
                request,
                gql,
                media,
                request_id,
                purpose,
                record,
                retry_stale=False,
                queries_only=get,
            )
    except HttpProblem as problem:
        if problem.code == BAD_PURPOSE:
            await _security_refusal(state, request, problem.code, request_id)
        _note_codes(record, [problem.code])
        response = _problem(problem.status, problem.message, problem.code, media, problem.headers)
    except AuthenticationError as error:
        await _authentication_failed(state, request, error, request_id, record)
        response = _problem(
            401, error.message, error.code, media, {"WWW-Authenticate": 'Bearer realm="custos"'}
        )
    response.headers["X-Request-Id"] = request_id
    return response


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _security_refusal(state: AppState, request: Request, code: str, request_id: str) -> None:
    """A request refused before it had an authenticated caller: the security stream, not
    the audit chain (see `server/security/stream.py`)."""
    client = request.client
    await record_refusal(
        state.sessions,
        code=code,
        client_addr=client.host if client else None,
        request_id=request_id,
        at=state.services.clock.now(),
    )


def _bearer(request: Request) -> str:
    headers = request.headers.getlist("authorization")
    if not headers:
        raise AuthenticationError(
            "missing Authorization: Bearer credentials", code="UNAUTHENTICATED"
        )
    if len(headers) > 1:
        # Proxies and servers disagree on which of several wins: none does.
        raise AuthenticationError(
            "send exactly one Authorization header", code="DUPLICATE_AUTHORIZATION"
        )
    scheme, _, credentials = headers[0].partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip() or text_problem(credentials):
        raise AuthenticationError("Authorization must be 'Bearer <token>'", code="TOKEN_MALFORMED")
    return credentials.strip()


async def _authenticate(
    state: AppState, session: AsyncSession, request: Request, purpose: str | None, request_id: str
) -> Principal:
    credentials = _bearer(request)
    if parse_prefix(credentials) is not None:
        principal = await ApiKeyRepository(session).authenticate(
            credentials, state.services.clock.now()
        )
    else:
        principal = state.tokens.verify(credentials)
    # Roles assigned in the database join the token's (or key's) roles: read once per
    # policy version (the caller refreshed the authorizer first).
    principal = await with_assigned_roles(session, principal, state.services.authorizer)
    client = request.client
    return Principal(
        subject=principal.subject,
        roles=principal.roles,
        team=principal.team,
        api_key_id=principal.api_key_id,
        purpose=purpose,
        client_addr=client.host if client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id,
        kind=principal.kind,
    )


_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,127}")


def _audited_name(name: str | None) -> str | None:
    """The client's operationName for the audit when no operation took it: only a
    GraphQL name of sane length (any other text is no operation's name)."""
    return name if name is not None and _OPERATION_NAME.fullmatch(name) else None


_GET_OPERATIONS = (OperationType.QUERY,)
REFUSALS = frozenset({"FORBIDDEN", "NOT_FOUND", "UNAUTHENTICATED", "OUT_OF_SCOPE"})


def _outcome(data: Any, errors: list[GraphQLError], refused_results: int = 0) -> str:
    """ok, partial, denied or error. A root mutation answered with a `UserError` after
    the gate refused it (out of scope: NOT_FOUND, OUT_OF_SCOPE) counts as refused, like a
    root field that came back null with a FORBIDDEN or NOT_FOUND error."""
    if not errors and not refused_results:
        return "ok"
    codes = {format_error(e)["extensions"]["code"] for e in errors}
    roots = list(data.values()) if isinstance(data, dict) else []
    failed = sum(value is None for value in roots) + refused_results
    # Nothing came back (no data, or every root field null or refused): denied or error.
    if data is None or failed >= len(roots):
        return "denied" if codes <= REFUSALS else "error"
    return "partial"


class _StaleConnection(Exception):
    """The request's connection died before its transaction committed."""


def _may_write(gql: GraphQLRequest, credentials: str) -> bool:
    """Whether the request needs a write transaction: a mutation, or an API key (its use
    is stamped on the key). Everything else runs in a read transaction. A document that
    never says `mutation` cannot hold one, so most reads are told without a parse."""
    if parse_prefix(credentials) is not None:
        return True
    if "mutation" not in gql.query:
        return False
    try:
        document = parse(gql.query, no_location=True, max_tokens=MAX_PEEK_TOKENS)
    except GraphQLError:
        return False  # not executed: the parse error is answered below
    operation = get_operation_ast(document, gql.operation_name)
    return operation is None or operation.operation == GraphQLOperationType.MUTATION


# Bounds the peek's parse; a longer document is refused by the schema's own limits.
MAX_PEEK_TOKENS = 20_000


Authenticate = Callable[[AsyncSession], Awaitable[Principal]]


async def _execute(
    state: AppState,
    request: Request,
    gql: GraphQLRequest,
    media: str,
    request_id: str,
    purpose: str | None,
    record: RequestRecord | None = None,
    *,
    retry_stale: bool = True,
    queries_only: bool = False,
    authenticate: Authenticate | None = None,
) -> Response:
    """Run one GraphQL operation for the request's caller, audited, and answer it.

    `authenticate` finds the caller inside the operation's transaction: the bearer
    credentials by default; the console passes its signed-in user's session instead,
    so its screens take exactly this path (policy, field modes, limits, audit)."""
    services = state.services
    committing = False
    # The console's user has no bearer credentials: its session stands in for them.
    writes = _may_write(gql, _bearer(request) if authenticate is None else "")
    entry: PreparedEntry | None = None
    try:
        async with (
            state.writes.turn() if writes else contextlib.nullcontext(),
            state.sessions() if writes else state.read_sessions() as session,
            session.begin(),
        ):
            await services.authorizer.refresh(session)
            if authenticate is None:
                principal = await _authenticate(state, session, request, purpose, request_id)
            else:
                principal = await authenticate(session)
            if record is not None:
                record.subject = principal.subject
            # The text a persisted hash stands for, or a refusal (asked once the caller is
            # known: an anonymous flood of hashes reads nothing).
            gql = await state.documents.resolve(gql, session)
            caller = caller_for(principal, services.authorizer)
            admission = Admission(state.rate_limits, principal)
            context = GraphQLContext(
                session=session,
                caller=caller,
                services=services,
                max_page_size=state.settings.max_page_size,
                admit=admission.admit,
            )
            deadline = asyncio.timeout(state.settings.request_timeout_seconds)
            try:
                async with deadline:
                    result = await state.schema.execute(
                        gql.query,
                        variable_values=gql.variables,
                        context_value=context,
                        operation_name=gql.operation_name,
                        allowed_operation_types=_GET_OPERATIONS if queries_only else None,
                    )
            except TimeoutError:
                if not deadline.expired():
                    raise
                # Cancelled mid-way: the whole transaction rolls back on the way out.
                raise RequestTimeout(
                    "the operation ran past the request deadline and was cancelled; "
                    "nothing was changed"
                ) from None
            except InvalidOperationTypeError:
                raise HttpProblem(
                    405, "only queries run over GET", "METHOD_NOT_ALLOWED", {"Allow": "POST"}
                ) from None
            except CannotGetOperationTypeError:
                # Not the name itself: a client's operationName may be anything, any size.
                result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            "Unknown operation: operationName names no operation of the document."
                        )
                    ],
                )
            if context.operation_type == "mutation" and not writes:
                raise RuntimeError("a mutation ran in a read transaction")
            if record is not None:
                record.operation_type = context.operation_type
                record.operation_name = context.operation_name or _audited_name(gql.operation_name)
                record.cost = admission.cost
            admission.raise_refusal()
            errors = list(result.errors or [])
            unexpected = [
                e
                for e in errors
                if format_error(e)["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
            ]
            for error in unexpected:
                # Type and frames only: an exception's message may quote a value.
                assert error.original_error is not None
                log.error(
                    "unexpected error request_id=%s %s",
                    request_id,
                    describe_unexpected(error.original_error),
                )
            data_changes = context.data_changes
            if unexpected and context.operation_type == "mutation":
                # A mutation that failed unexpectedly changes nothing at all.
                if data_changes is not None:
                    await data_changes.rollback()
                caller.audit.discard_changes()
                result.data = None
                errors = unexpected
            elif data_changes is not None and data_changes.is_active:
                await data_changes.commit()
            entry = caller.audit.prepare(
                operation_type=context.operation_type,
                operation_name=context.operation_name or _audited_name(gql.operation_name),
                query=gql.query,
                outcome=_outcome(result.data, errors, context.refused_results),
                occurred_at=services.clock.now(),
                keys=services.audit.keys,
            )
            if writes:
                # The entry commits with the operation's changes, or neither does.
                try:
                    await AuditRepository(session).append_entries([entry])
                except SQLAlchemyError as exc:
                    if is_busy(exc) or (retry_stale and is_stale_connection(exc)):
                        raise
                    raise AuditWriteError(
                        "the audit trail is unavailable; nothing was done"
                    ) from exc
                # Past here a dead connection leaves the outcome unknown: no second attempt.
                committing = True
        if not writes:
            committing = True
            # The read is over; its answer leaves only once its entry is durable.
            try:
                await state.ledger.append(entry)
            except EntryNotDurable as exc:
                if exc.__cause__ is not None and (
                    isinstance(exc.__cause__, DatabaseBusy) or is_busy(exc.__cause__)
                ):
                    return _busy(state, DatabaseBusy(), media)
                raise AuditWriteError(
                    "the audit trail is unavailable; nothing was returned"
                ) from exc
    except AuditWriteError as error:
        cause = error.__cause__ or error
        log.error("audit write failed request_id=%s %s", request_id, describe_unexpected(cause))
        _note_codes(record, [error.code])
        return _problem(503, error.message, error.code, media)
    except DatabaseBusy as error:
        return _busy(state, error, media)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        if is_busy(exc):
            return _busy(state, DatabaseBusy(), media)
        if retry_stale and not committing and is_stale_connection(exc):
            raise _StaleConnection from exc
        # OSError: drivers raise connection failures (refused, reset) unwrapped.
        log.error("database failure request_id=%s type=%s", request_id, type(exc).__name__)
        _note_codes(record, ["DATABASE_UNAVAILABLE"])
        return _problem(
            503, "the database is unavailable; nothing was done", "DATABASE_UNAVAILABLE", media
        )
    except AuthenticationError:
        raise
    except RequestTimeout as error:
        # Not a database outage: the client's operation was too slow. The attempt is
        # audited in a transaction of its own (the operation's rolled back).
        await _audit_timeout(state, caller, context, gql)
        _note_codes(record, [error.code])
        return _problem(504, error.message, error.code, media)
    except CustosError as error:
        _note_codes(record, [error.code])
        return _problem(400, error.message, error.code, media)
    _note_codes(record, [format_error(e)["extensions"]["code"] for e in errors])
    response = _graphql_response(result.data, errors, media, result.extensions)
    response.headers.update(admission.headers())
    return response


def _busy(state: AppState, error: DatabaseBusy, media: str) -> Response:
    """Busy, not down: the client may retry the same request after `Retry-After`."""
    retry_after = str(state.settings.db_retry_after_seconds)
    return _problem(503, error.message, error.code, media, {"Retry-After": retry_after})


async def _audit_timeout(
    state: AppState, caller: Caller, context: GraphQLContext, gql: GraphQLRequest
) -> None:
    caller.audit.discard_changes()
    try:
        async with state.writes.turn(), state.sessions() as session, session.begin():
            await caller.audit.commit(
                session,
                operation_type=context.operation_type,
                operation_name=context.operation_name or gql.operation_name,
                query=gql.query,
                outcome="error",
                occurred_at=state.services.clock.now(),
                keys=state.services.audit.keys,
            )
    except (SQLAlchemyError, OSError, TimeoutError, DatabaseBusy) as exc:
        log.error("audit of a timed-out request failed type=%s", type(exc).__name__)


async def console_principal(
    session: AsyncSession,
    request: Request,
    active: ActiveSession,
    purpose: str | None,
    request_id: str,
    authorizer: Authorizer,
) -> Principal:
    """A console user as this request's principal: a person (kind user) named by their
    account, with its roles and those assigned in the database, like a token's subject."""
    user = active.user
    person = Principal(
        subject=user.username, roles=tuple(user.roles), team=user.team, kind=PrincipalKind.USER
    )
    principal = await with_assigned_roles(session, person, authorizer)
    return Principal(
        subject=principal.subject,
        roles=principal.roles,
        team=principal.team,
        purpose=purpose,
        client_addr=_client_address(request),
        user_agent=request.headers.get("user-agent"),
        request_id=request_id,
        kind=principal.kind,
    )


async def console_record(
    state: AppState, session: AsyncSession, recorder: AuditRecorder, name: str, outcome: str
) -> None:
    """The audit event of a console action that is no GraphQL operation (sign-in,
    sign-out, accounts, the ledger check), in the action's transaction."""
    await recorder.commit(
        session,
        operation_type="console",
        operation_name=name,
        query=None,
        outcome=outcome,
        occurred_at=state.services.clock.now(),
        keys=state.services.audit.keys,
    )


async def console_graphql(
    state: AppState,
    request: Request,
    active: ActiveSession,
    query: str,
    variables: dict[str, Any] | None,
    purpose: str | None,
) -> dict[str, Any]:
    """One GraphQL operation of a console page, as its signed-in user with `purpose`:
    the same `_execute` as `POST /graphql` (policy, field modes, limits, audit), with the
    session standing in for the bearer token. Answers the response body."""
    request_id = secrets.token_hex(8)

    async def authenticate(session: AsyncSession) -> Principal:
        return await console_principal(
            session, request, active, purpose, request_id, state.services.authorizer
        )

    gql = GraphQLRequest(query, variables, None, None)
    media = "application/json"
    try:
        try:
            response = await _execute(
                state, request, gql, media, request_id, purpose, authenticate=authenticate
            )
        except _StaleConnection:
            response = await _execute(
                state,
                request,
                gql,
                media,
                request_id,
                purpose,
                retry_stale=False,
                authenticate=authenticate,
            )
    except HttpProblem as problem:  # a rate limit: the page shows it like any error
        return orjson.loads(problem_body(problem.message, problem.code))  # type: ignore[no-any-return]
    return orjson.loads(bytes(response.body))  # type: ignore[no-any-return]


def _graphql_response(
    data: Any, errors: list[GraphQLError], media: str, extensions: dict[str, Any] | None = None
) -> Response:
    payload: dict[str, Any] = {}
    if errors:
        payload["errors"] = [format_error(e) for e in errors]
    request_error = is_request_error(data, errors)
    if not request_error:
        payload["data"] = data
    if extensions:
        payload["extensions"] = extensions
    status = 200
    if request_error and media == GRAPHQL_RESPONSE:
        status = 400
    return Response(orjson.dumps(payload), status, media_type=media)


def app_factory() -> Starlette:
    """Entry point for `uvicorn --factory server.app:app_factory` (each worker).

    A configuration error is one line on stderr naming the variable and exit status 2,
    as with `custos serve`, not a traceback from every worker."""
    try:
        return create_app()
    except ConfigError as error:
        print(f"error: {error.message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
