"""Project tooling run by the Makefile: the house-rule linter."""
