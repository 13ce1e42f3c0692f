# `make demo` and `make test` each create .venv when missing and install the pinned set.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.labkit-installed

.PHONY: demo test lab ui clean-runs

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/labkit demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lab: $(STAMP)
	$(BIN)/jupyter lab --ip 127.0.0.1 notebooks/

ui: $(STAMP)
	$(BIN)/labkit ui

clean-runs:
	rm -rf runs/mlflow.db runs/artifacts runs/checkpoints runs/cache runs/compare runs/20*
