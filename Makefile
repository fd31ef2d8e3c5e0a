# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# Reproducible installs (#23): every package, the installer and the build backend at the version and with
# the hashes of a lock file (requirements/*.lock, made by `make lock`); the project itself goes in last,
# built with the locked setuptools and without fetching anything (--no-deps --no-build-isolation).
RUN_LOCK := requirements/run.lock
TEST_LOCK := requirements/test.lock
LOCKED_INSTALL := $(BIN)/pip install --quiet --require-hashes --no-deps
UV_VERSION := 0.13.9

.PHONY: run test lint install install-test bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(RUN_LOCK) | $(BIN)/python
	$(LOCKED_INSTALL) -r $(RUN_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml $(TEST_LOCK) | $(BIN)/python
	$(LOCKED_INSTALL) -r $(TEST_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP) $(TEST_STAMP)

install: $(STAMP)
install-test: $(TEST_STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/fcx serve --demo --host 127.0.0.1 --port 8000

# The whole suite under the international profile on SQLite and PostgreSQL, then every test that
# hashes, signs or encrypts again under 国密 (FCX_CRYPTO_PROFILE=gm, #18) on PostgreSQL: the stricter of
# the two (it enforces column lengths, which an SM2 signature or SM3 digest could outgrow), and the
# profile's algorithms do not depend on the database.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile
	FCX_CRYPTO_PROFILE=gm FCX_TEST_BACKENDS=postgresql $(BIN)/python -m pytest -n 2 --dist loadfile -m crypto

# Style, the architecture contracts (.importlinter, empty ignore lists) and static types.
lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

# Update the lock files after a change to pyproject.toml's dependencies (versions already locked are kept;
# `make lock UPGRADE=1` moves every package to its newest allowed release). uv resolves for every platform
# (--universal) and records each file's hash; commit both files with the change that needed them.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"
	for lock in run test; do \
	  extras=""; [ $$lock = test ] && extras="--extra test --extra spark --extra bench"; \
	  $(BIN)/uv pip compile pyproject.toml requirements/build.in $$extras --generate-hashes --universal \
	    --python-version 3.11 $(if $(UPGRADE),--upgrade,) -o requirements/$$lock.lock -q || exit 1; \
	done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
