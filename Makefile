# The README's commands. Each one sets up .venv first (idempotent), with what it needs:
# `run` (and `tail`) the pipeline and the embedded broker, `demo` the simulator too, `test` the
# test tools, `bench` the benchmark's.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run tail test test-unit test-fast lint demo candles bench audit clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# one stamp per set of extras; each is redone when pyproject.toml changes
$(VENV)/.installed-%: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

setup: $(VENV)/.installed-local

## Run the trades pipeline against live Kraken (starts an in-memory broker if none answers).
run: $(VENV)/.installed-local
	$(PY) pipelines/trades/main.py

## Print the output topic readably and follow it, e.g. make tail ARGS="--pairs BTC/USD --since 10m"
## (python -m sources.tools.tail --help lists the options).
tail: $(VENV)/.installed-local
	$(PY) -m sources.tools.tail $(ARGS)

## Lint and run the whole test suite against a real broker and the Kraken simulator.
test: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m pytest -n 3 --dist loadfile --durations=20

## The fast tiers while you work: unit (seconds), then unit + component.
test-unit: $(VENV)/.installed-test
	$(PY) -m pytest tests/unit -q --hypothesis-profile=quick -n 2

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest tests/unit tests/component -q --hypothesis-profile=quick -n 3 --dist loadfile

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## Offline demo: simulator + broker + pipeline, printing the output topic.
demo: $(VENV)/.installed-simulator $(VENV)/.installed-local
	$(PY) -m simulator.demo

## Benchmark: the pipeline vs a direct loop vs the producer ceiling (writes bench/results/latest.md).
bench: $(VENV)/.installed-bench
	$(PY) -m bench

## Audit a trades topic (docs/audit.md), e.g. make audit ARGS="--since 1d --verify-rest".
audit: $(VENV)/.installed-local
	$(PY) -m sources.audit $(ARGS)

clean:
	rm -rf $(VENV) state .pytest_cache .ruff_cache .hypothesis
