"""Weaker finding: fields that told a role what it may not read.

`Customer.referredById` showed the id of a referrer outside the caller's scope;
`completeness.missingFields`/`staleFields` (and the score) and `phoneVerifiedAt` /
`emailVerifiedAt` showed which sealed fields a file holds to roles that may not read
them. Now a referrer outside the caller's scope reads null, completeness scores and lists
only the facts the caller may read, and a verification stamp is readable only where its
contact is.
"""

from __future__ import annotations

from sqlalchemy import update

from server.app import AppState
from server.data.models import Customer
from tests.conftest import Api
from tests.factories import make_customer

REFERRER = "query($id: ID!) { customer(id: $id) { id referredById } }"
COMPLETENESS = """
query($id: ID!) { customer(id: $id) { completeness { score missingFields staleFields } } }
"""
STAMPS = "query($id: ID!) { customer(id: $id) { id phoneVerifiedAt emailVerifiedAt } }"


async def test_a_referrer_outside_the_scope_is_not_named(api: Api, state: AppState) -> None:
    referrer = await make_customer(state, owner_id="agent-3", team="east")
    referred = await make_customer(state, owner_id="agent-1", team="east")
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(Customer).where(Customer.id == referred).values(referred_by_id=referrer)
        )
    agent = api.token("agent", subject="agent-1", team="east")
    mine = await api.gql(REFERRER, {"id": str(referred)}, token=agent)
    assert mine["data"]["customer"] == {"id": str(referred), "referredById": None}
    listed = await api.gql("{ customers(first: 5) { nodes { referredById } } }", token=agent)
    assert listed["data"]["customers"]["nodes"] == [{"referredById": None}]
    # The team's manager sees both files, so the referrer too.
    manager = api.token("manager", subject="max", team="east")
    theirs = await api.gql(REFERRER, {"id": str(referred)}, token=manager)
    assert theirs["data"]["customer"]["referredById"] == str(referrer)


async def test_completeness_lists_only_fields_the_caller_may_read(
    api: Api, state: AppState
) -> None:
    # Address and birthday held, never reviewed (so stale); no needs profile.
    customer = await make_customer(state, owner_id="agent-1")
    support = api.token("support", subject="sue")
    body = await api.gql(COMPLETENESS, {"id": str(customer)}, token=support, purpose="support")
    seen = body["data"]["customer"]["completeness"]
    # Support reads name, phone and email of the sealed facts, not address or birthday,
    # nor the needs profile: none of those is listed, nor counted in the score.
    hidden = {"address", "birthday", "preferences", "potentialNeeds", "expectations"}
    assert not hidden & set(seen["missingFields"] + seen["staleFields"])
    assert {"name", "phone", "email"} <= set(seen["staleFields"])
    manager = api.token("manager", subject="max", team="east")
    full = await api.gql(COMPLETENESS, {"id": str(customer)}, token=manager, purpose="support")
    whole = full["data"]["customer"]["completeness"]
    assert {"address", "birthday"} <= set(whole["staleFields"])
    assert "preferences" in whole["missingFields"]
    # The score differs by exactly the weights of address and birthday (5 + 5).
    assert whole["score"] - seen["score"] == 10


async def test_verification_stamps_follow_their_contact(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    agent = api.token("agent", subject="agent-1", team="east")
    verified = await api.gql(
        """mutation($c: ID!) { verifyContact(customerId: $c, channel: PHONE) { __typename } }""",
        {"c": str(customer)},
        token=agent,
    )
    assert verified["data"]["verifyContact"]["__typename"] == "CustomerUpdated"
    analyst = await api.gql(
        STAMPS, {"id": str(customer)}, token=api.token("analyst", subject="ann")
    )
    assert analyst["data"]["customer"] == {
        "id": str(customer),
        "phoneVerifiedAt": None,
        "emailVerifiedAt": None,
    }
    assert sorted(e["path"][-1] for e in analyst["errors"]) == [
        "emailVerifiedAt",
        "phoneVerifiedAt",
    ]
    assert {e["extensions"]["code"] for e in analyst["errors"]} == {"FORBIDDEN"}
    support = await api.gql(
        STAMPS, {"id": str(customer)}, token=api.token("support", subject="sue")
    )
    assert support["data"]["customer"]["phoneVerifiedAt"] is not None
