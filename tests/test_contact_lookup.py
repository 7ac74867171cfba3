"""Finding a file by its contact points: `customerByContact(phone:)` also searches mobiles,
landlines and contact persons' phones, `customerByContact(wechat:)` WeChat IDs, through a
keyed blind index on each point, under the same scope, clear-read rule and audit as
every lookup; the index follows `keys rotate --blind-index` and goes with erasure."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from server.app import AppState
from server.cli import invoke
from server.clock import Clock
from server.config import Settings
from server.data.models import AuditAccess, AuditEvent, ContactPoint, Customer
from server.errors import ConflictError
from server.keys.service import BLIND_INDEX, KeyRotationService
from server.vault import LocalKeyring, Vault
from tests.conftest import Api
from tests.factories import make_customer
from tests.test_authz_matrix import MATRIX
from tests.test_authz_matrix import OWNER as MATRIX_OWNER
from tests.test_authz_matrix import TEAM as MATRIX_TEAM

ADD = """
mutation Add($customerId: ID!, $input: ContactPointInput!) {
  addContactPoint(customerId: $customerId, input: $input) {
    __typename ... on ContactPointAdded { contactPoint { id } } ... on UserError { code }
  }
}
"""
UPDATE = """
mutation Update($id: ID!, $input: ContactPointChangesInput!) {
  updateContactPoint(id: $id, input: $input) { __typename ... on UserError { code } }
}
"""
BY_PHONE = "query($v: String!) { customerByContact(phone: $v) { id } }"
BY_WECHAT = "query($v: String!) { customerByContact(wechat: $v) { id } }"
ERASE = """
mutation Erase($id: ID!) {
  eraseCustomer(id: $id) { __typename ... on UserError { code } }
}
"""
WECHAT = "Zhang_San-1988"
LANDLINE = "010-6552 9988 转 123"
PERSON_PHONE = "13800001111"
_OWN_PHONES = (f"139{n:08d}" for n in itertools.count(1))


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    # A rotation adds and retires versions: each test gets its own keyring.
    return tmp_path / "keys" / "keyring.json"


async def _add(api: Api, customer: uuid.UUID, team: str, **point: Any) -> str:
    token = api.token("manager", subject=f"m-{team}", team=team)
    body = await api.gql(
        ADD, {"customerId": str(customer), "input": point}, token=token, purpose="sales"
    )
    added = body["data"]["addContactPoint"]
    assert added["__typename"] == "ContactPointAdded", body
    return str(added["contactPoint"]["id"])


async def _file(state: AppState, api: Api, *, owner: str = "agent-1", team: str = "east") -> str:
    """A company file whose own phone is 139…, with a landline, a WeChat ID and a
    contact person with a phone of their own."""
    customer = await make_customer(state, owner_id=owner, team=team, phone=next(_OWN_PHONES))
    await _add(api, customer, team, kind="LANDLINE", value=LANDLINE, label="office")
    await _add(api, customer, team, kind="WECHAT", value=WECHAT)
    await _add(api, customer, team, kind="CONTACT_PERSON", personName="李娜", value=PERSON_PHONE)
    return str(customer)


async def _find(api: Api, query: str, value: str, token: str) -> dict[str, Any]:
    body = await api.gql(query, {"v": value}, token=token, purpose="support")
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]
    return found


async def _lookups(state: AppState, subject: str) -> list[tuple[dict[str, str], list[str]]]:
    """The subject's lookup accesses, oldest first: fields and denied fields."""
    async with state.sessions() as session:
        rows = await session.execute(
            select(AuditAccess.fields, AuditAccess.denied_fields, AuditAccess.action)
            .join(AuditEvent, AuditEvent.id == AuditAccess.event_id)
            .where(AuditEvent.subject == subject, AuditAccess.action.startswith("lookup"))
            .order_by(AuditEvent.seq, AuditAccess.id)
        )
        return [(dict(f), list(d)) for f, d, _action in rows.all()]


