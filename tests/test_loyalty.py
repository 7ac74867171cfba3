"""Points ledger, member levels and referrals over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from server.app import AppState
from server.config import Settings
from server.errors import ConfigError
from server.loyalty.service import LoyaltyRules
from server.services import Services
from server.vault import LocalKeyring
from tests.analytics_factories import make_order as insert_order
from tests.analytics_factories import make_product as insert_product
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import make_order, make_product, manager, move

LOYALTY = """
query($id: ID!) {
  customer(id: $id) {
    memberLevel referredById
    loyalty {
      balance earned level referralCount
      entries { nodes { points reason balanceAfter orderId } }
    }
  }
}
"""
REDEEM = """
mutation($id: ID!, $points: Int!) {
  redeemPoints(customerId: $id, points: $points) {
    __typename
    ... on PointsRedeemed { balance entry { points reason balanceAfter } }
    ... on UserError { code message }
  }
}
"""
REFER = """
mutation($a: ID!, $b: ID!) {
  recordReferral(referrerId: $a, referredId: $b) {
    __typename
    ... on ReferralRecorded { referrerId referredId bonusPoints }
    ... on UserError { code message }
  }
}
"""


async def _paid_order(api: Api, token: str, customer: uuid.UUID, product: str, qty: int) -> str:
    order = await make_order(api, token, customer, [{"productId": product, "quantity": qty}])
    order_id: str = order["order"]["id"]
    await move(api, token, order_id, "PAID")
    return order_id


async def test_paying_earns_points_and_levels_follow(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    product = await make_product(api, "SOFA", "4999.99", "3000.00")
    agent = api.token("agent", subject="agent-1", team="east")
    order = await make_order(api, agent, customer, [{"productId": product, "quantity": 2}])
    order_id = order["order"]["id"]
    before = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    assert before["data"]["customer"]["loyalty"]["balance"] == 0  # created earns nothing
    await move(api, agent, order_id, "PAID")
    body = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    customer_data = body["data"]["customer"]
    loyalty = customer_data["loyalty"]
    # 9999.98 x 0.1 points per yuan, rounded down.
    assert loyalty["balance"] == 999
    assert loyalty["entries"]["nodes"] == [
        {"points": 999, "reason": "PURCHASE", "balanceAfter": 999, "orderId": order_id}
    ]
    assert loyalty["level"] == "bronze" == customer_data["memberLevel"]
    await _paid_order(api, agent, customer, product, 1)
    after = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    assert after["data"]["customer"]["loyalty"]["balance"] == 1498
    assert after["data"]["customer"]["memberLevel"] == "silver"


async def test_ledger_never_goes_negative(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    product = await make_product(api, "LAMP", "1000.00", "600.00")
    agent = api.token("agent", subject="agent-1", team="east")
    await _paid_order(api, agent, customer, product, 1)  # 100 points

    first = await api.gql(REDEEM, {"id": str(customer), "points": 60}, token=agent)
    assert first["data"]["redeemPoints"]["balance"] == 40
    second = await api.gql(REDEEM, {"id": str(customer), "points": 60}, token=agent)
    assert second["data"]["redeemPoints"]["code"] == "INSUFFICIENT_POINTS"
    for bad in (0, -5):
        refused = await api.gql(REDEEM, {"id": str(customer), "points": bad}, token=agent)
        assert refused["data"]["redeemPoints"]["code"] == "BAD_USER_INPUT"
    body = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    loyalty = body["data"]["customer"]["loyalty"]
    assert loyalty["balance"] == 40
    assert [e["reason"] for e in loyalty["entries"]["nodes"]] == ["PURCHASE", "REDEEM"]
    # Redeeming does not demote: levels follow lifetime earned points.
    assert loyalty["earned"] == 100


async def test_concurrent_redeems_cannot_overdraw(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    product = await make_product(api, "LAMP", "1000.00", "600.00")
    agent = api.token("agent", subject="agent-1", team="east")
    await _paid_order(api, agent, customer, product, 1)  # 100 points
    results = await asyncio.gather(
        *(api.gql(REDEEM, {"id": str(customer), "points": 60}, token=agent) for _ in range(2))
    )
    kinds = sorted(r["data"]["redeemPoints"]["__typename"] for r in results)
    assert kinds == ["PointsRedeemed", "UserError"]
    body = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    loyalty = body["data"]["customer"]["loyalty"]
    assert loyalty["balance"] == 40
    assert all(e["balanceAfter"] >= 0 for e in loyalty["entries"]["nodes"])


async def test_cancelling_a_paid_order_takes_its_points_back(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    product = await make_product(api, "LAMP", "1000.00", "600.00")
    agent = api.token("agent", subject="agent-1", team="east")
    order_id = await _paid_order(api, agent, customer, product, 1)
    await api.gql(REDEEM, {"id": str(customer), "points": 30}, token=agent)
    await move(api, agent, order_id, "CANCELLED")
    body = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    loyalty = body["data"]["customer"]["loyalty"]
    # 100 earned, 30 redeemed: only the 70 left can be taken back.
    assert loyalty["balance"] == 0
    assert loyalty["entries"]["nodes"][-1]["reason"] == "ORDER_REVERSAL"
    assert loyalty["entries"]["nodes"][-1]["points"] == -70


async def test_levels_by_spend_with_configured_thresholds(api: Api, state: AppState) -> None:
    state.services.loyalty.rules = LoyaltyRules(
        level_basis="spend",
        thresholds=(("member", Decimal(0)), ("vip", Decimal("100.00"))),
    )
    customer = await make_customer(state, owner_id="agent-1", team="east")
    product = await make_product(api, "CUP", "99.99", "50.00")
    agent = api.token("agent", subject="agent-1", team="east")
    await _paid_order(api, agent, customer, product, 1)
    body = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    assert body["data"]["customer"]["memberLevel"] == "member"
    cheap = await make_product(api, "SPOON", "0.01", "0.00")
    await _paid_order(api, agent, customer, cheap, 1)  # spend 100.00: earns 0 points
    body = await api.gql(LOYALTY, {"id": str(customer)}, token=agent)
    assert body["data"]["customer"]["memberLevel"] == "vip"


async def test_referrals_set_referred_by_count_and_bonus(api: Api, state: AppState) -> None:
    referrer = await make_customer(state, owner_id="agent-1", team="east")
    friend = await make_customer(state, owner_id="agent-1", team="east")
    other = await make_customer(state, owner_id="agent-1", team="east")
    stranger = await make_customer(state, owner_id="agent-2", team="east")
    agent = api.token("agent", subject="agent-1", team="east")

    done = await api.gql(REFER, {"a": str(referrer), "b": str(friend)}, token=agent)
    assert done["data"]["recordReferral"]["bonusPoints"] == 200
    await api.gql(REFER, {"a": str(referrer), "b": str(other)}, token=agent)

    body = await api.gql(LOYALTY, {"id": str(referrer)}, token=agent)
    loyalty = body["data"]["customer"]["loyalty"]
    assert loyalty["referralCount"] == 2
    assert loyalty["balance"] == 400
    assert {e["reason"] for e in loyalty["entries"]["nodes"]} == {"REFERRAL"}
    referred = await api.gql(LOYALTY, {"id": str(friend)}, token=agent)
    assert referred["data"]["customer"]["referredById"] == str(referrer)

    again = await api.gql(REFER, {"a": str(other), "b": str(friend)}, token=agent)
    assert again["data"]["recordReferral"]["code"] == "ALREADY_REFERRED"
    itself = await api.gql(REFER, {"a": str(other), "b": str(other)}, token=agent)
    assert itself["data"]["recordReferral"]["code"] == "BAD_USER_INPUT"
    hidden = await api.gql(REFER, {"a": str(referrer), "b": str(stranger)}, token=agent)
    assert hidden["data"]["recordReferral"]["code"] == "NOT_FOUND"
    analyst = await api.gql(
        REFER, {"a": str(other), "b": str(stranger)}, token=api.token("analyst", subject="ann")
    )
    assert analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    mgr = await api.gql(LOYALTY, {"id": str(stranger)}, token=manager(api))
    assert mgr["data"]["customer"]["referredById"] is None


async def test_referral_farming_is_refused(api: Api, state: AppState) -> None:
    """Walk-through defect: A refers B and B refers A, 200 points each; a customer created
    today "referred" one buying since 2024."""
    a = await make_customer(state, owner_id="agent-1", team="east")
    b = await make_customer(state, owner_id="agent-1", team="east")
    c = await make_customer(state, owner_id="agent-1", team="east")
    agent = api.token("agent", subject="agent-1", team="east")
    first = await api.gql(REFER, {"a": str(a), "b": str(b)}, token=agent)
    assert first["data"]["recordReferral"]["__typename"] == "ReferralRecorded"
    back = await api.gql(REFER, {"a": str(b), "b": str(a)}, token=agent)
    assert back["data"]["recordReferral"]["code"] == "REFERRAL_CYCLE"
    # B refers C, then C (newer than both) cannot close a loop over A either.
    await api.gql(REFER, {"a": str(b), "b": str(c)}, token=agent)
    loop = await api.gql(REFER, {"a": str(c), "b": str(a)}, token=agent)
    assert loop["data"]["recordReferral"]["code"] == "REFERRAL_CYCLE"

    # A file created today for someone who has bought since 2024, and the other way round.
    buyer = await make_customer(state, owner_id="agent-1", team="east")
    product = await insert_product(state, "OLD-1", "10", "5")
    await insert_order(state, buyer, "2024-03-01 10:00", [(product, 1, "10", "5")])
    newcomer = await make_customer(state, owner_id="agent-1", team="east")
    farmed = await api.gql(REFER, {"a": str(newcomer), "b": str(buyer)}, token=agent)
    assert farmed["data"]["recordReferral"]["code"] == "REFERRAL_NOT_NEW"
    fresh = await make_customer(state, owner_id="agent-1", team="east")
    earlier = await api.gql(REFER, {"a": str(fresh), "b": str(newcomer)}, token=agent)
    assert earlier["data"]["recordReferral"]["code"] == "REFERRAL_NOT_NEW"
    ok = await api.gql(REFER, {"a": str(buyer), "b": str(fresh)}, token=agent)
    assert ok["data"]["recordReferral"]["__typename"] == "ReferralRecorded"
    body = await api.gql(LOYALTY, {"id": str(a)}, token=agent)
    assert body["data"]["customer"]["loyalty"]["balance"] == 200  # B only


def test_rules_come_from_settings(keyring_path: Path, tmp_path: Path) -> None:
    settings = Settings(
        keyring=keyring_path,
        state_dir=tmp_path,
        loyalty_points_per_unit=Decimal("1"),
        loyalty_referral_bonus=50,
        loyalty_level_basis="spend",
        loyalty_levels="member:0, vip:500.50",
        care_new_cadence_days=3,
        care_holidays="02-29 Leap Day; 10-01 National Day",
    )
    services = Services.build(LocalKeyring.load(keyring_path, create=True), settings=settings)
    rules = services.loyalty.rules
    assert rules.points_for(Decimal("19.99")) == 19
    assert rules.referral_bonus == 50
    assert rules.level_for(Decimal("500.49")) == "member"
    assert rules.level_for(Decimal("500.50")) == "vip"
    assert services.care.rules.new_customer_cadence_days == 3
    assert services.care.rules.holidays == ((2, 29, "Leap Day"), (10, 1, "National Day"))
    bad_settings = [
        Settings(keyring=keyring_path, state_dir=tmp_path, loyalty_levels="gold:10,silver:5"),
        Settings(keyring=keyring_path, state_dir=tmp_path, care_holidays="13-01 Nope"),
    ]
    for bad in bad_settings:
        with pytest.raises(ConfigError):
            Services.build(LocalKeyring.load(keyring_path, create=True), settings=bad)


async def test_loyalty_is_denied_at_its_path_without_the_policy(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    support = api.token("support", subject="sam")
    body = await api.gql(
        "query($id: ID!) { customer(id: $id) { id loyalty { balance } } }",
        {"id": str(customer)},
        token=support,
    )
    assert body["data"]["customer"] == {"id": str(customer), "loyalty": None}
    assert body["errors"][0]["path"] == ["customer", "loyalty"]
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
