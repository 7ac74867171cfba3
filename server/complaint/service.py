"""Complaint workflow: open, move through the state machine, deadlines, breakdown.

Every move is checked against `states.TRANSITIONS`, stamps its time from the clock,
writes a `complaint_events` row (who, when, from, to) and an audit change with field
names only. Deadlines come from the severity's `ComplaintDeadline`.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.caller import Caller
from server.clock import Clock
from server.complaint.repository import ComplaintFilter, ComplaintRepository
from server.complaint.states import (
    UNACKNOWLEDGED,
    UNRESOLVED,
    ComplaintMove,
    ComplaintStatus,
    target,
)
from server.customer.owned import (
    RecordView,
    SealedReader,
    refused_record,
    sealed_modes,
    visible_customer_key,
)
from server.customer.repository import scope_predicate
from server.data.base import new_id
from server.data.models import Complaint, ComplaintEvent, Task
from server.errors import ConflictError, NotFoundError, ValidationError
from server.paging import Page, page_of
from server.service_levels import ComplaintDeadline, ServiceLevels
from server.task.repository import OPEN
from server.task.service import GeneratedTask, TaskService
from server.vault import DataKey, FieldRef, Vault

OBJECT = "complaint"
TABLE = "complaints"
EVENT_OBJECT = "complaint_event"
CATEGORIES = (
    "product_quality",
    "service_attitude",
    "communication",
    "delivery",
    "billing",
    "other",
)
PLAIN_FIELDS = tuple(c.key for c in Complaint.__table__.columns if not c.info["data_class"].sealed)
MAX_COMPENSATION = Decimal("999999999999.99")
# The state each move normally leads to, to name an illegal move's target in the error.
MOVE_TARGETS = {
    ComplaintMove.ACKNOWLEDGE: ComplaintStatus.ACKNOWLEDGED,
    ComplaintMove.START_WORK: ComplaintStatus.IN_PROGRESS,
    ComplaintMove.ESCALATE: ComplaintStatus.ESCALATED,
    ComplaintMove.RESOLVE: ComplaintStatus.RESOLVED,
    ComplaintMove.FOLLOW_UP: ComplaintStatus.FOLLOWED_UP,
    ComplaintMove.CLOSE: ComplaintStatus.CLOSED,
    ComplaintMove.REOPEN: ComplaintStatus.REOPENED,
}


@dataclass(frozen=True, slots=True)
class NewComplaint:
    customer_id: uuid.UUID
    category: str
    severity: str
    description: str
    order_id: uuid.UUID | None = None
    assignee_id: str | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    text: str
    root_cause: str
    compensation: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BreakdownCell:
    category: str
    root_cause: str | None
    count: int


def is_overdue(c: Any, now: datetime) -> bool:
    """The Python twin of `repository.overdue_predicate`, for one loaded complaint."""
    status = ComplaintStatus(c.status)
    if status in UNACKNOWLEDGED and c.acknowledged_at is None and c.acknowledge_due_at < now:
        return True
    if status in UNRESOLVED and c.resolve_due_at is not None and c.resolve_due_at < now:
        return True
    return bool(
        status is ComplaintStatus.RESOLVED
        and c.followed_up_at is None
        and c.follow_up_due_at is not None
        and c.follow_up_due_at < now
    )


def _money(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    try:
        if not value.is_finite() or value < 0 or value > MAX_COMPENSATION:
            raise ValidationError(
                "compensation must be between 0 and 999999999999.99", field="compensation"
            )
        if value != value.quantize(Decimal("0.01")):
            raise ValidationError("compensation has at most 2 decimal places", field="compensation")
        return value.quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValidationError("compensation is not a number", field="compensation") from None


FOLLOW_UP_PREFIX = "complaint_follow_up:"


def follow_up_key(complaint_id: uuid.UUID) -> str:
    """The source key of a complaint's follow-up task (and of its care-queue item)."""
    return f"{FOLLOW_UP_PREFIX}{complaint_id}"


