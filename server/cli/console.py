"""Where `custos` writes: messages and progress on stderr, results on stdout.

Messages are never wrapped (`soft_wrap`): off a terminal rich would break lines at 80
columns, splitting ids, paths and tokens that a script or a person copies whole. Progress
is a bar on a terminal and plain lines elsewhere (a log, a pipe), so a long command is
never silent there either.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(stderr=True, soft_wrap=True)
# Off a terminal: a line per tenth of a task, at least every this many seconds, and at its end.
LINE_EVERY_SECONDS = 10.0


class CommandProgress(Progress):
    """rich's bar on a terminal; elsewhere one plain line per step of progress."""

    def __init__(self) -> None:
        super().__init__(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._said: dict[TaskID, tuple[int, float]] = {}

    def update(self, task_id: TaskID, **changes: Any) -> None:
        super().update(task_id, **changes)
        self._line(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._line(task_id)

    def _line(self, task_id: TaskID) -> None:
        if not self.disable:
            return
        task = self._tasks[task_id]
        now = time.monotonic()
        tenth = int(task.completed * 10 // task.total) if task.total else -1
        last_tenth, last_at = self._said.get(task_id, (-1, task.start_time or now))
        if tenth == last_tenth and now - last_at < LINE_EVERY_SECONDS:
            return
        self._said[task_id] = (tenth, now)
        done = f"{task.completed:.0f}" + (f"/{task.total:.0f}" if task.total else "")
        console.print(f"{task.description}: {done} ({task.elapsed or 0:.0f} s)", markup=False)


def progress_bar() -> Progress:
    return CommandProgress()


def error_line(message: str) -> None:
    """One line on stderr naming the problem, never wrapped and never read as markup."""
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
