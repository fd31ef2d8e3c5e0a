# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP) $(TEST_STAMP)

install: $(STAMP)
install-test: $(TEST_STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/fcx serve --demo --host 127.0.0.1 --port 8000

# The whole suite under the international profile, then every test that hashes, signs or encrypts
# again under 国密 (FCX_CRYPTO_PROFILE=gm), each on SQLite and PostgreSQL (#18).
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile
	FCX_CRYPTO_PROFILE=gm $(BIN)/python -m pytest -n 2 --dist loadfile -m crypto

# Style, the architecture contracts (.importlinter, empty ignore lists) and static types.
lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