async def test_a_phone_finds_the_file_by_its_landline_and_contact_persons_phone(
    api: Api, state: AppState
) -> None:
    customer = await _file(state, api)
    token = api.token("agent", subject="agent-1", team="east")
    for number in ("010-6552 9988", "+86 10 6552 9988", "01065529988", PERSON_PHONE):
        found = await _find(api, BY_PHONE, number, token)
        assert found == {"customerByContact": {"id": customer}}, number
    assert await _find(api, BY_PHONE, "010-6552 9989", token) == {"customerByContact": None}
    # Audited as phone lookups, hit or miss, naming the file found and never the number.
    accesses = await _lookups(state, "agent-1")
    assert [f for f, _ in accesses] == [{"phone": "hit"}] * 4 + [{"phone": "miss"}]
    async with state.sessions() as session:
        events = (await session.scalars(select(AuditEvent))).all()
    assert "6552" not in str([e.__dict__ for e in events])


async def test_a_wechat_id_finds_the_file_in_any_case(api: Api, state: AppState) -> None:
    customer = await _file(state, api)
    token = api.token("agent", subject="agent-1", team="east")
    for text in (WECHAT, WECHAT.lower(), WECHAT.upper(), f"  {WECHAT}  "):
        found = await _find(api, BY_WECHAT, text, token)
        assert found == {"customerByContact": {"id": customer}}, text
    assert await _find(api, BY_WECHAT, "zhang_san-1989", token) == {"customerByContact": None}
    assert [f for f, _ in await _lookups(state, "agent-1")] == [{"wechat": "hit"}] * 4 + [
        {"wechat": "miss"}
    ]
    # A malformed ID is a typed error that does not repeat it.
    response = await api.post(BY_WECHAT, {"v": "9secret!"}, token=token, purpose="support")
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_WECHAT_ID"
    assert "9secret" not in response.text
    # Changing the point moves its index: the old ID no longer finds the file.
    async with state.sessions() as session:
        point = await session.scalar(select(ContactPoint.id).where(ContactPoint.kind == "wechat"))
    manager = api.token("manager", subject="m-east", team="east")
    changed = await api.gql(
        UPDATE, {"id": str(point), "input": {"value": "li_na_2024"}}, token=manager
    )
    assert changed["data"]["updateContactPoint"]["__typename"] == "ContactPointUpdated"
    assert await _find(api, BY_WECHAT, WECHAT, token) == {"customerByContact": None}
    found = await _find(api, BY_WECHAT, "LI_NA_2024", token)
    assert found == {"customerByContact": {"id": customer}}


async def test_a_point_outside_the_scope_answers_as_an_absent_one(
    api: Api, state: AppState
) -> None:
    mine = await _file(state, api)
    await _file(state, api, owner="agent-2", team="west")
    token = api.token("agent", subject="agent-1", team="east")
    # Both files hold the same points; agent-1 finds only its own.
    assert await _find(api, BY_WECHAT, WECHAT, token) == {"customerByContact": {"id": mine}}
    # West's file alone holds these: the answer is the one for a value nobody holds.
    west_only = await _file(state, api, owner="agent-3", team="west")
    west = api.token("manager", subject="m-west", team="west")
    async with state.sessions() as session:
        point = await session.scalar(
            select(ContactPoint.id).where(
                ContactPoint.customer_id == uuid.UUID(west_only), ContactPoint.kind == "wechat"
            )
        )
    await api.gql(UPDATE, {"id": str(point), "input": {"value": "west_only_1"}}, token=west)
    answers = []
    for value in ("west_only_1", "nobody_holds_1"):
        response = await api.post(BY_WECHAT, {"v": value}, token=token, purpose="support")
        body = response.json()
        answers.append((response.status_code, body["data"], "errors" in body))
    assert answers[0] == answers[1] == (200, {"customerByContact": None}, False)
    assert [f for f, _ in await _lookups(state, "agent-1")][-2:] == [{"wechat": "miss"}] * 2


async def test_a_role_that_reads_phones_masked_or_not_at_all_is_refused_and_audited(
    api: Api, state: AppState
) -> None:
    await _file(state, api)
    for role, purpose in (("analyst", "analytics"), ("admin", None)):
        token = api.token(role, subject=f"{role}-1")
        for query, value in ((BY_WECHAT, WECHAT), (BY_PHONE, PERSON_PHONE)):
            response = await api.post(query, {"v": value}, token=token, purpose=purpose)
            body = response.json()
            assert body["data"] == {"customerByContact": None}, (role, body)
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
            assert value not in response.text
        # Refused on the phone, whose mode a point's value is read in; no value recorded.
        async with state.sessions() as session:
            refused = (
                await session.execute(
                    select(AuditAccess.action, AuditAccess.denied_fields)
                    .join(AuditEvent, AuditEvent.id == AuditAccess.event_id)
                    .where(AuditEvent.subject == f"{role}-1")
                )
            ).all()
        assert [tuple(r) for r in refused] == [("lookup:phone", ["*"])] * 2, role


