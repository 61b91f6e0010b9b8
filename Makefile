# Two commands do all set-up: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench labs clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch 2.13.0 first: on these machines it is a CPU wheel already on disk,
# and the project's own range accepts it, so no other build is pulled.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# the explainer page (quick budget: every section, under 5 minutes on 2 cores); `unnoise demo` is the same page
demo: $(STAMP)
	$(BIN)/unnoise explain --budget quick --out page

# the house first (lint, format, the layers of .importlinter), then every test, in two processes (pytest-xdist)
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# the same house checks, then every test not marked slow (about 100 s on 2 cores; `make test` about 10 minutes)
test-fast: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -m "not slow"

# the three labs as notebooks (jupytext turns labs/*.py into labs/*.ipynb, kept out of git), opened in JupyterLab
# with its news, update check and extension catalogue off: nothing leaves the machine
labs: $(STAMP)
	$(BIN)/pip install -q -e '.[labs]'
	$(BIN)/jupytext --to ipynb --update labs/0*.py
	cd labs && ../$(BIN)/jupyter lab --LabApp.news_url=None --LabApp.extension_manager=readonly \
		--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

bench: $(STAMP)
	$(BIN)/python benchmarks/train_2d.py

clean:
	rm -rf $(VENV) demo page runs
