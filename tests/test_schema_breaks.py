"""The breaking-change check of `make lint` (tools/schema_breaks.py): a removed field or
a changed type fails unless accepted by its exact line; additions pass."""

from __future__ import annotations

from tools.schema_breaks import accepted_lines, check

OLD = """
type Query { customer(id: ID!): Customer }
type Customer { id: ID! tier: String name: String }
"""


def test_a_removed_field_and_a_changed_type_break() -> None:
    new = """
    type Query { customer(id: ID!): Customer }
    enum CustomerTier { HIGH MID LOW }
    type Customer { id: ID! tier: CustomerTier }
    """
    unaccepted, _dangerous, stale = check(OLD, new, set())
    assert sorted(unaccepted) == [
        "FIELD_CHANGED_KIND Field Customer.tier changed type from String to CustomerTier.",
        "FIELD_REMOVED Field Customer.name was removed.",
    ]
    assert stale == []


def test_an_accepted_break_passes_and_a_stale_one_is_reported() -> None:
    new = "type Query { customer(id: ID!): Customer }\ntype Customer { id: ID! tier: String }"
    accepted = accepted_lines(
        "# names are sealed: clients read displayName instead\n"
        "FIELD_REMOVED Field Customer.name was removed.\n"
        "FIELD_REMOVED Field Customer.tier was removed.\n"
    )
    unaccepted, _dangerous, stale = check(OLD, new, accepted)
    assert unaccepted == []
    assert stale == ["FIELD_REMOVED Field Customer.tier was removed."]


def test_additions_and_deprecations_do_not_break() -> None:
    new = """
    type Query { customer(id: ID!): Customer node(id: ID!): Customer }
    type Customer { id: ID! tier: String @deprecated(reason: "use segment") name: String }
    """
    assert check(OLD, new, set()) == ([], [], [])
