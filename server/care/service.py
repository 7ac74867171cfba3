"""The care queue: who an account manager should contact in the next days, and why.

Contact cadence (new customers weekly in their first three months, established ones
monthly), birthdays, holidays, relationship anniversaries and complaint follow-ups due.
Only the owner's customers inside the caller's row scope: an agent asking for another
owner's queue gets an empty queue, exactly as if that owner had no customers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.authz.authorizer import FieldMode
from server.caller import Caller
from server.care.repository import CareRepository
from server.customer.repository import scope_predicate
from server.data.base import DataClass
from server.errors import ConfigError, ValidationError, VaultError
from server.vault import FieldRef, Vault


@dataclass(frozen=True, slots=True)
class CareRules:
    new_customer_days: int = 90
    new_customer_cadence_days: int = 7
    established_cadence_days: int = 30
    # (month, day, name): a small table of fixed-date holidays worth a greeting.
    holidays: tuple[tuple[int, int, str], ...] = field(
        default=(
            (1, 1, "New Year's Day"),
            (3, 8, "Women's Day"),
            (5, 1, "Labour Day"),
            (6, 1, "Children's Day"),
            (10, 1, "National Day"),
            (12, 25, "Christmas"),
        )
    )


def parse_holidays(text: str) -> tuple[tuple[int, int, str], ...]:
    """`01-01 New Year's Day;10-01 National Day` → ((1, 1, "New Year's Day"), ...)."""
    holidays: list[tuple[int, int, str]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        when, _, name = part.partition(" ")
        try:
            month, day = (int(x) for x in when.split("-"))
            date(2000, month, day)  # a leap year: 02-29 is a valid holiday
        except ValueError:
            raise ConfigError(f"holiday {part!r} is not 'MM-DD name'") from None
        holidays.append((month, day, name.strip() or when))
    return tuple(holidays)


@dataclass(frozen=True, slots=True)
class CareItem:
    customer_id: uuid.UUID
    reason: str  # cadence | birthday | holiday | anniversary | complaint_follow_up
    due_on: date
    detail: str


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


class CareService:
    def __init__(
        self, vault: Vault, now: Callable[[], datetime], rules: CareRules | None = None
    ) -> None:
        self.vault = vault
        self.now = now
        self.rules = rules or CareRules()

    async def queue(
        self, session: AsyncSession, caller: Caller, *, owner_id: str | None, days: int
    ) -> list[CareItem]:
        if not 0 <= days <= 366:
            raise ValidationError("days must be between 0 and 366")
        scope = scope_predicate(caller.gate.row_scope("customer", "read"), caller.principal)
        owner = owner_id or caller.principal.subject
        now = self.now()
        today = now.date()
        horizon = today + timedelta(days=days)
        repo = CareRepository(session)
        items: list[CareItem] = []
        rules = self.rules

        contacts = await repo.contacts(scope, owner)
        for row in contacts:
            new = row.created_at > now - timedelta(days=rules.new_customer_days)
            cadence = rules.new_customer_cadence_days if new else rules.established_cadence_days
            kind = "new customer" if new else "established customer"
            if row.last_contact is None:
                items.append(CareItem(row.id, "cadence", today, f"{kind}: no contact yet"))
            else:
                due = (row.last_contact + timedelta(days=cadence)).date()
                if due <= horizon:
                    items.append(
                        CareItem(
                            row.id,
                            "cadence",
                            due,
                            f"{kind}: contact every {cadence} days, last on "
                            f"{row.last_contact.date().isoformat()}",
                        )
                    )
            created = row.created_at.date()
            anniversary = next_occurrence(created.month, created.day, today)
            years = anniversary.year - created.year
            if anniversary <= horizon and years >= 1:
                items.append(
                    CareItem(
                        row.id,
                        "anniversary",
                        anniversary,
                        f"{years} year{'s' if years > 1 else ''} as a customer",
                    )
                )
        for month, day, name in rules.holidays:
            when = next_occurrence(month, day, today)
            if when <= horizon:
                items.extend(CareItem(row.id, "holiday", when, name) for row in contacts)

        items.extend(await self._birthdays(session, caller, scope, owner, today, horizon))

        until = datetime.combine(horizon, datetime.max.time(), tzinfo=now.tzinfo)
        for complaint in await repo.follow_ups(scope, owner, until):
            items.append(
                CareItem(
                    complaint.customer_id,
                    "complaint_follow_up",
                    complaint.follow_up_due_at.date(),
                    f"follow up complaint {complaint.id}",
                )
            )
        caller.audit.read("customer", {i.customer_id for i in items}, {"care_queue": "clear"})
        items.sort(key=lambda i: (i.due_on, i.reason, i.customer_id))
        return items

    async def _birthdays(
        self,
        session: AsyncSession,
        caller: Caller,
        scope: object,
        owner: str,
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
                items.append(CareItem(row.id, "birthday", when, f"birthday on {when:%m-%d}"))
        caller.audit.read("customer", (r.id for r in rows), {"birthday": mode.value})
        return items
