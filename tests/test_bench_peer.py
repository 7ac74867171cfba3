"""The peer bench's answer check (bench/peer/answers.py) compares something, and notices
when the two answers differ: otherwise `python -m bench.peer` could time two servers
returning different data, or nothing at all."""

from __future__ import annotations

from typing import Any

import pytest

from bench.peer.answers import AnswerMismatch, check_same

CUSTOS: dict[str, Any] = {
    "data": {
        "customers": {
            "edges": [
                {
                    "node": {
                        "id": "c1",
                        "name": "王芳",
                        "tier": "MID",
                        "lifecycle": "AT_RISK",
                        "createdAt": "2026-01-01T08:00:00+00:00",
                        "interactions": {
                            "edges": [
                                {
                                    "node": {
                                        "id": "i1",
                                        "channel": "PHONE",
                                        "occurredAt": "2026-01-02T00:00:00+00:00",
                                        "notes": "asked about delivery",
                                    }
                                }
                            ]
                        },
                    }
                }
            ]
        }
    }
}


def peer(name: str = "王芳", notes: str = "asked about delivery") -> dict[str, Any]:
    """The same answer as PostGraphile words it: its field names, its timestamp form,
    enum-like columns as stored."""
    return {
        "data": {
            "allCustomers": {
                "edges": [
                    {
                        "node": {
                            "id": "c1",
                            "name": name,
                            "tier": "mid",
                            "lifecycle": "at_risk",
                            "createdAt": "2026-01-01T16:00:00+08:00",
                            "interactionsByCustomerId": {
                                "edges": [
                                    {
                                        "node": {
                                            "id": "i1",
                                            "channel": "phone",
                                            "occurredAt": "2026-01-02T00:00:00Z",
                                            "notes": notes,
                                        }
                                    }
                                ]
                            },
                        }
                    }
                ]
            }
        }
    }


def test_the_same_data_worded_by_the_peer_is_equal_and_counted() -> None:
    assert check_same(CUSTOS, peer(), at_least=2) == 2


def test_a_differing_value_is_named_by_its_path() -> None:
    with pytest.raises(AnswerMismatch, match=r"interactions\.edges\[0\]\.node\.notes"):
        check_same(CUSTOS, peer(notes="asked about a refund"), at_least=2)
    with pytest.raises(AnswerMismatch, match=r"node\.name: Custos '王芳' != peer '李雷'"):
        check_same(CUSTOS, peer(name="李雷"), at_least=2)


def test_a_comparison_of_nothing_or_of_errors_is_refused() -> None:
    empty: dict[str, Any] = {"data": {"customers": {"edges": []}}}
    with pytest.raises(AnswerMismatch, match="nothing to compare"):
        check_same(empty, {"data": {"allCustomers": {"edges": []}}}, at_least=1)
    with pytest.raises(AnswerMismatch, match="nothing to compare"):
        check_same(CUSTOS, peer(), at_least=3)
    with pytest.raises(AnswerMismatch, match="did not answer with data"):
        check_same(CUSTOS, {"errors": [{"message": "boom"}], "data": None}, at_least=1)


def test_a_round_with_failed_requests_does_not_count() -> None:
    """A round whose requests were refused (a 429, say) timed the refusals: its fast p50
    must not stand for the scenario."""
    from bench.peer.report import _best

    def run(p50: float, failures: int) -> dict[str, Any]:
        return {
            "phase": "peer",
            "target": "custos-1w",
            "scenario": "nested_50x20",
            "concurrency": 1,
            "p50_ms": p50,
            "failures": failures,
        }

    runs = [run(1.1, 3847), run(70.0, 0), run(1.5, 3227)]
    assert _best(runs, "custos-1w", "nested_50x20", 1, "p50_ms") == 70.0
    assert _best(runs[:1], "custos-1w", "nested_50x20", 1, "p50_ms") is None
