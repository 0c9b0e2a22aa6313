# rl-order-execution: `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install install-dev run train evaluate test lint format type-check check tensorboard clean

help: ## List the targets with their one-line descriptions
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-18s %s\n", $$1, $$2}'

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(RUN_STAMP) ## Create .venv and install the toolkit
install-dev: $(STAMP) ## Create .venv and install the toolkit with the dev tools

run: $(RUN_STAMP) ## Train the default agent, evaluate vs TWAP, write metrics and plots (ARGS="...")
	$(BIN)/rl-exec run $(ARGS)

train: $(RUN_STAMP) ## Train only and save the checkpoint (ARGS="...")
	$(BIN)/rl-exec train $(ARGS)

evaluate: $(RUN_STAMP) ## Evaluate a checkpoint: make evaluate ARGS="--checkpoint output/runs/<run>/model.pt"
	$(BIN)/rl-exec evaluate $(ARGS)

test: $(STAMP) ## Run the test suite
	$(BIN)/pytest -q -n 2 $(ARGS)

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

type-check: $(STAMP) ## mypy --strict over src, tests and benchmarks
	$(BIN)/mypy

check: lint type-check test ## Everything CI runs: lint, type-check, tests

tensorboard: $(RUN_STAMP) ## Serve TensorBoard over output/runs
	$(BIN)/tensorboard --logdir output/runs

clean: ## Remove caches and build artefacts (keeps .venv, output/ and db/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
