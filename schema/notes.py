"""Mutations on notes (备注), through the one mutation runner."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.mutations import run_mutation
from schema.types.common import UserError, parse_id
from schema.types.note import CustomerNote

Ctx = Info[GraphQLContext, None]


@strawberry.type(description="A note was written or edited.")
class CustomerNoteSaved:
    note: CustomerNote = strawberry.field(description="The note, as the caller sees it.")


CustomerNoteResult = Annotated[
    CustomerNoteSaved | UserError, strawberry.union("CustomerNoteResult")
]


@strawberry.type
class NoteMutation:
    @strawberry.mutation(
        description="Write a note on a customer the caller may update (else NOT_FOUND): "
        "1 to 4,000 characters, sealed."
    )
    async def add_customer_note(
        self, info: Ctx, customer_id: strawberry.ID, body: str
    ) -> CustomerNoteResult:
        ctx = info.context
        service = ctx.services.notes
        added = await run_mutation(
            ctx,
            lambda: service.add(ctx.session, ctx.caller, parse_id(customer_id, "customerId"), body),
        )
        if isinstance(added, UserError):
            return added
        return CustomerNoteSaved(
            note=CustomerNote.of(await service.get(ctx.session, ctx.caller, added))
        )

    @strawberry.mutation(
        description="Edit a note: its new text becomes a new version; earlier versions stay "
        "in its history."
    )
    async def edit_customer_note(
        self, info: Ctx, id: strawberry.ID, body: str
    ) -> CustomerNoteResult:
        ctx = info.context
        service = ctx.services.notes

        async def change() -> uuid.UUID:
            note_id = parse_id(id)
            await service.edit(ctx.session, ctx.caller, note_id, body)
            return note_id

        edited = await run_mutation(ctx, change)
        if isinstance(edited, UserError):
            return edited
        return CustomerNoteSaved(
            note=CustomerNote.of(await service.get(ctx.session, ctx.caller, edited))
        )
