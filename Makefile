# Two entry points that work on a fresh machine with only Python 3.11+ and pip.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check test-at resilience bench clean catalogs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The compiled gettext catalogs (the build's; a checkout without them compiles each .po in memory at start).
MO := api/locale/nb/LC_MESSAGES/forlop.mo
$(MO): api/locale/nb/LC_MESSAGES/forlop.po $(STAMP)
	$(BIN)/python -m api.catalogs compile

## catalogs: after changing a text of the pages or an error: extract them all, merge into the .po files (then
## translate the new entries in api/locale/nb/LC_MESSAGES/forlop.po) and compile
catalogs: $(STAMP)
	$(BIN)/python -m api.catalogs update
	$(BIN)/python -m api.catalogs compile

## run: start the server with a seeded synthetic demo on SQLite (http://127.0.0.1:8000)
run: $(STAMP) $(MO)
	$(BIN)/forlop demo --database-url sqlite:///forlop-demo.db --reset
	FORLOP_ENV=demo DATABASE_URL=sqlite:///forlop-demo.db $(BIN)/forlop serve

# The moments where calendars break (Oslo time): just after midnight on the 1st, when UTC is still in the last
# month and year; the spring DST change; a leap day; the last hour of a year. `make test` runs the suite today, then
# at each of these the tests that run the calendar in-process on SQLite: not the fault suite, not those marked
# any_date (no calendar logic), not the PostgreSQL twins (the calendar is Python's; the database compares UTC
# instants), not the browser and process tests (the same pages and commands, checked in-process), except those
# marked dated (a command's own calendar). About a fifth of the suite's time, so four dates fit in CI.
TEST_DATES ?= 2027-01-01T00:30+01:00 2027-03-28T01:30+01:00 2028-02-29T12:00+01:00 2027-12-31T23:00+01:00
AT_DATES   := dated or not (any_date or postgresql or browser or process)

## check: the architecture's guard rails: import contracts (layers, no cycles, a framework-free domain) and types
check: $(STAMP) $(MO)
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

## test: the guard rails, the whole test suite today, then again at each of TEST_DATES (SQLite always; PostgreSQL
## when reachable, required under CI)
test: check
	$(BIN)/python -m pytest -n 2 --durations=15
	@for day in $(TEST_DATES); do \
	    echo "== the date-sensitive tests at $$day (FORLOP_TEST_TODAY)"; \
	    FORLOP_TEST_TODAY=$$day $(BIN)/python -m pytest -n 2 -q --ignore=tests/resilience -m "$(AT_DATES)" || exit 1; \
	done

## test-at: the whole suite at one moment, e.g. `make test-at TODAY=2027-03-01` or TODAY=2027-03-28T01:30+01:00
test-at: $(STAMP)
	FORLOP_TEST_TODAY=$(TODAY) $(BIN)/python -m pytest -n 2 --durations=15

## resilience: the fault suite alone (killed workers and scheduler, a stopped database, a full disk), with its figures
resilience: $(STAMP)
	$(BIN)/python -m pytest tests/resilience -n 2 -rP

## bench: the engine benchmark (prints figures; never asserts on time)
bench: $(STAMP)
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) forlop-demo.db* .pytest_cache
