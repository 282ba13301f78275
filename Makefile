# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration soak bench e2e clean install

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Everything: unit, integration (tap as a subprocess against the local simulator), end-to-end.
test: $(STAMP)
	$(BIN)/python -m pytest tests -q -ra

## The main job on the bundled local sandbox: simulator up, discovery, sync, summary.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
