# The two commands a newcomer needs: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every dependency, pinned with hashes; `make lock` rewrites it from pyproject.toml.
LOCK := requirements.lock
UV_VERSION := 0.13.9
# Test processes (pytest-xdist): each has its own PostgreSQL database and SQLite template.
# `make test WORKERS=0` runs in this one process.
WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

.PHONY: serve test test-fast lint schema bench bench-peer lock lock-upgrade graphiql-assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/custos serve --seed-if-empty 1000

test: $(STAMP) lint
	$(PYTEST)

# The edit-run loop: everything but the tests marked slow (other processes, long runs).
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy server schema tests bench tools
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python -m tools.lint_ast
	$(BIN)/python -m tools.schema_breaks

schema: $(STAMP)
	$(BIN)/custos schema > schema/schema.graphql

bench: $(STAMP)
	$(BIN)/python -m bench

# Dev GraphiQL's vendored assets, rebuilt from the pinned npm packages (needs npm).
graphiql-assets:
	tools/graphiql/vendor.sh

# Custos against PostGraphile 4 (installed with npm into bench/postgraphile) and the goals.
bench-peer: $(STAMP)
	$(BIN)/python -m bench.peer

# Pins for every platform and Python >= 3.11, from pyproject.toml. `make lock` keeps the
# current pins where they still fit (after adding or changing a dependency);
# `make lock-upgrade` moves every pin to the newest version pyproject.toml allows.
# Commit the result: `make` installs from it.
LOCK_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 \
	--generate-hashes --extra dev --output-file $(LOCK) pyproject.toml

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'

lock: $(BIN)/uv
	$(LOCK_COMPILE)

lock-upgrade: $(BIN)/uv
	$(LOCK_COMPILE) --upgrade

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
