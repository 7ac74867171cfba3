"""Plain factory functions for test data, through the same services the API uses."""

from __future__ import annotations

import itertools
import uuid
from datetime import date
from typing import Any

from server.app import AppState
from server.auth.principal import Principal
from server.caller import caller_for
from server.customer.service import NewCustomer
from server.vault.normalise import luhn_is_valid, national_id_check_char

_counter = itertools.count(1)
SEEDER = Principal(subject="test:seeder", roles=("admin",))


def national_id(n: int) -> str:
    first17 = f"110101199{n % 10}0101{n % 1000:03d}"
    return first17 + national_id_check_char(first17)


def bank_card(n: int) -> str:
    body = f"622202{n:010d}"[:18]
    return next(body + str(d) for d in range(10) if luhn_is_valid(body + str(d)))


def customer_data(**overrides: Any) -> NewCustomer:
    n = next(_counter)
    values: dict[str, Any] = {
        "name": f"王{n}明",
        "phone": f"138{n:08d}",
        "email": f"person{n}@example.com",
        "national_id": national_id(n),
        "bank_card": bank_card(n),
        "address": f"北京市中山路{n}号",
        "birthday": date(1990, 1 + n % 12, 1 + n % 28),
        "region": "北京",
        "industry": "retail",
        "tier": "mid",
        "owner_id": "agent-1",
        "team": "east",
    }
    values.update(overrides)
    return NewCustomer(**values)


async def make_customer(state: AppState, **overrides: Any) -> uuid.UUID:
    """Create a customer through the customer service with its own audit event."""
    data = customer_data(**overrides)
    async with state.sessions() as session, session.begin():
        caller = caller_for(SEEDER, state.services.authorizer)
        # Seeding acts as the system: sealing and storage go through the service, the
        # owner and team come from the data.
        sealed = state.services.customers.seal_new(data, owner_id=data.owner_id, team=data.team)
        from server.customer.repository import CustomerRepository

        await CustomerRepository(session).add(sealed.customer, sealed.key, sealed.name_tokens)
        caller.audit.change("customer", "create", sealed.customer.id, sealed.sealed_fields)
        await caller.audit.commit(
            session, operation_type="cli", operation_name="seed", query=None, outcome="ok"
        )
        return sealed.customer.id


OPERATOR = Principal(subject="test:operator", roles=("manager",), team="east")


async def make_interactions(
    state: AppState, customer_id: uuid.UUID, count: int, **overrides: Any
) -> list[uuid.UUID]:
    """Log interactions through the interaction service, as a manager of team east."""
    from server.interaction.service import NewInteraction

    ids = []
    async with state.sessions() as session, session.begin():
        await state.services.authorizer.refresh(session)
        caller = caller_for(OPERATOR, state.services.authorizer)
        for n in range(count):
            values: dict[str, Any] = {
                "customer_id": customer_id,
                "channel": "phone",
                "direction": "outbound",
                "kind": "care",
                "notes": f"note {n}",
            }
            values.update(overrides)
            ids.append(
                await state.services.interactions.log(session, caller, NewInteraction(**values))
            )
        await caller.audit.commit(
            session, operation_type="cli", operation_name="seed", query=None, outcome="ok"
        )
    return ids
