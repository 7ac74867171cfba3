"""The baselines the real app is measured against, mounted next to it in one ASGI app.

(A) `/bench/a/customers` — what a careful engineer would hand-write: the same SQL, one
    permission decision set, decryption through the vault, one audit event, orjson; its
    bytes must equal the real app's.
(B) `/bench/b/graphql` — idiomatic strawberry over the same data: a permission class on
    every field and a resolver per decrypted field.
(C) `/bench/c/{name}` — precomputed response bytes: the transport floor.
`/bench/plain/graphql` is the real endpoint without the execution fast path.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import orjson
import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.permission import BasePermission
from strawberry.types import Info

from schema.build import build_schema
from server.app import AppState, handle_graphql
from server.audit.recorder import AuditRecorder
from server.auth.principal import Principal
from server.authz.authorizer import Authorizer, FieldMode
from server.authz.gate import Gate
from server.caller import caller_for
from server.customer.fields import CUSTOMER_FIELD_CLASSES, SEALED_CUSTOMER_FIELDS
from server.customer.repository import filter_predicates, scope_predicate
from server.data.models import Customer, CustomerKey
from server.vault import FieldRef, Vault
from server.vault.masking import mask

# The list scenario's selection, in response order: GraphQL name → domain name.
LIST_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "name",
    "phone": "phone",
    "email": "email",
    "tier": "tier",
    "lifecycle": "lifecycle",
    "region": "region",
    "industry": "industry",
    "team": "team",
    "createdAt": "created_at",
}
LIST_QUERY = (
    "query List($first: Int!) { customers(first: $first) { edges { node { "
    + " ".join(LIST_FIELDS)
    + " } } } }"
)


async def _principal(state: AppState, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    principal = state.tokens.verify(header.partition(" ")[2].strip())
    return Principal(
        subject=principal.subject,
        roles=principal.roles,
        team=principal.team,
        purpose=request.headers.get("x-purpose"),
    )


async def _page(session: AsyncSession, gate: Gate, principal: Principal, first: int) -> list[Any]:
    scope = scope_predicate(gate.row_scope("customer", "read"), principal)
    columns = [getattr(Customer, f) for f in LIST_FIELDS.values()]
    stmt = (
        select(*columns, CustomerKey.kek_version, CustomerKey.wrapped_dek)
        .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
        .where(scope, *filter_predicates(None))
        .order_by(Customer.id)
        .limit(first + 1)
    )
    return list((await session.execute(stmt)).all()[:first])


async def _commit_audit(session: AsyncSession, recorder: AuditRecorder, name: str) -> None:
    await recorder.commit(
        session, operation_type="query", operation_name=name, query=LIST_QUERY, outcome="ok"
    )


def hand_written(state: AppState) -> Route:
    """(A) The list scenario without GraphQL."""
    services = state.services
    vault: Vault = services.vault

    async def endpoint(request: Request) -> Response:
        body = orjson.loads(await request.body())
        first = int(body["variables"]["first"])
        principal = await _principal(state, request)
        async with state.sessions() as session, session.begin():
            await services.authorizer.refresh(session)
            caller = caller_for(principal, services.authorizer)
            modes = {
                f: caller.gate.field_mode("customer", f, CUSTOMER_FIELD_CLASSES[f])
                for f in LIST_FIELDS.values()
                if f != "id"
            }
            if any(m is FieldMode.NONE for m in modes.values()):
                return Response(b'{"errors":[]}', 400)
            rows = await _page(session, caller.gate, principal, first)
            sealed = [
                (f, modes[f] is FieldMode.MASKED) for f in modes if f in SEALED_CUSTOMER_FIELDS
            ]
            edges = []
            for row in rows:
                key = vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
                revealed: dict[str, str | None] = {}
                for f, masked in sealed:
                    ciphertext = getattr(row, f)
                    if ciphertext is None:
                        revealed[f] = None
                        continue
                    text = vault.reveal(key, FieldRef("customers", f, row.id), ciphertext)
                    revealed[f] = mask(f, text) if masked else text
                node: dict[str, Any] = {}
                for gql, f in LIST_FIELDS.items():
                    if f == "id":
                        node[gql] = str(row.id)
                    elif f in revealed:
                        node[gql] = revealed[f]
                    elif f == "created_at":
                        node[gql] = row.created_at.isoformat()
                    else:
                        node[gql] = getattr(row, f)
                edges.append({"node": node})
            caller.audit.read(
                "customer", (r.id for r in rows), {f: m.value for f, m in modes.items()}
            )
            await _commit_audit(session, caller.audit, "List")
        # The app reports the query's static cost: customers, edges, and per edge the
        # edge and its node.
        cost = {"requested": 2 + 2 * first, "limit": state.settings.max_query_cost}
        payload = orjson.dumps(
            {"data": {"customers": {"edges": edges}}, "extensions": {"cost": cost}}
        )
        return Response(payload, media_type="application/graphql-response+json")

    return Route("/bench/a/customers", endpoint, methods=["POST"])


# --- (B) idiomatic strawberry ------------------------------------------------------------


class BenchContext:
    def __init__(
        self, session: AsyncSession, principal: Principal, authorizer: Authorizer, vault: Vault
    ) -> None:
        caller = caller_for(principal, authorizer)
        self.session = session
        self.principal = principal
        self.gate = caller.gate
        self.vault = vault
        self.recorder = caller.audit


def _can_read(field: str) -> type[BasePermission]:
    class CanRead(BasePermission):
        message = f"not allowed to read customer.{field}"

        def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
            ctx: BenchContext = info.context
            mode = ctx.gate.field_mode("customer", field, CUSTOMER_FIELD_CLASSES[field])
            return mode is not FieldMode.NONE

    return CanRead


def _decrypted(field: str) -> Any:
    def resolve(root: strawberry.Parent[Any], info: Info[Any, Any]) -> str | None:
        ctx: BenchContext = info.context
        ciphertext = getattr(root, field)
        if ciphertext is None:
            return None
        key = ctx.vault.open_data_key(root.id, root.kek_version, root.wrapped_dek)
        text = ctx.vault.reveal(key, FieldRef("customers", field, root.id), ciphertext)
        mode = ctx.gate.field_mode("customer", field, CUSTOMER_FIELD_CLASSES[field])
        return mask(field, text) if mode is FieldMode.MASKED else text

    return strawberry.field(resolver=resolve, permission_classes=[_can_read(field)])


def _attribute(field: str) -> Any:
    def resolve(root: strawberry.Parent[Any]) -> Any:
        return getattr(root, field)

    return strawberry.field(resolver=resolve, permission_classes=[_can_read(field)])


@strawberry.type(name="Customer")
class BenchCustomer:
    @strawberry.field
    def id(self, root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(str(root.id))

    name: str | None = _decrypted("name")
    phone: str | None = _decrypted("phone")
    email: str | None = _decrypted("email")
    tier: str | None = _attribute("tier")
    lifecycle: str | None = _attribute("lifecycle")
    region: str | None = _attribute("region")
    industry: str | None = _attribute("industry")
    team: str | None = _attribute("team")
    created_at: datetime.datetime | None = _attribute("created_at")


@strawberry.type(name="CustomerEdge")
class BenchEdge:
    node: BenchCustomer


@strawberry.type(name="CustomerConnection")
class BenchConnection:
    edges: list[BenchEdge]


@strawberry.type(name="Query")
class BenchQuery:
    @strawberry.field
    async def customers(self, info: Info[Any, Any], first: int) -> BenchConnection:
        ctx: BenchContext = info.context
        rows = await _page(ctx.session, ctx.gate, ctx.principal, first)
        modes = {
            f: ctx.gate.field_mode("customer", f, CUSTOMER_FIELD_CLASSES[f]).value
            for f in LIST_FIELDS.values()
            if f != "id"
        }
        ctx.recorder.read("customer", (r.id for r in rows), modes)
        # The rows themselves are the parents of the customer fields.
        return BenchConnection(edges=[BenchEdge(node=r) for r in rows])


def idiomatic_strawberry(state: AppState) -> Route:
    """(B) The list scenario as most strawberry services would write it."""
    schema = strawberry.Schema(query=BenchQuery)
    services = state.services

    async def endpoint(request: Request) -> Response:
        body = orjson.loads(await request.body())
        principal = await _principal(state, request)
        async with state.sessions() as session, session.begin():
            await services.authorizer.refresh(session)
            context = BenchContext(session, principal, services.authorizer, services.vault)
            result = await schema.execute(
                body["query"], variable_values=body.get("variables"), context_value=context
            )
            await _commit_audit(session, context.recorder, "List")
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        return Response(orjson.dumps(payload), media_type="application/graphql-response+json")

    return Route("/bench/b/graphql", endpoint, methods=["POST"])


def transport_floor(floor_dir: Path) -> Route:
    """(C) Precomputed bytes, read once: what uvicorn and Starlette cost on their own."""
    cache: dict[str, bytes] = {}

    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        payload = cache.get(name)
        if payload is None:
            payload = cache[name] = (floor_dir / f"{name}.json").read_bytes()
        await request.body()
        return Response(payload, media_type="application/graphql-response+json")

    return Route("/bench/c/{name}", endpoint, methods=["POST"])


def without_fast_path(state: AppState) -> Route:
    """The real endpoint on graphql-core's own executor: what the fast path saves."""
    plain_state = dataclasses.replace(
        state,
        schema=build_schema(
            max_depth=state.settings.max_query_depth,
            max_aliases=state.settings.max_aliases,
            max_tokens=state.settings.max_tokens,
            max_fields=state.settings.max_fields,
            max_cost=state.settings.max_query_cost,
            max_page_size=state.settings.max_page_size,
            fast_execution=False,
        ),
    )

    async def endpoint(request: Request) -> Response:
        return await handle_graphql(plain_state, request)

    return Route("/bench/plain/graphql", endpoint, methods=["POST"])


def mount_baselines(app: Starlette, floor_dir: Path) -> None:
    state: AppState = app.state.custos
    app.router.routes.extend(
        [
            hand_written(state),
            idiomatic_strawberry(state),
            transport_floor(floor_dir),
            without_fast_path(state),
        ]
    )
