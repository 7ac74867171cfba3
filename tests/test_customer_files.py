"""Customer files through HTTP: update (sealed fields too), verification, tags,
completeness and review, filters and sort orders, duplicate candidates and merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from server.app import AppState
from server.clock import FixedClock
from server.data.base import new_id
from server.data.models import AuditAccess, Customer, CustomerKey, Interaction, LoyaltyEntry, Order
from server.errors import VaultError
from server.vault import FieldRef
from server.vault.masking import mask
from tests.conftest import Api
from tests.factories import make_customer, make_interactions, national_id

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) {
    __typename
    ... on CustomerUpdated { changedFields customer {
      id phone preferences priceSensitivity region ownerId phoneVerifiedAt updatedAt } }
    ... on UserError { code message }
  }
}
"""
GET = """
query($id: ID!) { customer(id: $id) {
  id name phone email nationalId preferences priceSensitivity region tags ownerId
  phoneVerifiedAt emailVerifiedAt reviewedAt mergedIntoId
  completeness { score missingFields staleFields needsReview reviewDueAt } } }
"""


def agent(api: Api, subject: str = "agent-1") -> str:
    return api.token("agent", subject=subject, team="east")


async def get(api: Api, customer_id: Any, token: str) -> dict[str, Any]:
    body = await api.gql(GET, {"id": str(customer_id)}, token=token, purpose="support")
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["customer"]
    return result


