# `make demo` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
NLTK_DATA ?= $(CURDIR)/.nltk_data
export NLTK_DATA
PLUGINS := $(wildcard plugins/*)

.PHONY: demo test env wordnet world minizoo registry bench clean

$(VENV)/.installed: pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[test]' $(foreach p,$(PLUGINS),-e ./$(p))
	touch $@

env: $(VENV)/.installed

# WordNet 3.0 from Debian's wordnet-base laid out where NLTK reads it (no network).
wordnet: env
	$(PY) -m mllzoo.wordnet_setup $(NLTK_DATA)

demo: env
	$(VENV)/bin/mllzoo recommend examples/pets.txt --domain "emoji"

test: env wordnet
	$(PY) -m pytest -q

world: env wordnet
	$(PY) -m mllzoo_minizoo.world --out world

minizoo: world
	$(PY) -m mllzoo_minizoo.train --world world --threads 1 && $(PY) -m mllzoo_minizoo.evaluate --world world

registry: world
	$(PY) -m world.build_registry

bench: env
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
