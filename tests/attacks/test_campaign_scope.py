"""Weaker finding: campaigns were unscoped and consent was asked only once.

`campaign` and `campaignResults` answered any caller with campaign read, and known and
unknown ids answered differently; marketing consent was checked only when a campaign was
created (a withdrawn recipient stayed in the results and responses were still recorded);
`createCampaign` needed no marketing purpose. Now a campaign follows row scope (its
maker, and callers with a recipient in their scope, see it; other ids are NOT_FOUND like
unknown ones), its results count the recipients in the caller's scope who consent now,
and creating one needs `X-Purpose: marketing`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from server.app import AppState
from server.data.models import AuditAccess, Campaign
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import grant_consent

CREATE = """
mutation { createCampaign(input: {name: "Spring", segment: {}}) {
  __typename ... on CampaignCreated { reach campaign { id } } ... on UserError { code } } }
"""
RESULTS = "query($id: ID!) { campaignResults(id: $id) { reach responses } }"
CAMPAIGN = "query($id: ID!) { campaign(id: $id) { id name } }"
RESPOND = """
mutation($c: ID!, $p: ID!) { recordCampaignResponse(campaignId: $c, customerId: $p) {
  __typename ... on CampaignRecorded { results { reach responses } } ... on UserError { code } } }
"""
WITHDRAW = """
mutation($c: ID!) { withdrawConsent(customerId: $c, purpose: MARKETING) { __typename } }
"""


def _east(api: Api) -> str:
    return api.token("manager", subject="mgr-east", team="east")


async def _consenting(state: AppState, owner: str, n: int) -> list[uuid.UUID]:
    ids = []
    for _ in range(n):
        customer = await make_customer(state, owner_id=owner, team="east")
        await grant_consent(state, customer, "marketing")
        ids.append(customer)
    return ids


async def _campaign(api: Api) -> str:
    body = await api.gql(CREATE, token=_east(api), purpose="marketing")
    created = body["data"]["createCampaign"]
    assert created["__typename"] == "CampaignCreated", body
    campaign_id: str = created["campaign"]["id"]
    return campaign_id


async def _campaigns(state: AppState) -> int:
    async with state.sessions() as session:
        return len((await session.scalars(select(Campaign.id))).all())


async def test_creating_a_campaign_needs_the_marketing_purpose(api: Api, state: AppState) -> None:
    await _consenting(state, "agent-1", 1)
    for purpose in (None, "sales"):
        body = await api.gql(CREATE, token=_east(api), purpose=purpose)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert await _campaigns(state) == 0
    assert await _campaign(api)
    assert await _campaigns(state) == 1


async def test_another_teams_campaign_answers_like_an_unknown_one(
    api: Api, state: AppState
) -> None:
    await _consenting(state, "agent-1", 2)
    campaign_id = await _campaign(api)
    west = api.token("manager", subject="mgr-west", team="west")
    answers: list[Any] = []
    for target in (campaign_id, str(uuid.uuid4())):
        for query in (CAMPAIGN, RESULTS):
            body = await api.gql(query, {"id": target}, token=west)
            answers.append(
                (body["data"], [(e["message"], e["extensions"]) for e in body["errors"]])
            )
    assert answers[0] == answers[2]
    assert answers[1] == answers[3]
    assert answers[0][1][0][1]["code"] == "NOT_FOUND"
    # The attempt is audited as denied, naming the campaign.
    async with state.sessions() as session:
        rows = (
            await session.execute(
                select(AuditAccess.denied_fields, AuditAccess.record_ids).where(
                    AuditAccess.object_type == "campaign"
                )
            )
        ).all()
    denied = {record for fields, records in rows if fields for record in records}
    assert uuid.UUID(campaign_id) in denied


async def test_results_count_only_the_callers_scope(api: Api, state: AppState) -> None:
    await _consenting(state, "agent-1", 1)
    await _consenting(state, "agent-2", 2)
    campaign_id = await _campaign(api)
    manager = await api.gql(RESULTS, {"id": campaign_id}, token=_east(api))
    assert manager["data"]["campaignResults"] == {"reach": 3, "responses": 0}
    agent = api.token("agent", subject="agent-1", team="east")
    mine = await api.gql(RESULTS, {"id": campaign_id}, token=agent)
    assert mine["data"]["campaignResults"] == {"reach": 1, "responses": 0}


async def test_a_withdrawn_recipient_drops_out_and_is_not_recorded(
    api: Api, state: AppState
) -> None:
    stays, leaves = await _consenting(state, "agent-1", 2)
    campaign_id = await _campaign(api)
    withdrawn = await api.gql(WITHDRAW, {"c": str(leaves)}, token=_east(api))
    assert withdrawn["data"]["withdrawConsent"]["__typename"] == "ConsentChanged", withdrawn
    results = await api.gql(RESULTS, {"id": campaign_id}, token=_east(api))
    assert results["data"]["campaignResults"] == {"reach": 1, "responses": 0}
    refused = await api.gql(RESPOND, {"c": campaign_id, "p": str(leaves)}, token=_east(api))
    assert refused["data"]["recordCampaignResponse"] == {
        "__typename": "UserError",
        "code": "NO_MARKETING_CONSENT",
    }
    recorded = await api.gql(RESPOND, {"c": campaign_id, "p": str(stays)}, token=_east(api))
    assert recorded["data"]["recordCampaignResponse"]["results"] == {"reach": 1, "responses": 1}
