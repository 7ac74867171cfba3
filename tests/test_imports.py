"""Spreadsheet imports of customers and orders from .csv and .xlsx files: row-by-row
validation, a report of every rejected row, nothing written for rejected rows."""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, text

from server.app import AppState
from server.cli.context import operator
from server.cli.imports import import_file
from server.clock import FixedClock
from server.config import Settings
from server.customer.repository import CustomerRepository
from server.data.models import (
    AuditAccess,
    AuditEvent,
    Customer,
    CustomerKey,
    Order,
    OrderItem,
)
from server.imports.service import ImportReport
from server.vault.normalise import national_id_check_char
from tests.conftest import Api
from tests.factories import customer_data, make_customer
from tests.ops_helpers import make_product, manager


def national_id(day: int) -> str:
    first17 = f"31010119850{1 + day // 28}{1 + day % 28:02d}{day:03d}"
    return first17 + national_id_check_char(first17)


GOOD_ID = national_id(7)
BAD_ID = GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")
HEADER = ["name", "phone", "email", "national_id", "birthday", "region"]
CUSTOMER_ROWS: list[list[Any]] = [
    ["张伟", "13900000001", "zhang@example.com", national_id(1), "1990-05-01", "北京"],
    ["Bad Phone", "12345", "bad.phone@example.com", None, None, None],
    ["Bad Id", "13900000003", None, BAD_ID, None, None],
    ["Same Phone", "+86 139 0000 0001", "other@example.com", None, None, None],
    ["Known Email", None, "known@example.com", None, None, None],
    [None, "13900000006", None, None, None, None],
    ["李娜", "13900000007", "li@example.com", national_id(2), None, "上海"],
    ["Bad Birthday", "13900000008", None, None, "someday", None],
]
EXPECTED_REJECTIONS = [
    (3, "phone is not a valid phone number"),
    (4, "national ID has a bad format or checksum"),
    (5, "duplicate phone of row 2 in the file"),
    (6, "a customer with this email already exists"),
    (7, "name is missing"),
    (9, "birthday is not a date (YYYY-MM-DD or 1985年3月12日)"),
]


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


async def _count(state: AppState, model: type[Any]) -> int:
    async with state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _find_phone(api: Api, phone: str) -> Any:
    body = await api.gql(
        "query($p: String!) { customerByContact(phone: $p) { name region } }",
        {"p": phone},
        token=api.token("manager", subject="mgr", team="east"),
        purpose="sales",
    )
    return body["data"]["customerByContact"]


def _reasons(report: ImportReport) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in report.rejected]


async def _check_customer_import(api: Api, state: AppState, settings: Settings, path: Path) -> None:
    await make_customer(state, email="known@example.com", owner_id="mgr", team="east")
    report = await import_file(settings, "customers", path, batch_size=3, strict=False)
    assert report.accepted == 2
    assert _reasons(report) == EXPECTED_REJECTIONS
    for _, reason in _reasons(report):
        assert "1390000" not in reason
        assert BAD_ID not in reason
    assert await _count(state, Customer) == 3
    # The file gives no owner or team, so the rows are checked in the database directly.
    async with state.sessions() as session:
        regions = sorted(r or "" for r in await session.scalars(select(Customer.region)))
    assert regions == ["上海", "北京", "北京"]
    async with state.sessions() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.operation_name == "import customers")
        )
        assert event is not None
        assert (event.subject, event.roles) == (operator().subject, ["cli_operator"])
        recorded = await session.scalar(
            select(func.sum(AuditAccess.record_count)).where(
                AuditAccess.event_id == event.id, AuditAccess.action == "import"
            )
        )
        assert recorded == 2
        # Every contact checked against the files is audited, hit or miss, never its value.
        checks = (
            await session.scalars(
                select(AuditAccess).where(
                    AuditAccess.event_id == event.id, AuditAccess.action == "duplicate_check"
                )
            )
        ).all()
        assert {(tuple(a.fields.items()), a.record_count) for a in checks} == {
            ((("phone", "miss"),), 2),
            ((("email", "miss"),), 2),
            ((("email", "hit"),), 1),
            ((("national_id", "miss"),), 2),
        }


async def test_csv_customer_import_reports_and_skips_bad_rows(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "customers.csv", HEADER, CUSTOMER_ROWS)
    await _check_customer_import(api, state, settings, path)


