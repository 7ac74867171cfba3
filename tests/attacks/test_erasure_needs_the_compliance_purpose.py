"""Attack 4: erasure without the compliance purpose.

The policy says export and erasure need `X-Purpose: compliance`; export enforced it,
`eraseCustomer` did not (and was audited with purpose null).
"""

from __future__ import annotations

from sqlalchemy import select

from server.app import AppState
from server.data.models import AuditEvent, Customer
from tests.conftest import Api
from tests.factories import make_customer

ERASE = """
mutation($id: ID!) {
  eraseCustomer(id: $id) { __typename ... on UserError { code } }
}
"""


async def test_erasure_needs_the_compliance_purpose_and_records_it(
    api: Api, state: AppState
) -> None:
    person = await make_customer(state)
    compliance = api.token("compliance", subject="c-1")
    for purpose in (None, "support", "analytics"):
        refused = await api.post(ERASE, {"id": str(person)}, token=compliance, purpose=purpose)
        body = refused.json()
        assert body.get("data") is None, (purpose, body)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", purpose
    async with state.sessions() as session:
        assert await session.scalar(select(Customer.erased_at).where(Customer.id == person)) is None
        refusals = (
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.operation_type == "mutation")
            )
        ).all()
    assert refusals == ["denied"] * 3

    done = await api.gql(ERASE, {"id": str(person)}, token=compliance, purpose="compliance")
    assert done["data"]["eraseCustomer"]["__typename"] == "CustomerErased"
    async with state.sessions() as session:
        event = (
            await session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        ).one()
    assert (event.purpose, event.outcome) == ("compliance", "ok")
