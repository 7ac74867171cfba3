"""Consent records: one row per grant, closed by a withdrawal; history is kept."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from schema.context import GraphQLContext
from server.privacy.service import ConsentView


@strawberry.enum(description="What a person consents to.")
class ConsentPurpose(enum.Enum):
    MARKETING = "marketing"
    ANALYTICS = "analytics"
    THIRD_PARTY_SHARING = "third_party_sharing"


@strawberry.type(description="One consent grant; `withdrawnAt` is set when withdrawn.")
class Consent:
    id: strawberry.ID = strawberry.field(description="The consent record's id.")
    purpose: ConsentPurpose = strawberry.field(description="What the person consents to.")
    granted_at: datetime.datetime = strawberry.field(description="When it was granted.")
    withdrawn_at: datetime.datetime | None = strawberry.field(
        description="When it was withdrawn; null while active."
    )
    source: str = strawberry.field(description="Where it was given (web form, call, ...).")
    recorded_by: str = strawberry.field(description="Who recorded it.")
    active: bool = strawberry.field(description="Granted and not withdrawn.")

    @classmethod
    def of(cls, view: ConsentView) -> Consent:
        return cls(
            id=strawberry.ID(str(view.id)),
            purpose=ConsentPurpose(view.purpose),
            granted_at=view.granted_at,
            withdrawn_at=view.withdrawn_at,
            source=view.source,
            recorded_by=view.recorded_by,
            active=view.active,
        )


def consent_loader(info: Info[GraphQLContext, Any]) -> DataLoader[uuid.UUID, list[Consent]]:
    """One query for the consents of every customer on the page (per request)."""
    ctx = info.context
    loader = ctx.loaders.get("consents")
    if loader is None:

        async def load(ids: list[uuid.UUID]) -> list[list[Consent]]:
            found = await ctx.services.privacy.consents(ctx.session, ctx.caller, ids)
            return [[Consent.of(v) for v in found.get(i, [])] for i in ids]

        loader = DataLoader(load_fn=load)
        ctx.loaders["consents"] = loader
    result: DataLoader[uuid.UUID, list[Consent]] = loader
    return result
