"""`custos keys init|rotate|retire`: a new keyring, online resumable rotation, retirement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from server.cli.console import console, progress_bar
from server.cli.context import open_command, run

if TYPE_CHECKING:
    from server.keys.service import KeyRotationService, RotationReport

app = typer.Typer(help="The keyring: create, rotate, retire.", no_args_is_help=True)
T = TypeVar("T")


async def _with_rotation(
    name: str, batch_size: int, pause: float, job: Callable[[KeyRotationService], Awaitable[T]]
) -> T:
    """Run a rotation job as one command; the job appends the command's event in the
    transaction that finishes it."""
    from server.keys.service import KeyRotationService

    async with open_command(name) as command:
        service = KeyRotationService(
            command.vault,
            command.sessions,
            command.clock,
            batch_size=batch_size,
            pause_seconds=pause,
            audit=command,
        )
        return await job(service)


@app.command("init")
def keys_init() -> None:
    """Create the keyring at CUSTOS_KEYRING (mode 600) for a production install; refused
    if one exists. Back it up, and its key store (`<keyring>.shred.db`), apart from the
    database."""
    from server.config import load_settings
    from server.errors import ValidationError
    from server.vault import LocalKeyring

    settings = load_settings()
    if settings.keyring.exists():
        raise ValidationError(
            f"a keyring exists at {settings.keyring}; it is never replaced", code="KEYRING_EXISTS"
        )
    LocalKeyring.load(settings.keyring, create=True)
    console.print(f"keyring created at {settings.keyring}: back it up, apart from the database")


@app.command("rotate")
def keys_rotate(
    blind_index: Annotated[
        bool, typer.Option("--blind-index", help="Rotate the blind-index key instead of the KEK.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per committed batch.")] = 200,
    pause: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait between batches (eases load).")
    ] = 0.0,
) -> None:
    """Add a key version and rewrap every DEK (or recompute every blind index) online.

    Resumable: if a run is interrupted, running the command again continues it.
    """
    from server.keys.service import BLIND_INDEX, KEK

    kind = BLIND_INDEX if blind_index else KEK

    async def rotate(service: KeyRotationService) -> RotationReport:
        with progress_bar() as bar:
            task = bar.add_task(f"rotating {kind}", total=None)
            return await service.rotate(
                kind, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )

    report = run(_with_rotation(f"keys rotate {kind}", batch_size, pause, rotate))
    console.print(
        f"{kind} rotation to version {report.to_version} "
        f"{'resumed and ' if report.resumed else ''}finished: {report.updated} updated, "
        f"{report.skipped} skipped (erased)"
    )


@app.command("retire")
def keys_retire(
    kek: Annotated[int | None, typer.Option("--kek", help="KEK version to retire.")] = None,
    blind_index: Annotated[
        int | None, typer.Option("--blind-index", help="Blind-index key version to retire.")
    ] = None,
) -> None:
    """Remove an old key version; refused while any customer still uses it."""
    from server.keys.service import BLIND_INDEX, KEK

    if kek is not None and blind_index is None:
        kind, version = KEK, kek
    elif blind_index is not None and kek is None:
        kind, version = BLIND_INDEX, blind_index
    else:
        raise typer.BadParameter("give exactly one of --kek or --blind-index")

    async def retire(service: KeyRotationService) -> None:
        await service.retire(kind, version)

    run(_with_rotation(f"keys retire {kind}", 200, 0.0, retire))
    console.print(f"{kind} version {version} retired")
