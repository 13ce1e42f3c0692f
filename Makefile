# `make demo` and `make test` each create .venv when missing, install the pinned set and the
# notebook output filter (nbstripout) for git.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.labkit-installed
CLUSTER := $(VENV)/.labkit-cluster-installed

.PHONY: demo test lint docs docs-build docs-pictures lab ui clean-runs

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	# git sees notebooks without outputs, whatever JupyterLab or nbconvert saved into them (the
	# filter, and the save hooks that refresh git's index: labkit/gitclean.py)
	$(BIN)/python -m labkit.gitclean
	touch $(STAMP)

# the optional extra (a team's tracking server on PostgreSQL, Ray): the tests prove it
$(CLUSTER): $(STAMP) requirements-cluster.txt
	$(BIN)/python -m pip install --quiet -e '.[cluster]'
	touch $(CLUSTER)

demo: $(STAMP)
	$(BIN)/labkit demo

test: lint docs-build $(CLUSTER)
	$(BIN)/python -m pytest -q

# ruff's lint and format (pyproject.toml): the code as the project keeps it
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the documentation site (mkdocs.yml): served with live reload, or built once failing on any warning
export NO_MKDOCS_2_WARNING := 1
docs: $(STAMP)
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

docs-build: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

# the docs' pictures (docs/img), taken by the suite's browser from the demo's runs
docs-pictures: demo
	LABKIT_DOCS_PICTURES=runs $(BIN)/python -m pytest -q -n 0 tests/test_browser.py -k links

lab: $(STAMP)
	$(BIN)/jupyter lab --ip 127.0.0.1 notebooks/

ui: $(STAMP)
	$(BIN)/labkit ui

clean-runs:
	rm -rf runs/mlflow.db runs/artifacts runs/checkpoints runs/cache runs/compare runs/20*
