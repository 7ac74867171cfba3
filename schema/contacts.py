"""Mutations on a customer's contact points, through the one mutation runner."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.mutations import run_mutation
from schema.types.common import UserError, parse_id
from schema.types.contact import ContactPoint, ContactPointKind
from server.contact.service import NewContactPoint

Ctx = Info[GraphQLContext, None]


@strawberry.input(description="A new contact point.")
class ContactPointInput:
    kind: ContactPointKind = strawberry.field(description="Mobile, landline, WeChat or person.")
    value: str | None = strawberry.field(
        default=None,
        description="The number or WeChat ID (required but for a contact person, whose "
        "phone is optional).",
    )
    person_name: str | None = strawberry.field(
        default=None, description="A contact person's name (required for that kind only)."
    )
    label: str | None = strawberry.field(default=None, description="What it is for.")


@strawberry.input(description="A change to a contact point: given fields are set (null clears).")
class ContactPointChangesInput:
    value: str | None = strawberry.field(
        default=strawberry.UNSET, description="The new number or WeChat ID."
    )
    person_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="A contact person's new name."
    )
    label: str | None = strawberry.field(default=strawberry.UNSET, description="A new label.")


@strawberry.type(description="A contact point was added.")
class ContactPointAdded:
    contact_point: ContactPoint = strawberry.field(description="The point, as the caller sees it.")


@strawberry.type(description="A contact point was changed.")
class ContactPointUpdated:
    contact_point: ContactPoint = strawberry.field(description="The point, as the caller sees it.")
    changed_fields: list[str] = strawberry.field(description="The fields the change set.")


@strawberry.type(description="A contact point was removed.")
class ContactPointRemoved:
    id: strawberry.ID = strawberry.field(description="The removed point's id.")


AddContactPointResult = Annotated[
    ContactPointAdded | UserError, strawberry.union("AddContactPointResult")
]
UpdateContactPointResult = Annotated[
    ContactPointUpdated | UserError, strawberry.union("UpdateContactPointResult")
]
RemoveContactPointResult = Annotated[
    ContactPointRemoved | UserError, strawberry.union("RemoveContactPointResult")
]
GRAPHQL_NAMES = {"value": "value", "person_name": "personName", "label": "label"}


@strawberry.type
class ContactMutation:
    @strawberry.mutation(
        description="Add a mobile, landline, WeChat ID or contact person to a customer the "
        "caller may update (else NOT_FOUND); at most 20 per customer."
    )
    async def add_contact_point(
        self, info: Ctx, customer_id: strawberry.ID, input: ContactPointInput
    ) -> AddContactPointResult:
        ctx = info.context
        service = ctx.services.contacts
        added = await run_mutation(
            ctx,
            lambda: service.add(
                ctx.session,
                ctx.caller,
                parse_id(customer_id, "customerId"),
                NewContactPoint(
                    kind=input.kind.value,
                    value=input.value,
                    person_name=input.person_name,
                    label=input.label,
                ),
            ),
        )
        if isinstance(added, UserError):
            return added
        view = await service.get(ctx.session, ctx.caller, added)
        return ContactPointAdded(contact_point=ContactPoint.of(view))

    @strawberry.mutation(
        description="Change a contact point's value, person name or label (its kind stays)."
    )
    async def update_contact_point(
        self, info: Ctx, id: strawberry.ID, input: ContactPointChangesInput
    ) -> UpdateContactPointResult:
        ctx = info.context
        service = ctx.services.contacts
        changes = {
            name: getattr(input, name)
            for name in GRAPHQL_NAMES
            if getattr(input, name) is not strawberry.UNSET
        }

        async def change() -> tuple[uuid.UUID, list[str]]:
            point_id = parse_id(id)
            return point_id, await service.update(ctx.session, ctx.caller, point_id, changes)

        result = await run_mutation(ctx, change)
        if isinstance(result, UserError):
            return result
        point_id, changed = result
        view = await service.get(ctx.session, ctx.caller, point_id)
        return ContactPointUpdated(
            contact_point=ContactPoint.of(view),
            changed_fields=[GRAPHQL_NAMES[name] for name in changed],
        )

    @strawberry.mutation(description="Remove a contact point of a customer the caller may update.")
    async def remove_contact_point(self, info: Ctx, id: strawberry.ID) -> RemoveContactPointResult:
        ctx = info.context
        removed = await run_mutation(
            ctx, lambda: ctx.services.contacts.remove(ctx.session, ctx.caller, parse_id(id))
        )
        if isinstance(removed, UserError):
            return removed
        return ContactPointRemoved(id=id)
