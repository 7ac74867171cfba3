"""The care queue: who an account manager should contact in the next days, and why.

Contact cadence (new customers weekly in their first three months, established ones
monthly), birthdays, holidays (Gregorian and lunar: Spring Festival, Mid-Autumn),
relationship anniversaries, complaint follow-ups due and customers at risk of churning.
Days are the business's (its time zone). Only the owner's customers inside the caller's
row scope, or with `team` every customer in it (a manager's team): an agent asking for
another owner's queue gets an empty queue, exactly as if that owner had no customers.

Each item has a `key` unique for its customer. Taking, completing or snoozing an item
makes it a task (`server/task`) with that key: a done item leaves the queue, a snoozed
one comes back on the day its snooze ends, and a completed contact restarts the cadence.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.authz.authorizer import FieldMode
from server.business_calendar import BusinessCalendar, next_lunar_occurrence
from server.caller import Caller
from server.care.repository import CareRepository
from server.complaint.service import FOLLOW_UP_PREFIX, follow_up_key
from server.customer.owned import visible_customer_key
from server.customer.repository import scope_predicate
from server.data.base import DataClass
from server.data.models import Task
from server.errors import ConfigError, NotFoundError, ValidationError, VaultError
from server.task.repository import DONE, OPEN
from server.task.service import GeneratedTask, TaskService
from server.vault import FieldRef, Vault

Holidays = tuple[tuple[int, int, str], ...]
# The reasons whose key ends in a day, and the title of the task each becomes.
DATED_REASONS = {
    "cadence": ("Keep in touch", "call"),
    "birthday": ("Birthday greeting", "message"),
    "anniversary": ("Customer anniversary greeting", "message"),
    "holiday": ("Holiday greeting", "message"),
    "at_risk": ("Retention contact: customer at risk", "call"),
}
# Done tasks older than this no longer shape the queue (the longest cadence is far less).
TASK_MEMORY = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class CareRules:
    new_customer_days: int = 90
    new_customer_cadence_days: int = 7
    established_cadence_days: int = 30
    # (month, day, name): Gregorian dates worth a greeting.
    holidays: Holidays = field(
        default=(
            (1, 1, "New Year's Day 元旦"),
            (3, 8, "Women's Day 妇女节"),
            (5, 1, "Labour Day 劳动节"),
            (10, 1, "National Day 国庆节"),
        )
    )
    # (lunar month, lunar day, name): festivals of the Chinese calendar.
    lunar_holidays: Holidays = field(
        default=(
            (1, 1, "Spring Festival 春节"),
            (1, 15, "Lantern Festival 元宵节"),
            (5, 5, "Dragon Boat Festival 端午节"),
            (8, 15, "Mid-Autumn Festival 中秋节"),
        )
    )
    # An at-risk customer handled in the queue comes back after this many days.
    at_risk_repeat_days: int = 30


def parse_holidays(text: str) -> tuple[Holidays, Holidays]:
    """`01-01 New Year's Day;L08-15 Mid-Autumn` → (Gregorian, lunar) holiday tables."""
    solar: list[tuple[int, int, str]] = []
    lunar: list[tuple[int, int, str]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        when, _, name = part.partition(" ")
        is_lunar = when[:1] in ("L", "l")
        try:
            month, day = (int(x) for x in when[1 if is_lunar else 0 :].split("-"))
            if is_lunar:
                if not (1 <= month <= 12 and 1 <= day <= 30):
                    raise ValueError
            else:
                date(2000, month, day)  # a leap year: 02-29 is a valid holiday
        except ValueError:
            raise ConfigError(f"holiday {part!r} is not 'MM-DD name' or 'LMM-DD name'") from None
        (lunar if is_lunar else solar).append((month, day, name.strip() or when))
    return tuple(solar), tuple(lunar)


@dataclass(frozen=True, slots=True)
class CareItem:
    customer_id: uuid.UUID
    owner_id: str | None
    # cadence | birthday | holiday | anniversary | complaint_follow_up | at_risk
    reason: str
    due_on: date
    detail: str
    key: str
    task: Task | None = None


def next_occurrence(month: int, day: int, start: date) -> date:
    """The first (month, day) on or after `start`; 29 February falls on the 28th."""
    for year in (start.year, start.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = date(year, month, 28)
        if candidate >= start:
            return candidate
    raise AssertionError("a date recurs within two years")


def _item(
    row: object, reason: str, due: date, detail: str, key_day: date | None = None
) -> CareItem:
    customer_id: uuid.UUID = row.id  # type: ignore[attr-defined]
    owner: str | None = row.owner_id  # type: ignore[attr-defined]
    return CareItem(customer_id, owner, reason, due, detail, f"{reason}:{key_day or due}")


class CareService:
    def __init__(
        self,
        vault: Vault,
        now: Callable[[], datetime],
        tasks: TaskService,
        calendar: BusinessCalendar | None = None,
        rules: CareRules | None = None,
    ) -> None:
        self.vault = vault
        self.now = now
        self.tasks = tasks
        self.calendar = calendar or BusinessCalendar()
        self.rules = rules or CareRules()

    async def queue(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        owner_id: str | None,
        days: int,
        team: bool = False,
    ) -> list[CareItem]:
        if not 0 <= days <= 366:
            raise ValidationError("days must be between 0 and 366")
        scope = scope_predicate(caller.gate.row_scope("customer", "read"), caller.principal)
        owner = None if team and owner_id is None else owner_id or caller.principal.subject
        now = self.now()
        calendar = self.calendar
        today = calendar.local_date(now)
        horizon = today + timedelta(days=days)
        repo = CareRepository(session)
        rules = self.rules

        contacts = await repo.contacts(scope, owner)
        tasks = await self._tasks(session, caller, [row.id for row in contacts], now)
        last_done: dict[tuple[uuid.UUID, str], datetime] = {}
        for (customer_id, key), task in tasks.items():
            if task.status == DONE and task.done_at is not None:
                slot = (customer_id, key.partition(":")[0])
                last_done[slot] = max(task.done_at, last_done.get(slot, task.done_at))

        items: list[CareItem] = []
        for row in contacts:
            new = row.created_at > now - timedelta(days=rules.new_customer_days)
            cadence = rules.new_customer_cadence_days if new else rules.established_cadence_days
            kind = "new customer" if new else "established customer"
            # A cadence item completed in the queue counts as a contact.
            contacted = [t for t in (row.last_contact, last_done.get((row.id, "cadence"))) if t]
            if not contacted:
                items.append(_item(row, "cadence", today, f"{kind}: no contact yet"))
            else:
                last = max(contacted)
                due = calendar.local_date(last + timedelta(days=cadence))
                if due <= horizon:
                    detail = (
                        f"{kind}: contact every {cadence} days, last on "
                        f"{calendar.local_date(last).isoformat()}"
                    )
                    items.append(_item(row, "cadence", due, detail))
            created = calendar.local_date(row.created_at)
            anniversary = next_occurrence(created.month, created.day, today)
            years = anniversary.year - created.year
            if anniversary <= horizon and years >= 1:
                detail = f"{years} year{'s' if years > 1 else ''} as a customer"
                items.append(_item(row, "anniversary", anniversary, detail))
            if row.lifecycle == "at_risk":
                handled = last_done.get((row.id, "at_risk"))
                due = (
                    calendar.local_date(handled) + timedelta(days=rules.at_risk_repeat_days)
                    if handled
                    else today
                )
                if due <= horizon:
                    detail = "at risk of churning: plan a retention contact"
                    items.append(_item(row, "at_risk", due, detail))
        for when, name in self._holidays(today, horizon):
            items.extend(_item(row, "holiday", when, name) for row in contacts)

        items.extend(await self._birthdays(session, caller, scope, owner, today, horizon))

        until = calendar.end_of(horizon)
        owners = {row.id: row.owner_id for row in contacts}
        for complaint in await repo.follow_ups(scope, owner, until):
            cid = complaint.customer_id
            items.append(
                CareItem(
                    cid,
                    owners.get(cid),
                    "complaint_follow_up",
                    calendar.local_date(complaint.follow_up_due_at),
                    f"follow up complaint {complaint.id}",
                    follow_up_key(complaint.id),
                )
            )
        items = self._with_tasks(items, tasks, now, horizon)
        caller.audit.read("customer", {i.customer_id for i in items}, {"care_queue": "clear"})
        shown = [i.task.id for i in items if i.task is not None]
        if shown:
            caller.audit.read("task", shown, {"status": "clear", "snoozed_until": "clear"})
        items.sort(key=lambda i: (i.due_on, i.reason, i.customer_id))
        return items

    def _holidays(self, today: date, horizon: date) -> list[tuple[date, str]]:
        out = [(next_occurrence(m, d, today), name) for m, d, name in self.rules.holidays]
        out += [
            (next_lunar_occurrence(m, d, today), name) for m, d, name in self.rules.lunar_holidays
        ]
        return [(when, name) for when, name in out if when <= horizon]

    async def _tasks(
        self, session: AsyncSession, caller: Caller, customer_ids: list[uuid.UUID], now: datetime
    ) -> dict[tuple[uuid.UUID, str], Task]:
        """Tasks made from queue items of these customers, by (customer, key); none when
        the caller may not read tasks (the queue then shows every item, as before)."""
        if not caller.gate.allows("task", "read"):
            return {}
        tasks = await self.tasks.by_source_keys(session, customer_ids, since=now - TASK_MEMORY)
        return {(t.customer_id, t.source_key): t for t in tasks if t.customer_id and t.source_key}

    def _with_tasks(
        self,
        items: list[CareItem],
        tasks: dict[tuple[uuid.UUID, str], Task],
        now: datetime,
        horizon: date,
    ) -> list[CareItem]:
        """Done items leave; snoozed ones return on the day the snooze ends."""
        out: list[CareItem] = []
        for item in items:
            task = tasks.get((item.customer_id, item.key))
            if task is None:
                out.append(item)
                continue
            if task.status == DONE:
                continue
            if task.status == OPEN and task.snoozed_until is not None and task.snoozed_until > now:
                wake = self.calendar.local_date(task.snoozed_until)
                if wake > horizon:
                    continue
                item = replace(item, due_on=max(wake, item.due_on))
            out.append(replace(item, task=task))
        return out

    async def _birthdays(
        self,
        session: AsyncSession,
        caller: Caller,
        scope: object,
        owner: str | None,
        today: date,
        horizon: date,
    ) -> list[CareItem]:
        """Birthdays are sealed: decrypt only rows in scope, in one pass, and only when the
        caller reads the birthday in clear (the mask hides month and day, which an item
        would show)."""
        mode = caller.gate.field_mode("customer", "birthday", DataClass.SENSITIVE)
        if mode is not FieldMode.CLEAR:
            return []
        rows = await CareRepository(session).birthdays(scope, owner)  # type: ignore[arg-type]
        items: list[CareItem] = []
        for row in rows:
            try:
                key = self.vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
                born = date.fromisoformat(
                    self.vault.reveal(key, FieldRef("customers", "birthday", row.id), row.birthday)
                )
            except (VaultError, ValueError):
                continue  # shredded or unreadable: no birthday to celebrate
            when = next_occurrence(born.month, born.day, today)
            if when <= horizon:
                items.append(
                    CareItem(
                        row.id,
                        row.owner_id,
                        "birthday",
                        when,
                        f"birthday on {when:%m-%d}",
                        f"birthday:{when}",
                    )
                )
        caller.audit.read("customer", (r.id for r in rows), {"birthday": mode.value})
        return items

    # --- turning items into tasks -------------------------------------------------------

    async def take(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        key: str,
        *,
        action: str = "create",
        assignee_id: str | None = None,
        due_at: datetime | None = None,
    ) -> Task:
        """The task of the queue item `key` of a customer in the caller's scope: the one
        already made, or a new one (assigned to the caller unless a manager names someone,
        due at the end of the item's business day unless `due_at` says otherwise)."""
        scope = caller.gate.row_scope("task", action)
        if action != "create":
            caller.gate.require("task", "create")
        visible = await visible_customer_key(
            session, self.vault, customer_id, scope_predicate(scope, caller.principal)
        )
        if visible is None:
            raise caller.gate.not_found("task", action, customer_id, what="customer")
        reason, _, rest = key.partition(":")
        if key.startswith(FOLLOW_UP_PREFIX):
            # Made when the complaint was resolved: nothing to make here.
            existing = await self.tasks.generated(session, customer_id, key)
            if existing is None:
                raise NotFoundError("care item not found")
            return existing
        if reason not in DATED_REASONS:
            raise ValidationError("key is not a care item's key", field="key")
        try:
            day = date.fromisoformat(rest)
        except ValueError:
            raise ValidationError("key is not a care item's key", field="key") from None
        title, kind = DATED_REASONS[reason]
        assignee = self.tasks.assignee(caller, assignee_id, customer_id)
        if due_at is None:
            close = self.calendar.hours[-1][1]
            due_at = datetime.combine(day, close, self.calendar.tz)
        generated = GeneratedTask(
            customer_id=customer_id,
            source="care",
            source_key=key,
            title=title,
            kind=kind,
            due_at=self.tasks.check_due(due_at, "due_at"),
            assignee_id=assignee,
        )
        return await self.tasks.ensure(session, caller, generated)

    async def complete(
        self, session: AsyncSession, caller: Caller, customer_id: uuid.UUID, key: str
    ) -> Task:
        task = await self.take(session, caller, customer_id, key, action="update")
        await self.tasks.mark_done(session, caller, task)
        return task

    async def snooze(
        self,
        session: AsyncSession,
        caller: Caller,
        customer_id: uuid.UUID,
        key: str,
        until: datetime,
    ) -> Task:
        task = await self.take(session, caller, customer_id, key, action="update")
        await self.tasks.snooze_task(session, caller, task, until)
        return task
