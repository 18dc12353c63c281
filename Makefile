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

.PHONY: run test test-sqlite test-postgres lint format bench lock install install-dev clean

# Installs exactly the versions in the lock files (made from pyproject.toml by `make lock`),
# then the project itself without resolving anything again.
$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(BIN)/.installed-dev: requirements-dev.lock $(BIN)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $@

# After changing a dependency in pyproject.toml: pin the newest versions that fit, for both files
# (the dev file is constrained by the runtime one, so the two never disagree).
lock: install
	$(BIN)/pip install --quiet uv==0.13.9
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock -q
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -c requirements.lock -o requirements-dev.lock -q

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

# E-mail links point where `make run` serves, unless PUBLIC_BASE_URL says otherwise.
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
# Without an SMTP server, `make run` writes e-mail to files instead of printing it over the logins.
ifeq ($(EMAIL_HOST),)
run: export EMAIL_BACKEND ?= django.core.mail.backends.filebased.EmailBackend
endif
run: install
	$(BIN)/fiscobridge manage migrate --no-input -v 0
	$(BIN)/fiscobridge demo
	@echo
	@echo "Portal: http://$(HOST):$(PORT)/   API docs: http://$(HOST):$(PORT)/api/v1/docs   Admin: http://$(HOST):$(PORT)/admin/"
	@echo "Task worker: runs beside the portal (e-mail, reminders, Stripe re-sync); Ctrl-C stops both."
	@echo "E-mail: $$($(BIN)/fiscobridge manage shell --no-imports -c 'from fiscobridge.notifications.sending import transport_description as t; print(t())')"
	@$(BIN)/fiscobridge worker --quiet & worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
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
