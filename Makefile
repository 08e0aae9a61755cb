# `make demo` and `make test` create the virtual environment when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-quick lint clean digits-settings

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

# Miyato et al.'s robustness to optimizer settings A-F in miniature on the embedded digits (offline, <= 20 min on
# 2 CPU cores: the sweep's two commands side by side, then its report in multirun/digits_settings/<time>/report)
digits-settings: $(STAMP)
	$(PY) scripts/sweep.py digits_settings --jobs 2 --report

# the suite without the tests marked slow (see the marker in pyproject.toml); CI runs `make test`
test-quick: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check sngan_repro tests scripts

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