async def test_xlsx_customer_import_reports_and_skips_bad_rows(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    rows = [list(r) for r in CUSTOMER_ROWS]
    rows[0][1] = 13900000001  # a phone typed as a number
    rows[0][4] = date(1990, 5, 1)  # a real date cell
    path = write_xlsx(tmp_path / "customers.xlsx", HEADER, rows)
    await _check_customer_import(api, state, settings, path)


async def test_strict_import_writes_nothing_when_a_row_is_bad(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "customers.csv", HEADER, CUSTOMER_ROWS)
    report = await import_file(settings, "customers", path, batch_size=2, strict=True)
    assert report.written is False
    assert report.accepted == 0
    assert len(report.rejected) == 5  # no known email in this database
    assert await _count(state, Customer) == 0


async def test_bad_header_or_file_type_is_refused(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    from server.errors import ValidationError

    bad = write_csv(tmp_path / "c.csv", ["phone", "salary"], [["13800000001", "1"]])
    for path in (bad, tmp_path / "c.txt"):
        with pytest.raises(ValidationError) as refused:
            await import_file(settings, "customers", path, batch_size=10, strict=False)
        assert refused.value.code in ("BAD_HEADER", "UNSUPPORTED_FILE")
    assert await _count(state, Customer) == 0


async def test_full_order_import(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    state.services.clock = FixedClock(datetime(2026, 6, 1, tzinfo=UTC))
    customer = await make_customer(state, phone="13800000001", email="buyer@example.com")
    await make_product(api, "TEA-1", "19.99", "12.34")
    header = ["customer_ref", "product_sku", "quantity", "unit_price", "date", "order_ref"]
    rows = [
        ["13800000001", "TEA-1", "3", "", "2025-03-01", "A-1"],
        ["buyer@example.com", "TEA-1", "1", "18.50", "2025-03-02 14:30", "A-2"],
        [str(customer), "TEA-1", "2", "", "2025-03-03", "A-3"],
        ["13800000009", "TEA-1", "1", "", "2025-03-04", "A-4"],
        ["13800000001", "NOPE", "1", "", "2025-03-05", "A-5"],
        ["13800000001", "TEA-1", "0", "", "2025-03-06", "A-6"],
        ["13800000001", "TEA-1", "1", "", "2025-03-07", "A-1"],
        ["13800000001", "TEA-1", "1", "1.234", "2025-03-08", "A-8"],
        ["not a ref", "TEA-1", "1", "", "2025-03-09", "A-9"],
    ]
    report = await import_file(
        settings, "orders", write_csv(tmp_path / "o.csv", header, rows), 4, False
    )
    assert report.accepted == 3
    assert _reasons(report) == [
        (5, "unknown customer"),
        (6, "unknown product"),
        (7, "quantity must be 1 to 100000"),
        (8, "order_ref of an order of row 2 (lines of one order go together)"),
        (9, "unit_price has more than two decimals"),
        # Neither a customer number nor a phone of any file.
        (10, "unknown customer"),
    ]
    async with state.sessions() as session:
        totals = sorted(str(t) for t in await session.scalars(select(Order.total)))
        statuses = set(await session.scalars(select(Order.status)))
    assert totals == ["18.50", "39.98", "59.97"]
    assert statuses == {"delivered"}
    assert await _count(state, OrderItem) == 3
    again = await import_file(
        settings, "orders", write_csv(tmp_path / "o2.csv", header, rows[:1]), 4, False
    )
    # A re-import finds the order by its number and leaves it as it is.
    assert (_reasons(again), again.existing, again.accepted) == ([], 1, 0)


async def test_minimal_order_import_for_analysis_from_xlsx(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    state.services.clock = FixedClock(datetime(2026, 6, 1, tzinfo=UTC))
    customer = await make_customer(state, phone="13800000001")
    rows: list[list[Any]] = [
        ["13800000001", date(2024, 1, 5), 19.99],
        [str(customer), datetime(2024, 2, 1, 12, 0), "0.10"],
        ["13800000001", "2024-03-01", "abc"],
        ["13800000001", "2024-13-01", "10"],
        ["13800000001", "2024-03-01", "-5"],
        ["13800000002", "2024-03-01", "5"],
        ["13800000001", "2999-01-01", "5"],
    ]
    path = write_xlsx(tmp_path / "history.xlsx", ["customer_ref", "date", "amount"], rows)
    report = await import_file(settings, "orders", path, batch_size=100, strict=False)
    assert report.accepted == 2
    assert _reasons(report) == [
        (4, "amount is not a decimal amount"),
        (5, "date is not a date (YYYY-MM-DD or 1985年3月12日)"),
        (6, "amount must be between 0 and 999999999999.99"),
        (7, "unknown customer"),
        (8, "date is in the future"),
    ]
    async with state.sessions() as session:
        orders = (await session.scalars(select(Order).order_by(Order.ordered_at))).all()
    assert [o.total for o in orders] == [Decimal("19.99"), Decimal("0.10")]
    assert {o.channel for o in orders} == {"import"}
    assert orders[0].ordered_at == datetime(2024, 1, 5, tzinfo=UTC)
    assert await _count(state, OrderItem) == 0


IMPORT = """
mutation($rows: [ImportCustomerRowInput!]!, $strict: Boolean!) {
  importCustomers(rows: $rows, strict: $strict) {
    accepted written createdIds rejected { row reason }
  }
}
"""


async def test_graphql_import_customers(api: Api, state: AppState) -> None:
    rows = [
        {"name": "王芳", "phone": "13700000001", "region": "杭州"},
        {"name": "Bad", "phone": "999"},
        {"name": "Twin", "phone": "13700000001"},
    ]
    agent = api.token("agent", subject="agent-1", team="east")
    denied = await api.gql(IMPORT, {"rows": rows, "strict": False}, token=agent)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    strict = await api.gql(IMPORT, {"rows": rows, "strict": True}, token=manager(api))
    assert strict["data"]["importCustomers"]["written"] is False
    assert await _count(state, Customer) == 0

    body = await api.gql(IMPORT, {"rows": rows, "strict": False}, token=manager(api))
    report = body["data"]["importCustomers"]
    assert report["accepted"] == 1
    assert report["rejected"] == [
        {"row": 2, "reason": "phone is not a valid phone number"},
        {"row": 3, "reason": "duplicate phone of row 1 in the file"},
    ]
    # The manager's team owns the upload, so the new file is in their scope.
    found = await _find_phone(api, "13700000001")
    assert found == {"name": "王芳", "region": "杭州"}


async def test_a_batch_the_database_refuses_lands_not_at_all(state: AppState) -> None:
    report = ImportReport("customers")

    async def write() -> None:
        sealed = state.services.customers.seal_new(customer_data(), owner_id=None, team=None)
        await CustomerRepository(session).add(sealed.customer, sealed.key)
        # A data key for a customer that does not exist: the database refuses the batch.
        session.add(CustomerKey(customer_id=uuid.uuid4(), wrapped_dek=b"x", kek_version=1))
        await session.flush()

    async with state.sessions() as session, session.begin():
        landed = await state.services.imports.land_batch(session, report, [2, 3], write)
    assert landed is False
    assert [r.row for r in report.rejected] == [2, 3]
    assert report.accepted == 0
    assert await _count(state, Customer) == 0


async def test_overlong_plain_values_are_rejected_per_row(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    rows = [["Ok", "13900000001", "北京"], ["Long", "13900000002", "x" * 65]]
    path = write_csv(tmp_path / "c.csv", ["name", "phone", "region"], rows)
    report = await import_file(settings, "customers", path, batch_size=10, strict=False)
    assert _reasons(report) == [(3, "region is longer than 64 characters")]
    assert await _count(state, Customer) == 1


ADD_POLICY = """
mutation($input: PolicyInput!) {
  addPolicy(input: $input) { __typename }
}
"""


async def test_an_uploader_with_own_scope_owns_the_imported_rows(api: Api) -> None:
    # A role of the operator's own (not named "agent"): ownership follows the row scope.
    admin = api.token("admin", subject="root")
    for obj, action in (
        ("customer", "read:own"),
        ("customer", "create:own"),
        ("import", "create"),
    ):
        granted = await api.gql(
            ADD_POLICY,
            {"input": {"subject": "field_rep", "object": obj, "action": action}},
            token=admin,
        )
        assert granted["data"]["addPolicy"]["__typename"] == "PolicyAdded", granted
    rep = api.token("field_rep", subject="rep-7", team="east")
    rows = [{"name": "林静", "phone": "13700000077"}]
    body = await api.gql(IMPORT, {"rows": rows, "strict": True}, token=rep)
    assert body["data"]["importCustomers"]["accepted"] == 1
    # Own scope: the uploader sees the new file only because the import made it theirs.
    listed = await api.gql("{ customers(first: 5) { totalCount nodes { ownerId } } }", token=rep)
    assert listed["data"]["customers"] == {"totalCount": 1, "nodes": [{"ownerId": "rep-7"}]}


async def test_an_import_leaves_planner_statistics(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    rows = [[f"Stat {n}", f"1390000{n:04d}"] for n in range(30)]
    path = write_csv(tmp_path / "stats.csv", ["name", "phone"], rows)
    report = await import_file(settings, "customers", path, batch_size=10, strict=False)
    assert report.accepted == 30
    # A plan chosen on an empty table's statistics scans: the import ANALYZEs what it filled.
    if state.settings.is_sqlite:
        statement = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'customers'"
    else:
        statement = (
            "SELECT count(*) FROM pg_stat_user_tables "
            "WHERE relname = 'customers' AND last_analyze IS NOT NULL"
        )
    async with state.sessions() as session:
        assert await session.scalar(text(statement)) >= 1
