"""`custos migrate`: upgrade the database schema."""

from __future__ import annotations

from server.cli.console import console
from server.config import load_settings


def migrate() -> None:
    """Upgrade the database to the newest schema."""
    from server.data.migrate import upgrade_to_head

    settings = load_settings()
    upgrade_to_head(settings.database_url)
    console.print("database is at the newest migration")
