"""Imports of sheets as small businesses keep them: Chinese headers and synonyms, customer
numbers, landlines, written dates, money and status words, owners by display name,
consent columns, multi-line orders, product catalogues, purchase logs of customers not yet
in Custos, dry runs, idempotent re-imports and exit codes."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from server.app import AppState
from server.cli import invoke
from server.cli.imports import ImportOptions, import_file
from server.clock import FixedClock
from server.config import Settings
from server.data.models import (
    AuditAccess,
    AuditEvent,
    Consent,
    Customer,
    Order,
    OrderItem,
    Product,
)
from server.imports.service import ImportReport
from tests.conftest import Api
from tests.factories import make_customer

NOW = datetime(2026, 6, 1, tzinfo=UTC)


HEADER = [
    "客户编号",
    "客户名称",
    "手机",
    "座机",
    "邮箱",
    "地址",
    "行业",
    "客户等级",
    "客户since",
    "负责人",
    "营销同意",
    "同意来源",
    "同意时间",
    "内部编码",
]
# Rows that must be refused, by their index among the 200 (row number = index + 2).
BAD_PHONE, BAD_TIER, UNKNOWN_OWNER, FUTURE_SINCE, TWIN_NUMBER = 7, 23, 41, 77, 120


def _row(i: int) -> list[str]:
    number = f"C-{i:05d}"
    mobile = f"139{i:08d}" if i % 4 else ""
    landline = "" if i % 4 else f"010-6552 {i:04d}"
    tier = ("高", "中", "低", "high", "mid")[i % 5]
    since = ("2023年3月12日", "2024/1/5", "2022-11-30", "2021.6.1")[i % 4]
    owner = ("张经理", "li.na", "")[i % 3]
    consent = ("是", "否", "")[i % 3]
    row = [
        number,
        f"客户{i}",
        mobile,
        landline,
        f"c{i}@example.com" if i % 2 else "",
        f"上海市长宁路{i}号",
        "零售",
        tier,
        since,
        owner,
        consent,
        "门店登记" if consent == "是" else "",
        "2024年2月1日" if consent == "是" else "",
        f"x{i}",
    ]
    if i == BAD_PHONE:
        row[2] = "138 1234"
    if i == BAD_TIER:
        row[7] = "A类"
    if i == UNKNOWN_OWNER:
        row[9] = "王总"
    if i == FUTURE_SINCE:
        row[8] = "2099年1月1日"
    if i == TWIN_NUMBER:
        row[0] = "C-00003"
    return row


def workbook_rows() -> list[list[str]]:
    return [_row(i) for i in range(200)]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


async def _count(state: AppState, model: type[Any], *where: Any) -> int:
    async with state.sessions() as session:
        stmt = select(func.count()).select_from(model).where(*where)
        return int(await session.scalar(stmt) or 0)


def _reasons(report: ImportReport) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in report.rejected]


OWNERS = ("张经理=zhang.wei@east",)
EXPECTED = [
    (BAD_PHONE + 2, "phone is not a valid phone number"),
    (BAD_TIER + 2, "tier must be one of high, mid, low"),
    (UNKNOWN_OWNER + 2, "owner is not a known user (map it with --owner)"),
    (FUTURE_SINCE + 2, "customer since is in the future"),
    (TWIN_NUMBER + 2, "duplicate customer number of row 5 in the file"),
]


async def _known_owner(state: AppState) -> None:
    # li.na is a user the database knows: she owns a file of team west.
    await make_customer(state, owner_id="li.na", team="west", phone="13700000001")


async def _import_workbook(state: AppState, settings: Settings, path: Path) -> ImportReport:
    state.services.clock = FixedClock(NOW)
    report = await import_file(
        settings, "customers", path, options=ImportOptions(owners=OWNERS), clock=FixedClock(NOW)
    )
    assert _reasons(report) == EXPECTED
    assert report.accepted == 195
    assert "内部编码" in report.ignored_columns
    for _, reason in _reasons(report):
        assert "138 1234" not in reason
        assert "王总" not in reason
        assert "A类" not in reason
    return report


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
async def test_a_workbook_with_chinese_headers_imports_without_editing(
    api: Api, state: AppState, settings: Settings, tmp_path: Path, suffix: str
) -> None:
    writer = write_csv if suffix == "csv" else write_xlsx
    path = writer(tmp_path / f"客户.{suffix}", HEADER, workbook_rows())
    await _known_owner(state)
    await _import_workbook(state, settings, path)
    async with state.sessions() as session:
        rows = {
            c.customer_number: c
            for c in await session.scalars(
                select(Customer).where(Customer.customer_number.is_not(None))
            )
        }
    assert len(rows) == 195
    zhang, li, nobody = rows["C-00000"], rows["C-00001"], rows["C-00002"]
    # Owners by display name through the mapping, by login; teams from the owner.
    assert (zhang.owner_id, zhang.team) == ("zhang.wei", "east")
    assert (li.owner_id, li.team) == ("li.na", "west")
    assert (nobody.owner_id, nobody.team) == (None, None)
    # Customer since from written dates: none of them counts as new.
    assert zhang.created_at == datetime(2023, 3, 12, tzinfo=UTC)
    assert li.created_at == datetime(2024, 1, 5, tzinfo=UTC)
    assert {c.tier for c in rows.values()} == {"high", "mid", "low"}
    # Consent with its proof: when and where the customer gave it.
    async with state.sessions() as session:
        consents = (await session.scalars(select(Consent))).all()
    # Every third row consents; one of them (the twin customer number) was refused.
    assert len(consents) == len([i for i in range(200) if i % 3 == 0]) - 1
    assert {(c.purpose, c.source) for c in consents} == {("marketing", "门店登记")}
    assert {c.granted_at for c in consents} == {datetime(2024, 2, 1, tzinfo=UTC)}
    # A landline is the phone of a file without a mobile; numbers are searchable.
    manager = api.token("manager", subject="zhang.wei", team="east")
    found = await api.gql(
        '{ customer(customerNumber: "C-00000") { customerNumber name phone team } }',
        token=manager,
        purpose="sales",
    )
    assert found["data"]["customer"] == {
        "customerNumber": "C-00000",
        "name": "客户0",
        "phone": "+861065520000",
        "team": "east",
    }
    listed = await api.gql(
        '{ customers(filter: {customerNumber: "C-00003"}) { totalCount edges { node { name } } } }',
        token=manager,
        purpose="sales",
    )
    assert listed["data"]["customers"]["totalCount"] == 1
    # Another team's file answers as an unknown number does.
    west = await api.gql(
        '{ customer(customerNumber: "C-00001") { name } }', token=manager, purpose="sales"
    )
    assert west["data"]["customer"] is None


async def test_re_importing_a_workbook_changes_nothing_and_a_dry_run_writes_nothing(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "客户.csv", HEADER, workbook_rows())
    await _known_owner(state)
    dry = await import_file(
        settings,
        "customers",
        path,
        options=ImportOptions(owners=OWNERS, dry_run=True),
        clock=FixedClock(NOW),
    )
    assert (dry.dry_run, dry.written, dry.accepted) == (True, False, 195)
    assert _reasons(dry) == EXPECTED
    assert await _count(state, Customer) == 1
    first = await _import_workbook(state, settings, path)
    again = await import_file(
        settings, "customers", path, options=ImportOptions(owners=OWNERS), clock=FixedClock(NOW)
    )
    assert (again.accepted, again.existing) == (0, first.accepted)
    assert _reasons(again) == EXPECTED
    assert await _count(state, Customer) == 196


async def test_rows_without_contacts_are_reported_as_possible_duplicates(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", ["姓名", "地区"], [["甲", "北京"], ["乙", "上海"]])
    report = await import_file(settings, "customers", path)
    assert (report.accepted, report.unchecked) == (2, [2, 3])


def _products(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "商品.csv",
        ["商品编码", "商品名称", "分类", "售价", "成本价", "新品", "在售"],
        [
            ["TEA-1", "龙井", "茶叶", "¥1,234.50", "800元", "否", "是"],
            ["CUP-2", "茶杯", "器具", "59", "20", "是", "是"],
            ["BAD-3", "坏", "器具", "abc", "1", "否", "是"],
        ],
    )


ORDER_HEADER = ["订单号", "客户编号", "商品编码", "数量", "单价", "下单日期", "订单状态"]


async def test_multi_line_orders_by_customer_number_with_a_catalogue(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    state.services.clock = FixedClock(NOW)
    await make_customer(state, customer_number="C-00017", created_at=NOW)
    products = await import_file(settings, "products", _products(tmp_path), clock=FixedClock(NOW))
    assert (products.accepted, _reasons(products)) == (
        2,
        [(4, "unit_price is not a decimal amount")],
    )
    rows = [
        ["SO-1", "C-00017", "TEA-1", "1", "", "2024年5月1日", "已完成"],
        ["SO-1", "C-00017", "CUP-2", "2", "55", "2024年5月1日", "已完成"],
        ["SO-2", "C-00017", "CUP-2", "1", "", "2024/6/1 14:30", "已发货"],
        ["SO-3", "C-09999", "CUP-2", "1", "", "2024/6/1", "已发货"],
        ["SO-4", "C-00017", "CUP-2", "1", "", "2024/6/1", "在路上"],
    ]
    path = write_csv(tmp_path / "订单.csv", ORDER_HEADER, rows)
    report = await import_file(settings, "orders", path, batch_size=1, clock=FixedClock(NOW))
    assert report.accepted == 3
    assert _reasons(report) == [(5, "unknown customer"), (6, "status is not an order status")]
    async with state.sessions() as session:
        orders = {
            o.external_ref: o
            for o in await session.scalars(select(Order).order_by(Order.ordered_at))
        }
        customer = await session.scalar(
            select(Customer).where(Customer.customer_number == "C-00017")
        )
    assert {k: (str(o.total), str(o.cost_total), o.status) for k, o in orders.items()} == {
        "SO-1": ("1344.50", "840.00", "delivered"),
        "SO-2": ("59.00", "20.00", "shipped"),
    }
    assert await _count(state, OrderItem) == 3
    # A customer who bought two years ago is no new customer.
    assert customer is not None
    assert customer.created_at == datetime(2024, 5, 1, tzinfo=UTC)
    again = await import_file(settings, "orders", path, clock=FixedClock(NOW))
    assert (again.accepted, again.existing) == (0, 3)
    assert await _count(state, Order) == 2
    # The catalogue again, with one product taken off sale: an update, not a new product.
    deactivate = write_csv(
        tmp_path / "停售.csv", ["sku", "active"], [["CUP-2", "否"], ["TEA-1", "是"]]
    )
    changed = await import_file(settings, "products", deactivate, clock=FixedClock(NOW))
    assert (changed.updated, changed.existing, changed.accepted) == (1, 1, 1)
    assert await _count(state, Product, Product.active.is_(False)) == 1


LOG_HEADER = ["客户编号", "客户名称", "日期", "金额"]


@pytest.mark.usefixtures("operator_env")
async def test_a_purchase_log_of_unknown_customers_feeds_segments_and_churn(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    state.services.clock = FixedClock(NOW)
    rows = [
        ["C-10001", "周一", "2024-01-05", "¥1,200.00"],
        ["C-10001", "", "2024/8/5", "300元"],
        ["C-10001", "", "2025年2月1日", "99"],
        ["C-10002", "吴二", "2026/5/1", "1,299.00"],
        ["C-10002", "", "2026/5/1", "1,299.00"],  # the same again: a second purchase
        ["C-10003", "郑三", "2023-02-01", "45"],
    ]
    # And a shop's worth of regulars, enough histories for the churn model to fit.
    rows += [
        [f"C-2{k:04d}", "", f"2025/{1 + (k + j * 3) % 12}/{1 + k % 28}", f"{50 + k * 7 + j}.00"]
        for k in range(40)
        for j in range(1 + k % 4)
    ]
    path = write_csv(tmp_path / "流水.csv", LOG_HEADER, rows)
    without = await import_file(settings, "orders", path, clock=FixedClock(NOW))
    assert {r.reason for r in without.rejected} == {"unknown customer"}
    report = await import_file(
        settings,
        "orders",
        path,
        options=ImportOptions(create_customers=True),
        clock=FixedClock(NOW),
    )
    assert (report.accepted, report.created_customers, report.rejected) == (len(rows), 43, [])
    async with state.sessions() as session:
        created = {c.customer_number: c.created_at for c in await session.scalars(select(Customer))}
    assert len(created) == 43
    assert {k: v for k, v in created.items() if k and k.startswith("C-1")} == {
        "C-10001": datetime(2024, 1, 5, tzinfo=UTC),
        "C-10002": datetime(2026, 5, 1, tzinfo=UTC),
        "C-10003": datetime(2023, 2, 1, tzinfo=UTC),
    }
    again = await import_file(
        settings,
        "orders",
        path,
        options=ImportOptions(create_customers=True),
        clock=FixedClock(NOW),
    )
    assert (again.accepted, again.existing, again.created_customers) == (0, len(rows), 0)
    assert await _count(state, Order) == len(rows)
    # Segments and the churn model read the imported history.
    assert await asyncio.to_thread(invoke, ["segments", "refresh", "--as-of", "2026-05-31"]) == 0
    async with state.sessions() as session:
        lifecycle = dict(
            (await session.execute(select(Customer.customer_number, Customer.lifecycle))).all()
        )
    assert lifecycle["C-10001"] != "new"
    assert lifecycle["C-10003"] == "churned"
    model = await api.gql(
        '{ churnModel(asOf: "2026-05-31") { customers } }',
        token=api.token("analyst", subject="ann"),
        purpose="analytics",
    )
    assert model["data"]["churnModel"]["customers"] == 43


@pytest.mark.usefixtures("operator_env")
async def test_exit_codes_say_whether_every_row_landed(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_csv(tmp_path / "good.csv", ["客户名称", "手机"], [["甲", "13800000001"]])
    bad = write_csv(tmp_path / "bad.csv", ["客户名称", "手机"], [["乙", "138 1234"]])

    async def custos(*args: str) -> int:
        return await asyncio.to_thread(invoke, list(args))

    assert await custos("import", "customers", str(good)) == 0
    assert await custos("import", "customers", str(bad)) == 1
    printed = capsys.readouterr()
    assert "138 1234" not in printed.out + printed.err
    assert await custos("import", "customers", str(good), "--map", "客户名称=salary") == 2
    assert await custos("import", "customers", str(bad), "--dry-run") == 1
    mapping = tmp_path / "mapping.txt"
    mapping.write_text("# sheet column=import column\n名字=name\n电话=phone\n", encoding="utf-8")
    own = write_csv(tmp_path / "own.csv", ["名字", "电话"], [["丙", "13800000003"]])
    assert await custos("import", "customers", str(own), "--mapping", str(mapping)) == 0


# --- through the API ----------------------------------------------------------------

CREATE_CUSTOMER = """
mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  ... on CustomerCreated { customer { id customerNumber } }
  ... on UserError { code message field } } }
