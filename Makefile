# Two commands set up everything on a fresh machine:
#   make serve   - install, then serve the bundled example apps at http://localhost:5006/
#   make test    - install (with Debian chromium and nginx for the tests), then run every test
# Another interpreter or Bokeh: make test PYTHON=python3.12, make test PYTHON=python3.10 BOKEH=3.6
# (each combination gets a virtualenv of its own, .venv-<python>[-bokeh<version>]).
# make lint runs ruff over the checkout (its rules in pyproject.toml), as CI does first.
PYTHON ?= python3
BOKEH  ?=
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV   ?= .venv-$(PYVER)$(if $(BOKEH),-bokeh$(BOKEH))
PORT   ?= 5006
BIN     = $(VENV)/bin
# pip's pin for BOKEH=3.6 (any 3.6.x); nothing without it: the newest Bokeh this Python gets
BOKEH_PIN = $(if $(BOKEH),'bokeh==$(BOKEH).*')

.PHONY: serve test lint install install-test chromium nginx redis clean

$(BIN)/python:
	@test -n "$(PYVER)" || { echo "make: $(PYTHON) is not a Python interpreter"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -e '.[brotli]' $(BOKEH_PIN)

install-test: $(BIN)/python
	$(BIN)/pip install -e '.[test]' $(BOKEH_PIN)

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

# The cross-host login tests share a Redis login store.
redis:
	$(call service_package,/usr/bin/redis-server,redis-server,redis tests)

serve: install
	$(BIN)/bokeh-flask serve --port $(PORT)

test: install-test chromium nginx redis
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf .venv .venv-* *.egg-info .pytest_cache
