# aezoo's commands. `make help` lists them. Every target builds the environment first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help env repro studies test lint smoke check-fresh pr-report bench clean-env

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

env: $(STAMP)  ## create .venv with aezoo and its pinned dependencies

repro: $(STAMP)  ## run the zoo's pipeline (dvc.yaml); set AEZOO_MNIST_MIRROR offline
	$(BIN)/dvc repro dvc.yaml

studies: $(STAMP)  ## run the studies (studies/dvc.yaml: seeds, code-size and denoising frontiers)
	$(BIN)/dvc repro studies/dvc.yaml

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src pipeline tests
	$(BIN)/ruff format --check src pipeline tests

smoke: $(STAMP)  ## every stage of every variant on a small subset, 1 epoch; workspace untouched
	$(BIN)/python pipeline/smoke.py

check-fresh: $(STAMP)  ## fail if dvc.lock and reports/ do not match the code and params
	$(BIN)/python pipeline/pr_report.py --check-only

pr-report: $(STAMP)  ## reports/pr-report.md: params, metrics and figures against BASE=main
	$(BIN)/python pipeline/pr_report.py --base $(BASE) $(if $(RUN_URL),--run-url $(RUN_URL))

bench: $(STAMP)  ## reports/benchmarks.*: aezoo's trainer vs plain model.fit; ARGS=--variants dense16
	$(BIN)/python pipeline/bench.py $(ARGS)

clean-env:  ## delete the environment
	rm -rf $(VENV)
