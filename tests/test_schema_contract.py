"""The committed SDL is the schema the server serves: regenerate with `make schema`."""

from __future__ import annotations

from pathlib import Path

from schema.build import print_sdl

SDL = Path(__file__).resolve().parents[1] / "schema" / "schema.graphql"


def test_committed_schema_is_current() -> None:
    assert SDL.read_text() == print_sdl(), "schema/schema.graphql is stale: run `make schema`"


def test_contract_names_exist() -> None:
    sdl = print_sdl()
    for name in (
        "customers(first: Int! = 20, after: String = null, filter: CustomerFilterInput = null",
        "customer(id: ID = null, customerNumber: String = null): Customer",
        "customerNumber: String",
        "customerByContact(",
        "totalCount: Int!",
        "nationalId: String",
        "bankCard: String",
        "lifecycle: String",
        "tier: String",
    ):
        assert name in sdl, name
