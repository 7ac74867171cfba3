"""The business calendar: local days for metrics and care moments, working-time SLA clocks
over statutory holidays and adjusted workdays (调休), lunar festivals in the care queue."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from server.app import AppState
from server.business_calendar import (
    STATUTORY_YEARS,
    BusinessCalendar,
    lunar_to_solar,
    next_lunar_occurrence,
    parse_days,
    parse_hours,
)
from server.clock import FixedClock
from server.config import load_settings
from server.errors import ConfigError
from tests.analytics_factories import make_order, make_product
from tests.conftest import Api
from tests.factories import make_customer

SHANGHAI = BusinessCalendar()


def beijing(text: str) -> datetime:
    """`2026-09-30 17:00` Beijing time as a UTC instant."""
    local = datetime.fromisoformat(text).replace(tzinfo=SHANGHAI.tz)
    return local.astimezone(UTC)


def test_statutory_days_and_adjusted_workdays() -> None:
    assert 2026 in STATUTORY_YEARS
    # National Day week 2026: 1-7 October off; Sunday 20 September and Saturday 10
    # October are adjusted workdays.
    assert not SHANGHAI.is_workday(date(2026, 10, 1))
    assert not SHANGHAI.is_workday(date(2026, 10, 7))
    assert SHANGHAI.is_workday(date(2026, 9, 20))
    assert SHANGHAI.is_workday(date(2026, 10, 10))
    # Spring Festival 2026 (15-23 February) is off; 14 and 28 February are workdays.
    assert not SHANGHAI.is_workday(date(2026, 2, 17))
    assert SHANGHAI.is_workday(date(2026, 2, 28))
    # Past the library's years: Monday to Friday, and configured days on top.
    late = date(max(STATUTORY_YEARS) + 1, 1, 1)
    assert SHANGHAI.is_workday(late) == (late.weekday() < 5)
    extra = BusinessCalendar(extra_holidays=frozenset({late}), extra_workdays=frozenset())
    assert not extra.is_workday(late)
    assert BusinessCalendar(statutory=False).is_workday(date(2026, 10, 1))


def test_working_time_counts_business_hours_on_working_days() -> None:
    # Friday 17:00, 2 hours to answer: Monday 10:00.
    start = beijing("2026-06-12 17:00")
    assert SHANGHAI.add_working_time(start, timedelta(hours=2)) == beijing("2026-06-15 10:00")
    # 30 September 17:00, 2 hours: the holiday week is skipped; the Saturday workday counts.
    start = beijing("2026-09-30 17:00")
    assert SHANGHAI.add_working_time(start, timedelta(hours=2)) == beijing("2026-10-08 10:00")
    # With a lunch break, the clock stops at noon.
    lunch = BusinessCalendar(hours=parse_hours("09:00-12:00,13:00-18:00"))
    start = beijing("2026-06-10 11:00")
    assert lunch.add_working_time(start, timedelta(hours=2)) == beijing("2026-06-10 14:00")
    assert lunch.working_time_between(start, beijing("2026-06-10 14:00")) == timedelta(hours=2)


def test_lunar_festivals() -> None:
    assert lunar_to_solar(2026, 1, 1) == date(2026, 2, 17)  # Spring Festival
    assert lunar_to_solar(2026, 1, 15) == date(2026, 3, 3)  # Lantern Festival
    assert lunar_to_solar(2026, 5, 5) == date(2026, 6, 19)  # Dragon Boat
    assert lunar_to_solar(2026, 8, 15) == date(2026, 9, 25)  # Mid-Autumn
    assert next_lunar_occurrence(1, 1, date(2026, 3, 1)) == date(2027, 2, 6)
    # Lunar New Year's Eve is the last day of the twelfth month, 29 or 30 days long.
    assert lunar_to_solar(2025, 12, 30) == date(2026, 2, 16)


def test_settings_refuse_what_the_calendar_cannot_read() -> None:
    for name, value in (
        ("business_timezone", "Mars/Olympus"),
        ("business_hours", "18:00-09:00"),
        ("business_hours", "9-18"),
        ("business_extra_holidays", "2027-02-30"),
    ):
        with pytest.raises(ConfigError, match=f"CUSTOS_{name.upper()}"):
            load_settings(**{name: value})
    assert parse_days("2027-02-05..2027-02-07") == {
        date(2027, 2, 5),
        date(2027, 2, 6),
        date(2027, 2, 7),
    }
    assert parse_hours("09:00-18:00") == ((time(9), time(18)),)


CONSULT = """
mutation($c: ID!) {
  logInteraction(input: {customerId: $c, channel: WECHAT, direction: INBOUND,
                         kind: CONSULTATION}) {
    ... on InteractionPayload { interaction { firstResponseDueAt solutionDueAt } }
  }
}
"""


async def test_sla_clocks_run_on_business_hours(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    token = api.token("agent", subject="agent-1", team="east")
    # Asked at 17:00 on 30 September in Beijing, just before the National Day week.
    state.services.clock = FixedClock(beijing("2026-09-30 17:00"))
    body = await api.gql(CONSULT, {"c": str(customer)}, token=token)
    due = body["data"]["logInteraction"]["interaction"]
    assert datetime.fromisoformat(due["firstResponseDueAt"]) == beijing("2026-10-08 10:00")
    # 24 working hours: 1 on 30 September, 9 on the 8th, 9 on the 9th, then 5 on the
    # Saturday workday 10 October: 14:00.
    assert datetime.fromisoformat(due["solutionDueAt"]) == beijing("2026-10-10 14:00")


METRICS = """
query($from: Date!, $to: Date!) {
  metrics(from: $from, to: $to, granularity: MONTH) {
    total { current { orders salesTotal } series { bucket kpis { orders } } }
  }
}
"""


async def _metrics(api: Api, start: str, end: str) -> dict[str, Any]:
    token = api.token("analyst", subject="ann")
    body = await api.gql(METRICS, {"from": start, "to": end}, token=token, purpose="analytics")
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["metrics"]["total"]
    return result


async def test_metrics_periods_are_business_days(api: Api, state: AppState) -> None:
    customer = await make_customer(state, created_at=datetime(2025, 1, 1, tzinfo=UTC))
    product = await make_product(state, "TEA", "10", "5")
    # 30 September 17:00 UTC is 1 October 01:00 in Beijing: a Q4 order.
    await make_order(state, customer, "2026-09-30 17:00", [(product, 1, "10", "5")])
    # 30 September 15:00 UTC is 23:00 in Beijing: still Q3.
    await make_order(state, customer, "2026-09-30 15:00", [(product, 2, "10", "5")])
    q3 = await _metrics(api, "2026-07-01", "2026-09-30")
    q4 = await _metrics(api, "2026-10-01", "2026-12-31")
    assert (q3["current"]["orders"], q3["current"]["salesTotal"]) == (1, "20.00")
    assert (q4["current"]["orders"], q4["current"]["salesTotal"]) == (1, "10.00")
    assert [(p["bucket"], p["kpis"]["orders"]) for p in q4["series"]] == [
        ("2026-10-01", 1),
        ("2026-11-01", 0),
        ("2026-12-01", 0),
    ]
    assert q3["series"][-1] == {"bucket": "2026-09-01", "kpis": {"orders": 1}}


async def test_metrics_follow_daylight_saving_in_another_zone(api: Api, state: AppState) -> None:
    analytics = state.services.analytics
    analytics.config = replace(analytics.config, timezone="Europe/Berlin")
    customer = await make_customer(state, created_at=datetime(2025, 1, 1, tzinfo=UTC))
    product = await make_product(state, "TEA", "10", "5")
    # Summer (UTC+2): 31 March 22:30 UTC is 1 April in Berlin; winter (UTC+1): 31 January
    # 23:30 UTC is 1 February.
    await make_order(state, customer, "2026-03-31 22:30", [(product, 1, "10", "5")])
    await make_order(state, customer, "2026-01-31 23:30", [(product, 1, "10", "5")])
    year = await _metrics(api, "2026-01-01", "2026-04-30")
    assert [(p["bucket"], p["kpis"]["orders"]) for p in year["series"]] == [
        ("2026-01-01", 0),
        ("2026-02-01", 1),
        ("2026-03-01", 0),
        ("2026-04-01", 1),
    ]


QUEUE = "query { careQueue(days: 30) { reason dueOn detail } }"


async def test_care_holidays_are_chinese_festivals_by_default(api: Api, state: AppState) -> None:
    await make_customer(state, owner_id="agent-1", birthday=None)
    # 1 September 2026, 09:00 in Beijing: Mid-Autumn falls on 25 September.
    state.services.clock = FixedClock(beijing("2026-09-01 09:00"))
    token = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(QUEUE.replace("30", "25"), token=token)
    holidays = {
        (i["dueOn"], i["detail"]) for i in body["data"]["careQueue"] if i["reason"] == "HOLIDAY"
    }
    assert holidays == {("2026-09-25", "Mid-Autumn Festival 中秋节")}
    # No Christmas by default; Spring Festival is on the lunar date.
    state.services.clock = FixedClock(beijing("2026-12-20 09:00"))
    later = await api.gql(QUEUE, token=token)
    festive = {
        (i["dueOn"], i["detail"]) for i in later["data"]["careQueue"] if i["reason"] == "HOLIDAY"
    }
    assert festive == {("2027-01-01", "New Year's Day 元旦")}
    state.services.clock = FixedClock(beijing("2027-02-01 09:00"))
    spring = await api.gql(QUEUE, token=token)
    assert ("2027-02-06", "Spring Festival 春节") in {
        (i["dueOn"], i["detail"]) for i in spring["data"]["careQueue"] if i["reason"] == "HOLIDAY"
    }


async def test_today_is_the_business_day(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", birthday=date(1990, 6, 11))
    # 10 June 2026 20:00 UTC is already 11 June in Beijing: the birthday is today.
    state.services.clock = FixedClock(datetime(2026, 6, 10, 20, 0, tzinfo=UTC))
    token = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(
        "query { careQueue(days: 0) { customerId reason dueOn } }", token=token, purpose="support"
    )
    assert {"customerId": str(customer), "reason": "BIRTHDAY", "dueOn": "2026-06-11"} in body[
        "data"
    ]["careQueue"]
