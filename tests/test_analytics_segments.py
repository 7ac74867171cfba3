"""Segments, churn risk and co-purchase through the API, on both databases.

Customers as of 30 June 2026 (all created 1 Jan 2025 unless noted):
  H  6 orders of 1000 (cost 500) on the 15th, Jan-Jun 2026; price-sensitivity low
  W  200 on 1 Feb 2025 and 200 on 1 Jun 2026 (back after a long gap); price-sensitivity high
  R  300 on 1 Sep, 1 Oct, 1 Nov, 1 Dec 2025; 3 contacts Aug-Nov 2025; a complaint rated 1 in May
  C  100 on 5 Jan, 5 Feb, 1 Mar 2025; 2 contacts in 2026
  N  created 1 Jun 2026; 100 on 10 Jun 2026
  Z  never bought
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from server import cli
from server.app import AppState
from server.clock import FixedClock
from server.config import Settings
from server.data.models import AuditAccess, AuditEvent, Customer
from tests.analytics_factories import (
    at,
    make_complaint,
    make_interaction,
    make_order,
    make_product,
)
from tests.conftest import Api
from tests.factories import make_customer

AS_OF = "2026-06-30"


async def seed(state: AppState) -> dict[str, uuid.UUID]:
    state.services.clock = FixedClock(at("2026-06-30 12:00"))
    created = at("2025-01-01")
    ids = {
        name: await make_customer(state, created_at=created) for name in ("H", "W", "R", "C", "Z")
    }
    ids["N"] = await make_customer(state, created_at=at("2026-06-01"))
    async with state.sessions() as session, session.begin():
        for name, sensitivity in (("H", "low"), ("W", "high")):
            await session.execute(
                update(Customer)
                .where(Customer.id == ids[name])
                .values(price_sensitivity=sensitivity)
            )
    p = await make_product(state, "P", "100", "50")

    async def orders(name: str, amount: str, cost: str, *days: str) -> None:
        for day in days:
            await make_order(state, ids[name], day + " 10:00", [(p, 1, amount, cost)])

    await orders("H", "1000", "500", *(f"2026-0{m}-15" for m in range(1, 7)))
    await orders("W", "200", "120", "2025-02-01", "2026-06-01")
    await orders("R", "300", "200", "2025-09-01", "2025-10-01", "2025-11-01", "2025-12-01")
    await orders("C", "100", "60", "2025-01-05", "2025-02-05", "2025-03-01")
    await orders("N", "100", "60", "2026-06-10")
    for day in ("2025-08-10", "2025-10-10", "2025-11-10"):
        await make_interaction(state, ids["R"], day + " 09:00", direction="outbound")
    for day in ("2026-02-10", "2026-03-10"):
        await make_interaction(state, ids["C"], day + " 09:00")
    await make_complaint(state, ids["R"], "2026-05-01 10:00", rating=1)
    return ids


SEGMENT_FIELDS = "recency frequency monetary orders spend tier lifecycle needType grade"
CUSTOMER_SEGMENT = f"""
query($id: ID!, $asOf: Date) {{
  customer(id: $id) {{ id segment(asOf: $asOf) {{ {SEGMENT_FIELDS} }} }}
}}
"""


async def segment_of(api: Api, customer_id: uuid.UUID) -> dict[str, Any]:
    token = api.token("manager", subject="max", team="east")
    body = await api.gql(CUSTOMER_SEGMENT, {"id": str(customer_id), "asOf": AS_OF}, token=token)
    assert "errors" not in body, body
    segment: dict[str, Any] = body["data"]["customer"]["segment"]
    return segment


async def test_customer_segments_follow_the_documented_rules(api: Api, state: AppState) -> None:
    ids = await seed(state)
    seg = {name: await segment_of(api, i) for name, i in ids.items()}
    # Five buyers, one per quintile. Recency ranks the last order: C < R < W < N < H.
    assert [seg[n]["recency"] for n in ("C", "R", "W", "N", "H")] == [1, 2, 3, 4, 5]
    # Frequency: N 1 < W 2 < C 3 < R 4 < H 6 orders.
    assert [seg[n]["frequency"] for n in ("N", "W", "C", "R", "H")] == [1, 2, 3, 4, 5]
    # Monetary: N 100 < C 300 < W 400 < R 1200 < H 6000.
    assert [seg[n]["monetary"] for n in ("N", "C", "W", "R", "H")] == [1, 2, 3, 4, 5]
    assert seg["Z"]["recency"] is None
    assert (seg["H"]["orders"], seg["H"]["spend"]) == (6, "6000.00")
    # Tier: H reaches spend 5000, 6 orders and margin 0.5 over the last year; R spent 1200.
    assert {n: s["tier"] for n, s in seg.items()} == {
        "H": "HIGH",
        "R": "MID",
        "W": "LOW",
        "C": "LOW",
        "N": "LOW",
        "Z": "LOW",
    }
    assert {n: s["lifecycle"] for n, s in seg.items()} == {
        "H": "ACTIVE",  # bought in the last 90 days
        "W": "WON_BACK",  # back in June after nothing from Oct 2025 to Mar 2026
        "R": "AT_RISK",  # last order 7 months ago
        "C": "CHURNED",  # nothing for over a year
        "N": "NEW",  # created within 90 days
        "Z": "CHURNED",  # never bought, not new
    }
    assert {n: s["needType"] for n, s in seg.items()} == {
        "H": "QUALITY",  # profile: price sensitivity low
        "W": "VALUE",  # profile: price sensitivity high
        "R": "QUALITY",  # no profile; top spend quintile
        "C": "SERVICE",  # no profile; 2 contacts and no order in the last year
        "N": "VALUE",  # no profile, low spend
        "Z": "VALUE",
    }
    # Grades by revenue rank (total 8000): H 75% -> A; R reaches 90% -> B; the rest C.
    assert {n: s["grade"] for n, s in seg.items()} == {
        "H": "A",
        "R": "B",
        "W": "C",
        "C": "C",
        "N": "C",
        "Z": "C",
    }


SEGMENTS = """
query($by: SegmentDimension!) {
  segments(by: $by, asOf: "2026-06-30") { segment customers revenue revenueShare }
}
"""


async def test_segment_breakdown_and_refresh(api: Api, state: AppState) -> None:
    ids = await seed(state)
    analyst = api.token("analyst", subject="ann")
    body = await api.gql(SEGMENTS, {"by": "TIER"}, token=analyst)
    # Revenue of the last 365 days: H 6000, R 1200, W 200 + N 100 = 7500 in all.
    assert body["data"]["segments"] == [
        {"segment": "high", "customers": 1, "revenue": "6000.00", "revenueShare": 0.8},
        {"segment": "low", "customers": 4, "revenue": "300.00", "revenueShare": 0.04},
        {"segment": "mid", "customers": 1, "revenue": "1200.00", "revenueShare": 0.16},
    ]
    rfm = await api.gql(SEGMENTS, {"by": "RFM"}, token=analyst)
    cells = {s["segment"]: s["customers"] for s in rfm["data"]["segments"]}
    assert cells["R5F5M5"] == 1  # H
    assert cells["none"] == 1  # Z

    refresh = (
        'mutation { refreshSegments(asOf: "2026-06-30") { __typename '
        "... on SegmentsRefreshed { updated } ... on UserError { code } } }"
    )
    denied = await api.gql(refresh, token=analyst)
    assert denied["data"]["refreshSegments"] == {"__typename": "UserError", "code": "FORBIDDEN"}
    manager = api.token("manager", subject="max", team="east")
    done = await api.gql(refresh, token=manager)
    assert done["data"]["refreshSegments"] == {"__typename": "SegmentsRefreshed", "updated": 6}
    listed = await api.gql(
        "{ customers(first: 10, filter: {lifecycle: WON_BACK}) { nodes { id tier needType } } }",
        token=manager,
    )
    assert listed["data"]["customers"]["nodes"] == [
        {"id": str(ids["W"]), "tier": "LOW", "needType": "VALUE"}
    ]
    async with state.sessions() as session:
        changes = (
            (
                await session.execute(
                    select(AuditAccess.changed_fields).where(
                        AuditAccess.object_type == "segment", AuditAccess.action == "refresh"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert changes == [["lifecycle", "need_type", "tier"]]


AT_RISK = """
query($min: Float!) {
  atRiskCustomers(first: 10, minScore: $min, asOf: "2026-06-30") {
    edges { node {
      customer { id name }
      risk { score probabilityAlive signals { code description } }
    } }
  }
}
"""


async def test_churn_risk_names_its_signals(api: Api, state: AppState) -> None:
    ids = await seed(state)
    manager = api.token("manager", subject="max", team="east")
    body = await api.gql(AT_RISK, {"min": 0.0}, token=manager)
    assert "errors" not in body, body
    nodes = [e["node"] for e in body["data"]["atRiskCustomers"]["edges"]]
    assert len(nodes) == 6
    scores = [n["risk"]["score"] for n in nodes]
    assert scores == sorted(scores, reverse=True)
    by_id = {n["customer"]["id"]: n for n in nodes}
    r = by_id[str(ids["R"])]["risk"]
    # R: no order in the last 180 days against 4 before, a complaint rated 1 in May,
    # no contact in the last 90 days against 3 before.
    assert {s["code"] for s in r["signals"]} == {
        "model",
        "frequency_falling",
        "spend_falling",
        "complaints_rising",
        "unhappy_outcome",
        "contact_fading",
    }
    assert any("rated 2 or lower" in s["description"] for s in r["signals"])
    h = by_id[str(ids["H"])]["risk"]
    assert [s["code"] for s in h["signals"]] == ["model"]
    assert r["score"] > h["score"]
    assert by_id[str(ids["Z"])]["risk"]["probabilityAlive"] is None
    assert nodes[0]["customer"]["id"] in {str(ids["R"]), str(ids["C"])}
    high = await api.gql(AT_RISK, {"min": r["score"]}, token=manager)
    assert str(ids["R"]) in {
        e["node"]["customer"]["id"] for e in high["data"]["atRiskCustomers"]["edges"]
    }
    assert all(
        e["node"]["risk"]["score"] >= r["score"] for e in high["data"]["atRiskCustomers"]["edges"]
    )

    model = await api.gql(
        '{ churnModel(asOf: "2026-06-30") { r alpha a b timeUnit logLikelihood customers } }',
        token=manager,
    )
    fitted = model["data"]["churnModel"]
    assert fitted["timeUnit"] == "week"
    assert fitted["customers"] == 5  # buyers only
    assert min(fitted["r"], fitted["alpha"], fitted["a"], fitted["b"]) > 0
    assert fitted["logLikelihood"] < 0


async def test_analyst_gets_aggregates_but_no_personal_field(api: Api, state: AppState) -> None:
    ids = await seed(state)
    analyst = api.token("analyst", subject="ann")
    body = await api.gql(AT_RISK, {"min": 0.0}, token=analyst, purpose="analytics")
    edges = body["data"]["atRiskCustomers"]["edges"]
    assert len(edges) == 6
    assert all(e["node"]["customer"]["name"] is None for e in edges)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert all(e["path"][-1] == "name" for e in body["errors"])
    direct = await api.gql(
        "query($id: ID!) { customer(id: $id) { phone segment { tier } } }",
        {"id": str(ids["H"])},
        token=analyst,
        purpose="analytics",
    )
    assert direct["data"]["customer"]["segment"] == {"tier": "HIGH"}
    assert direct["data"]["customer"]["phone"] is None
    assert direct["errors"][0]["path"] == ["customer", "phone"]
    metrics = await api.gql(
        '{ metrics(from: "2026-06-01", to: "2026-06-30") { total { current { salesTotal } } } }',
        token=analyst,
    )
    assert metrics["data"]["metrics"]["total"]["current"]["salesTotal"] == "1300.00"
    async with state.sessions() as session:
        reads = (
            await session.execute(
                select(AuditAccess.object_type, AuditAccess.record_count).where(
                    AuditAccess.object_type.in_(("metrics", "segment"))
                )
            )
        ).all()
    assert ("metrics", 0) in reads  # an aggregate read names no record
    assert ("segment", 6) in reads  # the at-risk page names its six customers
    # An agent has no analytics rights at all.
    agent = api.token("agent", subject="agent-1", team="east")
    refused = await api.gql(
        '{ metrics(from: "2026-06-01", to: "2026-06-30") { total { key } } }', token=agent
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_co_purchase_rules_and_likely_buyers(api: Api, state: AppState) -> None:
    # Orders: K1 {A, B}, K2 {A, B}, K3 {A, C}, K4 {A}, K5 {C}; K4 is in another team.
    a = await make_product(state, "A", "10", "5")
    b = await make_product(state, "B", "10", "5")
    c = await make_product(state, "C", "10", "5")
    customers = [await make_customer(state) for _ in range(3)]
    customers.append(await make_customer(state, team="west"))
    customers.append(await make_customer(state))
    baskets = [[a, b], [a, b], [a, c], [a], [c]]
    for customer, basket in zip(customers, baskets, strict=True):
        await make_order(state, customer, "2026-05-01 10:00", [(p, 1, "10", "5") for p in basket])
    manager = api.token("manager", subject="max", team="east")
    analyst = api.token("analyst", subject="ann")
    rules_of_a = (
        "query($p: ID!) { frequentlyBoughtWith(productId: $p) "
        "{ product { sku } ordersWithBoth support confidence lift } }"
    )
    # Rules count the orders of the caller's scope: the analyst's is every customer.
    body = await api.gql(rules_of_a, {"p": str(a)}, token=analyst)
    assert body["data"]["frequentlyBoughtWith"] == [
        # A in 4 of 5 orders, B in 2, C in 2.
        {
            "product": {"sku": "B"},
            "ordersWithBoth": 2,
            "support": 0.4,
            "confidence": 0.5,
            "lift": 1.25,
        },  # 0.5 / (2/5)
        {
            "product": {"sku": "C"},
            "ordersWithBoth": 1,
            "support": 0.2,
            "confidence": 0.25,
            "lift": 0.625,
        },  # 0.25 / (2/5)
    ]
    # The east manager's rules leave out K4 (team west): A in 3 of 4 orders, B and C in 2.
    east = await api.gql(rules_of_a, {"p": str(a)}, token=manager)
    assert east["data"]["frequentlyBoughtWith"] == [
        {
            "product": {"sku": "B"},
            "ordersWithBoth": 2,
            "support": 0.5,
            "confidence": 2 / 3,
            "lift": (2 / 3) / (2 / 4),
        },
        {
            "product": {"sku": "C"},
            "ordersWithBoth": 1,
            "support": 0.25,
            "confidence": 1 / 3,
            "lift": (1 / 3) / (2 / 4),
        },
    ]
    buyers = await api.gql(
        "query($p: ID!) { likelyBuyers(productId: $p) "
        "{ edges { node { customer { id } score } } } }",
        {"p": str(b)},
        token=manager,
    )
    # Rule A -> B over the team's orders has confidence 2/3 (lift 4/3): A's buyers without
    # B are K3 and K4; K4 is out of scope.
    assert buyers["data"]["likelyBuyers"]["edges"] == [
        {"node": {"customer": {"id": str(customers[2])}, "score": 2 / 3}}
    ]
    missing = await api.gql(
        "query($p: ID!) { frequentlyBoughtWith(productId: $p) { lift } }",
        {"p": str(uuid.uuid4())},
        token=manager,
    )
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_segments_refresh_command(
    api: Api, state: AppState, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await seed(state)
    monkeypatch.setenv("CUSTOS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CUSTOS_KEYRING", str(settings.keyring))
    monkeypatch.setenv("CUSTOS_STATE_DIR", str(settings.state_dir))
    result = await asyncio.to_thread(
        CliRunner().invoke, cli.app, ["segments", "refresh", "--as-of", AS_OF]
    )
    assert result.exit_code == 0, result.output
    async with state.sessions() as session:
        rows = (await session.execute(select(Customer.id, Customer.lifecycle))).all()
        stored = {customer_id: lifecycle for customer_id, lifecycle in rows}
        operations = (
            (
                await session.execute(
                    select(AuditEvent.operation_type).where(
                        AuditEvent.operation_name == "segments refresh"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert stored[ids["W"]] == "won_back"
    assert stored[ids["C"]] == "churned"
    assert operations == ["cli"]


async def test_churn_model_is_refitted_when_orders_change(api: Api, state: AppState) -> None:
    ids = await seed(state)
    manager = api.token("manager", subject="max", team="east")
    query = '{ churnModel(asOf: "2026-06-30") { customers logLikelihood } }'
    before = (await api.gql(query, token=manager))["data"]["churnModel"]
    again = (await api.gql(query, token=manager))["data"]["churnModel"]
    assert again == before
    product = await make_product(state, "Q", "10", "5")
    await make_order(state, ids["Z"], "2026-06-20 10:00", [(product, 1, "10", "5")])
    after = (await api.gql(query, token=manager))["data"]["churnModel"]
    assert (before["customers"], after["customers"]) == (5, 6)  # Z is a buyer now
    empty = await api.gql('{ churnModel(asOf: "2020-01-01") { customers } }', token=manager)
    assert empty["errors"][0]["extensions"]["code"] == "NOT_FOUND"
