# The one test command (README and .ci/run call `make test`): it installs what the tests
# need into .venv, then runs lint, format check, mypy --strict and the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: test docs serve install install-verl install-swift system-deps lint typecheck deploy-check pytest pytest-verl pytest-swift bench bench-trl-lm clean

# verl 0.9 pins transformers < 5.11 and TRL 1.16 needs a newer one: verl's adapter is tested in
# an environment of its own.
VERL_VENV ?= .venv-verl
VERL_BIN := $(VERL_VENV)/bin
# ms-swift 4.6 pins trl < 1.0 and transformers < 5.20: its own environment too.
SWIFT_VENV ?= .venv-swift
SWIFT_BIN := $(SWIFT_VENV)/bin

# The tests start their own redis-server (and nginx, the deploy's proxy); install Debian's
# when missing (needs root).
system-deps:
	@command -v redis-server >/dev/null && command -v prometheus >/dev/null && command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server prometheus nginx; }

# torch first, pinned to the CPU wheel this machine kind keeps on disk: the trl extra would
# otherwise pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

# What each environment installs besides torch (variables: $(call) would split at the commas).
MAIN_PACKAGES := -e '.[dev,service,trl]'
VERL_PACKAGES := -e '.[service,verl]' pytest hypothesis anyio
SWIFT_PACKAGES := -e '.[swift]' pytest hypothesis anyio

# A virtual environment: $(1) its folder, $(2) what to install besides torch.
define make_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q '$(TORCH)'
	$(1)/bin/python -m pip install -q $(2)
	touch $(1)/bin/.installed
endef

$(BIN)/.installed: pyproject.toml Makefile
	$(call make_venv,$(VENV),$(MAIN_PACKAGES))

install: $(BIN)/.installed

$(VERL_BIN)/.installed: pyproject.toml Makefile
	$(call make_venv,$(VERL_VENV),$(VERL_PACKAGES))

install-verl: $(VERL_BIN)/.installed

$(SWIFT_BIN)/.installed: pyproject.toml Makefile
	$(call make_venv,$(SWIFT_VENV),$(SWIFT_PACKAGES))

install-swift: $(SWIFT_BIN)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy --strict over everything that ships, as it ships: the package installed (package-dir
# maps service/, client/, ... into spard.*) into build/typecheck, then checked there.
typecheck: install
	rm -rf build/typecheck build/lib  # build/lib: setuptools would reuse files deleted since
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation --target build/typecheck .
	cd build/typecheck && MYPYPATH=. $(CURDIR)/$(BIN)/mypy --strict --config-file $(CURDIR)/pyproject.toml -p spard

# checkov, the infrastructure-as-code security scan, over deploy/ (Dockerfile, manifests, the
# kustomize output through kubectl where it is installed, secrets): no failed check allowed; a
# check that cannot apply is skipped in the manifest itself, with its reason. An environment of
# its own: checkov pins dependencies that the service's would fight. --skip-download: no call
# to the vendor's API (offline CI; the checks ship in the package).
CHECKOV_VENV ?= .venv-checkov
CHECKOV ?= checkov==3.3.30

$(CHECKOV_VENV)/bin/.installed: Makefile
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q '$(CHECKOV)'
	touch $@

deploy-check: $(CHECKOV_VENV)/bin/.installed
	$(CHECKOV_VENV)/bin/checkov -d deploy --skip-download --compact --quiet

pytest: install system-deps
	$(BIN)/pytest -n 2 --ignore=tests/verl --ignore=tests/swift $(PYTEST_ARGS)

pytest-verl: install-verl system-deps
	$(VERL_BIN)/python -m pytest tests/verl $(PYTEST_ARGS)

pytest-swift: install-swift system-deps
	$(SWIFT_BIN)/python -m pytest tests/swift $(PYTEST_ARGS)

# The documentation site (mkdocs-material, API reference by mkdocstrings), strictly.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d build/site

test: lint typecheck docs deploy-check pytest pytest-verl pytest-swift

# The service on its embedded in-memory store, on http://127.0.0.1:8000 (docs at /docs), from
# a venv of its own with only what serving needs (no torch, no TRL, no dev tools).
SERVE_VENV ?= .venv-serve

$(SERVE_VENV)/bin/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --progress-bar on -e '.[service]'
	touch $@

serve: $(SERVE_VENV)/bin/.installed
	$(SERVE_VENV)/bin/spard serve

bench: install system-deps
	$(BIN)/python -m benchmarks.engine_step
	$(BIN)/python -m benchmarks.service_step
	$(BIN)/python -m benchmarks.observe_throughput
	$(BIN)/python -m benchmarks.local_mode

# TRL GRPO on a small language model, the pre-registered set (benchmarks/trl_lm/PREREGISTRATION.md):
# 144 runs, about 2.4 hours on 2 uncontended cores; resumable (a rerun skips finished runs).
bench-trl-lm: install system-deps
	$(BIN)/python -m benchmarks.trl_lm --evaluation --out benchmarks/trl_lm/results/v2

clean:
	rm -rf $(VENV) $(VERL_VENV) $(SERVE_VENV) $(CHECKOV_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