class ComplaintService:
    def __init__(
        self, vault: Vault, clock: Clock, levels: ServiceLevels, tasks: TaskService | None = None
    ) -> None:
        self.vault = vault
        self.clock = clock
        self.levels = levels
        self.tasks = tasks

    # --- reading -------------------------------------------------------------------

    async def _views(
        self, caller: Caller, rows: Collection[Any], fields: Collection[str]
    ) -> list[RecordView]:
        reader = SealedReader(self.vault, TABLE, sealed_modes(caller, OBJECT, Complaint, fields))
        if reader.modes:
            await self.vault.open_data_keys(
                (row.Complaint.customer_id, row.kek_version, row.wrapped_dek) for row in rows
            )
        now = self.clock.now()
        views = []
        for row in rows:
            c = row.Complaint
            values: dict[str, Any] = {f: getattr(c, f) for f in PLAIN_FIELDS}
            values["overdue"] = is_overdue(c, now)
            values.update(
                reader.reveal(
                    c.id,
                    c.customer_id,
                    row.kek_version,
                    row.wrapped_dek,
                    {f: getattr(c, f) for f in reader.modes},
                )
            )
            views.append(RecordView(OBJECT, c.id, values))
        shown = {f: "clear" for f in fields if f in PLAIN_FIELDS} | reader.audit_modes()
        caller.audit.read(OBJECT, (v.id for v in views), shown, reader.denied())
        return views

    async def page(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        flt: ComplaintFilter | None,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        fields: Collection[str],
        with_total: bool,
    ) -> Page[RecordView]:
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        repo = ComplaintRepository(session)
        now = self.clock.now()
        rows = await repo.page(scope=scope, flt=flt, now=now, after=after, limit=first)
        total = await repo.count(scope=scope, flt=flt, now=now) if with_total else None
        page = page_of(rows, first, total)
        return page.with_items(await self._views(caller, page.items, fields))

    async def get(
        self,
        session: AsyncSession,
        caller: Caller,
        complaint_id: uuid.UUID,
        fields: Collection[str],
    ) -> RecordView:
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        row = await ComplaintRepository(session).by_id(complaint_id, scope=scope)
        if row is None:
            raise await refused_record(session, caller, OBJECT, "read", Complaint, complaint_id)
        return (await self._views(caller, [row], fields))[0]

    async def events(
        self,
        session: AsyncSession,
        caller: Caller,
        complaint_ids: Collection[uuid.UUID],
        *,
        with_note: bool = False,
    ) -> dict[uuid.UUID, list[RecordView]]:
        """Status histories of complaints the caller has already been shown (batched).
        With `with_note`, each move's note is revealed through the vault in the caller's
        mode for `complaint_event.note` (clear, masked, or denied at its path), audited
        as a read of the events."""
        caller.gate.row_scope(OBJECT, "read")
        rows = await ComplaintRepository(session).events_of(complaint_ids)
        modes = sealed_modes(caller, EVENT_OBJECT, ComplaintEvent, ["note"] if with_note else [])
        reader = SealedReader(self.vault, "complaint_events", modes)
        history: dict[uuid.UUID, list[RecordView]] = {i: [] for i in complaint_ids}
        for row in rows:
            e: ComplaintEvent = row.ComplaintEvent
            values: dict[str, Any] = {
                "from_status": e.from_status,
                "to_status": e.to_status,
                "actor": e.actor,
                "at": e.at,
            }
            values.update(
                reader.reveal(
                    e.id, e.customer_id, row.kek_version, row.wrapped_dek, {"note": e.note}
                )
            )
            history[e.complaint_id].append(RecordView(EVENT_OBJECT, e.id, values))
        if with_note:
            caller.audit.read(
                EVENT_OBJECT,
                (r.ComplaintEvent.id for r in rows),
                reader.audit_modes(),
                reader.denied(),
            )
        return history

    async def breakdown(
        self, session: AsyncSession, caller: Caller, *, opened_from: datetime, opened_to: datetime
    ) -> list[BreakdownCell]:
        if opened_to <= opened_from:
            raise ValidationError("`to` must be after `from`")
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        rows = await ComplaintRepository(session).breakdown(
            scope=scope, opened_from=opened_from, opened_to=opened_to
        )
        return [BreakdownCell(r.category, r.root_cause, int(r.n)) for r in rows]

    # --- writing -------------------------------------------------------------------

    def _seal(self, key: DataKey, column: str, row_id: uuid.UUID, text: str) -> bytes:
        return self.vault.seal(key, FieldRef(TABLE, column, row_id), text)

    async def open(self, session: AsyncSession, caller: Caller, data: NewComplaint) -> uuid.UUID:
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "create"), caller.principal)
        if data.category not in CATEGORIES:
            raise ValidationError(
                f"category must be one of {', '.join(CATEGORIES)}", field="category"
            )
        deadline = self.levels.complaint_deadlines.get(data.severity)
        if deadline is None:
            severities = ", ".join(self.levels.complaint_deadlines)
            raise ValidationError(f"severity must be one of {severities}", field="severity")
        if not data.description.strip():
            raise ValidationError("description must not be empty", field="description")
        key = await visible_customer_key(session, self.vault, data.customer_id, scope)
        if key is None:
            raise caller.gate.not_found(OBJECT, "create", data.customer_id, what="customer")
        repo = ComplaintRepository(session)
        if data.order_id is not None and not await repo.order_of_customer(
            data.order_id, data.customer_id
        ):
            raise NotFoundError("order not found for this customer")
        now = self.clock.now()
        complaint_id = new_id()
        complaint = Complaint(
            id=complaint_id,
            customer_id=data.customer_id,
            opened_at=now,
            category=data.category,
            severity=data.severity,
            status=ComplaintStatus.OPEN.value,
            assignee_id=data.assignee_id or caller.principal.subject,
            order_id=data.order_id,
            description=self._seal(key, "description", complaint_id, data.description.strip()),
            escalation_level=0,
            acknowledge_due_at=self.levels.due(now, deadline.acknowledge),
            resolve_due_at=self.levels.due(now, deadline.resolve),
        )
        event = ComplaintEvent(
            id=new_id(),
            complaint_id=complaint_id,
            customer_id=data.customer_id,
            from_status=None,
            to_status=ComplaintStatus.OPEN.value,
            actor=caller.principal.subject,
            at=now,
        )
        await repo.add(complaint, event)
        caller.audit.change(
            OBJECT, "create", complaint_id, ["category", "description", "severity", "status"]
        )
        return complaint_id

    async def move(
        self,
        session: AsyncSession,
        caller: Caller,
        complaint_id: uuid.UUID,
        move: ComplaintMove,
        *,
        resolution: Resolution | None = None,
        rating: int | None = None,
        note: str | None = None,
        assignee_id: str | None = None,
    ) -> None:
        """Apply one move of the state machine, or refuse it and change nothing."""
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "update"), caller.principal)
        repo = ComplaintRepository(session)
        row = await repo.by_id(complaint_id, scope=scope, for_update=True)
        if row is None:
            raise await refused_record(session, caller, OBJECT, "update", Complaint, complaint_id)
        c: Complaint = row.Complaint
        status = ComplaintStatus(c.status)
        to = target(status, move)
        if to is None:
            intended = MOVE_TARGETS.get(move, status)
            raise ConflictError(
                f"illegal transition from {status} to {intended} ({move} is not allowed "
                f"while the complaint is {status})",
                code="ILLEGAL_TRANSITION",
            )
        now = self.clock.now()
        deadline = self.levels.complaint_deadlines.get(c.severity)
        changed = apply_move(
            c, move, now, deadline, resolution, rating, assignee_id, due=self.levels.due
        )
        key = None
        if resolution is not None or note:
            key = self.vault.open_data_key(c.customer_id, row.kek_version, row.wrapped_dek)
        if resolution is not None and key is not None:
            c.resolution = self._seal(key, "resolution", c.id, resolution.text)
        c.status = to.value
        changed.add("status")
        event_id = new_id()
        event = ComplaintEvent(
            id=event_id,
            complaint_id=c.id,
            customer_id=c.customer_id,
            from_status=status.value,
            to_status=to.value,
            actor=caller.principal.subject,
            at=now,
            note=self.vault.seal(key, FieldRef("complaint_events", "note", event_id), note)
            if note and key is not None
            else None,
        )
        await repo.add_event(event)
        caller.audit.change(OBJECT, move.value, c.id, changed)
        if self.tasks is not None:
            await self._follow_up_task(session, caller, c, move)

    async def _follow_up_task(
        self, session: AsyncSession, caller: Caller, c: Complaint, move: ComplaintMove
    ) -> None:
        """The follow-up after a resolution is a task for the complaint's assignee, due at
        the follow-up deadline; following up completes it, reopening or closing withdraws it."""
        assert self.tasks is not None
        key = follow_up_key(c.id)
        if move is ComplaintMove.RESOLVE and c.follow_up_due_at is not None:
            task = GeneratedTask(
                customer_id=c.customer_id,
                source="complaint",
                source_key=key,
                title=f"Follow up the {c.category.replace('_', ' ')} complaint",
                kind="follow_up",
                due_at=c.follow_up_due_at,
                assignee_id=c.assignee_id or caller.principal.subject,
            )
            await self.tasks.ensure(session, caller, task, renew=True)
            return
        existing = await self.tasks.generated(session, c.customer_id, key)
        if existing is None or existing.status != OPEN:
            return
        if move is ComplaintMove.FOLLOW_UP:
            await self.tasks.mark_done(session, caller, existing, hook=False)
        elif move in (ComplaintMove.REOPEN, ComplaintMove.CLOSE):
            await self.tasks.withdraw(session, caller, existing)

    async def follow_up_from_task(self, session: AsyncSession, caller: Caller, task: Task) -> None:
        """A completed follow-up task records the complaint's follow-up, if still owed."""
        if task.source_key is None or not task.source_key.startswith(FOLLOW_UP_PREFIX):
            return
        complaint_id = uuid.UUID(task.source_key.removeprefix(FOLLOW_UP_PREFIX))
        scope = scope_predicate(caller.gate.row_scope(OBJECT, "update"), caller.principal)
        row = await ComplaintRepository(session).by_id(complaint_id, scope=scope)
        if row is not None and row.Complaint.status == ComplaintStatus.RESOLVED.value:
            await self.move(session, caller, complaint_id, ComplaintMove.FOLLOW_UP)


