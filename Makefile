# Retargeting audience and product-feed exporter. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
DEMO   := fixtures/demo/retarget.yaml
# the demo data ends on this day; building as of it keeps the demo's recency windows full
DEMO_AS_OF := 2026-11-20

.DEFAULT_GOAL := help
.PHONY: help install demo test lint format bench services fixtures clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# the C modules are built by the install: a change to one installs again
$(STAMP): pyproject.toml setup.py feedgen/_speedups.c feedgen/_csvscan.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its test and lint tools

demo: $(STAMP) ## install; hash the demo customers; run cron/run.sh (feeds, audiences, sync) against the mock platform
	@for platform in meta google tiktok; do \
	  $(VENV)/bin/audiences hash --platform $$platform --config $(DEMO) \
	    fixtures/demo/customers.csv fixtures/demo/out/hashed/$$platform.csv || exit 1; \
	done
	fixtures/demo/sync_demo.sh $(DEMO_AS_OF)
	@echo "Feeds, feed_report.json and rejects.csv: fixtures/demo/out/feeds/; hashed customer files: fixtures/demo/out/hashed/"
	@echo "Audiences, product sets, plan.json, manifest.json: the newest folder in fixtures/demo/out/runs/"

services: ## start PostgreSQL and MariaDB for the SQL-source tests when they are not running
	@bash tests/start-services.sh

test: $(STAMP) services ## install, start the database servers if needed, run every test
	$(PY) -m pytest

lint: $(STAMP) ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check feedgen audiences tests
	$(VENV)/bin/ruff format --check feedgen audiences tests
	$(VENV)/bin/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix feedgen audiences tests
	$(VENV)/bin/ruff format feedgen audiences tests

bench: $(STAMP) ## benchmarks in tests/benchmarks (large generated data; minutes)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@status=0; for script in tests/benchmarks/bench_*.py; do \
	  echo "== $$script"; $(PY) $$script || { echo "== $$script: a target was missed or the script failed"; status=1; }; \
	done; exit $$status

fixtures: $(STAMP) ## regenerate the demo data (deterministic; the result is committed)
	$(PY) fixtures/demo/generate.py

clean: ## remove generated output (not .venv)
	rm -rf fixtures/demo/out .pytest_cache .mypy_cache .ruff_cache
