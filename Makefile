# Two commands set up everything on a fresh machine:
#   make serve   - install, then serve the bundled example apps at http://localhost:5006/
#   make test    - install (with Debian's chromium, nginx, haproxy and redis-server for the tests,
#                  SYSTEM_PACKAGES=no to skip those), then run every test
# make test-quick runs the engine, HTTP, websocket and CLI suites only (a few minutes).
# Another interpreter or Bokeh: make test PYTHON=python3.12, make test PYTHON=python3.10 BOKEH=3.6
# (each combination gets a virtualenv of its own, .venv-<python>[-bokeh<version>]); under
# pyenv, PYTHON=python3.12 finds pyenv's newest 3.12 even where its shim refuses to run.
# An exact release or pre-release: make test PYTHON=python3.12 BOKEH_SPEC=bokeh==4.0.0.dev8
# (.venv-3.12-bokeh4.0.0.dev8; pip installs a pre-release only when named like this).
# make lint runs ruff over the checkout (its rules in pyproject.toml), as CI does first.
PYTHON ?= python3
BOKEH  ?=
BOKEH_SPEC ?=
SYSTEM_PACKAGES ?= yes
# $(PYTHON) if it runs, else pyenv's newest matching version (a pythonX.Y shim refuses to
# run an interpreter that is not selected with PYENV_VERSION or `pyenv local`)
PYTHON_BIN := $(shell p='$(PYTHON)'; if "$$p" -c '' 2>/dev/null; then echo "$$p"; \
	elif command -v pyenv >/dev/null 2>&1; then \
		v=$$(echo "$$p" | sed 's/^python//'); \
		ls -d "$$(pyenv root)"/versions/"$$v".*/bin/python 2>/dev/null | sort -V | tail -n 1; fi)
PYVER  := $(shell "$(PYTHON_BIN)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
BOKEH_SUFFIX = $(if $(BOKEH_SPEC),-bokeh$(subst bokeh==,,$(BOKEH_SPEC)),$(if $(BOKEH),-bokeh$(BOKEH)))
VENV   ?= .venv-$(PYVER)$(BOKEH_SUFFIX)
PORT   ?= 5006
BIN     = $(VENV)/bin
# pip's pin: BOKEH_SPEC as given, else BOKEH=3.6 as any 3.6.x; nothing without either: the
# newest Bokeh release this Python gets
BOKEH_PIN = $(if $(BOKEH_SPEC),'$(BOKEH_SPEC)',$(if $(BOKEH),'bokeh==$(BOKEH).*'))
# What the tests need: the test extra (Panel 1.10 from Python 3.12 on); with BOKEH the
# test-tools extra and the newest Panel pip finds for that Bokeh (Panel 1.10 needs Bokeh 3.10);
# with BOKEH_SPEC (a Bokeh 4 pre-release, which no Panel release supports yet) test-tools only
TEST_REQUIREMENTS = $(if $(BOKEH_SPEC),'.[test-tools]',$(if $(BOKEH),'.[test-tools]' 'panel>=1.5','.[test]'))

.PHONY: serve test test-quick lint install install-test chromium nginx haproxy redis clean

$(BIN)/python:
	@test -n "$(PYVER)" || { echo "make: $(PYTHON) is not a Python interpreter; give one that runs, e.g." \
		"PYTHON=/usr/bin/python3.12 or, with pyenv, PYTHON=\$$(pyenv root)/versions/3.12.<n>/bin/python"; exit 2; }
	"$(PYTHON_BIN)" -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# pip runs again only when pyproject.toml changed (the install is editable: code changes
# need none)
$(VENV)/.installed-serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[brotli]' $(BOKEH_PIN)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e $(TEST_REQUIREMENTS) $(BOKEH_PIN)
	touch $@

install: $(VENV)/.installed-serve

install-test: $(VENV)/.installed-test

# Browser tests drive Debian's chromium (never a downloaded browser build).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	elif command -v sudo >/dev/null; then sudo apt-get update && sudo apt-get install -y chromium; \
	else echo "chromium is missing and cannot be installed without root: browser tests will skip (fail under CI=true)"; fi

# $(call service_package,BINARY,PACKAGE,TESTS): install a Debian package whose service the
# tests start themselves, on a free loopback port with their own config. While it installs,
# a temporary policy-rc.d (what Debian's maintainer scripts ask before starting a service)
# keeps the packaged service from starting (nginx on port 80, redis on 6379); an existing
# policy-rc.d is left alone.
define service_package
	@if [ -x $(1) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "$(2) is missing and cannot be installed without root: $(3) will skip (fail under CI=true)"; exit 0; fi; \
	policy=/usr/sbin/policy-rc.d; \
	if [ ! -e $$policy ]; then \
		trap "$$sudo rm -f $$policy" EXIT; trap 'exit 130' INT TERM; \
		printf '#!/bin/sh\nexit 101\n' | $$sudo tee $$policy >/dev/null && $$sudo chmod 755 $$policy; \
	fi; \
	$$sudo apt-get update && $$sudo apt-get install -y $(2)
endef

# The scale-out tests put two servers behind nginx.
nginx:
	$(call service_package,/usr/sbin/nginx,nginx,nginx tests)

# The load-balancer tests put two servers behind HAProxy (and nginx).
haproxy:
	$(call service_package,/usr/sbin/haproxy,haproxy,haproxy tests)

# The cross-host login tests share a Redis login store.
redis:
	$(call service_package,/usr/bin/redis-server,redis-server,redis tests)

serve: install
	$(BIN)/bokeh-flask serve --port $(PORT)

TEST_SYSTEM_PACKAGES = $(if $(filter no,$(SYSTEM_PACKAGES)),,chromium nginx haproxy redis)

test: install-test $(TEST_SYSTEM_PACKAGES)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-quick: install-test
	$(BIN)/python -m pytest tests/core tests/ws tests/http tests/cli $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf .venv .venv-* *.egg-info .pytest_cache
