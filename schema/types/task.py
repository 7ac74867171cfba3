"""Task types. Values come pre-revealed from the task service (the note sealed with the
task's customer's key is clear, masked or denied per the policy)."""

from __future__ import annotations

import datetime
import enum
from typing import Any

import strawberry

from schema.cost import assumed, cost
from schema.paging import Connection
from schema.types.common import view_field
from schema.types.node import Node


@strawberry.enum(description="open (to do, possibly snoozed), done, or cancelled by the system.")
class TaskStatus(enum.Enum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


@strawberry.enum(description="What a task asks for.")
class TaskKind(enum.Enum):
    CALL = "call"
    VISIT = "visit"
    MESSAGE = "message"
    EMAIL = "email"
    OFFER = "offer"
    FOLLOW_UP = "follow_up"
    REVIEW = "review"
    OTHER = "other"


@strawberry.enum(description="Where a task came from.")
class TaskSource(enum.Enum):
    MANUAL = "manual"
    CARE = "care"
    COMPLAINT = "complaint"
    RETENTION = "retention"


def _id(root: strawberry.Parent[Any]) -> strawberry.ID:
    return strawberry.ID(str(root.id))


def _customer_id(root: strawberry.Parent[Any]) -> strawberry.ID | None:
    value = root.get("customer_id")
    return strawberry.ID(str(value)) if value is not None else None


def _status(root: strawberry.Parent[Any]) -> TaskStatus:
    return TaskStatus(root.get("status"))


def _kind(root: strawberry.Parent[Any]) -> TaskKind:
    return TaskKind(root.get("kind"))


def _source(root: strawberry.Parent[Any]) -> TaskSource:
    return TaskSource(root.get("source"))


@strawberry.type(description="A task assigned to a user, optionally about one customer.")
class Task(Node):
    id: strawberry.ID = strawberry.field(resolver=_id)
    customer_id: strawberry.ID | None = strawberry.field(
        resolver=_customer_id, description="The customer it is about, if any."
    )
    assignee_id: str = view_field("assignee_id", "Who is to do it.")
    team: str | None = view_field("team", "The assignee's team.")
    title: str = view_field("title", "A short label; details belong in the sealed note.")
    note: str | None = view_field("note", "Personal: sealed with the customer's key.")
    kind: TaskKind = strawberry.field(resolver=_kind, description="What it asks for.")
    source: TaskSource = strawberry.field(resolver=_source, description="Where it came from.")
    source_key: str | None = view_field(
        "source_key", "The care-queue item, complaint follow-up or retention action it came from."
    )
    action: str | None = view_field("action", "Retention tasks: the playbook action.")
    signal: str | None = view_field("signal", "Retention tasks: the churn signal it answers.")
    status: TaskStatus = strawberry.field(resolver=_status, description="Open, done or cancelled.")
    due_at: datetime.datetime = view_field("due_at", "When it is due.")
    overdue: bool = view_field("overdue", "Open and past its due time.")
    snoozed_until: datetime.datetime | None = view_field(
        "snoozed_until", "Hidden until then; null if not snoozed."
    )
    snoozed: bool = view_field("snoozed", "Open and snoozed past now.")
    done_at: datetime.datetime | None = view_field("done_at", "When it was done.")
    done_by: str | None = view_field("done_by", "Who did it.")
    created_at: datetime.datetime = view_field("created_at", "When it was created.")
    created_by: str = view_field("created_by", "Who created it.")


@strawberry.type(description="Tasks, soonest due first.")
class TaskConnection(Connection[Task]):
    total_count: int | None = strawberry.field(description="Tasks matching the filter.")


@strawberry.input(description="Filters on task lists; all given ones must match.")
class TaskFilterInput:
    status: TaskStatus | None = strawberry.field(
        default=TaskStatus.OPEN, description="Default OPEN; null for every status."
    )
    assignee_id: str | None = strawberry.field(
        default=None, description="Only tasks of this assignee."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only tasks about this customer."
    )
    source: TaskSource | None = strawberry.field(
        default=None, description="Only tasks from this source."
    )
    due_before: datetime.datetime | None = strawberry.field(
        default=None, description="Only tasks due before this instant."
    )
    overdue: bool | None = strawberry.field(
        default=None, description="true: only overdue tasks; false: only tasks not overdue."
    )
    include_snoozed: bool = strawberry.field(
        default=False, description="Also open tasks snoozed past now."
    )


@strawberry.input(description="A task to create.")
class CreateTaskInput:
    title: str = strawberry.field(description="A short label; details belong in the note.")
    due_at: datetime.datetime = strawberry.field(description="When it is due.")
    kind: TaskKind = strawberry.field(default=TaskKind.OTHER, description="What it asks for.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer it is about, if any."
    )
    assignee_id: str | None = strawberry.field(
        default=None, description="Default the caller; someone else needs task/manage."
    )
    note: str | None = strawberry.field(
        default=None, description="Sealed with the customer's key: needs a customer."
    )


@strawberry.type(description="A task was created or changed.")
class TaskSaved:
    task: Task = strawberry.field(description="The task as it now stands.")


@strawberry.type(description="Retention tasks were planned.")
class RetentionPlanned:
    planned: int = strawberry.field(description="Tasks created.")
    tasks: list[Task] = strawberry.field(
        metadata=cost(size=assumed(100)), description="The tasks created."
    )


@strawberry.type(description="Retention tasks of one playbook action for one signal.")
class RetentionOutcome:
    action: str = strawberry.field(description="The playbook action.")
    signal: str | None = strawberry.field(description="The churn signal it answers.")
    suggested: int = strawberry.field(description="Tasks created.")
    done: int = strawberry.field(description="Tasks done.")
    won_back: int = strawberry.field(
        description="Done tasks whose customer bought again within the won-back window."
    )
    won_back_rate: float | None = strawberry.field(description="wonBack / done; null if none.")
