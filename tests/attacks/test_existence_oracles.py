"""Attack 7: existence oracles in duplicate checks.

`DUPLICATE_CUSTOMER` on create and update answered for contacts of any customer in the
company, and a manager's `importCustomers(strict: true)` with probe rows listed which
contacts exist, wrote nothing and was audited `ok` with no accesses. Now a duplicate the
caller could not see (outside its scope, or on a field it does not read in clear) never
refuses the write: the write goes ahead and a duplicate flag is stored for someone whose
scope covers both files. Every check is audited, hit or miss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from server.app import AppState
from server.cli.imports import import_file
from server.config import Settings
from server.data.models import AuditAccess, Customer
from tests.conftest import Api
from tests.factories import make_customer

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on CustomerCreated { customer { id } }
    ... on UserError { code message }
  }
}
"""
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) {
    __typename
    ... on UserError { code }
  }
}
"""
IMPORT = """
mutation($rows: [ImportCustomerRowInput!]!) {
  importCustomers(rows: $rows, strict: true) { accepted written rejected { row reason } }
}
"""
FLAGS = """
{ duplicateFlags(first: 20) { nodes { customerId matchedCustomerId matchedOn raisedBy } } }
"""


async def _accesses(state: AppState, action: str) -> list[tuple[dict[str, str], set[str]]]:
    """(fields, record ids) of every access with this action, oldest first."""
    async with state.sessions() as session:
        rows = (
            await session.scalars(
                select(AuditAccess).where(AuditAccess.action == action).order_by(AuditAccess.id)
            )
        ).all()
        out = []
        for access in rows:
            out.append((dict(access.fields), {str(i) for i in access.record_ids}))
        return out


async def test_a_create_does_not_tell_whether_an_unseen_contact_exists(
    api: Api, state: AppState
) -> None:
    theirs = await make_customer(state, owner_id="agent-3", team="west", phone="13900001234")
    agent = api.token("agent", subject="agent-1", team="east")
    answers: dict[str, Any] = {}
    for phone in ("13900001234", "13900005678"):
        body = await api.gql(
            CREATE, {"input": {"name": "Probe", "phone": phone}}, token=agent, purpose="sales"
        )
        answers[phone] = body["data"]["createCustomer"]["__typename"]
    assert answers == {"13900001234": "CustomerCreated", "13900005678": "CustomerCreated"}
    # The check named the file it matched, for compliance, and both misses and hits count.
    checks = await _accesses(state, "duplicate_check")
    assert ({"phone": "hit"}, {str(theirs)}) in checks
    assert any(fields == {"phone": "miss"} for fields, _ in checks)
    # The agent sees no flag (the other file is outside its scope) ...
    mine = await api.gql(FLAGS, token=agent, purpose="sales")
    assert mine["data"]["duplicateFlags"]["nodes"] == []
    # ... someone whose scope covers both files and who reads phones in clear does.
    support = await api.gql(FLAGS, token=api.token("support", subject="sue"), purpose="support")
    [flag] = support["data"]["duplicateFlags"]["nodes"]
    assert (flag["matchedCustomerId"], flag["matchedOn"], flag["raisedBy"]) == (
        str(theirs),
        "phone",
        "agent-1",
    )


async def test_an_update_does_not_tell_whether_an_unseen_contact_exists(
    api: Api, state: AppState
) -> None:
    await make_customer(state, owner_id="agent-3", team="west", email="taken@example.com")
    mine = await make_customer(state, owner_id="agent-1")
    agent = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(
        UPDATE,
        {"id": str(mine), "input": {"email": "TAKEN@example.com"}},
        token=agent,
        purpose="sales",
    )
    assert body["data"]["updateCustomer"]["__typename"] == "CustomerUpdated"
    # A duplicate the agent can see is still refused.
    await make_customer(state, owner_id="agent-1", email="seen@example.com")
    seen = await api.gql(
        UPDATE,
        {"id": str(mine), "input": {"email": "seen@example.com"}},
        token=agent,
        purpose="sales",
    )
    assert seen["data"]["updateCustomer"] == {
        "__typename": "UserError",
        "code": "DUPLICATE_CUSTOMER",
    }


async def test_a_strict_import_of_probe_rows_lists_nothing_and_is_audited(
    api: Api, state: AppState
) -> None:
    east = [
        await make_customer(state, owner_id="agent-1", team="east", phone=f"1370000000{n}")
        for n in range(2)
    ]
    west = api.token("manager", subject="mgr-west", team="west")
    probes = [{"name": f"Probe {n}", "phone": f"1370000000{n}"} for n in range(5)]
    body = await api.gql(IMPORT, {"rows": probes}, token=west, purpose="sales")
    report = body["data"]["importCustomers"]
    # Existing and unknown contacts answer alike: nothing is rejected, everything lands.
    assert report == {"accepted": 5, "written": True, "rejected": []}
    checks = await _accesses(state, "duplicate_check")
    hits = [ids for fields, ids in checks if fields == {"phone": "hit"}]
    misses = [ids for fields, ids in checks if fields == {"phone": "miss"}]
    assert hits == [{str(c) for c in east}]
    assert len(misses) == 1
    assert len(misses[0]) == 3  # the three new files, by id


async def test_the_cli_import_audits_every_check(
    api: Api, state: AppState, settings: Settings, tmp_path: Path
) -> None:
    known = await make_customer(state, phone="13600000001")
    path = tmp_path / "probe.csv"
    path.write_text("name,phone\nA,13600000001\nB,13600000002\n", encoding="utf-8")
    report = await import_file(settings, "customers", path, batch_size=10, strict=True)
    # The operator holds the keys and the database: the duplicate is refused, and said.
    assert [(r.row, r.reason) for r in report.rejected] == [
        (2, "a customer with this phone already exists")
    ]
    checks = await _accesses(state, "duplicate_check")
    assert ({"phone": "hit"}, {str(known)}) in checks
    assert any(fields == {"phone": "miss"} and len(ids) == 1 for fields, ids in checks)
    async with state.sessions() as session:
        assert len((await session.scalars(select(Customer.id))).all()) == 1
