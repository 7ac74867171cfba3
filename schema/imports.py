"""`importCustomers` and `importOrders`: small spreadsheet uploads as GraphQL rows, with the
same row-by-row report as `custos import customers|orders`."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import Arguments, cost, from_fact
from schema.types.customer import CreateCustomerInput
from schema.types.enums import CustomerTier, domain_value
from server.imports.reader import SourceRow
from server.imports.service import ImportReport as Report

Ctx = Info[GraphQLContext, None]
MAX_ROWS = 1000


@strawberry.input(description="One customer row; row numbers in the report start at 1.")
class ImportCustomerRowInput(CreateCustomerInput):
    tier: CustomerTier | None = strawberry.field(
        default=None, description="The value tier the source system had assigned."
    )
    landline: str | None = strawberry.field(
        default=None,
        description="A landline (010-6552 9988 转 123): a contact point, and the phone of a "
        "file without one.",
    )
    wechat: str | None = strawberry.field(
        default=None, description="A WeChat ID, kept as a contact point."
    )
    contact_person: str | None = strawberry.field(
        default=None, description="A contact person's name (company customers)."
    )
    contact_person_phone: str | None = strawberry.field(
        default=None, description="The contact person's mobile or landline."
    )
    note: str | None = strawberry.field(
        default=None,
        description="A note on the file (备注), kept sealed with its history; a re-import "
        "adds it only if the file has no note with this text.",
    )


def row_values(row: ImportCustomerRowInput) -> dict[str, object]:
    """A row's given cells by import column, as a spreadsheet row would have them."""
    cells: dict[str, object] = {
        "name": row.name,
        "customer_number": row.customer_number,
        "phone": row.phone,
        "email": row.email,
        "national_id": row.national_id,
        "bank_card": row.bank_card,
        "address": row.address,
        "birthday": row.birthday,
        "gender": domain_value(row.gender),
        "industry": row.industry,
        "company_size": row.company_size,
        "region": row.region,
        "occupation": row.occupation,
        "source": row.source,
        "owner_id": row.owner_id,
        "team": row.team,
        "tier": domain_value(row.tier),
        "landline": row.landline,
        "wechat": row.wechat,
        "contact_person": row.contact_person,
        "contact_person_phone": row.contact_person_phone,
        "note": row.note,
    }
    return {k: v for k, v in cells.items() if v is not None}


@strawberry.input(
    description="One order line (or, without productSku, one order for analysis); row "
    "numbers in the report start at 1. Lines with the same orderRef make one order."
)
class ImportOrderRowInput:
    customer_ref: str = strawberry.field(
        description="A customer id, customer number, email or phone."
    )
    date: str = strawberry.field(description="2024-05-01, 2024/5/1 or 2024年5月1日.")
    order_ref: str | None = strawberry.field(
        default=None,
        description="The source's order reference: lines with the same one make one order.",
    )
    product_sku: str | None = strawberry.field(
        default=None, description="The product's SKU; without it the row is one whole order."
    )
    quantity: int | None = strawberry.field(default=None, description="Units of the product.")
    unit_price: str | None = strawberry.field(default=None, description="¥1,234.50 works.")
    amount: str | None = strawberry.field(
        default=None, description="The order's total, for rows without productSku."
    )
    status: str | None = strawberry.field(default=None, description="delivered, 已发货, ...")
    customer_name: str | None = strawberry.field(
        default=None, description="Names a customer createCustomers creates."
    )


def order_values(row: ImportOrderRowInput) -> dict[str, object]:
    cells: dict[str, object] = {
        "customer_ref": row.customer_ref,
        "date": row.date,
        "order_ref": row.order_ref,
        "product_sku": row.product_sku,
        "quantity": row.quantity,
        "unit_price": row.unit_price,
        "amount": row.amount,
        "status": row.status,
        "customer_name": row.customer_name,
    }
    return {k: v for k, v in cells.items() if v is not None}


