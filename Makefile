# Two commands set up everything on a fresh machine:
#   make serve   - install, then serve the bundled example apps at http://localhost:5006/
#   make test    - install (with Debian chromium for browser tests), then run every test
VENV   ?= .venv
PYTHON ?= python3
PORT   ?= 5006
BIN     = $(VENV)/bin

.PHONY: serve test install install-test chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -e .

install-test: $(BIN)/python
	$(BIN)/pip install -e '.[test]'

# Browser tests drive Debian's chromium (never a downloaded browser build).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	elif command -v sudo >/dev/null; then sudo apt-get update && sudo apt-get install -y chromium; \
	else echo "chromium is missing and cannot be installed without root: browser tests will skip (fail under CI=true)"; fi

serve: install
	$(BIN)/bokeh-flask serve --port $(PORT)

test: install-test chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
