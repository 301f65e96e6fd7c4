# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRISM  := tools/prism/node_modules/.bin/prism

.PHONY: install demo test up stop bench chaos lint clean docs promtool chromium postgresql migrate

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(PRISM): tools/prism/package.json
	cd tools/prism && npm ci --no-audit --no-fund --loglevel=error
	touch $(PRISM)

install: $(STAMP)

## make demo: start the embedded stack, run deals through it, print the outcome, stop it all. STACK=name picks
## which adapter plays each role (connectors/stacks.json: salesforce-docusign, netsuite-xero); `make up` and
## `make chaos` take it too
demo: $(STAMP)
	$(if $(STACK),STACK=$(STACK)) $(BIN)/python -m devstack.demo

## promtool (Debian package prometheus): the alert rules' unit tests need it; `make up` runs Prometheus if present
promtool:
	@command -v promtool >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus)

# The browser tests drive Debian's chromium (never a downloaded browser); install it on a fresh machine.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

## postgresql (Debian package): the stores' tests run on it too, and `make up PG=1` runs one. Installed without the
## package's own cluster (no server left running on 5432): ours are temporary, made by devstack/postgres.py.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ( \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common && \
	  sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql)

## make test: the whole suite against real servers on loopback
test: $(STAMP) $(PRISM) promtool chromium postgresql
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## make up: the embedded stack in the foreground (Temporal + UI, sandboxes, worker, ingress); Ctrl-C, SIGTERM or
## SIGHUP stops every child. REPLICAS=2: two ingress processes (webhooks delivered to each in turn) and two workers;
## PG=1: the stores on a temporary PostgreSQL server instead of SQLite files
up: $(STAMP) $(if $(PG),postgresql)
	$(if $(STACK),STACK=$(STACK)) $(BIN)/python -m devstack.stack $(if $(REPLICAS),--replicas $(REPLICAS)) $(if $(PG),--postgres)

## make migrate: apply the stores' migrations (Alembic) to DATABASE_URL and FINDINGS_URL (SQLite files: marked)
migrate: $(STAMP)
	$(BIN)/python -m stores.migrate

## make stop: stop a stack left over from a killed `make up` or `make demo` (the run file under .data/ names it)
stop: $(STAMP)
	$(BIN)/python -m devstack.stack --stop

## make bench: benchmarks; each prints a table and writes bench/results/<name>.json (figures, never fails on a target)
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## make chaos: 1,000 deals through vendor faults, worker SIGKILLs and a Temporal restart, then amendments, invoices and
## payments under the same faults (REPLICAS=2: an ingress replica SIGKILLed; PG=1: PostgreSQL restarted); exit 1 if
## anything is lost, duplicated or left unreconciled
chaos: $(STAMP) $(if $(PG),postgresql)
	$(if $(STACK),STACK=$(STACK)) $(BIN)/python -m bench.chaos --deals $(or $(DEALS),1000) \
		$(if $(REPLICAS),--replicas $(REPLICAS)) $(if $(PG),--postgres) $(CHAOS_ARGS)

## make docs: the field mapping and the integration catalogue under docs/, generated from the code
docs: $(STAMP)
	$(BIN)/python -m observability.docs

## make lint: ruff over the tree and mypy over every package and script (CI runs it before the tests)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf .data tools/prism/node_modules
