"""`python -m server.cli`: the `custos` command."""

from server.cli import main

main()
