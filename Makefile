# FiscoBridge Licensing — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export FISCOBRIDGE_DATA_DIR ?= $(CURDIR)/var
# PostgreSQL for the second test pass: TEST_DATABASE_URL, else the local server.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres

.PHONY: run test test-sqlite test-postgres lint format bench install install-dev clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.installed-dev: pyproject.toml $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

# E-mail links point where `make run` serves, unless PUBLIC_BASE_URL says otherwise.
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: install
	$(BIN)/fiscobridge manage migrate --no-input -v 0
	$(BIN)/fiscobridge demo
	@echo
	@echo "Portal: http://$(HOST):$(PORT)/   API docs: http://$(HOST):$(PORT)/api/v1/docs   Admin: http://$(HOST):$(PORT)/admin/"
	$(BIN)/fiscobridge serve --host $(HOST) --port $(PORT)

test: install-dev
	@bash scripts/test.sh

test-sqlite: install-dev
	@bash scripts/test.sh sqlite

test-postgres: install-dev
	@bash scripts/test.sh postgres

TEMPLATE_DIRS := fiscobridge/templates fiscobridge/notifications/templates

# Lint: ruff (rules and format), the layers of docs/architecture.md, the templates (djlint, and
# line length).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_layers.py
	$(BIN)/djlint $(TEMPLATE_DIRS) --lint
	$(BIN)/python scripts/check_templates.py $(TEMPLATE_DIRS)

# Fix what the linters can fix by themselves.
format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install-dev
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var bench/results.json
