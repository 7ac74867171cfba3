"""Service-level deadlines (consultation timers, complaint deadlines, file reviews),
read once from settings so services and tests agree on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from server.config import ComplaintDeadlineHours, Settings, default_complaint_deadlines


@dataclass(frozen=True, slots=True)
class ComplaintDeadline:
    acknowledge: timedelta
    resolve: timedelta
    follow_up: timedelta

    @classmethod
    def from_hours(cls, hours: ComplaintDeadlineHours) -> ComplaintDeadline:
        return cls(
            acknowledge=timedelta(hours=hours.acknowledge),
            resolve=timedelta(hours=hours.resolve),
            follow_up=timedelta(hours=hours.follow_up),
        )


def _default_deadlines() -> dict[str, ComplaintDeadline]:
    return {k: ComplaintDeadline.from_hours(v) for k, v in default_complaint_deadlines().items()}


@dataclass(frozen=True, slots=True)
class ServiceLevels:
    first_response: timedelta = timedelta(hours=2)
    solution: timedelta = timedelta(hours=24)
    complaint_deadlines: dict[str, ComplaintDeadline] = field(default_factory=_default_deadlines)
    review_months: int = 6

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceLevels:
        return cls(
            first_response=timedelta(hours=settings.interaction_first_response_hours),
            solution=timedelta(hours=settings.interaction_solution_hours),
            complaint_deadlines={
                severity: ComplaintDeadline.from_hours(hours)
                for severity, hours in settings.complaint_deadlines.items()
            },
            review_months=settings.customer_review_months,
        )
