# Everything goes through .venv; the stamp re-installs when pyproject.toml changes.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-deps lint typecheck pytest bench bench-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/recorder serve

lint: $(STAMP)
	$(BIN)/ruff check recorder tests bench migrations
	$(BIN)/ruff format --check recorder tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Debian packages some tests need (headless Chromium, fonts); best effort, never fails the build.
test-deps:
	@bash scripts/install-test-deps.sh

test: test-deps lint typecheck pytest

# ripgrep: the search benchmark's comparison (without it the bench falls back to grep, untargeted).
bench-deps:
	@bash scripts/install-test-deps.sh ripgrep

# PostgreSQL is measured too; `make bench RECORDER_TEST_PG_URL=` skips it, another URL moves it.
bench: $(STAMP) bench-deps
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	RECORDER_TEST_PG_URL="$${RECORDER_TEST_PG_URL-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
		$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
