# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
E2E_STAMP := .e2e-venvs/.installed

.PHONY: demo test unit integration soak bench e2e e2e-venvs clean install

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## One venv per end-to-end tool under .e2e-venvs/ (target-jsonl, target-postgres, singer-tools, meltano, target-duckdb, target-stitch), pinned.
$(E2E_STAMP): scripts/e2e_venvs.sh $(wildcard tests/e2e/requirements/*.txt)
	PYTHON=$(PYTHON) bash scripts/e2e_venvs.sh
	touch $(E2E_STAMP)

e2e-venvs: $(E2E_STAMP)

## Everything: unit, integration (tap as a subprocess against the local simulator), end-to-end.
## TAP_E2E_REQUIRED=1: an end-to-end tool that is missing fails the run (a plain `pytest` skips those tests).
test: $(STAMP) $(E2E_STAMP)
	TAP_E2E_REQUIRED=1 $(BIN)/python -m pytest tests -q -ra

## Only the end-to-end tests (tests/e2e): target-jsonl, target-postgres on a PostgreSQL they start, target-duckdb, target-stitch, singer-check-tap, Meltano.
e2e: $(STAMP) $(E2E_STAMP)
	TAP_E2E_REQUIRED=1 $(BIN)/python -m pytest tests/e2e -q -ra

## The main job on the bundled local sandbox: simulator up, discovery, two syncs into DuckDB, a report from SQL.
## make demo DEMO_TARGET=jsonl: into target-jsonl files instead, with line counts.
DEMO_TARGET ?= duckdb
demo: $(STAMP)
	PYTHON=$(PYTHON) bash scripts/e2e_venvs.sh target-$(DEMO_TARGET)
	$(BIN)/python scripts/demo.py --target $(DEMO_TARGET)

## The performance benchmark (bench/README.md); more N: make bench BENCH_ARGS="--chats 50000 200000".
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## The soak (soak/run_soak.py): 200,000 chats, 10% faults, three forced outages, resumed until done (a few minutes).
soak: $(STAMP)
	$(BIN)/python soak/run_soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .e2e-venvs demo-output .pytest_cache
