# The README's commands. Each one sets up .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test test-unit test-fast lint demo candles bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

setup: $(VENV)/.installed

## Run the trades pipeline against live Kraken (starts an in-memory broker if none answers).
run: setup
	$(PY) pipelines/trades/main.py

## Lint and run the whole test suite against a real broker and the Kraken simulator.
test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

## The fast tiers while you work: unit (seconds), then unit + component.
test-unit: setup
	$(PY) -m pytest tests/unit -q

test-fast: setup
	$(PY) -m pytest tests/unit tests/component -q

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## Offline demo: simulator + broker + pipeline, printing the output topic.
demo: setup
	$(PY) -m simulator.demo

## Benchmark: the pipeline vs a direct loop vs the producer ceiling (writes bench/results/latest.md).
bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) state .pytest_cache .ruff_cache .hypothesis
