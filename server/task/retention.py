"""The retention playbook: each churn signal of an at-risk customer becomes suggested
actions, planned as tasks for the customer's owner; won-back outcomes are counted per
action (a customer who buys again within N days after the task was done).

The table is `DEFAULT_PLAYBOOK`, replaced signal by signal from `CUSTOS_RETENTION_PLAYBOOK`
(JSON). The purchase model's own signal (`model`, or `no_purchase` for a customer who
never bought) applies only when no other signal explains the risk.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.analytics.churn import WEIGHTS
from server.analytics.service import AnalyticsService
from server.business_calendar import BusinessCalendar
from server.caller import Caller
from server.errors import ConfigError, ValidationError
from server.task.repository import TaskRepository, visible
from server.task.service import KINDS, OBJECT, GeneratedTask, TaskService

SIGNALS = (*WEIGHTS, "model", "no_purchase")
MAX_PLANNED_CUSTOMERS = 1000


@dataclass(frozen=True, slots=True)
class PlaybookAction:
    action: str
    kind: str
    title: str
    # Working days from planning to the task's due time (end of that day's hours).
    due_days: int


Playbook = dict[str, tuple[PlaybookAction, ...]]

DEFAULT_PLAYBOOK: Playbook = {
    "frequency_falling": (
        PlaybookAction(
            "check_in_call", "call", "Check-in call: ask what changed, mention what is new", 3
        ),
    ),
    "spend_falling": (
        PlaybookAction("member_offer", "offer", "Member offer on their usual category", 5),
    ),
    "complaints_rising": (
        PlaybookAction(
            "service_review", "call", "Review their recent complaints with them and fix", 2
        ),
    ),
    "unhappy_outcome": (
        PlaybookAction(
            "service_recovery", "visit", "Apologise and offer a remedy for the complaint", 1
        ),
    ),
    "contact_fading": (
        PlaybookAction("care_message", "message", "Personal greeting on their channel", 3),
    ),
    "model": (PlaybookAction("win_back_call", "call", "Win-back call with an offer", 5),),
    "no_purchase": (
        PlaybookAction("first_order_offer", "offer", "First-order offer and product advice", 7),
    ),
}


def parse_playbook(text: str) -> Playbook:
    """`{"spend_falling": [{"action": "coupon", "kind": "offer", "title": "…",
    "dueDays": 2}]}` over the defaults; a signal with `[]` gets no action."""
    playbook = dict(DEFAULT_PLAYBOOK)
    if not text.strip():
        return playbook
    try:
        table = json.loads(text)
        if not isinstance(table, dict):
            raise ValueError("not an object")
        for signal, actions in table.items():
            if signal not in SIGNALS:
                raise ValueError(f"unknown signal {signal!r}; signals are {', '.join(SIGNALS)}")
            playbook[signal] = tuple(
                PlaybookAction(
                    action=str(a["action"])[:32],
                    kind=a.get("kind", "call"),
                    title=str(a["title"]),
                    due_days=int(a.get("dueDays", 3)),
                )
                for a in actions
            )
            for a in playbook[signal]:
                if a.kind not in KINDS or not 0 <= a.due_days <= 60 or not a.title.strip():
                    raise ValueError(f"bad action {a.action!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"CUSTOS_RETENTION_PLAYBOOK: {error}") from None
    return playbook


@dataclass(frozen=True, slots=True)
class RetentionOutcome:
    action: str
    signal: str | None
    suggested: int
    done: int
    won_back: int

    @property
    def won_back_rate(self) -> float | None:
        return self.won_back / self.done if self.done else None


class RetentionService:
    def __init__(
        self,
        analytics: AnalyticsService,
        tasks: TaskService,
        calendar: BusinessCalendar,
        *,
        playbook: Playbook | None = None,
        won_back_days: int = 30,
    ) -> None:
        self.analytics = analytics
        self.tasks = tasks
        self.calendar = calendar
        self.playbook = playbook or dict(DEFAULT_PLAYBOOK)
        self.won_back_days = won_back_days

    def actions_for(self, signals: list[str]) -> list[tuple[str, PlaybookAction]]:
        specific = [s for s in signals if s not in ("model", "no_purchase")]
        chosen = specific or [s for s in signals if s in ("model", "no_purchase")]
        return [(s, a) for s in chosen for a in self.playbook.get(s, ())]

    def _due(self, today: date, working_days: int) -> datetime:
        day, left = today, working_days
        while left > 0 or not self.calendar.is_workday(day):
            day += timedelta(days=1)
            if self.calendar.is_workday(day):
                left -= 1
        return datetime.combine(day, self.calendar.hours[-1][1], self.calendar.tz)

    async def plan(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        as_of: date,
        min_score: float,
        limit: int,
    ) -> list[uuid.UUID]:
        """Tasks for the riskiest customers in scope (score >= min_score, at most `limit`):
        one per playbook action of each signal, for the customer's owner. An action
        already open for the customer is not planned again."""
        caller.gate.row_scope(OBJECT, "create")
        caller.gate.require(OBJECT, "manage")
        if not 1 <= limit <= MAX_PLANNED_CUSTOMERS:
            raise ValidationError(
                f"first must be between 1 and {MAX_PLANNED_CUSTOMERS}", field="first"
            )
        page = await self.analytics.at_risk_customers(
            session, caller, as_of=as_of, first=limit, after=None, min_score=min_score
        )
        repo = TaskRepository(session)
        today = self.calendar.local_date(self.tasks.clock.now())
        planned: list[uuid.UUID] = []
        for risk in page.items:
            customer_id: uuid.UUID = risk.customer_id
            _, owner = await repo.customer_team(customer_id)
            for signal, action in self.actions_for([s.code for s in risk.signals]):
                prefix = f"retention:{action.action}:"
                if await repo.open_with_key_prefix(customer_id, prefix) is not None:
                    continue
                task = await self.tasks.ensure(
                    session,
                    caller,
                    GeneratedTask(
                        customer_id=customer_id,
                        source="retention",
                        source_key=f"{prefix}{as_of.isoformat()}",
                        title=action.title,
                        kind=action.kind,
                        due_at=self._due(today, action.due_days),
                        assignee_id=owner or caller.principal.subject,
                        action=action.action,
                        signal=signal,
                    ),
                )
                planned.append(task.id)
        return planned

    async def outcomes(
        self, session: AsyncSession, caller: Caller, *, start: date, end: date
    ) -> list[RetentionOutcome]:
        """Per action and signal, over retention tasks created in the business days
        [start, end] in the caller's scope: suggested, done, and won back."""
        if end < start:
            raise ValidationError("`to` must not be before `from`", field="to")
        predicate = visible(caller.gate.row_scope(OBJECT, "read"), caller.principal)
        rows = await TaskRepository(session).outcomes(
            predicate,
            created_from=self.calendar.start_of(start),
            created_to=self.calendar.end_of(end),
            won_back_within=timedelta(days=self.won_back_days),
            postgres=session.get_bind().dialect.name == "postgresql",
        )
        caller.audit.read(OBJECT, (), {"action": "clear", "signal": "clear", "status": "clear"})
        return [
            RetentionOutcome(r.action, r.signal, int(r.suggested), int(r.done), int(r.won_back))
            for r in rows
        ]
