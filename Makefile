# aezoo's commands. `make help` lists them. Every target builds the environment first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help env repro pull push studies test test-all lint smoke check-fresh pr-report bench clean-env

BASE ?= main
# Stage commands say `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

# The Vega CLI (vl2svg) that draws DVC's plots for the PR report: exact versions, from the lock.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

env: $(STAMP) $(NODE_STAMP)  ## create .venv (aezoo, pinned) and node_modules (Vega's CLI, npm ci)

repro: $(STAMP)  ## run the zoo's pipeline (dvc.yaml); set AEZOO_MNIST_MIRROR offline
	$(BIN)/dvc repro dvc.yaml

pull: $(STAMP)  ## the zoo's trained models and outputs from the DVC remote: no training
	$(BIN)/dvc pull dvc.yaml

push: $(STAMP)  ## share the zoo's outputs on the DVC remote (README: "Sharing trained models")
	$(BIN)/dvc push dvc.yaml

studies: $(STAMP)  ## run the studies (studies/dvc.yaml: seeds, code-size and denoising frontiers)
	$(BIN)/dvc repro studies/dvc.yaml

# The fast tier: unit tests and one small end-to-end run. Tests that use real MNIST are marked
# integration (tests/conftest.py stops the run on an unmarked one); those needing Chromium, browser.
FAST_TESTS := not (integration or browser or slow) or e2e
# The fast tier runs its files on WORKERS processes at once (pytest-xdist); test-all runs
# serially: its integration tests share session fixtures (a trained small zoo) per process.
WORKERS ?= 2

test: $(STAMP) $(NODE_STAMP)  ## unit tests and one small end-to-end run (minutes): before each commit
	$(BIN)/python -m pytest -m "$(FAST_TESTS)" -n $(WORKERS) --dist loadfile

test-all: $(STAMP) $(NODE_STAMP)  ## every test: also real MNIST, trained models, Chromium (what CI runs)
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src pipeline tools benchmarks tests vendor examples
	$(BIN)/ruff format --check src pipeline tools benchmarks tests vendor examples

smoke: $(STAMP)  ## every stage of every variant on a small subset, 1 epoch; workspace untouched
	$(BIN)/python -m tools.smoke

check-fresh: $(STAMP)  ## fail if dvc.lock and reports/ do not match the code and params
	$(BIN)/python -m tools.freshness

pr-report: $(STAMP) $(NODE_STAMP)  ## reports/pr-report.md (CML posts it): diffs and figures against BASE=main
	$(BIN)/python -m tools.pr_report --base $(BASE) $(if $(RUN_URL),--run-url $(RUN_URL))

bench: $(STAMP)  ## reports/benchmarks.*: aezoo's trainer vs plain model.fit; ARGS=--variants dense16
	$(BIN)/python -m benchmarks $(ARGS)

clean-env:  ## delete the environment
	rm -rf $(VENV) node_modules
