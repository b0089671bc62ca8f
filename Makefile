# aezoo's commands. `make help` lists them. Every target builds the environment first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help env repro test lint clean-env

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)  ## create .venv with aezoo and its pinned dependencies

repro: $(STAMP)  ## run the whole pipeline (dvc repro); set AEZOO_MNIST_MIRROR offline
	$(BIN)/dvc repro

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src pipeline tests
	$(BIN)/ruff format --check src pipeline tests

clean-env:  ## delete the environment
	rm -rf $(VENV)
