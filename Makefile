# Two entry points that work on a fresh machine with only Python 3.11+ and pip.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test resilience bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: start the server with a seeded synthetic demo on SQLite (http://127.0.0.1:8000)
run: $(STAMP)
	$(BIN)/forlop demo --database-url sqlite:///forlop-demo.db --reset
	FORLOP_ENV=demo DATABASE_URL=sqlite:///forlop-demo.db $(BIN)/forlop serve

## test: the whole test suite (SQLite always; PostgreSQL when it is reachable, required under CI)
test: $(STAMP)
	$(BIN)/python -m pytest -n 2

## resilience: the fault suite alone (killed workers and scheduler, a stopped database, a full disk), with its figures
resilience: $(STAMP)
	$(BIN)/python -m pytest tests/resilience -n 2 -rP

## bench: the engine benchmark (prints figures; never asserts on time)
bench: $(STAMP)
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) forlop-demo.db* .pytest_cache
