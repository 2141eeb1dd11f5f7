# Two commands matter: `make run` and `make test`. Everything else is what they are made of.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The docs page's browser test drives Debian's Chromium through Playwright (which cannot download
# browsers here); installed on first use, as root or through sudo.
CHROMIUM := /usr/bin/chromium
# The Redis Cluster tests start redis-server processes of their own (and create the cluster with redis-cli).
REDIS_SERVER := /usr/bin/redis-server
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# `make bench` drives load with Debian's wrk; `make bench BENCH=quick` is a two-minute smoke run.
WRK := /usr/bin/wrk
BENCH ?= full

.PHONY: run test lint typecheck imports pytest migrate clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(WRK):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk

$(REDIS_SERVER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server

run: $(STAMP)
	$(BIN)/hexpost migrate
	$(BIN)/hexpost serve

migrate: $(STAMP)
	$(BIN)/hexpost migrate

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) $(CHROMIUM) $(REDIS_SERVER)
	$(BIN)/pytest

test: lint typecheck imports pytest

# Not part of `make test`: it needs both cores for minutes (see README, "Benchmark").
bench: $(STAMP) $(WRK)
	$(BIN)/python -m bench $(if $(filter quick,$(BENCH)),--quick)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
