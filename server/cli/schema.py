"""`custos schema`: the GraphQL SDL on stdout."""

from __future__ import annotations

import sys


def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from schema.build import print_sdl

    sys.stdout.write(print_sdl())