"""
IMPORT_ORDERS = """
mutation($rows: [ImportOrderRowInput!]!, $create: Boolean!) {
  importOrders(rows: $rows, createCustomers: $create) {
    accepted existing createdCustomers createdIds rejected { row reason }
  }
}
"""


async def test_customer_numbers_are_unique_and_orders_import_within_scope(
    api: Api, state: AppState
) -> None:
    east = api.token("manager", subject="mgr-east", team="east")
    west = api.token("manager", subject="mgr-west", team="west")
    made = await api.gql(
        CREATE_CUSTOMER,
        {"input": {"name": "东", "customerNumber": "C-1", "team": "east"}},
        token=east,
    )
    assert made["data"]["createCustomer"]["customer"]["customerNumber"] == "C-1"
    clash = await api.gql(
        CREATE_CUSTOMER,
        {"input": {"name": "西", "customerNumber": "C-1", "team": "west"}},
        token=west,
    )
    assert clash["data"]["createCustomer"] == {
        "code": "CUSTOMER_NUMBER_TAKEN",
        "message": "this customer number is already in use",
        "field": "customerNumber",
    }
    # The clash is a check by a value: audited for the prober, hit, never the number.
    async with state.sessions() as session:
        checks = (
            await session.scalars(
                select(AuditAccess)
                .join(AuditEvent, AuditEvent.id == AuditAccess.event_id)
                .where(AuditEvent.subject == "mgr-west", AuditAccess.action == "duplicate_check")
            )
        ).all()
    assert [a.fields for a in checks] == [{"customer_number": "hit"}]
    neither = await api.gql("{ customer { id } }", token=east)
    assert neither["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    rows = [
        {"customerRef": "C-1", "date": "2024年5月1日", "amount": "¥1,200.00", "orderRef": "W-1"},
        {"customerRef": "C-2", "date": "2024/5/2", "amount": "99", "customerName": "新客"},
    ]
    # West cannot see C-1: its order answers as an unknown customer would.
    denied = await api.gql(IMPORT_ORDERS, {"rows": rows[:1], "create": False}, token=west)
    assert denied["data"]["importOrders"]["rejected"] == [{"row": 1, "reason": "unknown customer"}]
    done = await api.gql(IMPORT_ORDERS, {"rows": rows, "create": True}, token=east)
    report = done["data"]["importOrders"]
    assert (report["accepted"], report["createdCustomers"], report["rejected"]) == (2, 1, [])
    again = await api.gql(IMPORT_ORDERS, {"rows": rows, "create": True}, token=east)
    assert again["data"]["importOrders"]["existing"] == 2
    async with state.sessions() as session:
        created = await session.scalar(select(Customer).where(Customer.customer_number == "C-2"))
    assert created is not None
    assert created.team == "east"
    agent = api.token("support", subject="s")
    refused = await api.gql(IMPORT_ORDERS, {"rows": rows, "create": False}, token=agent)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


PRODUCT_RESULT = (
    "... on ProductCreated { product { sku active unitPrice } } ... on UserError { code }"
)


async def test_products_are_updated_and_deactivated(api: Api, state: AppState) -> None:
    from tests.ops_helpers import CREATE_ORDER, make_product

    admin = api.token("admin", subject="root")
    product_id = await make_product(api, "TEA-9", "10.00", "4.00")
    changed = await api.gql(
        'mutation($id: ID!) { updateProduct(id: $id, input: {unitPrice: "12.50"}) { '
        + PRODUCT_RESULT
        + " } }",
        {"id": product_id},
        token=admin,
    )
    assert changed["data"]["updateProduct"]["product"] == {
        "sku": "TEA-9",
        "active": True,
        "unitPrice": "12.50",
    }
    off = await api.gql(
        f"mutation($id: ID!) {{ deactivateProduct(id: $id) {{ {PRODUCT_RESULT} }} }}",
        {"id": product_id},
        token=admin,
    )
    assert off["data"]["deactivateProduct"]["product"]["active"] is False
    customer = await make_customer(state, team="east")
    order = await api.gql(
        CREATE_ORDER,
        {"customerId": str(customer), "items": [{"productId": product_id, "quantity": 1}]},
        token=api.token("manager", subject="m", team="east"),
    )
    assert order["data"]["createOrder"]["code"] == "PRODUCT_INACTIVE"
    agent = await api.gql(
        f"mutation($id: ID!) {{ deactivateProduct(id: $id) {{ {PRODUCT_RESULT} }} }}",
        {"id": product_id},
        token=api.token("agent", subject="a"),
    )
    assert agent["errors"][0]["extensions"]["code"] == "FORBIDDEN"
