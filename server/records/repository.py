"""Which table holds an id: one statement over the tables of refetchable records."""

from __future__ import annotations

import uuid

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models import AuditEvent, Campaign, Complaint, Customer, Interaction, Order, Task

# The record kinds whose id `kind_of` knows, by the model that holds them.
KINDS: dict[str, type] = {
    "customer": Customer,
    "order": Order,
    "complaint": Complaint,
    "interaction": Interaction,
    "task": Task,
    "campaign": Campaign,
    "audit_event": AuditEvent,
}


class RecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def kind_of(self, record_id: uuid.UUID) -> str | None:
        """The kind of the record with this id, whoever may see it; None when none has it.
        Ids are random UUIDs, so at most one table holds any one of them."""
        lookup = union_all(
            *(
                select(literal(kind).label("kind")).where(model.id == record_id)  # type: ignore[attr-defined]
                for kind, model in KINDS.items()
            )
        ).limit(1)
        return (await self.session.execute(lookup)).scalar_one_or_none()
