# make run   - Redis (started here if none answers) + both services, Ctrl-C stops all
# make test  - system test deps, ruff, mypy, pytest
#
# CI can reuse the targets and override the tools' arguments, e.g.
#   make test PYTEST_ARGS='-q -x tests/unit' RUFF_ARGS='tests'

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= dev,redis-binary

RUFF_ARGS ?= .
MYPY_ARGS ?=
PYTEST_ARGS ?= -q -p no:cacheprovider

# Debian packages the tests need: the compose-file check, the browser tests, the
# benchmark's instruction counter (valgrind) and the Sentinel tests (redis-server >= 7).
SYSTEM_TEST_BINARIES ?= docker-compose chromium valgrind redis-server

.PHONY: help venv run test sysdeps lint typecheck pytest bench soak clean distclean

help:
	@echo "make run        start Redis (if none answers at REDIS_URL) and both services"
	@echo "make test       install system test deps if missing, then ruff, mypy, pytest"
	@echo "make lint | typecheck | bench | soak | clean | distclean"

venv: $(STAMP)

# Reinstall only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	    || { echo "Python 3.11+ is needed: $(PYTHON) is $$($(PYTHON) --version 2>&1)" >&2; exit 1; }; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

run: venv
	$(PY) scripts/run_dev.py

# Installs what is missing, as root with apt-get; skipped when every binary is present.
# Also a Chinese font, so that the browser tests' screenshots show 转人工 rather than boxes.
sysdeps:
	@missing=""; \
	for bin in $(SYSTEM_TEST_BINARIES); do \
	  command -v "$$bin" >/dev/null 2>&1 || missing="$$missing $$bin"; \
	done; \
	if command -v fc-list >/dev/null 2>&1 && [ -z "$$(fc-list :lang=zh 2>/dev/null)" ]; then \
	  missing="$$missing fonts-wqy-microhei"; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  else \
	    echo "warning: missing$$missing; install with: sudo apt-get install$$missing" >&2; \
	  fi; \
	fi

lint: venv
	$(VENV)/bin/ruff check $(RUFF_ARGS)

typecheck: venv
	$(PY) -m mypy $(MYPY_ARGS)

pytest: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test: venv sysdeps
	$(MAKE) --no-print-directory lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	@$(PY) -c 'import matplotlib, numpy' 2>/dev/null || $(PY) -m pip install --quiet -e '.[$(EXTRAS),bench]'
	$(PY) -m bench $(BENCH_ARGS)

soak: venv
	$(PY) -m bench.soak

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build test-output ./*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

# Also the virtualenv and the Redis data `make run` keeps in .run/.
distclean: clean
	rm -rf $(VENV) .run
