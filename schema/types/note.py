"""GraphQL types of notes on customer files (备注)."""

from __future__ import annotations

import datetime
from typing import Any

import strawberry

from schema.context import GraphQLContext
from schema.cost import assumed, cost
from schema.loaders import grouped, request_loader
from server.note.service import NoteVersionView, NoteView


@strawberry.type(description="One version of a note: its text as it was, who wrote it, when.")
class CustomerNoteVersion:
    version: int = strawberry.field(description="1 for the first text, then one per edit.")
    written_at: datetime.datetime = strawberry.field(description="When this text was saved.")
    written_by: str = strawberry.field(description="Who saved it (a token subject).")
    view: strawberry.Private[NoteVersionView]

    @strawberry.field(
        description="The text; masked or FORBIDDEN as the policy gives customer_note.body."
    )
    def body(self) -> str | None:
        return self.view.text()

    @classmethod
    def of(cls, view: NoteVersionView) -> CustomerNoteVersion:
        return cls(
            version=view.version,
            written_at=view.written_at,
            written_by=view.written_by,
            view=view,
        )


@strawberry.type(description="A free-text note on a customer file (备注), with its history.")
class CustomerNote:
    id: strawberry.ID = strawberry.field(description="The note's id (the same for every version).")
    customer_id: strawberry.ID = strawberry.field(description="The customer it is about.")
    version: int = strawberry.field(description="The current version's number.")
    created_at: datetime.datetime = strawberry.field(description="When it was first written.")
    created_by: str = strawberry.field(description="Who first wrote it.")
    updated_at: datetime.datetime = strawberry.field(description="When it was last edited.")
    updated_by: str = strawberry.field(description="Who last edited it.")
    view: strawberry.Private[NoteView]

    @strawberry.field(
        description="The current text; masked or FORBIDDEN as the policy gives customer_note.body."
    )
    def body(self) -> str | None:
        return self.view.current.text()

    @strawberry.field(
        metadata=cost(size=assumed(5)),
        description="Every version, oldest first (the last one is the current text).",
    )
    def history(self) -> list[CustomerNoteVersion]:
        return [CustomerNoteVersion.of(v) for v in self.view.versions]

    @classmethod
    def of(cls, view: NoteView) -> CustomerNote:
        return cls(
            id=strawberry.ID(str(view.id)),
            customer_id=strawberry.ID(str(view.customer_id)),
            version=view.current.version,
            created_at=view.first.written_at,
            created_by=view.first.written_by,
            updated_at=view.current.written_at,
            updated_by=view.current.written_by,
            view=view,
        )


async def notes_of(
    info: strawberry.Info[GraphQLContext, Any], customer_id: Any
) -> list[CustomerNote]:
    """A customer's notes through the request's loader: one query per page of customers."""
    ctx = info.context

    async def load(ids: list[Any]) -> list[list[NoteView]]:
        views = await ctx.services.notes.of_customers(ctx.session, ctx.caller, ids)
        return grouped(ids, views, key=lambda view: view.customer_id)

    loader = request_loader(ctx, "notes_of", load)
    return [CustomerNote.of(view) for view in await loader.load(customer_id)]
