"""Who is calling: the principal as the server sees it."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext


@strawberry.type
class Me:
    subject: str
    roles: list[str]
    team: str | None
    purpose: str | None


@strawberry.type
class ViewerQuery:
    @strawberry.field(description="Who the caller is, as the server sees them.")
    def me(self, info: Info[GraphQLContext, None]) -> Me:
        principal = info.context.caller.principal
        return Me(
            subject=principal.subject,
            roles=list(principal.roles),
            team=principal.team,
            purpose=principal.purpose,
        )
