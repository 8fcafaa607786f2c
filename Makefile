# Two commands: `make demo` and `make test`. Everything else here is their set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/runbook/kernel.json

.PHONY: setup system docker test test-fast mutation lint rules-check demo format clean docs params-doc settings-doc golden bench bench-distributed accuracy

setup: system $(STAMP) $(KERNEL)
	@bash scripts/install-git-filter.sh $(PY)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,distributed,docs]'
	touch $(STAMP)

$(KERNEL): $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name runbook --display-name "Python (runbook)"

system:
	@bash scripts/install-system.sh

docker: system
	@bash scripts/ensure-docker.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

rules-check: system $(STAMP)
	$(PY) -m runbook_lib.lab.deploy check

# nbval on the runbooks themselves, each replaying its recorded incident (tests/runbooks/):
# no service, so in the fast tier; one notebook's cells share a kernel (one xdist group).
NBVAL := --nbval runbook_lib/notebooks --ignore=runbook_lib/notebooks/postmortem.ipynb

# Everything: the fast tier on every core, then the tests that start real services, their
# modules side by side (one xdist group each, the longest first: see tests/conftest.py
# STACK_GROUP_S; --no-loadscope-reorder keeps that order): they mostly wait on Prometheus,
# Alertmanager and runs, so more workers than cores. The slowest 15 are listed (issue 25).
STACK_WORKERS ?= 4
# The fast tier, two xdist workers a core (at most 8: each is a Python of ~300 MB): a third
# of its time is spent waiting on kernels and subprocesses (one per core used 1.3 of 2 cores:
# 189 s; two per core 163-165 s, issue 25).
FAST_WORKERS ?= $(shell n=$$(( 2 * $$(nproc) )); echo $$(( n < 8 ? n : 8 )))
# Both tiers write Python's byte-code caches (__pycache__, gitignored) even where
# PYTHONDONTWRITEBYTECODE is set: without them every process compiled each module it imports
# from source (0.3-0.5 s of CPU to import the service, the command line and the notebook
# API) and pytest rewrote every test module's assertions in each worker (9 s of CPU to
# collect the suite instead of 4).
PYTEST := PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest
FAST_TIER := $(PYTEST) -q -m "not stack" -n $(FAST_WORKERS) --dist loadgroup tests $(NBVAL)
# The stack tests that mostly wait on real time (marked `waits`: a production rule's `for: 1m`,
# Alertmanager's group_wait, an escalation minutes long) run beside the fast tier instead of
# after it, on two more workers: they use little CPU (the machine's 62 CPU-s in their 178 s
# alone), and the stack tier after them is 283 worker-seconds shorter. One run each on 3 Dec:
# beside the fast tier 184.2 + 352.7 s of pytest; beside the other stack tests, whose waits
# on conditions their CPU delays, 161.2 + 415.8 s. Their report comes last.
test: setup docker lint
	@side=$$(mktemp -d); trap 'rm -rf "$$side"' EXIT; \
	echo "The stack tests marked waits run beside the fast tier; their report comes last."; \
	$(PYTEST) -q -m "stack and waits" -n 2 --dist loadgroup --durations=3 tests \
		--basetemp=$$side/tmp > $$side/log 2>&1 & waits=$$!; \
	$(FAST_TIER) && \
	$(PYTEST) -q -m "stack and not waits" -n $(STACK_WORKERS) --dist loadgroup \
		--no-loadscope-reorder --durations=15 tests; tiers=$$?; \
	wait $$waits; beside=$$?; \
	echo "== beside the fast tier: the stack tests marked waits"; cat $$side/log; \
	exit $$(( tiers || beside ))

# Everyday: no Prometheus, Alertmanager, dockerd or browser (tests marked `stack` are skipped),
# two workers a core; tests that look at host-wide processes share one xdist group.
test-fast: setup
	$(FAST_TIER)

# Mutation testing of the core modules against the fast tier (minutes; not part of `make test`).
mutation: setup
	$(PY) -m pip install -q -e '.[test,mutation]'
	$(PY) -m benchmarks.mutation

demo: setup
	$(VENV)/bin/runbook demo

# The documentation site (docs/ -> site/), built offline; --strict fails on a dead link.
docs: setup params-doc settings-doc
	$(VENV)/bin/mkdocs build --strict --site-dir site

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	-bash scripts/stop-monitoring.sh
	rm -rf $(VENV) .state

# docs/settings.md: every setting, its variable, runbook.toml key and flags (contract/settings.py).
settings-doc: $(STAMP)
	$(PY) -m runbook_lib.contract.settings docs/settings.md

# docs/notebook-parameters.md: the parameters table, read from the notebooks' parameters cells.
params-doc: $(STAMP)
	$(PY) -m runbook_lib.notebook.parameters docs/notebook-parameters.md

# The runbooks' nbval fixtures: recorded from their scenarios in a real Prometheus, then each
# runbook's expected outputs (`$(PY) -m tests.runbooks.record --outputs-only` replays only).
golden: setup
	$(PY) -m tests.runbooks.record

bench: setup
	$(PY) -m benchmarks.alert_to_record --alerts 20 --storm 200

accuracy: setup
	$(PY) -m benchmarks.diagnosis_accuracy --seeds 0 1 2

bench-distributed: setup
	$(PY) -m benchmarks.distributed --storm 200
