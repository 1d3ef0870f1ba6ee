# optkit — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
OPTKIT := $(VENV)/bin/optkit

.PHONY: demo test bench lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Installed once; re-installed when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(OPTKIT) solve instances/*/*.json --time-limit 10

test: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 tests

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(PIP) install --quiet -e ".[bench]"
	touch $@

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/packing/run.py
	$(PY) benchmarks/costmodel/run.py all
	$(PY) benchmarks/serving/run.py all
	$(PY) benchmarks/kvcache/run.py all
	$(PY) benchmarks/experts/run.py
	$(PY) benchmarks/realtime/run.py all

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check optkit tests benchmarks
	$(VENV)/bin/ruff format --check optkit tests benchmarks
	$(VENV)/bin/mypy optkit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
