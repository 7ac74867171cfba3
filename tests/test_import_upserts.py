"""Imports that feed the newer stores and update what is already there: landline, WeChat
and contact-person columns become sealed contact points, 备注 a sealed note; owners are
matched to console users; a re-import of customer numbers updates the files it names,
within the importer's update scope and only with customer/update."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from server.app import AppState
from server.cli import invoke
from server.cli.imports import ImportOptions, import_file
from server.config import Settings
from server.data.models import (
    AuditAccess,
    AuditEvent,
    ContactPoint,
    Customer,
    CustomerNote,
    DuplicateFlag,
)
from server.imports.service import ImportReport
from tests.conftest import Api
from tests.factories import national_id
from tests.test_import_sheets import write_csv

PASSWORD = "correct horse battery staple"


async def _count(state: AppState, model: type[Any], *where: Any) -> int:
    async with state.sessions() as session:
        stmt = select(func.count()).select_from(model).where(*where)
        return int(await session.scalar(stmt) or 0)


def _reasons(report: ImportReport) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in report.rejected]


async def _audit_text(state: AppState) -> str:
    """Every audited access, as text: what must never hold an imported value."""
    async with state.sessions() as session:
        rows = (await session.scalars(select(AuditAccess))).all()
    return json.dumps(
        [[a.object_type, a.action, a.fields, a.changed_fields] for a in rows], ensure_ascii=False
    )


async def _changes(state: AppState, object_type: str, action: str) -> list[list[str]]:
    """The changed field names of each record changed so (an access lists its records)."""
    async with state.sessions() as session:
        rows = await session.scalars(
            select(AuditAccess).where(
                AuditAccess.object_type == object_type, AuditAccess.action == action
            )
        )
        return sorted(a.changed_fields for a in rows for _ in range(a.record_count))


CONTACT_HEADER = [
    "客户编号",
    "客户名称",
    "手机",
    "座机",
    "微信号",
    "联系人",
    "联系人电话",
    "备注",
    "团队",
]
CONTACT_ROWS = [
    [
        "C-1",
        "甲公司",
        "13800000001",
        "010-6552 9988 转 123",
        "wx_jia001",
        "王采购",
        "13900000001",
        "老客户 季度回访",
        "east",
    ],
    ["C-2", "乙公司", "", "021-5555 6666", "", "", "", "", "east"],
    ["C-3", "丙公司", "13800000003", "", "微信号甲乙丙", "", "", "", "east"],
    ["C-4", "丁公司", "13800000004", "12345", "", "", "", "", "east"],
    ["C-5", "戊公司", "13800000005", "", "", "", "13900000005", "", "east"],
    ["C-6", "己公司", "13800000006", "", "", "赵经理", "138 1234", "", "east"],
    ["C-7", "庚公司", "13800000007", "", "", "", "", "x" * 4001, "east"],
]
CONTACT_REJECTED = [
    (4, "wechat is not a WeChat ID (6 to 20 letters, digits, _ or -, starting with a letter)"),
    (5, "landline is not a valid landline number"),
    (6, "contact person phone needs a contact person"),
    (7, "contact person phone is not a valid phone number"),
    (8, "note is longer than 4000 characters"),
]
FILE = """query($number: String!) { customer(customerNumber: $number) {
  phone contactPoints { kind value personName } notes { body history { version } } } }"""


async def test_landline_wechat_contact_person_and_note_columns_land_sealed(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "客户.csv", CONTACT_HEADER, CONTACT_ROWS)
    report = await import_file(settings, "customers", path)
    assert _reasons(report) == CONTACT_REJECTED
    assert (report.accepted, report.ignored_columns) == (2, [])
    manager = api.token("manager", subject="mgr", team="east")
    first = (await api.gql(FILE, {"number": "C-1"}, token=manager, purpose="sales"))["data"]
    # Points of one row are written together: their order among themselves is not kept.
    points = sorted(first["customer"].pop("contactPoints"), key=lambda p: p["kind"])
    assert points == [
        {"kind": "CONTACT_PERSON", "value": "+8613900000001", "personName": "王采购"},
        {"kind": "LANDLINE", "value": "+861065529988;ext=123", "personName": None},
        {"kind": "WECHAT", "value": "wx_jia001", "personName": None},
    ]
    assert first["customer"] == {
        "phone": "+8613800000001",
        "notes": [{"body": "老客户 季度回访", "history": [{"version": 1}]}],
    }
    # A landline is the phone of a file without a mobile, and a contact point as well.
    second = await api.gql(FILE, {"number": "C-2"}, token=manager, purpose="sales")
    assert second["data"]["customer"] == {
        "phone": "+862155556666",
        "contactPoints": [{"kind": "LANDLINE", "value": "+862155556666", "personName": None}],
        "notes": [],
    }
    # Sealed at rest: no stored column holds the text.
    async with state.sessions() as session:
        stored = (await session.scalars(select(ContactPoint))).all()
        notes = (await session.scalars(select(CustomerNote))).all()
    assert all(b"wx_jia001" not in (p.value or b"") for p in stored)
    assert all("老客户".encode() not in n.body for n in notes)
    # Audited by field name, never by value; nothing of a refused cell anywhere.
    assert await _changes(state, "contact_point", "import") == sorted(
        [["kind", "value"]] * 3 + [["kind", "person_name", "value"]]
    )
    assert await _changes(state, "customer_note", "import") == [["body"]]
    audited = await _audit_text(state)
    for value in ("wx_jia001", "王采购", "老客户", "6552", "微信号甲乙丙", "138 1234"):
        assert value not in audited
        assert all(value not in reason for _, reason in _reasons(report))
    # The same file again: nothing twice.
    again = await import_file(settings, "customers", path)
    assert (again.accepted, again.existing, again.updated) == (0, 2, 0)
    assert await _count(state, ContactPoint) == 4
    assert await _count(state, CustomerNote) == 1


async def _custos(monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return await asyncio.to_thread(invoke, list(args))


@pytest.mark.usefixtures("operator_env")
async def test_owners_are_matched_to_console_users(
    state: AppState, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for username in ("wang", "old"):
        added = await _custos(
            monkeypatch,
            PASSWORD + "\n",
            *("users", "add", "--username", username, "--role", "agent", "--team", "north"),
            "--password-stdin",
        )
        assert added == 0
    assert await _custos(monkeypatch, "", "users", "disable", "--username", "old") == 0
    path = write_csv(
        tmp_path / "owners.csv",
        ["客户名称", "手机", "负责人"],
        [
            ["甲", "13800000011", "wang"],
            ["乙", "13800000012", "zhao"],
            ["丙", "13800000013", "张经理"],
            ["丁", "13800000014", "old"],
        ],
    )
    report = await import_file(
        settings, "customers", path, options=ImportOptions(owners=("张经理=wang",))
    )
    assert _reasons(report) == [
        (3, "owner is not a known user (map it with --owner)"),
        (5, "the owner's console account is disabled"),
    ]
    async with state.sessions() as session:
        owners = (await session.execute(select(Customer.owner_id, Customer.team))).all()
    # By username and through the mapping alike: the user's own team comes along.
    assert sorted(owners) == [("wang", "north"), ("wang", "north")]


UPSERT_HEADER = ["客户编号", "客户名称", "手机", "地区", "备注", "团队"]


@pytest.mark.usefixtures("operator_env")
async def test_a_re_import_updates_what_changed_and_counts_it(
    api: Api,
    state: AppState,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = write_csv(
        tmp_path / "v1.csv",
        UPSERT_HEADER,
        [
            ["U-1", "甲公司", "13800000021", "北京", "首单", "east"],
            ["U-2", "乙公司", "13800000022", "上海", "", "east"],
            ["U-3", "丙公司", "13800000023", "广州", "", "east"],
        ],
    )
    assert (await import_file(settings, "customers", first)).accepted == 3
    second = write_csv(
        tmp_path / "v2.csv",
        UPSERT_HEADER,
        [
            ["U-1", "甲乙贸易", "13800000031", "北京", "首单", "east"],
            ["U-2", "乙公司", "13800000022", "上海", "", "east"],
            ["U-3", "丙公司", "", "深圳", "改到深圳", "east"],
            ["U-4", "丁公司", "13800000024", "杭州", "", "east"],
        ],
    )
    # A dry run says what would change and changes nothing.
    dry = await import_file(settings, "customers", second, options=ImportOptions(dry_run=True))
    assert (dry.accepted, dry.updated, dry.existing, dry.written) == (3, 2, 1, False)
    assert await _changes(state, "customer", "update") == []
    assert await _count(state, Customer) == 3
    assert await asyncio.to_thread(invoke, ["import", "customers", str(second)]) == 0
    printed = capsys.readouterr().err
    assert "imported 3 customers rows, 2 files updated, 1 already there" in printed
    assert await _count(state, Customer) == 4
    manager = api.token("manager", subject="mgr", team="east")
    found = await api.gql(
        '{ customers(filter: {name: "甲乙贸易"}) { nodes { customerNumber phone region } } }',
        token=manager,
        purpose="sales",
    )
    assert found["data"]["customers"]["nodes"] == [
        {"customerNumber": "U-1", "phone": "+8613800000031", "region": "北京"}
    ]
    gone = await api.gql(
        '{ customers(filter: {name: "甲公司"}) { totalCount } }', token=manager, purpose="sales"
    )
    assert gone["data"]["customers"]["totalCount"] == 0
    third = await api.gql(FILE, {"number": "U-3"}, token=manager, purpose="sales")
    # A blank cell changes nothing; a new note is added, the same note not again.
    assert third["data"]["customer"]["phone"] == "+8613800000023"
    assert [n["body"] for n in third["data"]["customer"]["notes"]] == ["改到深圳"]
    assert await _count(state, CustomerNote) == 2
    # The update is audited as one, by field name only.
    assert await _changes(state, "customer", "update") == [["name", "phone"], ["region"]]
    audited = await _audit_text(state)
    assert "甲乙贸易" not in audited
    assert "13800000031" not in audited
    # Once more: nothing left to change, and no data key made for a row that needs none.
    secrets = _shred_secrets(state)
    again = await import_file(settings, "customers", second)
    assert (again.accepted, again.updated, again.existing) == (0, 0, 4)
    assert _shred_secrets(state) == secrets


async def test_an_operator_re_import_onto_another_files_phone_raises_a_flag(
    state: AppState, settings: Settings, tmp_path: Path
) -> None:
    header = ["客户编号", "客户名称", "手机"]
    first = [["F-1", "甲", "13800000041"], ["F-2", "乙", "13800000042"]]
    assert (
        await import_file(settings, "customers", write_csv(tmp_path / "a.csv", header, first))
    ).accepted == 2
    moved = write_csv(tmp_path / "b.csv", header, [["F-2", "乙", "13800000041"]])
    report = await import_file(settings, "customers", moved)
    # As updateCustomer by a caller that reads no file: the change lands, flagged.
    assert (report.updated, report.rejected) == (1, [])
    async with state.sessions() as session:
        flags = (await session.execute(select(DuplicateFlag.field))).scalars().all()
    assert flags == ["phone"]


def _shred_secrets(state: AppState) -> int:
    """Customer shred secrets in the key store (one per data key ever made)."""
    path = state.services.vault.keys.shred_secrets.path  # type: ignore[attr-defined]
    with closing(sqlite3.connect(path)) as store:
        return int(store.execute("SELECT count(*) FROM shred_secrets").fetchone()[0])


IMPORT = """mutation($rows: [ImportCustomerRowInput!]!) { importCustomers(rows: $rows) {
  accepted existing updated rejected { row reason } } }"""
ADD_POLICY = """mutation($input: PolicyInput!) { addPolicy(input: $input) { __typename } }"""


async def _region(state: AppState, number: str) -> str | None:
    async with state.sessions() as session:
        return await session.scalar(
            select(Customer.region).where(Customer.customer_number == number)
        )


async def test_updates_stay_in_the_update_scope_and_need_customer_update(
    api: Api, state: AppState
) -> None:
    east = api.token("manager", subject="mgr-east", team="east")
    west = api.token("manager", subject="mgr-west", team="west")
    made = await api.gql(
        IMPORT, {"rows": [{"name": "东", "customerNumber": "E-1", "region": "北京"}]}, token=east
    )
    assert made["data"]["importCustomers"]["accepted"] == 1
    made = await api.gql(
        IMPORT, {"rows": [{"name": "西", "customerNumber": "W-1", "region": "成都"}]}, token=west
    )
    assert made["data"]["importCustomers"]["accepted"] == 1
    rows = [
        {
            "name": "东",
            "customerNumber": "E-1",
            "region": "天津",
            "wechat": "east_buyer1",
            "note": "换了联系人",
        },
        {"name": "西", "customerNumber": "W-1", "region": "拉萨"},
    ]
    body = await api.gql(IMPORT, {"rows": rows}, token=east)
    # West's file answers as any number in use does; east's own file is updated.
    assert body["data"]["importCustomers"] == {
        "accepted": 1,
        "existing": 0,
        "updated": 1,
        "rejected": [{"row": 2, "reason": "this customer number is already in use"}],
    }
    assert (await _region(state, "E-1"), await _region(state, "W-1")) == ("天津", "成都")
    file = await api.gql(FILE, {"number": "E-1"}, token=east, purpose="sales")
    assert file["data"]["customer"]["contactPoints"] == [
        {"kind": "WECHAT", "value": "east_buyer1", "personName": None}
    ]
    # Told "already there" under a purpose it reads the file's contacts in clear for.
    again = await api.gql(IMPORT, {"rows": rows[:1]}, token=east, purpose="sales")
    assert again["data"]["importCustomers"]["existing"] == 1
    assert await _count(state, ContactPoint) == 1
    # The customer service checks an update's contacts: a phone another file the manager
    # sees holds refuses that row alone, and nothing of it is written or claimed.
    twin = [{"name": "东二", "customerNumber": "E-2", "phone": "13700000002"}]
    assert (await api.gql(IMPORT, {"rows": twin}, token=east))["data"]["importCustomers"][
        "accepted"
    ] == 1
    clash = [
        {"name": "东", "customerNumber": "E-1", "phone": "13700000002", "region": "南京"},
        {"name": "东二", "customerNumber": "E-2", "phone": "13700000002", "region": "苏州"},
    ]
    body = await api.gql(IMPORT, {"rows": clash}, token=east, purpose="sales")
    assert body["data"]["importCustomers"] == {
        "accepted": 1,
        "existing": 0,
        "updated": 1,
        "rejected": [{"row": 1, "reason": "a customer with this phone already exists"}],
    }
    assert (await _region(state, "E-1"), await _region(state, "E-2")) == ("天津", "苏州")
    assert await _changes(state, "customer", "update") == [["region"], ["region"]]
    # A role that may create and read files but not change them: refused, not ignored.
    admin = api.token("admin", subject="root")
    for obj, action in (
        ("customer", "read:team"),
        ("customer", "create:team"),
        ("import", "create"),
    ):
        granted = await api.gql(
            ADD_POLICY,
            {"input": {"subject": "loader", "object": obj, "action": action}},
            token=admin,
        )
        assert granted["data"]["addPolicy"]["__typename"] == "PolicyAdded", granted
    loader = api.token("loader", subject="ld-1", team="east")
    refused = await api.gql(
        IMPORT,
        {"rows": [{"name": "东", "customerNumber": "E-1", "region": "西安"}]},
        token=loader,
    )
    assert refused["data"]["importCustomers"] == {
        "accepted": 0,
        "existing": 0,
        "updated": 0,
        "rejected": [
            {"row": 1, "reason": "changing a customer already there needs customer/update"}
        ],
    }
    assert await _region(state, "E-1") == "天津"
    async with state.sessions() as session:
        denied = (
            await session.scalars(
                select(AuditAccess)
                .join(AuditEvent, AuditEvent.id == AuditAccess.event_id)
                .where(AuditEvent.subject == "ld-1", AuditAccess.action == "update")
            )
        ).all()
    assert [(a.object_type, a.denied_fields) for a in denied] == [("customer", ["*"])]


STRICT_IMPORT = """mutation($rows: [ImportCustomerRowInput!]!) {
  importCustomers(rows: $rows, strict: true) { existing updated rejected { row } } }"""


async def test_a_re_import_is_no_oracle_on_values_the_importer_reads_masked(
    api: Api, state: AppState
) -> None:
    # A manager reads national IDs masked. A re-import compares a row with its file only
    # where the importer reads the field in clear: otherwise "already there" against
    # "updated" would confirm a guess of the hidden value, and a strict import with one
    # bad row would confirm it with nothing written.
    east = api.token("manager", subject="mgr-east", team="east")
    real = national_id(7)
    made = await api.gql(
        IMPORT,
        {"rows": [{"name": "东", "customerNumber": "E-1", "nationalId": real, "region": "北京"}]},
        token=east,
    )
    assert made["data"]["importCustomers"]["accepted"] == 1, made
    answers = []
    for guess in (real, national_id(8)):
        rows = [
            {"name": "东", "customerNumber": "E-1", "nationalId": guess},
            {"name": "坏", "phone": "not a phone"},
        ]
        body = await api.gql(STRICT_IMPORT, {"rows": rows}, token=east, purpose="sales")
        answers.append(body["data"]["importCustomers"])
    assert answers[0] == answers[1] == {"existing": 0, "updated": 1, "rejected": [{"row": 2}]}
    # Strict and one row rejected: nothing written, nothing claimed.
    assert await _changes(state, "customer", "update") == []
    # Fields the manager reads in clear are still compared: a row that repeats them is
    # already there.
    again = [{"name": "东", "customerNumber": "E-1", "region": "北京"}]
    body = await api.gql(STRICT_IMPORT, {"rows": again}, token=east, purpose="sales")
    assert body["data"]["importCustomers"] == {"existing": 1, "updated": 0, "rejected": []}
