# The two commands of the README: `make run` and `make test`. Both set everything up
# themselves and are safe to repeat: a step runs again only when its inputs change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: run test bench docs system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev,bench]'
	touch $@

## run: serve the demo on http://127.0.0.1:$(PORT)/ (SQLite, inline processing)
run: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --noinput
	@echo
	@echo "  The SMS tester: http://127.0.0.1:$(PORT)/httptester/ (/ opens it too)"
	@echo "  The admin:      http://127.0.0.1:$(PORT)/admin/"
	@echo "  An admin login: $(BIN)/python manage.py createsuperuser"
	@echo
	$(BIN)/python -m uvicorn demo.asgi:application --host 127.0.0.1 --port $(PORT) --lifespan on

TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test

## test: the whole suite on SQLite with coverage, then its database tests on PostgreSQL
test: $(VENV)/.installed-dev system-deps
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered
	SMSROUTER_TEST_DATABASE_URL=$(TEST_POSTGRES) $(BIN)/python -m pytest -m "not processes" -q

## system-deps: Debian packages some tests drive, installed when missing: chromium for the
## web UI tests, kannel (bearerbox, smsbox) and kannel-extras (fakesmsc) for a real Kannel
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ command -v bearerbox || test -x /usr/sbin/bearerbox; } >/dev/null 2>&1 || missing="$$missing kannel"; \
	test -x /usr/lib/kannel/test/fakesmsc || missing="$$missing kannel-extras"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "Missing Debian packages:$$missing. This is not root, so the tests that need" \
	  "them will skip; to install them: sudo apt-get install$$missing"; fi

## bench: every benchmark in one run, printed as one Markdown table (see bench/README.md).
## RapidSMS 2.2, the peer, gets a virtualenv of its own (bench/.rapidsms-venv) on first use.
## SOAK=1 adds the 10-minute memory soak; BENCH_ARGS passes more, e.g. "--write-readme"
bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/suite.py $(if $(SOAK),--soak) $(BENCH_ARGS)

## docs: the docs site (MkDocs, Material theme) built into site/; --strict, so that a
## broken link or a reference to a missing docstring fails, as it does in the tests
docs: $(VENV)/.installed-dev
	$(BIN)/python -m mkdocs build --strict

clean:
	rm -rf site $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles .coverage