async def test_update_reseals_reindexes_and_audits_names_only(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", phone="13800000001")
    token = agent(api)
    verified = await api.gql(
        "mutation($id: ID!) { verifyContact(customerId: $id, channel: PHONE) { __typename } }",
        {"id": str(customer)},
        token=token,
    )
    assert verified["data"]["verifyContact"]["__typename"] == "CustomerUpdated"
    assert (await get(api, customer, token))["phoneVerifiedAt"] is not None

    body = await api.gql(
        UPDATE,
        {
            "id": str(customer),
            "input": {
                "phone": "139 0000 0002",
                "preferences": "Prefers evening calls",
                "priceSensitivity": "HIGH",
                "region": "上海",
            },
        },
        token=token,
        purpose="support",
    )
    result = body["data"]["updateCustomer"]
    assert sorted(result["changedFields"]) == ["phone", "preferences", "priceSensitivity", "region"]
    assert result["customer"]["phone"] == "+8613900000002"
    assert result["customer"]["preferences"] == "Prefers evening calls"
    assert result["customer"]["phoneVerifiedAt"] is None
    found = await api.gql(
        '{ customerByContact(phone: "13900000002") { id } }', token=token, purpose="support"
    )
    assert found["data"]["customerByContact"] == {"id": str(customer)}
    gone = await api.gql('{ customerByContact(phone: "13800000001") { id } }', token=token)
    assert gone["data"]["customerByContact"] is None
    async with state.sessions() as session:
        row = await session.get(Customer, customer)
        assert row is not None
        assert row.preferences is not None
        assert b"evening" not in row.preferences
        changed = (
            await session.scalars(select(AuditAccess).where(AuditAccess.action == "update"))
        ).one()
        assert sorted(changed.changed_fields) == [
            "phone",
            "preferences",
            "price_sensitivity",
            "region",
        ]
        assert "evening" not in str(changed.fields) + str(changed.changed_fields)


async def test_bad_or_duplicate_updates_change_nothing(api: Api, state: AppState) -> None:
    # The taken email is on a file the agent sees (a duplicate outside its scope does not
    # refuse the write: tests/attacks/test_existence_oracles.py).
    await make_customer(state, owner_id="agent-1", email="taken@example.com")
    customer = await make_customer(state, owner_id="agent-1", region="北京")
    token = agent(api)
    before = await get(api, customer, token)
    for change, code in (
        ({"email": "TAKEN@example.com", "region": "上海"}, "DUPLICATE_CUSTOMER"),
        ({"phone": "12", "region": "上海"}, "INVALID_PHONE"),
        ({"name": "  ", "region": "上海"}, "BAD_USER_INPUT"),
    ):
        body = await api.gql(
            UPDATE, {"id": str(customer), "input": change}, token=token, purpose="support"
        )
        assert body["data"]["updateCustomer"]["code"] == code
    # A value outside a closed set is refused by the schema, before the service.
    refused = await api.post(
        UPDATE,
        {"id": str(customer), "input": {"priceSensitivity": "extreme", "region": "上海"}},
        token=token,
        purpose="support",
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await get(api, customer, token) == before


async def test_reassignment_needs_scope(api: Api, state: AppState) -> None:
    mine = await make_customer(state, owner_id="agent-1")
    theirs = await make_customer(state, owner_id="agent-2")
    token = agent(api)
    refused = await api.gql(
        UPDATE, {"id": str(theirs), "input": {"ownerId": "agent-1"}}, token=token
    )
    assert refused["data"]["updateCustomer"]["code"] == "NOT_FOUND"
    # An agent may update only its own files: handing one on would write outside that.
    kept = await api.gql(UPDATE, {"id": str(mine), "input": {"ownerId": "agent-2"}}, token=token)
    assert kept["data"]["updateCustomer"]["code"] == "OUT_OF_SCOPE"
    assert (await get(api, mine, token))["ownerId"] == "agent-1"
    # The team's manager hands it on within the team.
    manager = api.token("manager", subject="m-1", team="east")
    handed = await api.gql(
        UPDATE, {"id": str(mine), "input": {"ownerId": "agent-2"}}, token=manager
    )
    assert handed["data"]["updateCustomer"]["__typename"] == "CustomerUpdated"
    assert handed["data"]["updateCustomer"]["changedFields"] == ["ownerId"]
    assert (await get(api, mine, agent(api, "agent-2")))["ownerId"] == "agent-2"
    analyst = await api.gql(
        UPDATE, {"id": str(mine), "input": {"region": "x"}}, token=api.token("analyst")
    )
    assert analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_verify_contact_needs_the_contact(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", email=None)
    query = """mutation($id: ID!, $channel: ContactChannel!) {
      verifyContact(customerId: $id, channel: $channel) {
        __typename ... on UserError { code } } }"""
    body = await api.gql(query, {"id": str(customer), "channel": "EMAIL"}, token=agent(api))
    assert body["data"]["verifyContact"] == {"__typename": "UserError", "code": "NO_CONTACT"}
    assert (await get(api, customer, agent(api)))["emailVerifiedAt"] is None


TAG = """mutation($id: ID!, $add: [String!], $remove: [String!]) {
  tagCustomer(customerId: $id, add: $add, remove: $remove) {
    __typename ... on CustomerUpdated { customer { tags } } ... on UserError { code } } }"""
BY_TAG = """query($tag: String) { customers(filter: {tag: $tag}) { totalCount nodes { id } } }"""


async def test_tags_add_remove_and_filter(api: Api, state: AppState) -> None:
    tagged = await make_customer(state, owner_id="agent-1")
    other = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    body = await api.gql(TAG, {"id": str(tagged), "add": ["vip", "回头客", "vip"]}, token=token)
    assert body["data"]["tagCustomer"]["customer"]["tags"] == ["vip", "回头客"]
    await api.gql(TAG, {"id": str(other), "add": ["vip-lite"]}, token=token)
    for tag, expected in (
        ("vip", [tagged]),
        ("回头客", [tagged]),
        ("vi", []),
        ("vip-lite", [other]),
    ):
        listed = await api.gql(BY_TAG, {"tag": tag}, token=token)
        assert [n["id"] for n in listed["data"]["customers"]["nodes"]] == [str(c) for c in expected]
    removed = await api.gql(TAG, {"id": str(tagged), "remove": ["vip"]}, token=token)
    assert removed["data"]["tagCustomer"]["customer"]["tags"] == ["回头客"]
    bad = await api.gql(TAG, {"id": str(tagged), "add": ['a"b']}, token=token)
    assert bad["data"]["tagCustomer"] == {"__typename": "UserError", "code": "BAD_USER_INPUT"}


async def test_completeness_and_review_cycle(api: Api, state: AppState) -> None:
    clock = FixedClock(T0)
    state.services.clock = clock
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    file = (await get(api, customer, token))["completeness"]
    # name, phone, email, address, birthday (10+10+10+5+5), industry and region (5+5).
    assert file["score"] == 50
    assert "preferences" in file["missingFields"]
    assert "phoneVerifiedAt" in file["missingFields"]
    assert file["needsReview"] is True
    assert set(file["staleFields"]) == {
        "name",
        "phone",
        "email",
        "address",
        "birthday",
        "industry",
        "region",
    }
    await api.gql(UPDATE, {"id": str(customer), "input": {"preferences": "x"}}, token=token)
    review = "mutation($id: ID!) { markReviewed(customerId: $id) { __typename } }"
    await api.gql(review, {"id": str(customer)}, token=token)
    file = (await get(api, customer, token))["completeness"]
    assert file["score"] == 58
    assert file["needsReview"] is False
    assert file["staleFields"] == []
    assert file["reviewDueAt"] == T0.replace(month=9).isoformat()

    needing = "{ customersNeedingReview { totalCount nodes { id } } }"
    assert (await api.gql(needing, token=token))["data"]["customersNeedingReview"][
        "totalCount"
    ] == 0
    clock.advance(timedelta(days=200))
    listed = await api.gql(needing, token=token)
    assert listed["data"]["customersNeedingReview"]["nodes"] == [{"id": str(customer)}]
    assert (await get(api, customer, token))["completeness"]["needsReview"] is True


async def test_filters_and_sort_orders(api: Api, state: AppState) -> None:
    first = await make_customer(
        state, owner_id="agent-1", tier="high", region="上海", created_at=T0 - timedelta(days=10)
    )
    second = await make_customer(
        state, owner_id="agent-1", industry="finance", created_at=T0 - timedelta(days=5)
    )
    third = await make_customer(state, owner_id="agent-1", created_at=T0 - timedelta(days=1))
    manager = api.token("manager", subject="m-1", team="east")

    async def ids(filter_: dict[str, Any], sort: str = "CREATED_ASC") -> list[str]:
        body = await api.gql(
            """query($f: CustomerFilterInput, $s: CustomerSortOrder!) {
                 customers(filter: $f, sort: $s) { nodes { id } } }""",
            {"f": filter_, "s": sort},
            token=manager,
        )
        return [n["id"] for n in body["data"]["customers"]["nodes"]]

    assert await ids({"tier": "HIGH"}) == [str(first)]
    assert await ids({"region": "上海"}) == [str(first)]
    assert await ids({"industry": "finance"}) == [str(second)]
    assert await ids({"ownerId": "agent-1", "lifecycle": "NEW"}) == [
        str(first),
        str(second),
        str(third),
    ]
    window = {
        "createdFrom": (T0 - timedelta(days=6)).isoformat(),
        "createdTo": (T0 - timedelta(days=2)).isoformat(),
    }
    assert await ids(window) == [str(second)]
    assert await ids({}, "CREATED_DESC") == [str(third), str(second), str(first)]
    await api.gql(UPDATE, {"id": str(first), "input": {"occupation": "teacher"}}, token=manager)
    assert (await ids({}, "UPDATED_DESC"))[0] == str(first)

    query = """query($after: String, $s: CustomerSortOrder!) {
      customers(first: 2, after: $after, sort: $s) {
        pageInfo { hasNextPage endCursor } nodes { id } } }"""
    page = await api.gql(query, {"s": "CREATED_DESC"}, token=manager)
    cursor = page["data"]["customers"]["pageInfo"]["endCursor"]
    rest = await api.gql(query, {"s": "CREATED_DESC", "after": cursor}, token=manager)
    assert [n["id"] for n in rest["data"]["customers"]["nodes"]] == [str(first)]
    mixed = await api.gql(query, {"s": "CREATED_ASC", "after": cursor}, token=manager)
    assert mixed["errors"][0]["extensions"]["code"] == "BAD_CURSOR"


MERGE = """
mutation($survivor: ID!, $duplicate: ID!) {
  mergeCustomers(survivorId: $survivor, duplicateId: $duplicate) {
    __typename
    ... on CustomersMerged { duplicateId filledFields survivor { id nationalId tags
      interactions(first: 10) { nodes { id notes } } } }
    ... on UserError { code message }
  }
}
"""


async def test_duplicates_are_found_and_merged_with_history(api: Api, state: AppState) -> None:
    survivor = await make_customer(
        state, owner_id="agent-1", email="same@example.com", national_id=None
    )
    duplicate_id = national_id(42)
    duplicate = await make_customer(
        state, owner_id="agent-1", email="Same@Example.com", national_id=duplicate_id
    )
    await make_customer(state, owner_id="agent-1")
    kept = await make_interactions(state, survivor, 1, notes="survivor note")
    moved = await make_interactions(state, duplicate, 2, notes="duplicate note")
    token = agent(api)
    opened = await api.gql(
        """mutation($id: ID!) { openComplaint(input: {customerId: $id, category: BILLING,
             severity: "normal", description: "Charged twice"}) {
             ... on ComplaintPayload { complaint { id } } } }""",
        {"id": str(duplicate)},
        token=token,
    )
    complaint_id = opened["data"]["openComplaint"]["complaint"]["id"]

    candidates = await api.gql(
        """query($id: ID!) { duplicateCandidates(customerId: $id) {
             matchedOn customer { id } } }""",
        {"id": str(survivor)},
        token=token,
        purpose="support",
    )
    assert candidates["data"]["duplicateCandidates"] == [
        {"matchedOn": ["email"], "customer": {"id": str(duplicate)}}
    ]

    body = await api.gql(
        MERGE,
        {"survivor": str(survivor), "duplicate": str(duplicate)},
        token=token,
        purpose="support",
    )
    merged = body["data"]["mergeCustomers"]
    assert merged["__typename"] == "CustomersMerged", merged
    assert "nationalId" in merged["filledFields"]
    assert merged["survivor"]["nationalId"] == mask("national_id", duplicate_id)
    notes = {n["id"]: n["notes"] for n in merged["survivor"]["interactions"]["nodes"]}
    assert notes == {
        str(kept[0]): "survivor note",
        str(moved[0]): "duplicate note",
        str(moved[1]): "duplicate note",
    }
    complaint = await api.gql(
        "query($id: ID!) { complaint(id: $id) { customerId description } }",
        {"id": complaint_id},
        token=token,
        purpose="support",
    )
    assert complaint["data"]["complaint"] == {
        "customerId": str(survivor),
        "description": "Charged twice",
    }
    async with state.sessions() as session:
        row = await session.get(Interaction, moved[0])
        keys = {k.customer_id: k for k in (await session.scalars(select(CustomerKey))).all()}
    assert row is not None
    assert row.notes is not None
    vault = state.services.vault
    ref = FieldRef("interactions", "notes", moved[0])
    new_key = vault.open_data_key(survivor, keys[survivor].kek_version, keys[survivor].wrapped_dek)
    assert vault.reveal(new_key, ref, row.notes) == "duplicate note"
    old_key = vault.open_data_key(
        duplicate, keys[duplicate].kek_version, keys[duplicate].wrapped_dek
    )
    with pytest.raises(VaultError):
        vault.reveal(old_key, ref, row.notes)
    with pytest.raises(VaultError):
        vault.reveal(new_key, FieldRef("interactions", "notes", kept[0]), row.notes)
    old = await get(api, duplicate, token)
    assert old["mergedIntoId"] == str(survivor)
    listed = await api.gql("{ customers { nodes { id } } }", token=token)
    assert str(duplicate) not in [n["id"] for n in listed["data"]["customers"]["nodes"]]

    again = await api.gql(
        MERGE, {"survivor": str(survivor), "duplicate": str(duplicate)}, token=token
    )
    assert again["data"]["mergeCustomers"]["code"] == "NOT_FOUND"
    itself = await api.gql(
        MERGE, {"survivor": str(survivor), "duplicate": str(survivor)}, token=token
    )
    assert itself["data"]["mergeCustomers"]["code"] == "BAD_USER_INPUT"


async def test_merge_across_scope_is_not_found(api: Api, state: AppState) -> None:
    mine = await make_customer(state, owner_id="agent-1")
    theirs = await make_customer(state, owner_id="agent-2")
    body = await api.gql(MERGE, {"survivor": str(mine), "duplicate": str(theirs)}, token=agent(api))
    assert body["data"]["mergeCustomers"]["code"] == "NOT_FOUND"
    assert (await get(api, theirs, agent(api, "agent-2")))["mergedIntoId"] is None


async def test_merge_moves_orders_and_rebalances_loyalty(api: Api, state: AppState) -> None:
    survivor = await make_customer(state, owner_id="agent-1")
    duplicate = await make_customer(state, owner_id="agent-1")
    async with state.sessions() as session, session.begin():
        for n, (owner, points, balance) in enumerate(
            [(survivor, 100, 100), (duplicate, 50, 50), (survivor, -30, 70), (duplicate, 20, 70)]
        ):
            order_id = new_id()
            session.add(
                Order(
                    id=order_id,
                    customer_id=owner,
                    ordered_at=T0 + timedelta(hours=n),
                    status="paid",
                    total=Decimal("10.00"),
                    cost_total=Decimal("5.00"),
                )
            )
            await session.flush()
            session.add(
                LoyaltyEntry(
                    id=new_id(),
                    customer_id=owner,
                    at=T0 + timedelta(hours=n),
                    points=points,
                    reason="purchase",
                    order_id=order_id,
                    balance_after=balance,
                    actor="test",
                )
            )
    body = await api.gql(
        MERGE, {"survivor": str(survivor), "duplicate": str(duplicate)}, token=agent(api)
    )
    assert body["data"]["mergeCustomers"]["__typename"] == "CustomersMerged"
    async with state.sessions() as session:
        orders = (await session.scalars(select(Order.customer_id))).all()
        ledger = (
            await session.execute(
                select(LoyaltyEntry.customer_id, LoyaltyEntry.balance_after).order_by(
                    LoyaltyEntry.at
                )
            )
        ).all()
    assert set(orders) == {survivor}
    assert [tuple(row) for row in ledger] == [
        (survivor, 100),
        (survivor, 150),
        (survivor, 120),
        (survivor, 140),
    ]
