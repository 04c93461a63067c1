# The two commands a user needs; both create .venv from requirements.lock when it is missing.
#   make demo   runs the pipeline on the shipped attrition dataset
#   make test   runs the test suite
#   make test-fast  the tests that run no pipeline (a couple of minutes)
PYTHON ?= python3.11
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip on some machines warns once per package about index folders it cannot read; keep the log readable.
QUIET_PIP := grep -v 'is ignored: it is neither a file nor a directory' || true
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench venv

venv: $(STAMP)

$(STAMP): requirements.lock setup.py
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install CPython 3.11 or pass PYTHON=/path/to/python3.11"; exit 2; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned stack into $(VENV) (about 2.5 minutes on a fresh machine)..."
	PIP_IGNORE_REQUIRES_PYTHON=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
	  $(VENV)/bin/pip install -q --no-deps -r requirements.lock 2>&1 | { $(QUIET_PIP); }
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e . 2>&1 | { $(QUIET_PIP); }
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tfx-tabular run --config data/attrition/config.yaml

# Two workers (pytest-xdist), a test module each at a time (its fixtures built once): a pipeline run keeps about
# one core busy. Modules go out slowest first, in the order tests/conftest.py sorts them.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not pipeline" tests

bench: $(STAMP)
	$(VENV)/bin/python bench/pipeline.py
