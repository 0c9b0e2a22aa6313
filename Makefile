# rl-order-execution: `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed
ARGS ?=
BASE ?= HEAD
SPEC ?= benchmarks/sweeps/quality.yaml
IMAGE ?= rl-order-execution:latest
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
DOCKER_FLAGS ?=
WORKFLOWS := $(wildcard .github/workflows/*.yaml .github/workflows/*.yml)

.DEFAULT_GOAL := help
.PHONY: help install install-dev run train evaluate test lint format type-check check tensorboard clean \
	docker-build docker-run setup-hooks changelog docs bench benchmark optimize optuna-dashboard quality \
	same-numbers test-numbers bench-sweep sweep

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
	# the E-mini S&P 500 tick sample the tick-to-bar tests read (the package itself is not imported)
	$(BIN)/pip install --quiet --no-deps mlfinpy
	touch $@

install: $(RUN_STAMP) ## Create .venv and install the toolkit
install-dev: $(STAMP) ## Create .venv and install the toolkit with the dev tools

# Targets that only run installed tools depend on the tools, not on the stamps (which follow
# pyproject.toml): after `make install-dev` they install nothing, so they work offline.
$(BIN)/pytest $(BIN)/optuna-dashboard:
	$(MAKE) install-dev

run: $(RUN_STAMP) ## Train the default agent, evaluate vs TWAP, write metrics and plots (ARGS="...")
	$(BIN)/rl-exec run $(ARGS)

train: $(RUN_STAMP) ## Train only and save the checkpoint (ARGS="...")
	$(BIN)/rl-exec train $(ARGS)

evaluate: $(RUN_STAMP) ## Evaluate a checkpoint: make evaluate ARGS="--checkpoint output/runs/<run>/model.pt"
	$(BIN)/rl-exec evaluate $(ARGS)

test: $(BIN)/pytest ## Run the test suite
	$(BIN)/pytest -q -n 2 $(ARGS)

test-numbers: $(STAMP) ## The tests that check numbers, under torch's portable kernels (as on another processor)
	ATEN_CPU_CAPABILITY=default $(BIN)/pytest -q -n 2 -m numbers $(ARGS)

same-numbers: $(STAMP) ## Every number of a fixed set of short runs, BASE's commit vs the working tree, on this machine (BASE=<commit>)
	$(BIN)/python scripts/same_numbers.py --base $(BASE) $(ARGS)

lint: $(STAMP) ## Ruff lint and format check, hadolint on the Dockerfile, workflow schema check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)

format: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

type-check: $(STAMP) ## mypy --strict over src, tests, benchmarks and scripts
	$(BIN)/mypy

check: lint type-check test ## Everything CI runs: lint, type-check, tests

optimize: $(RUN_STAMP) ## Tune hyperparameters with Optuna (SQLite study in db/), write config/best_params.yaml (ARGS="...")
	$(BIN)/rl-exec optimize $(ARGS)

optuna-dashboard: $(BIN)/optuna-dashboard ## Serve optuna-dashboard on the default study storage (db/optuna_study.db)
	$(BIN)/optuna-dashboard sqlite:///db/optuna_study.db

quality: $(RUN_STAMP) ## Every market in benchmarks/markets x agent x 3 seeds as one Dask sweep (resumable); writes benchmarks/quality.json
	$(BIN)/python benchmarks/quality.py $(ARGS)

bench: $(STAMP) ## Speed benchmark (env throughput, time to quality and training throughput per agent, vs SB3's DQN, evaluation); writes benchmarks/results.json (ARGS=--quick: a try-out)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench.py $(ARGS)

bench-sweep: $(STAMP) ## Sweep overhead: 8 cells of >= 20 s on 2 Dask workers, wall time vs the cells' own seconds / 2
	$(BIN)/python benchmarks/sweep_overhead.py $(ARGS)

sweep: $(RUN_STAMP) ## Markets x agents x seeds on Dask: make sweep SPEC=benchmarks/sweeps/quality.yaml (ARGS="--workers 2")
	$(BIN)/rl-exec sweep $(SPEC) $(ARGS)

benchmark: $(RUN_STAMP) ## Self-check: closed forms vs Monte Carlo for every reference strategy (ARGS="...")
	$(BIN)/rl-exec benchmark $(ARGS)

docs: $(RUN_STAMP) ## Regenerate README.md's and docs/SETTINGS.md's generated sections (commands, settings, results)
	$(BIN)/python -m scripts.readme_tables

changelog: $(STAMP) ## Regenerate CHANGELOG.md from the conventional commits (git-cliff)
	$(BIN)/git-cliff --config cliff.toml -o CHANGELOG.md

setup-hooks: $(STAMP) ## Install the pre-commit git hooks (.pre-commit-config.yaml)
	$(BIN)/pre-commit install

docker-build: ## Build the Docker image (CPU torch; CUDA: TORCH_INDEX_URL=<PyTorch CUDA index>)
	docker build --build-arg TORCH_INDEX_URL=$(TORCH_INDEX_URL) -t $(IMAGE) .

docker-run: ## Run the image, ./output ./config ./db mounted (ARGS="train ..." replaces `run`)
	mkdir -p output db config
	docker run --rm $$(test -t 0 && echo -it) --user "$$(id -u):$$(id -g)" $(DOCKER_FLAGS) \
		-v "$(CURDIR)/output:/app/output" \
		-v "$(CURDIR)/config:/app/config" \
		-v "$(CURDIR)/db:/app/db" \
		$(IMAGE) $(ARGS)

tensorboard: $(RUN_STAMP) ## Serve TensorBoard over output/runs
	$(BIN)/tensorboard --logdir output/runs

clean: ## Remove caches and build artefacts (keeps .venv, output/ and db/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
