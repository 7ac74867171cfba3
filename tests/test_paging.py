"""Paging: the cursor codec, BAD_CURSOR on every bad `after`, pages that cover a list
exactly once, and `first` checked in one place."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schema.paging import id_cursor, keyset_cursor, seq_cursor
from server.app import AppState
from server.errors import ValidationError
from server.paging import page_of, pages_of
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import make_order, make_product, manager

LISTS: dict[str, str] = {
    "customers": "customers(first: $first, after: $after) "
    "{ pageInfo { hasNextPage endCursor } nodes { id } }",
    "complaints": "complaints(first: $first, after: $after) "
    "{ pageInfo { hasNextPage endCursor } nodes { id } }",
    "orders": "orders(first: $first, after: $after) "
    "{ pageInfo { hasNextPage endCursor } nodes { id } }",
    # The manager's events only: the compliance officer's own searches add events.
    "auditEvents": 'auditEvents(first: $first, after: $after, filter: {subject: "mgr-east"}) '
    "{ pageInfo { hasNextPage endCursor } nodes { id } }",
}
OPEN = """
mutation($input: OpenComplaintInput!) { openComplaint(input: $input) { __typename } }
"""


def query(name: str) -> str:
    return f"query($first: Int!, $after: String) {{ {LISTS[name]} }}"


def tokens(api: Api) -> dict[str, str]:
    mgr = manager(api)
    return {
        "customers": mgr,
        "complaints": mgr,
        "orders": mgr,
        "auditEvents": api.token("compliance", subject="dpo-1"),
    }


async def _seed(api: Api, state: AppState, n: int = 5) -> None:
    customers = [await make_customer(state, owner_id="agent-1", team="east") for _ in range(n)]
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    for customer in customers:
        made = await make_order(api, manager(api), customer, [{"productId": tea, "quantity": 1}])
        assert made["__typename"] == "OrderSaved"
        opened = await api.gql(
            OPEN,
            {
                "input": {
                    "customerId": str(customer),
                    "category": "DELIVERY",
                    "severity": "normal",
                    "description": "Parcel arrived crushed",
                }
            },
            token=manager(api),
            purpose="support",
        )
        assert opened["data"]["openComplaint"]["__typename"] == "ComplaintPayload"


async def _walk(api: Api, name: str, token: str, first: int) -> tuple[list[str], str]:
    """Every id of a list, page by page; and the first page's end cursor."""
    ids: list[str] = []
    after: str | None = None
    cursor = ""
    while True:
        body = await api.gql(
            query(name), {"first": first, "after": after}, token=token, purpose="support"
        )
        assert "errors" not in body, body
        page = body["data"][name]
        ids += [n["id"] for n in page["nodes"]]
        cursor = cursor or page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            return ids, cursor
        after = page["pageInfo"]["endCursor"]


async def _refused(api: Api, name: str, token: str, after: str) -> None:
    response = await api.post(query(name), {"first": 2, "after": after}, token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None, (name, after)
    [error] = body["errors"]
    assert error["path"] == [name]
    assert error["extensions"] == {"code": "BAD_CURSOR", "field": "after"}, (name, after)


async def test_pages_cover_each_list_exactly_once(api: Api, state: AppState) -> None:
    await _seed(api, state)
    for name, token in tokens(api).items():
        everything, _ = await _walk(api, name, token, first=100)
        paged, _ = await _walk(api, name, token, first=2)
        assert len(everything) >= 5, name
        assert paged == everything, name
        assert len(set(paged)) == len(paged), name


async def test_bad_cursors_are_bad_cursor_on_every_list(api: Api, state: AppState) -> None:
    await _seed(api, state, n=3)
    valid: dict[str, str] = {}
    for name, token in tokens(api).items():
        _, valid[name] = await _walk(api, name, token, first=1)
    for name, token in tokens(api).items():
        cursor = valid[name]
        middle = len(cursor) // 2
        edited = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]
        bad = [
            "!!!",
            "",
            "nope",
            "x" * 5000,
            cursor[:-1],  # truncated base64
            cursor[:-6],
            cursor[: len(cursor) // 2],
            edited,  # tampered
            base64.urlsafe_b64encode(b"audit:12").decode(),  # the old audit cursor format
            base64.urlsafe_b64encode(b"audit:99999999999999999999").decode(),
            base64.urlsafe_b64encode("²".encode()).decode(),
        ]
        bad += [valid[other] for other in valid if other != name]  # another list's cursor
        for after in bad:
            await _refused(api, name, token, after)


async def test_forged_cursors_with_valid_checksums_are_refused(api: Api, state: AppState) -> None:
    """The checksum is not a secret: a forged position must still not reach SQL."""
    await _seed(api, state, n=1)
    by_name = tokens(api)
    await _refused(
        api, "auditEvents", by_name["auditEvents"], seq_cursor("audit-event").encode(10**30)
    )
    far = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-23)))
    forged = keyset_cursor("complaint-opened").encode((far, uuid.uuid4()))
    await _refused(api, "complaints", by_name["complaints"], forged)
    other_order = keyset_cursor("customer-created_desc").encode((datetime.now(UTC), uuid.uuid4()))
    await _refused(api, "customers", by_name["customers"], other_order)


async def test_first_is_checked_and_named(api: Api) -> None:
    for name, token in tokens(api).items():
        for first in (-1, 100_000):
            body = await api.gql(query(name), {"first": first}, token=token)
            assert body["data"] is None
            assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}


def test_a_cursor_round_trips_and_names_its_list() -> None:
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    key = (at, uuid.uuid4())
    opened = keyset_cursor("complaint-opened")
    assert opened.decode(opened.encode(key)) == key
    assert opened.decode(None) is None
    assert seq_cursor("audit-event").decode(seq_cursor("audit-event").encode(42)) == 42
    record = uuid.uuid4()
    assert id_cursor("order").decode(id_cursor("order").encode(record)) == record
    with pytest.raises(ValidationError) as refused:
        id_cursor("product").decode(id_cursor("order").encode(record))
    assert (refused.value.code, refused.value.field) == ("BAD_CURSOR", "after")
    with pytest.raises(ValidationError):
        keyset_cursor("timeline").decode(opened.encode(key))


def test_pages_from_limit_plus_one_rows() -> None:
    more = page_of([1, 2, 3], 2)
    assert (more.items, more.has_next_page, more.total_count) == ([1, 2], True, None)
    last = page_of([1, 2], 2)
    assert (last.items, last.has_next_page) == ([1, 2], False)
    rows: list[tuple[str, int]] = [("a", 1), ("a", 2), ("a", 3), ("b", 4)]
    pages = pages_of(["a", "b", "c"], rows, key=lambda r: r[0], first=2, totals={"a": 3})
    assert {k: (len(p.items), p.has_next_page, p.total_count) for k, p in pages.items()} == {
        "a": (2, True, 3),
        "b": (1, False, 0),
        "c": (0, False, 0),
    }
