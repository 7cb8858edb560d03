# The two commands of the README: `make run` and `make test`. Both create the virtualenv,
# install the locked dependencies and start the local services (reused when running).
SHELL := /bin/bash
VENV := .venv
ORGBASE := $(VENV)/bin/orgbase
STATE := .orgbase
ENV_FILE := $(STATE)/services.env

.PHONY: run test check docs stop install services status drills fuzz bench-auth bench-data bench-services bench-observability bench-server bench-webhooks bench-rpc bench-scaling bench-tenancy bench-storage bench-archive bench-realtime

$(VENV)/.installed: pyproject.toml uv.lock scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@touch $@

install: $(VENV)/.installed

services: install
	@$(ORGBASE) services up --state-dir $(STATE)

status: install
	@$(ORGBASE) services status --state-dir $(STATE)

run: services
	@$(ORGBASE) migrate --env-file $(ENV_FILE)
	@$(ORGBASE) seed-demo --env-file $(ENV_FILE)
	@echo "the orgbase command is $(ORGBASE) ('source $(VENV)/bin/activate' puts it on PATH); 'make stop' stops the services"
	@# serve prints where it listens (ORGBASE_HTTP_PORT, default 8000), the anon key and the mail page.
	@$(ORGBASE) serve --env-file $(ENV_FILE)

test: services
	@scripts/test_packages.sh
	@$(VENV)/bin/pytest

check: services
	@# The benchmark peers and the docs hooks are type-checked too: they need their groups.
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --group bench --group docs --quiet
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@# The layers of docs/architecture.md (contracts in pyproject.toml).
	@$(VENV)/bin/lint-imports --no-cache --no-logo
	@# Fitness: every raised error code in the catalog, and docs/errors.md generated from it.
	@$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit/test_error_catalog.py
	@# Fitness: every table has one owning area, the only one naming it in SQL (core/tables.py).
	@$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit/test_table_owners.py
	@# Fitness: no class over 250 lines, no function over 60, no import circle.
	@$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit/test_fitness.py
	@# The README's quickstart, as written, against a gateway on a free port of the local stack.
	@$(ORGBASE) migrate --env-file $(ENV_FILE) >/dev/null
	@$(ORGBASE) seed-demo --env-file $(ENV_FILE) >/dev/null
	@$(VENV)/bin/python -m scripts.docs.quickstart
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The documentation site, into build/site (its API reference reads the local stack's schema).
docs: services
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --group bench --group docs --quiet
	@$(ORGBASE) migrate --env-file $(ENV_FILE) >/dev/null
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The fault drills alone, with their figures (failed requests, seconds to recover).
drills: services
	@$(VENV)/bin/pytest -q -s tests/integration/test_fault_drills.py tests/integration/test_service_faults.py tests/integration/test_webhook_faults.py tests/integration/test_cluster_drills.py

# The API fuzzer with many more examples per operation than `make test` runs.
fuzz: services
	@ORGBASE_FUZZ_EXAMPLES=$${ORGBASE_FUZZ_EXAMPLES:-200} $(VENV)/bin/pytest -q -s tests/security/test_api_fuzz.py

stop:
	@if [ -x $(ORGBASE) ]; then $(ORGBASE) services down --state-dir $(STATE); fi

bench-auth: services
	@command -v wrk >/dev/null || sudo -n apt-get install -y wrk || apt-get install -y wrk
	@$(VENV)/bin/python -m bench.auth_bench

bench-data: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --group bench --quiet
	@$(VENV)/bin/python -m bench.data_bench

bench-services: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@$(VENV)/bin/python -m bench.services_bench

bench-observability: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@$(VENV)/bin/python -m bench.observability_bench

bench-server: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --group bench --quiet
	@$(VENV)/bin/python -m bench.server_bench

bench-tenancy: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@$(VENV)/bin/python -m bench.tenancy_bench

bench-webhooks: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@$(VENV)/bin/python -m bench.webhooks_bench

bench-rpc: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --group bench --quiet
	@$(VENV)/bin/python -m bench.rpc_bench

# File storage: 100 MiB up and down beside nginx, 4 KiB uploads/s vs inserts/s, memory
# during a 1 GiB upload.
bench-storage: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@command -v nginx >/dev/null || apt-get install -y nginx
	@$(VENV)/bin/python -m bench.storage_bench

bench-realtime: services
	@$(VENV)/bin/python -m bench.realtime_bench

# Data API reads on primary vs primary + replica; cache and realtime on Sentinel vs cluster.
bench-scaling: services
	@command -v wrk >/dev/null || apt-get install -y wrk
	@$(VENV)/bin/python -m bench.scaling_bench

bench-archive: services
	@$(VENV)/bin/python -m bench.archive_bench
