VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow test-all bench clean chromium docs docs-serve

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs]'
	$(PY) -m neuronlab.engine  # compile the training engine into the cache once (~25 s)
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

# The documentation site: renders docs/tutorials/*.py (executing them) and the CLI reference
# into docs/generated/, then `mkdocs build --strict` into site/ (docs/tools/build_site.py).
docs: $(STAMP)
	$(PY) docs/tools/build_site.py

docs-serve: $(STAMP)
	$(PY) docs/tools/build_site.py --serve

# The peers are installed for benchmarking only, into their own venv. torch is pinned exactly
# and installed first with --no-index: pip can only take the CPU build from this machine's
# local wheel (find-links), never a CUDA build from an index; its dependencies come after.
# JAX is pinned too (jaxlib's wheels are CPU-only; GPU support would be a separate plugin),
# with optax for its optimizers; the search extra is for the end-to-end `neuronlab search` row.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-index --no-deps 'torch==2.13.0'
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[fast]' 'torch==2.13.0' scikit-learn
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[search]' 'jax==0.10.2' 'jaxlib==0.10.2' 'optax==0.2.8'
	$(BENCH_VENV)/bin/python -c "import sys, torch; sys.exit('torch is a CUDA build' if torch.version.cuda else 0)"
	$(BENCH_VENV)/bin/python -c "import sys, jax; sys.exit('jax runs on ' + jax.default_backend() if jax.default_backend() != 'cpu' else 0)"
	$(BENCH_VENV)/bin/python -m neuronlab.engine  # compiled before any timing (the end-to-end rows)
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs .pytest_cache site docs/generated
