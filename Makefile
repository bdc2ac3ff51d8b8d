VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow test-all bench clean chromium

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The report's browser test drives Debian's headless Chromium through Playwright (never a
# downloaded browser build). Quiet and idempotent: installs only when it is missing.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium (for the report's browser test)"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

run: $(STAMP)
	$(VENV)/bin/neuronlab train

test: $(STAMP) chromium
	$(PY) -m pytest

test-slow: $(STAMP) chromium
	$(PY) -m pytest -m slow

test-all: $(STAMP) chromium
	$(PY) -m pytest -m ''

clean:
	rm -rf $(VENV) runs .pytest_cache
