"""The complaint state machine: the one table of legal moves.

A move not in the table is refused with ILLEGAL_TRANSITION naming both states. A rating
keeps the state (it is recorded as an event like any other move).
"""

from __future__ import annotations

import enum


class ComplaintStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    FOLLOWED_UP = "followed_up"
    CLOSED = "closed"
    REOPENED = "reopened"


class ComplaintMove(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    START_WORK = "start_work"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    FOLLOW_UP = "follow_up"
    RATE = "rate"
    CLOSE = "close"
    REOPEN = "reopen"


S, M = ComplaintStatus, ComplaintMove

# from state → {move: to state}. Escalation may repeat (each raises the level).
TRANSITIONS: dict[ComplaintStatus, dict[ComplaintMove, ComplaintStatus]] = {
    S.OPEN: {M.ACKNOWLEDGE: S.ACKNOWLEDGED, M.ESCALATE: S.ESCALATED},
    S.ACKNOWLEDGED: {M.START_WORK: S.IN_PROGRESS, M.RESOLVE: S.RESOLVED, M.ESCALATE: S.ESCALATED},
    S.IN_PROGRESS: {M.RESOLVE: S.RESOLVED, M.ESCALATE: S.ESCALATED},
    S.ESCALATED: {M.START_WORK: S.IN_PROGRESS, M.RESOLVE: S.RESOLVED, M.ESCALATE: S.ESCALATED},
    S.RESOLVED: {M.FOLLOW_UP: S.FOLLOWED_UP, M.REOPEN: S.REOPENED},
    S.FOLLOWED_UP: {M.RATE: S.FOLLOWED_UP, M.CLOSE: S.CLOSED, M.REOPEN: S.REOPENED},
    S.CLOSED: {M.RATE: S.CLOSED, M.REOPEN: S.REOPENED},
    S.REOPENED: {
        M.ACKNOWLEDGE: S.ACKNOWLEDGED,
        M.START_WORK: S.IN_PROGRESS,
        M.ESCALATE: S.ESCALATED,
    },
}

# States where the complaint still waits for a resolution.
UNRESOLVED = frozenset({S.OPEN, S.ACKNOWLEDGED, S.IN_PROGRESS, S.ESCALATED, S.REOPENED})
# States where an acknowledgement is still owed.
UNACKNOWLEDGED = frozenset({S.OPEN, S.REOPENED})


def target(status: ComplaintStatus, move: ComplaintMove) -> ComplaintStatus | None:
    """The state `move` leads to from `status`, or None when the move is illegal."""
    return TRANSITIONS[status].get(move)


def legal_paths_to(goal: ComplaintStatus) -> list[ComplaintMove]:
    """The shortest sequence of moves from OPEN to `goal` (for demo data and tests)."""
    frontier: list[tuple[ComplaintStatus, list[ComplaintMove]]] = [(S.OPEN, [])]
    seen = {S.OPEN}
    while frontier:
        status, path = frontier.pop(0)
        if status is goal:
            return path
        for move, to in TRANSITIONS[status].items():
            if to not in seen:
                seen.add(to)
                frontier.append((to, [*path, move]))
    raise ValueError(f"{goal} cannot be reached")
