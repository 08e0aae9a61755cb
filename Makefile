# `make demo` and `make test` create the virtual environment when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-quick lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m sngan_repro.train experiment=quickstart

test: $(STAMP)
	$(PY) -m pytest

# the suite without the tests marked slow (see the marker in pyproject.toml); CI runs `make test`
test-quick: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check sngan_repro tests scripts

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
