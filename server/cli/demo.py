"""`custos demo`: realistic demo data, deterministic for a seed.

The data goes in committed steps of `--batch-size` customers (the first also writes the
catalogue, the last what needs every customer: referrers' levels, campaigns). Each step
commits with its own audit event (`demo customers 501-1000 of 20000`), so a large run
never holds one huge transaction, and an interrupted run keeps what it committed, each
part with its event. A run of one batch is one transaction with one event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from server.cli.console import console, progress_bar
from server.cli.context import open_command, run
from server.clock import Clock
from server.config import Settings, load_settings

if TYPE_CHECKING:
    from server.demo import DemoReport

DEFAULT_BATCH = 500


def demo(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to create.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Customers per committed step.")
    ] = DEFAULT_BATCH,
) -> None:
    """Fill the database with realistic demo data."""
    from server.data.migrate import upgrade_to_head

    settings = load_settings()
    upgrade_to_head(settings.database_url)
    run(seed_demo(settings, customers, seed, only_if_empty=False, batch_size=batch_size))


async def seed_demo(
    settings: Settings,
    customers: int,
    seed: int,
    *,
    only_if_empty: bool,
    clock: Clock | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> DemoReport | None:
    """Add demo customers in committed steps, each with its audit event; with
    `only_if_empty`, nothing (and no event) if the database has customers already."""
    from server.customer.repository import CustomerRepository
    from server.demo import DemoBuilder

    async with open_command("demo", settings=settings, clock=clock) as command:
        async with command.sessions() as session, session.begin():
            await command.services.authorizer.ensure_seeded(session)
            if only_if_empty and await CustomerRepository(session).any_exist():
                command.skip_audit()
                return None
        analytics = command.services.analytics.config
        builder = DemoBuilder(
            command.vault,
            seed=seed,
            now=command.clock.now(),
            tier_rule=analytics.tier_rule,
            segment_windows=analytics.segment_windows,
        )
        with progress_bar() as bar:
            task = bar.add_task("demo customers", total=customers)
            done = 0
            while done < customers:
                size = min(batch_size, customers - done)
                last = done + size == customers
                async with command.step(f"customers {done + 1}-{done + size} of {customers}") as s:
                    builder.audit = command.audit
                    if done == 0:
                        await builder.begin(s)
                    await builder.add_customers(s, size)
                    if last:
                        bar.update(task, completed=customers)
                        final = bar.add_task("referrals, member levels, campaigns", total=1)
                        report = await builder.finish(s)
                done += size
                bar.update(task, completed=done)
            bar.update(final, completed=1)
    console.print(
        f"created {report.customers} customers, {report.orders} orders, "
        f"{report.interactions} interactions, {report.complaints} complaints, "
        f"{report.referrals} referrals, {report.campaigns} campaigns with "
        f"{report.campaign_recipients} recipients"
    )
    return report
