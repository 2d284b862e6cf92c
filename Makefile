# The one test command (README and .ci/run call `make test`): it installs what the tests
# need into .venv, then runs lint, format check, mypy --strict and the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: test test-quick install-all pytest-trainers docs serve install install-verl install-swift system-deps lint typecheck deploy-check pytest pytest-verl pytest-swift pytest-trl-upstream bench bench-trl-lm clean

# verl 0.9 pins transformers < 5.11 and TRL 1.16 needs a newer one: verl's adapter is tested in
# an environment of its own.
VERL_VENV ?= .venv-verl
VERL_BIN := $(VERL_VENV)/bin
# ms-swift 4.6 pins trl < 1.0 and transformers < 5.20: its own environment too.
SWIFT_VENV ?= .venv-swift
SWIFT_BIN := $(SWIFT_VENV)/bin

# The tests start their own redis-server (and nginx, the deploy's proxy; chromium drives the
# curriculum page); install Debian's when missing (needs root).
system-deps:
	@command -v redis-server >/dev/null && command -v prometheus >/dev/null && command -v nginx >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server prometheus nginx chromium chromium-driver; }

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
	# verl and transfer_queue install a top-level `tests` package of their own, which would
	# shadow this repository's tests/ (`tests.servers`); nothing imports it at run time.
	rm -rf $(1)/lib/python*/site-packages/tests
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
# maps service/, client/, ... into spard.*) into build/typecheck, then checked there; and the
# efficacy benchmark (run from the clone, not shipped) against that installed package.
typecheck: install
	rm -rf build/typecheck build/lib  # build/lib: setuptools would reuse files deleted since
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation --target build/typecheck .
	cd build/typecheck && MYPYPATH=.:$(CURDIR) $(CURDIR)/$(BIN)/mypy --strict --config-file $(CURDIR)/pyproject.toml -p spard -p benchmarks.efficacy

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

# The edit-test loop: lint and every test not marked slow (no trainer runs, no wheel builds,
# no browser), in .venv. `make test` runs everything, slow tests included.
test-quick: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 -m "not slow" --ignore=tests/verl --ignore=tests/swift $(PYTEST_ARGS)

pytest-verl: install-verl system-deps
	$(VERL_BIN)/python -m pytest tests/verl $(PYTEST_ARGS)

pytest-swift: install-swift system-deps
	$(SWIFT_BIN)/python -m pytest tests/swift $(PYTEST_ARGS)

# TRL's own GRPO tests (test_grpo_trainer.py of TRL's repository: TRL's package does not ship
# it and this repository does not copy it) against GRPOTrainer and SpardGRPOTrainer, hub-free:
# the whole file with `static`, the reward tests with the default strategy; it fails if a test
# that passes for GRPOTrainer does not for the adapter. Runs when TRL_TESTS names the tests
# folder of a TRL checkout (docs/trl-drop-in.md); says it was skipped otherwise.
TRL_TESTS ?=
TRL_UPSTREAM_OUT ?= build/trl-upstream
TRL_UPSTREAM := $(BIN)/python -m tests.trl_upstream.run --tests "$(TRL_TESTS)" --out $(TRL_UPSTREAM_OUT) --workers 2

pytest-trl-upstream: install
ifeq ($(TRL_TESTS),)
	@echo "pytest-trl-upstream: skipped: set TRL_TESTS to the tests folder of a checkout of TRL's repository"
else
	$(TRL_UPSTREAM) --mode plain
	$(TRL_UPSTREAM) --mode static
	$(TRL_UPSTREAM) --mode spard --rewards
	$(BIN)/python -m tests.trl_upstream.run --compare $(TRL_UPSTREAM_OUT)
endif

# The documentation site (mkdocs-material, API reference by mkdocstrings), strictly.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d build/site

# The four environments are installed side by side (pip waits on the network and the disk more
# than on a core), and the verl and ms-swift suites, each one process, run side by side too;
# -Otarget keeps each one's output in one piece.
install-all:
	$(MAKE) -j4 -Otarget install install-verl install-swift $(CHECKOV_VENV)/bin/.installed

pytest-trainers: install-verl install-swift system-deps
	$(MAKE) -j2 -Otarget pytest-verl pytest-swift

test: install-all lint typecheck docs deploy-check pytest pytest-trainers pytest-trl-upstream

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
# Then the field's methods, added after the freeze (48 runs, same protocol, their own hash).
bench-trl-lm: install system-deps
	$(BIN)/python -m benchmarks.trl_lm --evaluation --out benchmarks/trl_lm/results/v2
	$(BIN)/python -m benchmarks.trl_lm --field --out benchmarks/trl_lm/results/v2

clean:
	rm -rf $(VENV) $(VERL_VENV) $(SWIFT_VENV) $(SERVE_VENV) $(CHECKOV_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis
