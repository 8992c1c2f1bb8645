# Pulse developer entry points. Everything runs from the project virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench bench-realtime clean-var

help:
	@echo "make venv | run | test | lint | bench | bench-realtime | clean-var"

venv: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when requirements.txt is newer than the stamp.
$(STAMP): requirements.txt | $(VPY)
	$(VPY) -m pip install -r requirements.txt
	@touch $@

run: venv
	$(VPY) -m devtools.run

# pytest exit code 5 = "no tests collected": make that an explicit failure.
test: venv
	@$(VPY) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests" >&2; fi; \
	exit $$rc

lint: venv
	$(VENV)/bin/ruff check .

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
