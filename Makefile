# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
ARGS   ?=
# Test processes (pytest-xdist; 0 runs in this process). Each test module stays on one process, so its
# module fixtures (servers, clusters) start once. The suite waits on servers and browsers much of the
# time: on 2 cores, three processes finished it in 12 min 13 s where two took 13 min 43 s. Modules are
# handed out in collection order, the longest first (tests/conftest.py: LONGEST_FIRST).
TEST_WORKERS ?= 3

.PHONY: run test install install-test system-test-deps bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Mosu needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Chromium for the browser tests, PostgreSQL for the catalog-on-PostgreSQL tests and chattr (e2fsprogs)
# for the read-only-catalog audit test, from Debian (Playwright never downloads a browser here; the
# tests start their own PostgreSQL cluster).
system-test-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chattr >/dev/null 2>&1 || missing="$$missing e2fsprogs"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(BIN)/mosu up --demo --host $(HOST) --port $(PORT) $(ARGS)

test: install-test system-test-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports setup.cfg
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(ARGS)

bench: install-test
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/preview.py
	$(BIN)/python bench/grid.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
