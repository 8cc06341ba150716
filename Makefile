# Gonghui developer commands: one per workflow. `make` (or `make help`) lists them.

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

# Every service folder with a pyproject.toml is installed editable; shared/ first.
SERVICE_DIRS := $(patsubst %/pyproject.toml,%,$(sort $(wildcard services/*/pyproject.toml)))
EDITABLES    := $(if $(wildcard shared/pyproject.toml),-e shared) $(addprefix -e ,$(SERVICE_DIRS))
PYPROJECTS   := $(sort $(wildcard */pyproject.toml services/*/pyproject.toml))

# Interpreters tried for the virtualenv, newest first; `make install PYTHON=...` goes first.
PYTHON_CANDIDATES := $(strip $(PYTHON) python3.13 python3.12 python3.11 python3)

ARGS ?=

.PHONY: help install run demo test lint migrate revision fuzz bench faults clean

help: ## list the targets
	@echo "Gonghui developer commands:"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-9s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install shared, the services and dev tools (skipped when nothing changed)
	@:

$(BIN)/python:
	@py=""; \
	for p in $(PYTHON_CANDIDATES); do \
		if command -v "$$p" >/dev/null 2>&1 && \
			"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
			py="$$p"; break; \
		fi; \
	done; \
	if [ -z "$$py" ]; then \
		echo "error: Gonghui needs Python >= 3.11; none of these works: $(PYTHON_CANDIDATES)" >&2; \
		echo "       install one, or name it: make install PYTHON=/path/to/python3.11" >&2; \
		exit 1; \
	fi; \
	echo "creating $(VENV) with $$py ($$("$$py" -c 'import sys; print(sys.version.split()[0])'))"; \
	"$$py" -m venv $(VENV)

# The stamp is newer than every file that decides what gets installed.
$(STAMP): constraints.txt requirements-dev.txt $(PYPROJECTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -r requirements-dev.txt $(EDITABLES)
	@touch $@

run: install ## start NATS (unless one is running) and every service, migrated; Ctrl-C stops
	$(BIN)/python scripts/devrun.py

demo: install ## like run, then fill the services with demo data
	$(BIN)/python scripts/devrun.py --demo

# mypy checks shared, every service package (the folder name under services/) and the bench.
MYPY_PACKAGES := -p gonghui_shared $(foreach d,$(SERVICE_DIRS),-p $(notdir $(d))) -p bench

test: install ## lint and type-check, then run every test (make test ARGS="-k members -x")
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_PACKAGES)
	$(BIN)/python -m pytest $(ARGS)

lint: install ## ruff check and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_PACKAGES)

# `make test` fuzzes too, briefly and replaying the same examples (tests/fuzz); this draws new
# ones, many more, on SQLite and PostgreSQL (TEST_POSTGRES_URL).
FUZZ_EXAMPLES ?= 500
fuzz: install ## schemathesis on every service's OpenAPI, long: make fuzz FUZZ_EXAMPLES=2000
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_RANDOM=1 FUZZ_BACKENDS=sqlite,postgres \
		$(BIN)/python -m pytest tests/fuzz $(ARGS)

# Needs PostgreSQL (BENCH_POSTGRES_URL or TEST_POSTGRES_URL) and NATS (NATS_URL, else its own).
bench: install ## load a generated province and measure it: make bench ARGS="--scale 0.05"
	$(BIN)/python -m bench $(ARGS)

# `make test` runs the short version (tests/faults/test_faults_short.py: NATS and a service
# killed). This runs every fault, the database outage on PostgreSQL (TEST_POSTGRES_URL) only;
# it starts its own nats-server and never touches the shared NATS or PostgreSQL server.
faults: install ## fault injection under load, a few minutes; the table goes to .faults/report.md
	$(BIN)/python -m tests.faults $(ARGS)

migrate: install ## upgrade every service database to the latest migration
	$(BIN)/python scripts/devrun.py --migrate-only

# Runs in the service folder; GONGHUI_DATA_DIR keeps autogenerate on the database `make run` uses.
revision: install ## new migration: make revision SERVICE=membership MSG="add x" [AUTO=1 to autogenerate]
	@if [ -z "$(SERVICE)" ] || [ -z "$(MSG)" ]; then \
		echo 'usage: make revision SERVICE=membership MSG="add x" [AUTO=1]' >&2; exit 1; \
	fi
	@if [ ! -f "services/$(SERVICE)/alembic.ini" ]; then \
		echo "error: services/$(SERVICE)/alembic.ini not found" >&2; exit 1; \
	fi
	cd services/$(SERVICE) && GONGHUI_DATA_DIR="$${GONGHUI_DATA_DIR:-$(CURDIR)/.data}" \
		$(CURDIR)/$(BIN)/alembic revision$(if $(AUTO), --autogenerate) -m "$(MSG)"

clean: ## remove .venv, .data (local databases and NATS store) and caches
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .mypy_cache
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +
