# CX Platform: `make run` (embedded default on http://127.0.0.1:8000), `make test`, `make lint`, `make bench`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check --quiet
# Hides pip's warnings about configured local indexes that do not exist on this machine.
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
# The CPU build of torch lies in /opt/wheels on our machines; any other version pulls GBs of CUDA.
TORCH := torch==2.13.0
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
DEV_STAMP := $(VENV)/.stamp-dev
EMB_STAMP := $(VENV)/.stamp-embeddings
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` always serves the embedded default, whatever .env or the shell say.
EMBEDDED_ENV := DEBUG=true DATABASE_URL=sqlite:///$(CURDIR)/db.sqlite3 REDIS_URL= CELERY_BROKER_URL= \
	STATICFILES_STORAGE=django.contrib.staticfiles.storage.StaticFilesStorage

.PHONY: help run test lint bench chromium compose deps

help:
	@echo "make run    set up and serve the demo on http://$(HOST):$(PORT) (SQLite, jobs in-process)"
	@echo "make test   run the tests (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)"
	@echo "make lint   ruff check, ruff format --check, mypy"
	@echo "make bench  run every bench/*.py"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changes.
$(DEV_STAMP): pyproject.toml | $(PY)
	@echo "Installing the project with its dev extra into $(VENV)"
	@$(PIP) install $(FIND_LINKS) -e '.[dev]' $(QUIET_PIP)
	@touch $@

$(EMB_STAMP): pyproject.toml $(DEV_STAMP)
	@echo "Installing $(TORCH) (CPU build) and the embeddings extra into $(VENV)"
	@$(PIP) install $(FIND_LINKS) '$(TORCH)' $(QUIET_PIP)
	@$(PIP) install $(FIND_LINKS) -e '.[dev,embeddings]' '$(TORCH)' $(QUIET_PIP)
	@touch $@

deps: $(DEV_STAMP)

run: $(DEV_STAMP)
	@$(EMBEDDED_ENV) $(PY) manage.py migrate --noinput -v 0
	@$(EMBEDDED_ENV) $(PY) manage.py setup_demo > $(VENV)/demo-logins.txt
	@if $(EMBEDDED_ENV) $(PY) manage.py help seed_demo >/dev/null 2>&1; then \
		$(EMBEDDED_ENV) $(PY) manage.py seed_demo --tenant demo; fi
	@$(EMBEDDED_ENV) $(PY) manage.py seed_knowledge --tenant demo
	@$(EMBEDDED_ENV) $(PY) manage.py train_models --tenant demo --if-untrained 2>/dev/null
	@echo; cat $(VENV)/demo-logins.txt
	@echo; echo "Serving the embedded default on http://$(HOST):$(PORT)/ (Ctrl-C stops). API docs: /api/v1/docs/"
	@echo "Chat: the demo shop http://$(HOST):$(PORT)/demo/store/ embeds the widget; answer in http://$(HOST):$(PORT)/inbox/ as agent@demo.test"
	@$(EMBEDDED_ENV) $(VENV)/bin/uvicorn cxplatform.asgi:application --host $(HOST) --port $(PORT) \
		--log-level warning --no-access-log

# Browser tests drive Debian's Chromium; install it when missing and we may.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian chromium for the browser tests"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "warning: /usr/bin/chromium is missing (apt-get install chromium); browser tests will fail" >&2; fi; \
	fi

# tests/test_deploy.py checks docker-compose.yml with `docker compose config` or Debian's docker-compose.
compose:
	@if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing Debian docker-compose to check docker-compose.yml"; \
			{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 || \
			{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; } || \
			echo "warning: could not install docker-compose; the compose check will be skipped" >&2; }; \
		else echo "warning: docker-compose is missing; the compose check will be skipped" >&2; fi; \
	fi

test: $(EMB_STAMP) chromium compose
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(VENV)/bin/pytest -n 2

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/mypy .

bench: $(DEV_STAMP)
	@rc=0; for script in bench/*.py; do \
		echo "== $$script"; $(PY) $$script || rc=1; \
	done; exit $$rc
