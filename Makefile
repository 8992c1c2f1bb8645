# Pulse developer entry points. Everything runs from the project virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Coverage of the production code (settings: [tool.coverage.*] in pyproject.toml): a table per
# package and the total at the end of pytest's summary, per file in var/coverage/html/.
# `make test COV_ARGS=` runs without it.
COV_ARGS ?= --cov --cov-report=html --cov-report=json -p devtools.pytest_coverage

.DEFAULT_GOAL := help
.PHONY: help venv run test lint imports bench bench-realtime clean-var

help:
	@echo "make venv | run | test | lint | imports | bench | bench-realtime | clean-var"

venv: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when requirements.txt is newer than the stamp.
$(STAMP): requirements.txt | $(VPY)
	$(VPY) -m pip install -r requirements.txt
	@touch $@

run: venv
	$(VPY) -m devtools.run

# The import check runs first and fails the target on its own.
# pytest exit code 5 = "no tests collected": make that an explicit failure.
test: venv imports
	@mkdir -p var/coverage
	@$(VPY) -m pytest -q $(COV_ARGS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; fi; \
	exit $$rc

lint: venv imports
	$(VENV)/bin/ruff check .

# The import graph: import-linter's contracts in pyproject.toml (layers, no devtools, no
# cycles between siblings; the full report only when one is broken), then
# devtools/import_graph.py (cycles between any modules, the entry-point modules).
imports: venv
	@out=$$($(VENV)/bin/lint-imports --no-logo --cache-dir var/import-linter 2>&1); rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "$$out"; echo "ERROR: import contracts broken" >&2; \
	exit $$rc; fi; echo "import-linter: $$(echo "$$out" | tail -n 1)"
	@$(VPY) -m devtools.import_graph

# Every benchmark: the push pipeline's (bench/run.py, or bench/pipeline.py) and the gateway's.
bench: venv
	@if [ -f bench/run.py ]; then $(VPY) -m bench.run; \
	elif [ -f bench/pipeline.py ]; then $(VPY) -m bench.pipeline; \
	else echo "bench: no pipeline benchmark yet"; fi
	@$(MAKE) --no-print-directory bench-realtime

# 2,000 Socket.IO clients against the gateway; BENCH_REALTIME_ARGS="--clients 500" etc.
bench-realtime: venv
	$(VPY) -m bench.realtime $(BENCH_REALTIME_ARGS)

clean-var:
	rm -rf var
