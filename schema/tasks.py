"""Task root fields: my tasks, the team's, one task; create, complete, snooze, reassign,
reopen; care-queue items as tasks; the retention playbook and its outcomes."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import assumed, cost, counted, paged
from schema.mutations import run_mutation
from schema.paging import check_page_size, connection, keyset_cursor
from schema.selection import selected_names, top_level_names
from schema.types.common import UserError, parse_id, snake_names
from schema.types.task import (
    CreateTaskInput,
    RetentionOutcome,
    RetentionPlanned,
    Task,
    TaskConnection,
    TaskFilterInput,
    TaskSaved,
)
from server.task.repository import TaskFilter
from server.task.service import NewTask

Ctx = Info[GraphQLContext, None]
CURSORS = keyset_cursor("task-due")

TaskResult = Annotated[TaskSaved | UserError, strawberry.union("TaskResult")]
RetentionPlanResult = Annotated[
    RetentionPlanned | UserError, strawberry.union("RetentionPlanResult")
]


def _filter(value: TaskFilterInput | None, assignee: str | None) -> TaskFilter:
    value = value or TaskFilterInput()
    return TaskFilter(
        status=value.status.value if value.status is not None else None,
        assignee_id=assignee if assignee is not None else value.assignee_id,
        customer_id=parse_id(value.customer_id, "customerId") if value.customer_id else None,
        source=value.source.value if value.source is not None else None,
        due_before=value.due_before,
        overdue=value.overdue,
        include_snoozed=value.include_snoozed,
    )


async def _payload(info: Ctx, task_id: uuid.UUID, path: str = "task") -> Task:
    ctx = info.context
    fields = snake_names(selected_names(info, (path,)))
    view = await ctx.services.tasks.get(ctx.session, ctx.caller, task_id, fields)
    return cast(Task, view)


async def _change(info: Ctx, change: Callable[[], Awaitable[uuid.UUID]]) -> TaskSaved | UserError:
    done = await run_mutation(info.context, change)
    if isinstance(done, UserError):
        return done
    return TaskSaved(task=await _payload(info, done))


async def _tasks(
    info: Ctx, *, first: int, after: str | None, flt: TaskFilter, team_view: bool
) -> TaskConnection:
    ctx = info.context
    check_page_size(first, ctx.max_page_size)
    page = await ctx.services.tasks.page(
        ctx.session,
        ctx.caller,
        flt=flt,
        team_view=team_view,
        first=first,
        after=CURSORS.decode(after),
        fields=snake_names(selected_names(info, ("edges", "node"), ("nodes",))),
        with_total="totalCount" in top_level_names(info),
    )
    return connection(
        TaskConnection,
        page,
        after=after,
        cursor=lambda view: CURSORS.encode((view.get("due_at"), view.id)),
    )


async def task_by_id(info: Ctx, task_id: uuid.UUID, selected: set[str]) -> Task:
    """One task with the fields `selected` (by `task` and `node`)."""
    ctx = info.context
    view = await ctx.services.tasks.get(ctx.session, ctx.caller, task_id, snake_names(selected))
    return cast(Task, view)


@strawberry.type
class TaskQuery:
    @strawberry.field(
        description="Tasks assigned to the caller, soonest due (overdue) first.", metadata=paged()
    )
    async def my_tasks(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: TaskFilterInput | None = None,
    ) -> TaskConnection:
        subject = info.context.caller.principal.subject
        flt = _filter(filter, subject)
        return await _tasks(info, first=first, after=after, flt=flt, team_view=False)

    @strawberry.field(
        description="Every task in the caller's scope (a manager's team), soonest due "
        "(overdue) first; needs task/manage.",
        metadata=paged(),
    )
    async def team_tasks(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: TaskFilterInput | None = None,
    ) -> TaskConnection:
        flt = _filter(filter, None)
        return await _tasks(info, first=first, after=after, flt=flt, team_view=True)

    @strawberry.field(description="One task; unknown and out-of-scope ids are NOT_FOUND.")
    async def task(self, info: Ctx, id: strawberry.ID) -> Task | None:
        return await task_by_id(info, parse_id(id), top_level_names(info))

    @strawberry.field(
        description="Retention tasks created in the days [from, to] per playbook action: "
        "suggested, done and won back.",
        # One row per playbook action and signal: a short, configured table.
        metadata=cost(size=assumed(30)),
    )
    async def retention_outcomes(
        self,
        info: Ctx,
        from_: Annotated[datetime.date, strawberry.argument(name="from")],
        to: datetime.date,
    ) -> list[RetentionOutcome]:
        ctx = info.context
        rows = await ctx.services.retention.outcomes(ctx.session, ctx.caller, start=from_, end=to)
        return [
            RetentionOutcome(
                action=r.action,
                signal=r.signal,
                suggested=r.suggested,
                done=r.done,
                won_back=r.won_back,
                won_back_rate=r.won_back_rate,
            )
            for r in rows
        ]


@strawberry.type
class TaskMutation:
    @strawberry.mutation(description="A task for the caller or, with task/manage, for someone.")
    async def create_task(self, info: Ctx, input: CreateTaskInput) -> TaskResult:
        ctx = info.context

        async def create() -> uuid.UUID:
            data = NewTask(
                title=input.title,
                due_at=input.due_at,
                kind=input.kind.value,
                customer_id=parse_id(input.customer_id, "customerId")
                if input.customer_id
                else None,
                assignee_id=input.assignee_id,
                note=input.note,
            )
            return await ctx.services.tasks.create(ctx.session, ctx.caller, data)

        return await _change(info, create)

    @strawberry.mutation(description="Mark an open task done.")
    async def complete_task(self, info: Ctx, id: strawberry.ID) -> TaskResult:
        ctx = info.context

        async def complete() -> uuid.UUID:
            task_id = parse_id(id)
            await ctx.services.tasks.complete(ctx.session, ctx.caller, task_id)
            return task_id

        return await _change(info, complete)

    @strawberry.mutation(description="Hide an open task until `until`.")
    async def snooze_task(
        self, info: Ctx, id: strawberry.ID, until: datetime.datetime
    ) -> TaskResult:
        ctx = info.context

        async def snooze() -> uuid.UUID:
            task_id = parse_id(id)
            await ctx.services.tasks.snooze(ctx.session, ctx.caller, task_id, until)
            return task_id

        return await _change(info, snooze)

    @strawberry.mutation(description="Give an open task to someone (task/manage) or oneself.")
    async def reassign_task(self, info: Ctx, id: strawberry.ID, assignee_id: str) -> TaskResult:
        ctx = info.context

        async def reassign() -> uuid.UUID:
            task_id = parse_id(id)
            await ctx.services.tasks.reassign(ctx.session, ctx.caller, task_id, assignee_id)
            return task_id

        return await _change(info, reassign)

    @strawberry.mutation(description="Open a done or cancelled task again.")
    async def reopen_task(self, info: Ctx, id: strawberry.ID) -> TaskResult:
        ctx = info.context

        async def reopen() -> uuid.UUID:
            task_id = parse_id(id)
            await ctx.services.tasks.reopen(ctx.session, ctx.caller, task_id)
            return task_id

        return await _change(info, reopen)

    @strawberry.mutation(description="Make a care-queue item (by its key) a task.")
    async def take_care_item(
        self,
        info: Ctx,
        customer_id: strawberry.ID,
        key: str,
        assignee_id: str | None = None,
        due_at: datetime.datetime | None = None,
    ) -> TaskResult:
        ctx = info.context

        async def take() -> uuid.UUID:
            task = await ctx.services.care.take(
                ctx.session,
                ctx.caller,
                parse_id(customer_id, "customerId"),
                key,
                assignee_id=assignee_id,
                due_at=due_at,
            )
            return task.id

        return await _change(info, take)

    @strawberry.mutation(description="Mark a care-queue item done: it leaves the queue.")
    async def complete_care_item(
        self, info: Ctx, customer_id: strawberry.ID, key: str
    ) -> TaskResult:
        ctx = info.context

        async def complete() -> uuid.UUID:
            cid = parse_id(customer_id, "customerId")
            return (await ctx.services.care.complete(ctx.session, ctx.caller, cid, key)).id

        return await _change(info, complete)

    @strawberry.mutation(description="Snooze a care-queue item: it returns on `until`'s day.")
    async def snooze_care_item(
        self, info: Ctx, customer_id: strawberry.ID, key: str, until: datetime.datetime
    ) -> TaskResult:
        ctx = info.context

        async def snooze() -> uuid.UUID:
            cid = parse_id(customer_id, "customerId")
            task = await ctx.services.care.snooze(ctx.session, ctx.caller, cid, key, until)
            return task.id

        return await _change(info, snooze)

    @strawberry.mutation(
        description="Plan the retention playbook's actions as tasks for the riskiest "
        "customers in scope (churn score >= minScore), for their owners; needs task/manage.",
        # A churn fit over the scope, then up to `first` new tasks.
        metadata=cost(weight=10_000, size=counted()),
    )
    async def plan_retention(
        self,
        info: Ctx,
        as_of: datetime.date | None = None,
        min_score: float = 0.5,
        first: int = 100,
    ) -> RetentionPlanResult:
        ctx = info.context
        day = as_of or ctx.services.calendar.local_date(ctx.services.clock.now())
        planned = await run_mutation(
            ctx,
            lambda: ctx.services.retention.plan(
                ctx.session, ctx.caller, as_of=day, min_score=min_score, limit=first
            ),
        )
        if isinstance(planned, UserError):
            return planned
        fields = snake_names(selected_names(info, ("tasks",)))
        views = [
            await ctx.services.tasks.get(ctx.session, ctx.caller, tid, fields) for tid in planned
        ]
        return RetentionPlanned(planned=len(planned), tasks=cast(list[Task], views))
