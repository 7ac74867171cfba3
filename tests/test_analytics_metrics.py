"""Metrics against hand-computed values on a small fixed data set, on both databases.

The data set (March 2026 is the range; 29 Jan - 28 Feb the equally long period before):
  customers  A north high, created 10 Jan      B south mid, created 5 Feb
             C north low, created 5 Mar, referred by A      D south low, created 20 Mar
  products   P1 (100, cost 60)   P2 new (50, cost 20)
  orders     o1 A 10 Feb P1                 o2 B 20 Feb P2
             o3 A 2 Mar P1+P2 (150/80)      o4 A 15 Mar P1     o5 C 6 Mar P2
             o6 C 10 Mar P1 cancelled (never counted)
  complaints k1 A 3 Mar acknowledged in 1 h, resolved in 23 h, rated 5
             k2 C 7 Mar acknowledged in 3 h (late), resolved after 48 h (late), rated 2
             k3 A 20 Mar open, neither acknowledged nor resolved
  contacts   i1 A 2 Mar inbound answered in 30 min   i2 C 6 Mar inbound answered in 90 min
             i3 A 10 Mar outbound                    i4 B 12 Mar inbound unanswered
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from server.app import AppState
from server.config import Settings
from server.data.models import Customer
from tests.analytics_factories import (
    at,
    make_complaint,
    make_interaction,
    make_order,
    make_product,
)
from tests.conftest import Api
from tests.factories import make_customer


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # These KPIs are checked on groups of one or two customers: no minimum cell size here
    # (tests/attacks/test_aggregates_scope.py checks the suppression of small groups).
    return settings.model_copy(update={"metrics_min_cell": 1})


KPIS = """
customersTotal newCustomers customerGrowthRate highValueShare averageCustomerValue
retentionRate churnRate repurchaseRate referralRate customerLifetimeValue
salesTotal salesNewCustomers salesExistingCustomers salesNewProducts salesGrowth grossMargin
orders buyers purchaseFrequency averageOrderValue complaints complaintRate
onTimeAcknowledgementRate onTimeResolutionRate complaintSatisfaction
averageFirstResponseSeconds interactions serviceCost
"""
METRICS = f"""
query($from: Date!, $to: Date!, $granularity: Granularity, $groupBy: MetricGroupBy) {{
  metrics(from: $from, to: $to, granularity: $granularity, groupBy: $groupBy) {{
    from to previousFrom
    total {{ key current {{ {KPIS} }} previous {{ {KPIS} }}
             series {{ bucket kpis {{ {KPIS} }} }} }}
    groups {{ key current {{ {KPIS} }} previous {{ {KPIS} }} }}
  }}
}}
"""


async def seed(state: AppState) -> dict[str, uuid.UUID]:
    a = await make_customer(state, region="north", tier="high", created_at=at("2026-01-10"))
    b = await make_customer(state, region="south", tier="mid", created_at=at("2026-02-05"))
    c = await make_customer(state, region="north", tier="low", created_at=at("2026-03-05"))
    d = await make_customer(state, region="south", tier="low", created_at=at("2026-03-20"))
    async with state.sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == c).values(referred_by_id=a))
    p1 = await make_product(state, "P1", "100", "60")
    p2 = await make_product(state, "P2", "50", "20", is_new=True)
    await make_order(state, a, "2026-02-10 10:00", [(p1, 1, "100", "60")])
    await make_order(state, b, "2026-02-20 10:00", [(p2, 1, "50", "20")])
    await make_order(state, a, "2026-03-02 10:00", [(p1, 1, "100", "60"), (p2, 1, "50", "20")])
    await make_order(state, a, "2026-03-15 10:00", [(p1, 1, "100", "60")])
    await make_order(state, c, "2026-03-06 10:00", [(p2, 1, "50", "20")])
    await make_order(state, c, "2026-03-10 10:00", [(p1, 1, "100", "60")], status="cancelled")
    await make_complaint(
        state,
        a,
        "2026-03-03 10:00",
        acknowledged="2026-03-03 11:00",
        resolved="2026-03-04 09:00",
        rating=5,
    )
    await make_complaint(
        state,
        c,
        "2026-03-07 10:00",
        acknowledged="2026-03-07 13:00",
        resolved="2026-03-09 10:00",
        rating=2,
    )
    await make_complaint(state, a, "2026-03-20 10:00")
    await make_interaction(state, a, "2026-03-02 09:00", responded="2026-03-02 09:30")
    await make_interaction(state, c, "2026-03-06 09:00", responded="2026-03-06 10:30")
    await make_interaction(state, a, "2026-03-10 09:00", direction="outbound")
    await make_interaction(state, b, "2026-03-12 09:00")
    return {"a": a, "b": b, "c": c, "d": d}


async def metrics(api: Api, **variables: Any) -> dict[str, Any]:
    token = api.token("analyst", subject="ann")
    body = await api.gql(METRICS, variables, token=token, purpose="analytics")
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["metrics"]
    return result


async def test_march_kpis_match_hand_computed_values(api: Api, state: AppState) -> None:
    await seed(state)
    m = await metrics(api, **{"from": "2026-03-01", "to": "2026-03-31"})
    assert (m["from"], m["to"], m["previousFrom"]) == ("2026-03-01", "2026-03-31", "2026-01-29")
    assert m["total"]["current"] == {
        "customersTotal": 4,  # A, B before March + C, D
        "newCustomers": 2,  # C, D
        "customerGrowthRate": 1.0,  # 2 new / 2 at the start
        "highValueShare": 0.25,  # A of 4
        "averageCustomerValue": "150.00",  # 300 sales / 2 buyers (A, C)
        "retentionRate": 0.5,  # of Feb buyers {A, B} only A bought again
        "churnRate": 0.5,  # 1 - 0.5
        "repurchaseRate": 0.5,  # A bought twice, C once: 1 / 2
        "referralRate": 0.5,  # C of {C, D} was referred
        "customerLifetimeValue": "140.00",  # 150 x margin 7/15 / churn 0.5
        "salesTotal": "300.00",  # 150 + 100 + 50; the cancelled o6 is left out
        "salesNewCustomers": "50.00",  # o5 by C, acquired in March
        "salesExistingCustomers": "250.00",  # 300 - 50
        "salesNewProducts": "100.00",  # P2 lines of o3 and o5
        "salesGrowth": 1.0,  # (300 - 150) / 150
        "grossMargin": 140 / 300,  # (300 - 160 cost) / 300
        "orders": 3,
        "buyers": 2,
        "purchaseFrequency": 1.5,  # 3 orders / 2 buyers
        "averageOrderValue": "100.00",  # 300 / 3
        "complaints": 3,
        "complaintRate": 1.0,  # 3 complaints / 3 orders
        "onTimeAcknowledgementRate": 1 / 3,  # k1 of k1..k3
        "onTimeResolutionRate": 1 / 3,  # k1 of k1..k3
        "complaintSatisfaction": 0.5,  # k1 rated >= 4 of the 2 rated
        "averageFirstResponseSeconds": 3600.0,  # (1800 + 5400) / 2 answered inbound
        "interactions": 4,
        "serviceCost": "60.00",  # 4 x 15.00 per interaction
    }
    previous = m["total"]["previous"]
    assert previous["customersTotal"] == 2  # A before 29 Jan + B
    assert previous["customerGrowthRate"] == 1.0  # 1 new (B) / 1 at the start (A)
    assert previous["salesTotal"] == "150.00"  # o1 + o2
    assert previous["salesNewCustomers"] == "50.00"  # o2 by B, acquired in the period
    assert previous["grossMargin"] == 70 / 150  # (150 - 80) / 150
    assert previous["referralRate"] == 0.0  # B was not referred
    # Nobody bought in the period before it and there is nothing before to compare with.
    assert previous["retentionRate"] is None
    assert previous["churnRate"] is None
    assert previous["customerLifetimeValue"] is None
    assert previous["salesGrowth"] is None
    assert previous["complaintRate"] == 0.0  # 0 complaints / 2 orders
    assert previous["complaintSatisfaction"] is None  # nothing rated
    assert previous["averageFirstResponseSeconds"] is None  # nothing answered


async def test_empty_range_counts_zero_and_rates_are_null(api: Api, state: AppState) -> None:
    await seed(state)
    m = await metrics(api, **{"from": "2025-06-01", "to": "2025-06-30"})
    k = m["total"]["current"]
    assert k["customersTotal"] == 0
    assert k["newCustomers"] == 0
    assert (k["salesTotal"], k["serviceCost"], k["orders"]) == ("0.00", "0.00", 0)
    for rate in (
        "customerGrowthRate",
        "highValueShare",
        "averageCustomerValue",
        "retentionRate",
        "churnRate",
        "repurchaseRate",
        "referralRate",
        "customerLifetimeValue",
        "salesGrowth",
        "grossMargin",
        "purchaseFrequency",
        "averageOrderValue",
        "complaintRate",
        "onTimeAcknowledgementRate",
        "onTimeResolutionRate",
        "complaintSatisfaction",
        "averageFirstResponseSeconds",
    ):
        assert k[rate] is None, rate


async def test_grouped_by_region(api: Api, state: AppState) -> None:
    await seed(state)
    m = await metrics(api, **{"from": "2026-03-01", "to": "2026-03-31", "groupBy": "REGION"})
    groups = {g["key"]: g["current"] for g in m["groups"]}
    assert set(groups) == {"north", "south"}
    north, south = groups["north"], groups["south"]
    assert (north["customersTotal"], north["highValueShare"]) == (2, 0.5)  # A, C; A high
    assert north["salesTotal"] == "300.00"
    assert north["retentionRate"] == 1.0  # Feb buyer A bought again
    assert north["churnRate"] == 0.0
    assert north["customerLifetimeValue"] is None  # no churn: lifetime unbounded
    assert south["salesTotal"] == "0.00"
    assert south["averageOrderValue"] is None  # 0 orders
    assert south["complaintRate"] is None  # 0 complaints / 0 orders
    assert south["retentionRate"] == 0.0  # Feb buyer B did not come back
    assert south["interactions"] == 1  # i4
    assert south["averageFirstResponseSeconds"] is None  # i4 unanswered
    assert m["total"]["current"]["salesTotal"] == "300.00"


async def test_weekly_series_with_previous_bucket(api: Api, state: AppState) -> None:
    await seed(state)
    m = await metrics(api, **{"from": "2026-03-01", "to": "2026-03-31", "granularity": "WEEK"})
    points = {p["bucket"]: p["kpis"] for p in m["total"]["series"]}
    # 1 March 2026 is a Sunday: weeks start on Mondays 23 Feb ... 30 Mar.
    assert list(points) == [
        "2026-02-23",
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
    ]
    assert points["2026-03-02"]["salesTotal"] == "200.00"  # o3 + o5
    assert points["2026-03-09"]["salesTotal"] == "100.00"  # o4 on Sunday 15th; o6 cancelled
    assert points["2026-03-09"]["salesGrowth"] == -0.5  # (100 - 200) / 200
    assert points["2026-03-09"]["retentionRate"] == 0.5  # of {A, C} only A bought again
    assert points["2026-03-02"]["retentionRate"] is None  # no buyer in the week of 23 Feb
    assert points["2026-03-02"]["newCustomers"] == 1  # C on 5 Mar
    assert points["2026-03-16"]["customersTotal"] == 4  # D joined on the 20th
    month = await metrics(api, **{"from": "2026-03-01", "to": "2026-03-31", "granularity": "MONTH"})
    (march,) = month["total"]["series"]
    assert march["bucket"] == "2026-03-01"
    assert march["kpis"]["salesGrowth"] == 1.0  # against February's 150
    assert march["kpis"]["retentionRate"] == 0.5


async def test_inverted_range_is_a_typed_error(api: Api, state: AppState) -> None:
    token = api.token("analyst", subject="ann")
    body = await api.gql(
        METRICS, {"from": "2026-03-31", "to": "2026-03-01"}, token=token, purpose="analytics"
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_every_grouping_and_granularity_adds_up(api: Api, state: AppState) -> None:
    await seed(state)
    for group_by in ("REGION", "INDUSTRY", "TIER", "OWNER"):
        for granularity in ("DAY", "WEEK", "MONTH"):
            m = await metrics(
                api,
                **{
                    "from": "2026-02-01",
                    "to": "2026-03-31",
                    "granularity": granularity,
                    "groupBy": group_by,
                },
            )
            total = m["total"]
            assert total["current"]["salesTotal"] == "450.00"  # o1..o5
            by_group = sum(Decimal(g["current"]["salesTotal"]) for g in m["groups"])
            assert by_group == Decimal("450.00"), (group_by, granularity)
            by_bucket = sum(Decimal(p["kpis"]["salesTotal"]) for p in total["series"])
            assert by_bucket == Decimal("450.00"), (group_by, granularity)


async def test_too_long_daily_series_is_refused(api: Api, state: AppState) -> None:
    token = api.token("analyst", subject="ann")
    body = await api.gql(
        METRICS,
        {"from": "2020-01-01", "to": "2026-01-01", "granularity": "DAY"},
        token=token,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
