# Every target bootstraps .venv itself, so each works on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CA := $(VENV)/bin/corpus-audit
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint train clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(CA) demo -o reports/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check corpus_audit tests bench

train: $(STAMP)
	$(CA) train classifiers/ca-default/data -o classifiers/ca-default --seed 0

clean:
	rm -rf $(VENV) build dist *.egg-info reports/demo/scan
