"""Who is calling: the principal as the server sees it."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.types.enums import Purpose, enum_of


@strawberry.type(description="The caller: its subject, roles, team and stated purpose.")
class Me:
    subject: str = strawberry.field(description="The principal's subject (policy name).")
    roles: list[str] = strawberry.field(description="Its token's roles and assigned roles.")
    team: str | None = strawberry.field(description="Its team, for team row scope.")
    purpose: Purpose | None = strawberry.field(description="The X-Purpose of this request.")


@strawberry.type
class ViewerQuery:
    @strawberry.field(description="Who the caller is, as the server sees them.")
    def me(self, info: Info[GraphQLContext, None]) -> Me:
        principal = info.context.caller.principal
        return Me(
            subject=principal.subject,
            roles=list(principal.roles),
            team=principal.team,
            purpose=enum_of(Purpose, principal.purpose),
        )