def _rotation(state: AppState, settings: Settings) -> KeyRotationService:
    serving = state.services.vault.keys
    assert isinstance(serving, LocalKeyring)
    serving.RELOAD_INTERVAL = 0.0
    keys = LocalKeyring.load(settings.keyring, create=False)
    return KeyRotationService(Vault(keys), state.sessions, Clock(), propagation_seconds=0.0)


async def test_blind_index_rotation_recomputes_the_points_and_lookups_keep_working(
    api: Api, state: AppState, settings: Settings
) -> None:
    customer = await _file(state, api)
    other = await _file(state, api, owner="agent-1", team="east")
    token = api.token("agent", subject="agent-1", team="east")
    # A point written before the index existed: none until a rotation computes it.
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(ContactPoint)
            .where(ContactPoint.customer_id == uuid.UUID(other))
            .values(value_bidx=None, bidx_key_version=None)
        )
    report = await _rotation(state, settings).rotate(BLIND_INDEX)
    assert report.finished
    assert report.to_version == 2
    async with state.sessions() as session:
        versions = set((await session.scalars(select(ContactPoint.bidx_key_version))).all())
    assert versions == {2}
    # Version 1 is used by nothing now (points included) and can go; lookups still answer.
    await _rotation(state, settings).retire(BLIND_INDEX, 1)
    state.services.vault.forget_all()
    assert await _find(api, BY_WECHAT, WECHAT.upper(), token) == {
        "customerByContact": {"id": customer}
    }
    assert await _find(api, BY_PHONE, "010 6552 9988", token) == {
        "customerByContact": {"id": customer}
    }
    # The file whose points had no index is found by them now.
    await api.gql(ERASE, {"id": customer}, token=api.token("compliance"), purpose="compliance")
    assert await _find(api, BY_PHONE, PERSON_PHONE, token) == {"customerByContact": {"id": other}}
    # A point added after the rotation is indexed under the new version.
    added = await _add(api, uuid.UUID(other), "east", kind="MOBILE", value="13712345678")
    async with state.sessions() as session:
        point = await session.get(ContactPoint, uuid.UUID(added))
    assert point is not None
    assert point.bidx_key_version == 2


async def test_retiring_a_version_still_used_by_a_point_is_refused(
    api: Api, state: AppState, settings: Settings
) -> None:
    await _file(state, api)
    service = _rotation(state, settings)
    await service.rotate(BLIND_INDEX)
    # A point left on version 1 (written by a server that had not seen version 2 yet).
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(ContactPoint).where(ContactPoint.kind == "wechat").values(bidx_key_version=1)
        )
    with pytest.raises(ConflictError) as refused:
        await service.retire(BLIND_INDEX, 1)
    assert refused.value.code == "KEY_IN_USE"


async def test_erasure_takes_the_points_and_their_index_with_it(api: Api, state: AppState) -> None:
    customer = await _file(state, api)
    token = api.token("agent", subject="agent-1", team="east")
    assert await _find(api, BY_WECHAT, WECHAT, token) == {"customerByContact": {"id": customer}}
    async with state.sessions() as session:
        indexes = set(
            (
                await session.scalars(
                    select(ContactPoint.value_bidx).where(
                        ContactPoint.customer_id == uuid.UUID(customer)
                    )
                )
            ).all()
        )
    assert len(indexes) == 3
    assert None not in indexes
    body = await api.gql(
        ERASE, {"id": customer}, token=api.token("compliance"), purpose="compliance"
    )
    assert body["data"]["eraseCustomer"]["__typename"] == "CustomerErased", body
    for query, value in ((BY_WECHAT, WECHAT), (BY_PHONE, LANDLINE[:13]), (BY_PHONE, PERSON_PHONE)):
        assert await _find(api, query, value, token) == {"customerByContact": None}, value
    async with state.sessions() as session:
        left = (
            await session.scalars(
                select(ContactPoint.id).where(ContactPoint.value_bidx.in_(list(indexes)))
            )
        ).all()
    assert left == []


