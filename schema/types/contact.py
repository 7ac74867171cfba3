"""GraphQL types of a customer's contact points."""

from __future__ import annotations

import datetime
import enum
from typing import Any

import strawberry

from schema.context import GraphQLContext
from schema.loaders import grouped, request_loader
from server.contact.service import ContactPointView


@strawberry.enum(description="What a contact point is.")
class ContactPointKind(enum.Enum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    WECHAT = "wechat"
    CONTACT_PERSON = "contact_person"


@strawberry.type(
    description="A further mobile, landline or WeChat ID of a customer, or a contact "
    "person of a company customer. Values are read in the mode of the customer field they "
    "are like (numbers and WeChat IDs as `phone`, a person's name as `name`)."
)
class ContactPoint:
    id: strawberry.ID = strawberry.field(description="The contact point's id.")
    customer_id: strawberry.ID = strawberry.field(description="The customer it belongs to.")
    kind: ContactPointKind = strawberry.field(description="Mobile, landline, WeChat or person.")
    label: str | None = strawberry.field(description="What it is for (office, 采购经理…).")
    created_at: datetime.datetime = strawberry.field(description="When it was added.")
    updated_at: datetime.datetime = strawberry.field(description="When it last changed.")
    view: strawberry.Private[ContactPointView]

    @strawberry.field(
        description="The number (E.164, a landline's extension after `;ext=`) or WeChat ID; "
        "a contact person's phone. Masked or FORBIDDEN as the caller reads `phone`."
    )
    def value(self) -> str | None:
        return self.view.get("value")

    @strawberry.field(
        description="A contact person's name; null on other kinds. Masked or FORBIDDEN as "
        "the caller reads `name`."
    )
    def person_name(self) -> str | None:
        return self.view.get("person_name")

    @classmethod
    def of(cls, view: ContactPointView) -> ContactPoint:
        return cls(
            id=strawberry.ID(str(view.id)),
            customer_id=strawberry.ID(str(view.customer_id)),
            kind=ContactPointKind(view.kind),
            label=view.label,
            created_at=view.created_at,
            updated_at=view.updated_at,
            view=view,
        )


async def contact_points_of(
    info: strawberry.Info[GraphQLContext, Any], customer_id: Any
) -> list[ContactPoint]:
    """A customer's points through the request's loader: one query per page of customers."""
    ctx = info.context

    async def load(ids: list[Any]) -> list[list[ContactPointView]]:
        views = await ctx.services.contacts.of_customers(ctx.session, ctx.caller, ids)
        return grouped(ids, views, key=lambda view: view.customer_id)

    loader = request_loader(ctx, "contact_points_of", load)
    return [ContactPoint.of(view) for view in await loader.load(customer_id)]
