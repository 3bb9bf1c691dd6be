# Two commands on a fresh machine: `make run` (the gateway) and `make test` (the whole suite).
# Both bootstrap .venv from this repository's own files; nothing is installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.keyrail-installed

.PHONY: run test lint unit integration bench clean

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing Keyrail with its test tools (first run takes a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/keyrail up

lint: $(STAMP)
	@echo "==> ruff (lint + format) and mypy"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test: lint
	@echo "==> pytest: unit tests, then integration tests on the real embedded NATS, OpenBao and chDB"
	$(BIN)/python -m pytest

# The benchmark uses wrk from Debian's packages; BENCH_ARGS, e.g. --compare-litellm or --seconds 5.
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "==> installing wrk (apt-get)"; apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .keyrail .pytest_cache .mypy_cache .ruff_cache
