"""The closed sets of the API as GraphQL enums.

Each enum's values are the domain's own strings (`high`, `at_risk`, `won_back`), so a
resolver may return the domain value as it is and an input hands the service
`member.value`; the GraphQL names are those strings in upper case (`AT_RISK`). The domain
keeps its tuples and never imports these; `tests/test_schema_contract.py` checks that
every enum here lists exactly its domain's values.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import strawberry

E = TypeVar("E", bound=enum.Enum)


def domain_value(member: enum.Enum | None) -> Any:
    """The domain string of an input enum (None stays None, UNSET stays UNSET)."""
    return member.value if isinstance(member, enum.Enum) else member


@strawberry.enum(description="Value tier by spend and order count (the configured tier rule).")
class CustomerTier(enum.Enum):
    HIGH = "high"
    MID = "mid"
    LOW = "low"


@strawberry.enum(description="Where a customer stands in its lifecycle.")
class Lifecycle(enum.Enum):
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"
    WON_BACK = "won_back"


@strawberry.enum(description="What a customer values most.")
class NeedType(enum.Enum):
    QUALITY = "quality"
    VALUE = "value"
    SERVICE = "service"


@strawberry.enum(description="ABC grade by cumulative share of revenue (A: the top).")
class ValueGrade(enum.Enum):
    A = "A"
    B = "B"
    C = "C"


@strawberry.enum(description="A three-step scale: price sensitivity, customisation, intent.")
class Level(enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum(description="A customer's gender, as the customer states it.")
class Gender(enum.Enum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


@strawberry.enum(description="Where an order stands; moves follow the order state machine.")
class OrderStatus(enum.Enum):
    CREATED = "created"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


@strawberry.enum(description="How an audited operation ended.")
class AuditOutcome(enum.Enum):
    OK = "ok"
    PARTIAL = "partial"
    DENIED = "denied"
    ERROR = "error"


@strawberry.enum(
    description="The kind of an audited operation: a GraphQL query or mutation, a CLI "
    "command, a console action that is no GraphQL operation (sign-in, sign-out, accounts, "
    "the ledger check), or a request refused before its operation was known."
)
class OperationType(enum.Enum):
    QUERY = "query"
    MUTATION = "mutation"
    CLI = "cli"
    CONSOLE = "console"
    UNKNOWN = "unknown"


@strawberry.enum(description="A purpose of access, as stated in the X-Purpose header.")
class Purpose(enum.Enum):
    SUPPORT = "support"
    SALES = "sales"
    MARKETING = "marketing"
    ANALYTICS = "analytics"
    COMPLIANCE = "compliance"


@strawberry.enum(
    description="How an access touched a field: revealed in clear or masked, or, for a "
    "lookup by the field's value, whether it found a record (the value is never kept)."
)
class FieldAccessMode(enum.Enum):
    CLEAR = "clear"
    MASKED = "masked"
    HIT = "hit"
    MISS = "miss"


@strawberry.enum(description="A field read rule's mode: clear, masked, or not at all.")
class FieldMode(enum.Enum):
    CLEAR = "clear"
    MASKED = "masked"
    NONE = "none"


@strawberry.enum(description="What a policy rule does: allow or deny.")
class PolicyEffect(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


@strawberry.enum(description="Row scope: every record, the caller's team's, or its own.")
class RowScope(enum.Enum):
    ALL = "all"
    TEAM = "team"
    OWN = "own"


@strawberry.enum(description="Why a customer is in the care queue.")
class CareReason(enum.Enum):
    CADENCE = "cadence"
    BIRTHDAY = "birthday"
    HOLIDAY = "holiday"
    ANNIVERSARY = "anniversary"
    COMPLAINT_FOLLOW_UP = "complaint_follow_up"
    AT_RISK = "at_risk"


@strawberry.enum(description="Why a customer's points changed.")
class LoyaltyReason(enum.Enum):
    PURCHASE = "purchase"
    REFERRAL = "referral"
    REDEEM = "redeem"
    ORDER_REVERSAL = "order_reversal"


def enum_of(kind: type[E], value: Any) -> E | None:
    """A domain string as its enum member (None stays None)."""
    return None if value is None else kind(value)
