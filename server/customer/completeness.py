"""How complete and how current a customer file is.

The score is the sum of the weights of the facts the file holds (presence only: no
value is decrypted to score it). Weights, declared in the field registry
(server/data/customer_fields.py), summing to 100:

    basic facts 60  name 10, phone 10, email 10, address 5, birthday 5, industry 5,
                    region 5, occupation 4, gender 3, company size 3
    needs       35  preferences 8, potential needs 7, expectations 5, preferred channel 5,
                    price sensitivity 4, customisation 3, upgrade intent 3
    verified     5  phone verified 3, email verified 2

A file not reviewed (`markReviewed`) for `review_months` months is stale: every fact it
holds is listed as stale until someone reviews it.

A caller is scored and shown only the facts it may read in some mode (a verification
stamp goes with its contact): missing, stale and the score say nothing about a field the
caller's policy denies.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from server.data.customer_fields import CUSTOMER_FIELDS

# From the field registry (server/data/customer_fields.py), in its order: the order in
# which missing and stale facts are listed.
WEIGHTS: dict[str, int] = {f.name: f.weight for f in CUSTOMER_FIELDS if f.weight}
assert sum(WEIGHTS.values()) == 100


@dataclass(frozen=True, slots=True)
class Completeness:
    score: int
    missing_fields: list[str]
    stale_fields: list[str]
    needs_review: bool
    review_due_at: datetime | None


def months_before(at: datetime, months: int) -> datetime:
    """The same day-of-month `months` earlier (clamped to the month's last day)."""
    year, month = divmod(at.year * 12 + at.month - 1 - months, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


def months_after(at: datetime, months: int) -> datetime:
    return months_before(at, -months)


def assess(
    present: Mapping[str, bool], reviewed_at: datetime | None, now: datetime, review_months: int
) -> Completeness:
    """Score and lists over the facts in `present` (those the caller may learn about: a
    fact it cannot read is neither scored nor listed, so the score does not tell whether
    it is held)."""
    facts = [f for f in WEIGHTS if f in present]
    held = [f for f in facts if present[f]]
    due = months_after(reviewed_at, review_months) if reviewed_at is not None else None
    stale = due is None or due <= now
    return Completeness(
        score=sum(WEIGHTS[f] for f in held),
        missing_fields=[f for f in facts if not present[f]],
        stale_fields=held if stale else [],
        needs_review=stale,
        review_due_at=due,
    )
