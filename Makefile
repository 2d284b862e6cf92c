# The one test command (README and .ci/run call `make test`): it installs what the tests
# need into .venv, then runs lint, format check, mypy --strict and the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: test install lint typecheck pytest bench clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,service]'
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy --strict spard

pytest: install
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/engine_step.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
