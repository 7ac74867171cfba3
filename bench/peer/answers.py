"""Are Custos's answer and the peer's the same? Checked before any timing counts.

The peer (PostGraphile) names its root and relation fields after tables and foreign keys
(`customerById`, `allCustomers`, `interactionsByCustomerId`), prints timestamps in its own
offset form and enum-like columns as stored. `canonical` maps a peer answer onto Custos's
names and both onto one value form; `differences` walks the two trees and names every
place they differ. `check_same` refuses a comparison that compared nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

# Peer field name -> Custos field name.
PEER_NAMES: dict[str, str] = {
    "customerById": "customer",
    "allCustomers": "customers",
    "interactionsByCustomerId": "interactions",
}


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return value
    return parsed.astimezone(UTC).isoformat()


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# Per field: the one form both sides are compared in.
VALUE_FORMS: dict[str, Callable[[Any], Any]] = {
    "createdAt": _instant,
    "updatedAt": _instant,
    "occurredAt": _instant,
    # Enums: Custos answers their names (upper case), the plaintext mirror the stored values.
    "channel": _upper,
    "direction": _upper,
    "kind": _upper,
    "tier": _upper,
    "lifecycle": _upper,
}


class AnswerMismatch(Exception):
    """The two answers differ, or there was nothing to compare."""


def canonical(answer: Any, names: Mapping[str, str] | None = None) -> Any:
    """The answer with the peer's field names mapped to Custos's and values in one form."""
    names = PEER_NAMES if names is None else names
    if isinstance(answer, list):
        return [canonical(item, names) for item in answer]
    if not isinstance(answer, dict):
        return answer
    out: dict[str, Any] = {}
    for key, value in answer.items():
        name = names.get(key, key)
        form = VALUE_FORMS.get(name)
        out[name] = form(value) if form is not None else canonical(value, names)
    return out


def differences(ours: Any, theirs: Any, path: str = "$", limit: int = 10) -> list[str]:
    """Where the two trees differ, as JSON paths (at most `limit`)."""
    found: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                if key not in b:
                    found.append(f"{at}.{key}: only in Custos's answer")
                elif key not in a:
                    found.append(f"{at}.{key}: only in the peer's answer")
                else:
                    walk(a[key], b[key], f"{at}.{key}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                found.append(f"{at}: {len(a)} items in Custos's answer, {len(b)} in the peer's")
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{at}[{i}]")
        elif a != b or type(a) is not type(b):
            found.append(f"{at}: Custos {a!r:.80} != peer {b!r:.80}")

    walk(ours, theirs, path)
    return found


def count_records(answer: Any) -> int:
    """How many objects with an `id` the answer holds (customers, interactions)."""
    if isinstance(answer, list):
        return sum(count_records(item) for item in answer)
    if not isinstance(answer, dict):
        return 0
    own = 1 if answer.get("id") is not None else 0
    return own + sum(count_records(value) for value in answer.values())


def check_same(ours: Any, theirs: Any, *, at_least: int) -> int:
    """Raise AnswerMismatch unless both answers are error-free, hold at least `at_least`
    records and are equal once in canonical form; returns the number of records compared."""
    for who, body in (("Custos", ours), ("the peer", theirs)):
        if not isinstance(body, dict) or body.get("errors") or body.get("data") is None:
            raise AnswerMismatch(f"{who} did not answer with data: {str(body)[:300]}")
    ours_data = canonical(ours["data"], {})
    theirs_data = canonical(theirs["data"])
    records = count_records(ours_data)
    if records < at_least:
        raise AnswerMismatch(
            f"nothing to compare: Custos's answer holds {records} records, "
            f"the scenario needs at least {at_least}"
        )
    found = differences(ours_data, theirs_data)
    if found:
        raise AnswerMismatch("answers differ: " + "; ".join(found))
    return records
