# Two commands set everything up on a fresh machine:
#   make test   - creates .venv, installs, lints, type-checks and runs the tests
#   make dev    - runs the service locally (see README)
PYTHON ?= python3
PORT ?= 3000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test dev bench lint typecheck unit test-unit test-handlers test-system validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# dynalite, the second DynamoDB implementation the tests run against (skipped without npm).
node_modules/.bin/dynalite: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; else echo "npm not found: tests run on moto only"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Every tier (what `make test` runs).
unit: $(STAMP) node_modules/.bin/dynalite
	$(BIN)/pytest

# The tiers on their own. Unit: no moto, no server (under 30 s). Handlers: the real handlers
# in-process on moto. System: the dev server over HTTP, the browser, fuzzing, and the
# handler modules marked dynamodb_backends again on dynalite.
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-handlers: $(STAMP)
	$(BIN)/pytest tests/handlers --dynamodb=moto

test-system: $(STAMP) node_modules/.bin/dynalite
	$(BIN)/pytest tests/system
	$(BIN)/pytest tests/handlers --dynamodb=dynalite -m dynamodb_backends

validate: $(STAMP)
	SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint --region us-east-1

test: lint typecheck validate unit

dev: $(STAMP)
	$(BIN)/python -m devserver --port $(PORT)

# A few minutes on 2 cores; writes docs/performance.md. Not part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .aws-sam
