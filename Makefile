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

# The bench's targets as tests, quick mode (several minutes); fails when one is missed. Not in CI.
.PHONY: perf
perf: $(STAMP) node_modules/.bin/dynalite
	$(BIN)/pytest -m perf tests/perf

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .aws-sam

# --- Build and deploy (docs/operations.md) ----------------------------------------------
# `sam build` runs tools/sam_build for the layer and every function (BuildMethod: makefile):
# arm64 wheels, then Python 3.13 bytecode for every module. It needs a python3.13, the Lambda
# runtime's version: the one on PATH, else pyenv's (tools/python313-dir).
.PHONY: build deploy checkov clean-checkov

build: $(STAMP)
	dir=$$(tools/python313-dir) && PATH="$$dir:$$PATH" SAM_CLI_TELEMETRY=0 $(BIN)/sam build

# Everything, in one command: build, deploy the stack with samconfig.toml's CONFIG_ENV (stack
# name, region, capabilities, parameters; `sam deploy --guided` when there is no samconfig.toml
# or with GUIDED=1, which saves the answers there), then upload the console and its config.json
# from the stack's outputs and invalidate its CloudFront cache (tools/deploy_console.py).
# More options: DEPLOY_ARGS='--parameter-overrides ...' (sam deploy), CONSOLE_ARGS='--client-id ...'
# (tools/deploy_console.py --help). Another environment: make deploy CONFIG_ENV=prod.
CONFIG_ENV ?= default
deploy: build
	SAM_CLI_TELEMETRY=0 $(BIN)/sam deploy --config-env $(CONFIG_ENV) \
		$(if $(or $(GUIDED),$(if $(wildcard samconfig.toml),,missing)),--guided) $(DEPLOY_ARGS)
	$(BIN)/python tools/deploy_console.py --config-env $(CONFIG_ENV) $(CONSOLE_ARGS)

# checkov on template.yaml: no failed check; each remaining finding is skipped in its
# resource's Metadata with the reason. checkov pins boto3 to a release that aws-sam-cli's own
# pin excludes, so it lives in a venv of its own, at a fixed version (new releases add checks).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download

test: checkov

clean-checkov:
	rm -rf $(CHECKOV_VENV)

clean: clean-checkov

# Mutation testing (docs/mutation.md): mutmut over the token format, the authorizer's decision,
# identity from claims and the repository's conditional writes, with fast unit tests as the
# runner ([tool.mutmut] in pyproject.toml). mutmut lives in a venv of its own (its click pin
# and aws-sam-cli's exclude each other) and runs in build/mutation, a copy with the layer at
# src/; prints the score per module and fails below 90%. Minutes on 2 cores. Not in CI.
MUTATION_VENV := .venv-mutation
MUTATION_STAMP := $(MUTATION_VENV)/.installed-stamp
MUTATION_DIR := build/mutation
MUTATION_JOBS ?= 2
# Of the repository, the functions that write with a condition or explain a failed one.
MUTATION_REPOSITORY := reserve_slot put_new_token record_use revoke revoke_unused revoke_quietly _set_revoked \
	_explain_failed_revoke set_disabled set_enabled mark_rotated set_scopes stamp_unused_policy _change_live_token \
	_visible_record remember_member
MUTATION_SCOPE := 'token_service.domain.token_format.*' 'token_service.domain.authorizer.*' \
	'token_service.http.identity.*' \
	$(foreach name,$(MUTATION_REPOSITORY),'token_service.storage.repository.x?TokenRepository?$(name)__mutmut_*')

# The dev venv's packages (the tests' dependencies) are on the mutation venv's path, after its
# own: mutmut and the click it needs (pip uninstalls nothing outside the venv it installs into).
$(MUTATION_STAMP): $(STAMP) pyproject.toml
	rm -rf $(MUTATION_VENV)
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))' \
		> "$$($(MUTATION_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/dev-venv.pth"
	$(MUTATION_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MUTATION_VENV)/bin/python -m pip install --quiet --no-warn-conflicts -e '.[mutation]'
	touch $@

.PHONY: mutation clean-mutation
mutation: $(MUTATION_STAMP)
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)/src
	cp -R layers/tokens/token_service $(MUTATION_DIR)/src/
	cp -R pyproject.toml tests devserver functions events template.yaml $(MUTATION_DIR)/
	cd $(MUTATION_DIR) && $(CURDIR)/$(MUTATION_VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTATION_SCOPE)
	cd $(MUTATION_DIR) && $(CURDIR)/$(MUTATION_VENV)/bin/python $(CURDIR)/tools/mutation_report.py $(MUTATION_SCOPE)

clean-mutation:
	rm -rf $(MUTATION_VENV) $(MUTATION_DIR)

clean: clean-mutation
