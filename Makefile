# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test test-all install dev torch bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	@touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e '.[dev,torch,dask]'
	@touch $@ $(VENV)/.core

install: $(VENV)/.core

dev: $(VENV)/.dev

# torch comes only from the pinned local CPU wheel (constraints.txt: torch==2.13.0)
torch: $(VENV)/.dev
	$(PIP) -e '.[dev,torch,dask]'

demo: $(VENV)/.core
	$(VENV)/bin/autophagy demo --out results/demo

test: $(VENV)/.dev
	$(PY) -m pytest

test-all: $(VENV)/.dev
	$(PY) -m pytest -m ""

bench: $(VENV)/.core
	$(PY) benchmarks/bench_gaussian_replace.py

clean:
	rm -rf $(VENV) results build src/*.egg-info