def apply_move(
    c: Complaint,
    move: ComplaintMove,
    now: datetime,
    deadline: ComplaintDeadline | None,
    resolution: Resolution | None,
    rating: int | None,
    assignee_id: str | None,
    *,
    due: Callable[[datetime, timedelta], datetime] = operator.add,
) -> set[str]:
    """Validate a legal move's details and set its fields and timestamps (not the status);
    returns the changed field names. `due(start, duration)` places a deadline (the service
    levels' clock; plain addition by default). Shared by the service and the demo data."""
    changed: set[str] = set()
    if move is ComplaintMove.ACKNOWLEDGE:
        c.acknowledged_at = now
        changed.add("acknowledged_at")
    elif move is ComplaintMove.START_WORK:
        if c.acknowledged_at is None:
            c.acknowledged_at = now
            changed.add("acknowledged_at")
    elif move is ComplaintMove.ESCALATE:
        c.escalation_level = (c.escalation_level or 0) + 1
        changed.add("escalation_level")
        if assignee_id is not None:
            c.assignee_id = assignee_id
            changed.add("assignee_id")
    elif move is ComplaintMove.RESOLVE:
        if resolution is None or not resolution.text.strip():
            raise ValidationError("a resolution text is required", field="resolution")
        if resolution.root_cause not in CATEGORIES:
            raise ValidationError(
                f"root cause must be one of {', '.join(CATEGORIES)}", field="root_cause"
            )
        c.compensation = _money(resolution.compensation)
        c.root_cause = resolution.root_cause
        c.resolved_at = now
        if c.acknowledged_at is None:
            c.acknowledged_at = now
            changed.add("acknowledged_at")
        follow_up = deadline.follow_up if deadline is not None else None
        c.follow_up_due_at = due(now, follow_up) if follow_up is not None else None
        changed |= {"compensation", "follow_up_due_at", "resolution", "resolved_at"}
        changed.add("root_cause")
    elif move is ComplaintMove.FOLLOW_UP:
        c.followed_up_at = now
        changed.add("followed_up_at")
    elif move is ComplaintMove.RATE:
        if rating is None or not 1 <= rating <= 5:
            raise ValidationError("rating must be between 1 and 5", field="rating")
        c.rating = rating
        changed.add("rating")
    elif move is ComplaintMove.CLOSE:
        c.closed_at = now
        changed.add("closed_at")
    elif move is ComplaintMove.REOPEN:
        # A reopened complaint owes a new acknowledgement and resolution; the earlier
        # ones stay in the event history.
        c.acknowledged_at = None
        c.resolved_at = None
        c.follow_up_due_at = None
        c.followed_up_at = None
        c.closed_at = None
        # The customer rated the resolution that no longer stands.
        c.rating = None
        if deadline is not None:
            c.acknowledge_due_at = due(now, deadline.acknowledge)
            c.resolve_due_at = due(now, deadline.resolve)
        changed |= {"acknowledge_due_at", "acknowledged_at", "closed_at", "resolve_due_at"}
        changed |= {"follow_up_due_at", "followed_up_at", "rating", "resolved_at"}
    return changed
