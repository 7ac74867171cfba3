"""Service-level deadlines (consultation timers, complaint deadlines, file reviews),
read once from settings so services and tests agree on them.

A deadline is `due(start, duration)`: with a business calendar the duration counts
working time (business hours on working days), otherwise wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from server.business_calendar import BusinessCalendar, parse_days, parse_hours
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
    # None: deadlines run on wall-clock time.
    calendar: BusinessCalendar | None = None

    def due(self, start: datetime, duration: timedelta) -> datetime:
        """When something started at `start` with `duration` to do it is due."""
        if self.calendar is None:
            return start + duration
        return self.calendar.add_working_time(start, duration)

    @classmethod
    def from_settings(
        cls, settings: Settings, calendar: BusinessCalendar | None = None
    ) -> ServiceLevels:
        """Levels from settings; `CUSTOS_SLA_CLOCK=business` counts on `calendar` (the
        business calendar of the same settings when not given)."""
        if settings.sla_clock == "business":
            calendar = calendar or business_calendar(settings)
        else:
            calendar = None
        return cls(
            first_response=timedelta(hours=settings.interaction_first_response_hours),
            solution=timedelta(hours=settings.interaction_solution_hours),
            complaint_deadlines={
                severity: ComplaintDeadline.from_hours(hours)
                for severity, hours in settings.complaint_deadlines.items()
            },
            review_months=settings.customer_review_months,
            calendar=calendar,
        )


def business_calendar(settings: Settings) -> BusinessCalendar:
    """The business calendar the settings describe (`CUSTOS_BUSINESS_*`)."""
    return BusinessCalendar(
        timezone=settings.business_timezone,
        hours=parse_hours(settings.business_hours),
        statutory=settings.business_calendar == "cn",
        extra_holidays=parse_days(settings.business_extra_holidays),
        extra_workdays=parse_days(settings.business_extra_workdays),
    )