IMPORT = """mutation($rows: [ImportCustomerRowInput!]!) { importCustomers(rows: $rows) {
  accepted existing updated rejected { row reason } } }"""


async def test_imported_points_are_found_like_any_other(api: Api, state: AppState) -> None:
    manager = api.token("manager", subject="mgr-east", team="east")
    rows = [
        {
            "name": "甲公司",
            "customerNumber": "C-1",
            "phone": "13800000001",
            "landline": "010-6552 9988 转 123",
            "wechat": "Wx_Jia001",
            "contactPerson": "王采购",
            "contactPersonPhone": "13900000001",
        },
        {"name": "乙公司", "customerNumber": "C-2", "phone": "13800000002"},
    ]
    body = await api.gql(IMPORT, {"rows": rows}, token=manager)
    assert body["data"]["importCustomers"]["accepted"] == 2, body
    # A re-import that adds a point to a file already there (an update) indexes it too.
    update = [{"name": "乙公司", "customerNumber": "C-2", "wechat": "yi_gongsi"}]
    body = await api.gql(IMPORT, {"rows": update}, token=manager)
    assert body["data"]["importCustomers"]["updated"] == 1, body
    async with state.sessions() as session:
        rows_by_number = await session.execute(select(Customer.customer_number, Customer.id))
        ids = {number: customer for number, customer in rows_by_number.all()}
        versions = set((await session.scalars(select(ContactPoint.bidx_key_version))).all())
    assert versions == {1}
    for query, value, number in (
        (BY_PHONE, "010-6552 9988", "C-1"),
        (BY_PHONE, "139 0000 0001", "C-1"),
        (BY_WECHAT, "wx_jia001", "C-1"),
        (BY_WECHAT, "YI_GONGSI", "C-2"),
    ):
        body = await api.gql(query, {"v": value}, token=manager, purpose="sales")
        assert body["data"] == {"customerByContact": {"id": str(ids[number])}}, (value, body)


@pytest.mark.usefixtures("operator_env")
async def test_the_rotate_command_reindexes_the_points(api: Api, state: AppState) -> None:
    customer = await _file(state, api)
    serving = state.services.vault.keys
    assert isinstance(serving, LocalKeyring)
    serving.RELOAD_INTERVAL = 0.0  # the server sees the new version at once
    command = ["keys", "rotate", "--blind-index", "--batch-size", "1"]
    assert await asyncio.to_thread(invoke, command) == 0
    async with state.sessions() as session:
        versions = set((await session.scalars(select(ContactPoint.bidx_key_version))).all())
    assert versions == {2}
    token = api.token("agent", subject="agent-1", team="east")
    for query, value in ((BY_WECHAT, WECHAT.lower()), (BY_PHONE, "010 6552 9988")):
        found = await _find(api, query, value, token)
        assert found == {"customerByContact": {"id": customer}}, value


async def test_every_role_and_purpose_looks_up_points_exactly_as_it_looks_up_phones(
    api: Api, state: AppState
) -> None:
    """The authorization matrix's phone lookups, replayed on a WeChat ID and on a
    landline point: the same roles and purposes answer, the same are refused."""
    customer = await make_customer(state, owner_id=MATRIX_OWNER, team=MATRIX_TEAM)
    await _add(api, customer, MATRIX_TEAM, kind="WECHAT", value=WECHAT)
    await _add(api, customer, MATRIX_TEAM, kind="LANDLINE", value=LANDLINE)
    cases = [c for c in MATRIX["lookups"] if c["field"] == "phone"]
    assert {c["outcome"] for c in cases} == {"allow", "deny"}
    for case in cases:
        role = case["role"]
        subject = MATRIX_OWNER if role == "agent" else f"user-{role}"
        token = api.token(role, subject=subject, team=MATRIX_TEAM)
        for query, value in ((BY_WECHAT, WECHAT.upper()), (BY_PHONE, "010-6552 9988")):
            body = await api.gql(query, {"v": value}, token=token, purpose=case["purpose"])
            if case["outcome"] == "allow":
                assert body["data"] == {"customerByContact": {"id": str(customer)}}, case
            else:
                assert body["data"] == {"customerByContact": None}, (case, body)
                codes = [e["extensions"]["code"] for e in body["errors"]]
                assert codes == ["FORBIDDEN"], case
