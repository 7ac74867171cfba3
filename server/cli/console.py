"""Where `custos` writes: messages and progress on stderr, results on stdout.

Messages are never wrapped (`soft_wrap`): off a terminal rich would break lines at 80
columns, splitting ids, paths and tokens that a script or a person copies whole.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True, soft_wrap=True)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def error_line(message: str) -> None:
    """One line on stderr naming the problem, never wrapped and never read as markup."""
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
