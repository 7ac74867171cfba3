"""Interaction root fields: log a contact, mark a consultation answered or solved, and
list breached response timers. Expected failures are `UserError` results."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import paged
from schema.mutations import run_mutation
from schema.paging import check_page_size, keyset_cursor
from schema.selection import selected_names, top_level_names
from schema.types.common import UserError, parse_id, snake_names
from schema.types.interaction import (
    BreachKindEnum,
    Interaction,
    InteractionChannel,
    InteractionConnection,
    InteractionDirection,
    InteractionKind,
)
from server.interaction.repository import BreachKind
from server.interaction.service import NewInteraction

Ctx = Info[GraphQLContext, None]
BREACH_CURSORS = {kind: keyset_cursor(f"interaction-breach-{kind.value}") for kind in BreachKind}


@strawberry.input(description="A contact with a customer to log.")
class LogInteractionInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer contacted.")
    channel: InteractionChannel = strawberry.field(description="How.")
    direction: InteractionDirection = strawberry.field(description="Who reached out.")
    kind: InteractionKind = strawberry.field(description="What it was about.")
    subject: str | None = strawberry.field(
        default=None, description="Short summary (sealed: sensitive)."
    )
    notes: str | None = strawberry.field(default=None, description="Notes (sealed: sensitive).")
    agent_id: str | None = strawberry.field(default=None, description="Defaults to the caller.")
    occurred_at: datetime.datetime | None = strawberry.field(
        default=None, description="Defaults to now; never in the future."
    )


@strawberry.type(description="An interaction was logged or changed.")
class InteractionPayload:
    interaction: Interaction = strawberry.field(
        description="The interaction as the caller may see it."
    )


InteractionResult = Annotated[InteractionPayload | UserError, strawberry.union("InteractionResult")]


async def _payload(info: Ctx, interaction_id: uuid.UUID) -> InteractionPayload:
    ctx = info.context
    view = await ctx.services.interactions.get(
        ctx.session, ctx.caller, interaction_id, snake_names(selected_names(info, ("interaction",)))
    )
    return InteractionPayload(interaction=cast(Interaction, view))


async def interaction_by_id(
    info: Ctx, interaction_id: uuid.UUID, selected: set[str]
) -> Interaction:
    """One interaction with the fields `selected` (by `interaction` and `node`)."""
    ctx = info.context
    view = await ctx.services.interactions.get(
        ctx.session, ctx.caller, interaction_id, snake_names(selected)
    )
    return cast(Interaction, view)


@strawberry.type
class InteractionQuery:
    @strawberry.field(description="One interaction; unknown and out-of-scope ids are NOT_FOUND.")
    async def interaction(self, info: Ctx, id: strawberry.ID) -> Interaction | None:
        return await interaction_by_id(info, parse_id(id), top_level_names(info))

    @strawberry.field(
        metadata=paged(),
        description="Inbound consultations past their first-response or solution deadline "
        "(answered late or not yet), latest deadline first.",
    )
    async def interaction_breaches(
        self,
        info: Ctx,
        kind: BreachKindEnum,  # type: ignore[valid-type]
        first: int = 20,
        after: str | None = None,
    ) -> InteractionConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        breach = BreachKind(kind)
        cursors = BREACH_CURSORS[breach]
        page = await ctx.services.interactions.breaches(
            ctx.session,
            ctx.caller,
            kind=breach,
            first=first,
            after=cursors.decode(after),
            fields=snake_names(selected_names(info, ("edges", "node"), ("nodes",))),
            with_total="totalCount" in top_level_names(info),
        )
        return InteractionConnection.of(page, after, cursors, key=f"{breach.value}_due_at")


@strawberry.type
class InteractionMutation:
    @strawberry.mutation(description="Record a contact; inbound consultations start timers.")
    async def log_interaction(self, info: Ctx, input: LogInteractionInput) -> InteractionResult:
        ctx = info.context

        async def log() -> uuid.UUID:
            data = NewInteraction(
                customer_id=parse_id(input.customer_id, "customerId"),
                channel=input.channel.value,
                direction=input.direction.value,
                kind=input.kind.value,
                subject=input.subject,
                notes=input.notes,
                agent_id=input.agent_id,
                occurred_at=input.occurred_at,
            )
            return await ctx.services.interactions.log(ctx.session, ctx.caller, data)

        interaction_id = await run_mutation(ctx, log)
        if isinstance(interaction_id, UserError):
            return interaction_id
        return await _payload(info, interaction_id)

    @strawberry.mutation(description="The first answer to an inbound consultation was given.")
    async def respond_to_interaction(self, info: Ctx, id: strawberry.ID) -> InteractionResult:
        ctx = info.context
        interaction_id = await run_mutation(
            ctx, lambda: ctx.services.interactions.respond(ctx.session, ctx.caller, parse_id(id))
        )
        if isinstance(interaction_id, UserError):
            return interaction_id
        return await _payload(info, interaction_id)

    @strawberry.mutation(description="An inbound consultation was solved.")
    async def solve_interaction(self, info: Ctx, id: strawberry.ID) -> InteractionResult:
        ctx = info.context
        interaction_id = await run_mutation(
            ctx, lambda: ctx.services.interactions.solve(ctx.session, ctx.caller, parse_id(id))
        )
        if isinstance(interaction_id, UserError):
            return interaction_id
        return await _payload(info, interaction_id)
