# 清源 Qingyuan — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi:app
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: run test install dev translations lint bench bench-ledger clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

# Compiled message catalogues are build output (the .po files are the source).
translations: $(VENV)/.installed
	$(BIN)/pybabel compile -q -d app/translations 2>/dev/null || $(BIN)/pybabel compile -d app/translations

run: install translations
	$(BIN)/flask db upgrade
	$(BIN)/flask report rebuild-summary --if-needed
	$(BIN)/flask seed-demo --if-empty
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# The suite on SQLite and, at the same time (two cores: CI's 20 minutes), on PostgreSQL when
# TEST_DATABASE_URL is set or 127.0.0.1:5432 answers.  Each pass has its own database and
# temporary directories; the PostgreSQL pass (browser tests run once, on SQLite) writes to
# $(PG_TEST_LOG), printed when both are done.  Either failing fails the target.
PG_TEST_LOG ?= $(or $(TMPDIR),/tmp)/qingyuan-pytest-postgres-$(shell id -u).log
test: dev translations
	@url="$${TEST_DATABASE_URL:-}"; \
	if [ -z "$$url" ] && $(BIN)/python scripts/pg_available.py "$(PG_TEST_URL)"; then url="$(PG_TEST_URL)"; fi; \
	if [ -z "$$url" ]; then \
	  if [ -n "$${REQUIRE_POSTGRES:-}" ]; then echo "PostgreSQL required but not reachable"; exit 1; fi; \
	  $(BIN)/python -m pytest $(PYTEST_ARGS) || exit $$?; \
	  echo "PostgreSQL not reachable: suite ran on SQLite only"; exit 0; \
	fi; \
	echo "== the suite on SQLite, and on PostgreSQL at the same time (log: $(PG_TEST_LOG)) =="; \
	TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest -m "not browser" -p no:cacheprovider $(PYTEST_ARGS) \
	  > "$(PG_TEST_LOG)" 2>&1 & pg=$$!; \
	$(BIN)/python -m pytest $(PYTEST_ARGS); sqlite_rc=$$?; \
	wait $$pg; pg_rc=$$?; \
	echo "== the suite on PostgreSQL =="; cat "$(PG_TEST_LOG)"; \
	echo "== SQLite: exit $$sqlite_rc; PostgreSQL: exit $$pg_rc =="; \
	[ $$sqlite_rc -eq 0 ] && [ $$pg_rc -eq 0 ]

# pyflakes' rules through ruff (which honours ``# noqa``), then bandit's security checks.
lint: dev
	$(BIN)/ruff check --select F app tests bench
	$(BIN)/bandit -r app -q -c pyproject.toml

# Benchmarks (issue 10 / issue 8): tables printed and written to bench/results/ (git-ignored).
# e.g. make bench BENCH_ARGS="--db postgres --cases 1000000 --reuse"
BENCH_ARGS ?= --db sqlite --cases 100000
bench: dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The issue-10 matrix, one run after another: SQLite then PostgreSQL, 100,000 then 1,000,000
# cases, each reusing its database when it exists (seeded once otherwise).  Every run is
# attempted; the target fails at the end if any run reported an error or a loss.
# e.g. make bench-matrix BENCH_MATRIX_ARGS="--duration 20 --workers 2"
.PHONY: bench-matrix
BENCH_MATRIX_ARGS ?=
bench-matrix: dev
	@rc=0; for db in sqlite postgres; do for n in 100000 1000000; do \
	  echo "== bench: $$db, $$n cases =="; \
	  $(BIN)/python bench/run.py --db $$db --cases $$n --reuse $(BENCH_MATRIX_ARGS) || rc=1; \
	done; done; exit $$rc

# Scale-out (issue 10): the mixed workload direct, through nginx to one host and to several
# hosts (needs nginx).  e.g. make bench-scale-out BENCH_SCALE_OUT_ARGS="--cases 1000000 --hosts 2"
BENCH_SCALE_OUT_ARGS ?= --db postgres --cases 100000
.PHONY: bench-scale-out
bench-scale-out: dev
	$(BIN)/python bench/scale_out.py $(BENCH_SCALE_OUT_ARGS)

# Two checkouts compared in alternating load bursts on one database (bench/ab.py; the other
# checkout is usually a git worktree).  e.g. make bench-ab BENCH_AB_ARGS="--old /tmp/qy-old --workload list"
BENCH_AB_ARGS ?= --old ../qy-old --db postgres --cases 1000000 --workload case
.PHONY: bench-ab
bench-ab: dev
	$(BIN)/python bench/ab.py $(BENCH_AB_ARGS)

bench-ledger: dev
	$(BIN)/python bench/ledger_import.py $(BENCH_LEDGER_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# Extract every marked string (babel.cfg) into the English catalogue, then list the ones still
# without English: fill their msgstr in app/translations/en/LC_MESSAGES/messages.po.
.PHONY: translations-update
translations-update: dev
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext -k N_ --add-location=file --sort-output \
	  -o $(VENV)/messages.pot .
	$(BIN)/pybabel -q update -i $(VENV)/messages.pot -d app/translations -l en \
	  --no-fuzzy-matching --ignore-obsolete
	$(BIN)/python -m app.i18n
