"""Interactions: log contacts with sealed subject and notes, run the response timers of
inbound consultations, list breaches, page many customers' histories at once, and
merge a customer's interactions, orders and complaints into one timeline."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.caller import Caller
from server.clock import Clock
from server.customer.owned import (
    RecordView,
    SealedReader,
    refused_record,
    sealed_modes,
    visible_customer_key,
)
from server.customer.repository import scope_predicate
from server.data.base import new_id
from server.data.models import Interaction
from server.errors import ConflictError, ValidationError
from server.interaction.repository import BreachKind, InteractionRepository, TimelineKind
from server.paging import Page, items_of, page_of, pages_of, refill
from server.service_levels import ServiceLevels
from server.vault import FieldRef, Vault

OBJECT = "interaction"
TABLE = "interactions"
CHANNELS = ("phone", "email", "wechat", "sms", "chat", "visit", "meeting")
DIRECTIONS = ("inbound", "outbound")
KINDS = ("consultation", "follow_up", "care", "promotion", "survey", "visit")
PLAIN_FIELDS = tuple(
    c.key for c in Interaction.__table__.columns if not c.info["data_class"].sealed
)
# The unsealed columns a timeline entry shows, per record type (what the audit records).
TIMELINE_FIELDS = {
    TimelineKind.INTERACTION: {f: "clear" for f in ("occurred_at", "channel", "direction", "kind")},
    TimelineKind.ORDER: {f: "clear" for f in ("ordered_at", "channel", "status", "total")},
    TimelineKind.COMPLAINT: {
        f: "clear" for f in ("opened_at", "category", "status", "compensation")
    },
}
TIMELINE_OBJECTS = {
    TimelineKind.INTERACTION: "interaction",
    TimelineKind.ORDER: "order",
    TimelineKind.COMPLAINT: "complaint",
}


@dataclass(frozen=True, slots=True)
class NewInteraction:
    customer_id: uuid.UUID
    channel: str
    direction: str
    kind: str
    subject: str | None = None
    notes: str | None = None
    agent_id: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    kind: TimelineKind
    record_id: uuid.UUID
    at: datetime
    title: str
    status: str
    amount: Decimal | None


def _breached(due: datetime | None, done: datetime | None, now: datetime) -> bool:
    if due is None:
        return False
    return done > due if done is not None else due < now


class InteractionService:
    def __init__(self, vault: Vault, clock: Clock, levels: ServiceLevels) -> None:
        self.vault = vault
        self.clock = clock
        self.levels = levels

    async def _views(
        self, caller: Caller, rows: Collection[Any], fields: Collection[str]
    ) -> list[RecordView]:
        reader = SealedReader(self.vault, TABLE, sealed_modes(caller, OBJECT, Interaction, fields))
        if reader.modes:
            await self.vault.open_data_keys(
                (row.customer_id, row.kek_version, row.wrapped_dek) for row in rows
            )
        now = self.clock.now()
        views = []
        for row in rows:
            values: dict[str, Any] = {f: getattr(row, f) for f in PLAIN_FIELDS}
            values["first_response_breached"] = _breached(
                row.first_response_due_at, row.first_responded_at, now
            )
            values["solution_breached"] = _breached(row.solution_due_at, row.solved_at, now)
            values.update(
                reader.reveal(
                    row.id,
                    row.customer_id,
                    row.kek_version,
                    row.wrapped_dek,
                    {f: getattr(row, f) for f in reader.modes},
                )
            )
            views.append(RecordView(OBJECT, row.id, values))
        shown = {f: "clear" for f in fields if f in PLAIN_FIELDS} | reader.audit_modes()
        caller.audit.read(OBJECT, (v.id for v in views), shown, reader.denied())
        return views

    async def log(self, session: AsyncSession, caller: Caller, data: NewInteraction) -> uuid.UUID:
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "create"), caller.principal)
        for value, allowed, what in (
            (data.channel, CHANNELS, "channel"),
            (data.direction, DIRECTIONS, "direction"),
            (data.kind, KINDS, "kind"),
        ):
            if value not in allowed:
                raise ValidationError(f"{what} must be one of {', '.join(allowed)}", field=what)
        now = self.clock.now()
        occurred = data.occurred_at or now
        if occurred.tzinfo is None:
            raise ValidationError("occurredAt must carry a timezone", field="occurred_at")
        if occurred > now:
            raise ValidationError("occurredAt must not be in the future", field="occurred_at")
        key = await visible_customer_key(session, self.vault, data.customer_id, scope)
        if key is None:
            raise caller.gate.not_found(OBJECT, "create", data.customer_id, what="customer")
        interaction_id = new_id()
        sealed: dict[str, bytes | None] = {}
        for column, text in (("subject", data.subject), ("notes", data.notes)):
            clean = text.strip() if text else None
            sealed[column] = (
                self.vault.seal(key, FieldRef(TABLE, column, interaction_id), clean)
                if clean
                else None
            )
        timed = data.direction == "inbound" and data.kind == "consultation"
        interaction = Interaction(
            id=interaction_id,
            customer_id=data.customer_id,
            occurred_at=occurred,
            channel=data.channel,
            direction=data.direction,
            kind=data.kind,
            complex=False,
            agent_id=data.agent_id or caller.principal.subject,
            first_response_due_at=(
                self.levels.due(occurred, self.levels.first_response) if timed else None
            ),
            solution_due_at=self.levels.due(occurred, self.levels.solution) if timed else None,
            **sealed,
        )
        await InteractionRepository(session).add(interaction)
        changed = ["channel", "direction", "kind", *(c for c, v in sealed.items() if v)]
        caller.audit.change(OBJECT, "create", interaction_id, changed)
        return interaction_id

    async def _timed(
        self, session: AsyncSession, caller: Caller, interaction_id: uuid.UUID
    ) -> Interaction:
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "update"), caller.principal)
        interaction = await InteractionRepository(session).by_id(interaction_id, scope=scope)
        if interaction is None:
            raise await refused_record(
                session, caller, OBJECT, "update", Interaction, interaction_id
            )
        if interaction.first_response_due_at is None:
            raise ConflictError(
                "only inbound consultations carry response timers", code="NO_RESPONSE_TIMER"
            )
        return interaction

    async def respond(
        self, session: AsyncSession, caller: Caller, interaction_id: uuid.UUID
    ) -> uuid.UUID:
        interaction = await self._timed(session, caller, interaction_id)
        if interaction.first_responded_at is not None:
            raise ConflictError("the first response is already recorded", code="ALREADY_DONE")
        interaction.first_responded_at = self.clock.now()
        await InteractionRepository(session).flush()
        caller.audit.change(OBJECT, "respond", interaction.id, ["first_responded_at"])
        return interaction.id

    async def solve(
        self, session: AsyncSession, caller: Caller, interaction_id: uuid.UUID
    ) -> uuid.UUID:
        interaction = await self._timed(session, caller, interaction_id)
        if interaction.solved_at is not None:
            raise ConflictError("the solution is already recorded", code="ALREADY_DONE")
        now = self.clock.now()
        changed = ["solved_at"]
        if interaction.first_responded_at is None:
            # A solution is also an answer: it stops the first-response timer.
            interaction.first_responded_at = now
            changed.append("first_responded_at")
        interaction.solved_at = now
        await InteractionRepository(session).flush()
        caller.audit.change(OBJECT, "solve", interaction.id, changed)
        return interaction.id

    async def get(
        self,
        session: AsyncSession,
        caller: Caller,
        interaction_id: uuid.UUID,
        fields: Collection[str],
    ) -> RecordView:
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        row = await InteractionRepository(session).view_row(interaction_id, scope=scope)
        if row is None:
            raise await refused_record(session, caller, OBJECT, "read", Interaction, interaction_id)
        return (await self._views(caller, [row], fields))[0]

    async def breaches(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        kind: BreachKind,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        fields: Collection[str],
        with_total: bool,
    ) -> Page[RecordView]:
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        repo = InteractionRepository(session)
        now = self.clock.now()
        rows = await repo.breaches(scope=scope, kind=kind, now=now, after=after, limit=first)
        total = await repo.count_breaches(scope=scope, kind=kind, now=now) if with_total else None
        page = page_of(rows, first, total)
        return page.with_items(await self._views(caller, page.items, fields))

    async def pages_for_customers(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_ids: Collection[uuid.UUID],
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        fields: Collection[str],
    ) -> dict[uuid.UUID, Page[RecordView]]:
        """Each customer's newest interactions, for many customers in one statement."""
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        rows = await InteractionRepository(session).pages_for_customers(
            customer_ids, scope=scope, after=after, limit=first
        )
        pages = pages_of(customer_ids, rows, key=lambda row: row.customer_id, first=first)
        return refill(pages, await self._views(caller, items_of(pages), fields))

    async def timelines(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_ids: Collection[uuid.UUID],
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> dict[uuid.UUID, Page[TimelineEntry]]:
        """Interactions, orders and complaints of each customer, newest first, for many
        customers in one statement. Only record types the caller may read take part;
        customers outside the caller's scope get an empty timeline; no sealed value is read."""
        scope = scope_predicate(caller.gate.row_scope("customer", "read"), caller.principal)
        # Record types the caller may not read are left out of the timeline, not refused.
        kinds = [k for k, obj in TIMELINE_OBJECTS.items() if caller.gate.allows(obj, "read")]
        rows = await InteractionRepository(session).timelines(
            customer_ids, scope=scope, kinds=kinds, after=after, limit=first
        )
        pages = {
            cid: page.map(
                lambda r: TimelineEntry(
                    kind=TimelineKind(r.kind),
                    record_id=r.id,
                    at=r.at,
                    title=r.title,
                    status=r.status,
                    amount=r.amount,
                )
            )
            for cid, page in pages_of(
                customer_ids, rows, key=lambda row: row.customer_id, first=first
            ).items()
        }
        for kind in kinds:
            ids = [e.record_id for e in items_of(pages) if e.kind is kind]
            if ids:
                caller.audit.read(TIMELINE_OBJECTS[kind], ids, TIMELINE_FIELDS[kind])
        return pages
