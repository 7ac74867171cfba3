"""`custos demo`: realistic demo data, deterministic for a seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from server.cli.console import console, progress_bar
from server.cli.context import open_command, run
from server.clock import Clock
from server.config import Settings, load_settings

if TYPE_CHECKING:
    from server.demo import DemoReport


def demo(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to create.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
) -> None:
    """Fill the database with realistic demo data."""
    from server.data.migrate import upgrade_to_head

    settings = load_settings()
    upgrade_to_head(settings.database_url)
    run(seed_demo(settings, customers, seed, only_if_empty=False))


async def seed_demo(
    settings: Settings,
    customers: int,
    seed: int,
    *,
    only_if_empty: bool,
    clock: Clock | None = None,
) -> DemoReport | None:
    """Add demo customers in one transaction with the command's audit event; with
    `only_if_empty`, nothing (and no event) if the database has customers already."""
    from server.customer.repository import CustomerRepository
    from server.demo import DemoBuilder

    async with (
        open_command("demo", settings=settings, clock=clock) as command,
        command.transaction() as session,
    ):
        await command.services.authorizer.ensure_seeded(session)
        if only_if_empty and await CustomerRepository(session).any_exist():
            command.skip_audit()
            return None
        builder = DemoBuilder(command.vault, seed=seed, now=command.clock.now())
        with progress_bar() as bar:
            task = bar.add_task("demo customers", total=customers)
            report = await builder.run(
                session,
                customers,
                progress=lambda done: bar.update(task, completed=done),
                audit=command.audit,
            )
    console.print(
        f"created {report.customers} customers, {report.orders} orders, "
        f"{report.interactions} interactions, {report.complaints} complaints, "
        f"{report.referrals} referrals, {report.campaigns} campaigns with "
        f"{report.campaign_recipients} recipients"
    )
    return report