@strawberry.type(description="A row the import refused, and why.")
class RejectedRow:
    row: int = strawberry.field(description="The row's number, from 1.")
    reason: str = strawberry.field(description="Why it was refused (never its values).")


@strawberry.type(description="What an import did: counts, every rejected row and why.")
class ImportReport:
    accepted: int = strawberry.field(description="Rows accepted.")
    rejected: list[RejectedRow] = strawberry.field(
        metadata=cost(size=from_fact("rows", 1)), description="Every refused row with its reason."
    )
    written: bool = strawberry.field(
        description="False when `strict` rolled everything back because a row was bad."
    )
    created_ids: list[strawberry.ID] = strawberry.field(
        description="Ids of the files created, in row order."
    )
    existing: int = strawberry.field(
        description="Rows that matched what is already there (a re-import), left as is."
    )
    created_customers: int = strawberry.field(
        description="Customers importOrders(createCustomers: true) created."
    )
    updated: int = strawberry.field(
        description="Rows that changed a customer already there (same customer number): "
        "fields that differ, new contact points or a new note. Counted in accepted too."
    )

    @classmethod
    def from_report(cls, report: Report) -> ImportReport:
        return cls(
            accepted=report.accepted,
            rejected=[RejectedRow(row=r.row, reason=r.reason) for r in report.rejected],
            written=report.written,
            created_ids=[strawberry.ID(str(i)) for i in report.created_ids],
            existing=report.existing,
            created_customers=report.created_customers,
            updated=report.updated,
        )


def import_rows(arguments: Arguments) -> dict[str, int]:
    rows = arguments.get("rows")
    return {"rows": min(len(rows), MAX_ROWS) if isinstance(rows, list) else 1}


def import_work(arguments: Arguments) -> int:
    """Each row is checked, sealed, indexed and checked for duplicates."""
    return 10 * import_rows(arguments)["rows"]


def may_import_orders(ctx: GraphQLContext) -> None:
    """`importOrders` needs import/create and order/create, asked before conversion."""
    ctx.caller.gate.require("import", "create")
    ctx.caller.gate.require("order", "create")


def may_import_customers(ctx: GraphQLContext) -> None:
    """`importCustomers` needs import/create: asked before strawberry converts the rows
    (schema/inputs.py), so a caller without it is refused without that cost."""
    ctx.caller.gate.require("import", "create")


@strawberry.type
class ImportMutation:
    @strawberry.mutation(
        metadata=cost(weight=import_work, facts=import_rows),
        description="Import up to 1000 customers; needs import/create. Rows whose "
        "customerNumber is a file already there update it, which needs customer/update.",
    )
    async def import_customers(
        self, info: Ctx, rows: list[ImportCustomerRowInput], strict: bool = False
    ) -> ImportReport:
        ctx = info.context
        source = [SourceRow(number, row_values(row)) for number, row in enumerate(rows, start=1)]
        report = await ctx.services.imports.import_customers_as(
            ctx.session, ctx.caller, source, strict=strict, max_rows=MAX_ROWS
        )
        return ImportReport.from_report(report)

    @strawberry.mutation(
        metadata=cost(weight=import_work, facts=import_rows),
        description="Import up to 1000 order lines; needs import/create and order/create. "
        "Customers are found (and with createCustomers created) within the caller's scope.",
    )
    async def import_orders(
        self,
        info: Ctx,
        rows: list[ImportOrderRowInput],
        strict: bool = False,
        create_customers: bool = False,
    ) -> ImportReport:
        ctx = info.context
        source = [SourceRow(number, order_values(row)) for number, row in enumerate(rows, start=1)]
        report = await ctx.services.imports.import_orders_as(
            ctx.session,
            ctx.caller,
            source,
            strict=strict,
            create_customers=create_customers,
            max_rows=MAX_ROWS,
        )
        return ImportReport.from_report(report)
