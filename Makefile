# Two commands: `make run` (demo portal on http://127.0.0.1:5000) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FLASK  := $(BIN)/flask --app wsgi

.PHONY: run test lint venv clean worker cron sweep wheel-check extract update messages catalogues stack

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# The embedded default: SQLite in instance/, mail to the console and the dev Outbox page.
run: $(STAMP)
	FLASK_DEBUG=1 $(FLASK) db upgrade
	FLASK_DEBUG=1 $(FLASK) certs init --if-missing
	FLASK_DEBUG=1 $(FLASK) demo load --if-empty
	FLASK_DEBUG=1 $(FLASK) run --host 127.0.0.1 --port 5000

# With REDIS_URL set: the worker sends email (a batch per job over one SMTP connection) and
# schedules retries; `make cron` schedules the periodic jobs.
worker: $(STAMP)
	$(BIN)/rq worker signoff --with-scheduler --worker-class jobs.worker.AppWorker --url "$$REDIS_URL"

cron: $(STAMP)
	$(BIN)/rq cron jobs/cron.py --url "$$REDIS_URL"

# The production shape locally (Procfile, run by honcho): gunicorn, the RQ worker pool and
# `rq cron`, on the local PostgreSQL and Redis, at http://127.0.0.1:$(STACK_PORT). Its
# database is created if missing; its SECRET_KEY is kept in instance/stack-secret-key.
# Without MAIL_SERVER the workers print each email instead of sending it.
STACK_PORT     ?= 8000
STACK_DATABASE ?= postgresql://postgres@127.0.0.1:5432/signoff_stack
STACK_REDIS    ?= redis://127.0.0.1:6379/0
STACK_ENV = DATABASE_URL="$${DATABASE_URL:-$(STACK_DATABASE)}" \
	REDIS_URL="$${REDIS_URL:-$(STACK_REDIS)}" \
	SECRET_KEY="$$(cat instance/stack-secret-key)" \
	PUBLIC_BASE_URL="$${PUBLIC_BASE_URL:-http://127.0.0.1:$(STACK_PORT)}" \
	PROMETHEUS_MULTIPROC_DIR="$(abspath instance/stack-metrics)" \
	PATH="$(abspath $(BIN)):$$PATH"
stack: $(STAMP)
	@mkdir -p instance
	@rm -rf instance/stack-metrics && mkdir instance/stack-metrics  # emptied at each start
	@test -s instance/stack-secret-key || (umask 077 && $(BIN)/python -c \
	  "import secrets; print(secrets.token_hex(32))" > instance/stack-secret-key)
	@$(STACK_ENV) $(BIN)/python -c "import os, sqlalchemy as sa; \
	  from portal.config import _normalise_database_url as normal; \
	  url = sa.engine.make_url(normal(os.environ['DATABASE_URL'])); \
	  admin = sa.create_engine(url.set(database='postgres'), isolation_level='AUTOCOMMIT'); \
	  c = admin.connect(); \
	  known = c.scalar(sa.text('SELECT 1 FROM pg_database WHERE datname = :n'), {'n': url.database}); \
	  known or c.execute(sa.text('CREATE DATABASE \"%s\"' % url.database)); \
	  print(('database %s exists' if known else 'database %s created') % url.database)"
	$(STACK_ENV) $(FLASK) db upgrade
	$(STACK_ENV) $(FLASK) certs init --if-missing
	$(STACK_ENV) $(FLASK) demo load --if-empty
	$(STACK_ENV) $(BIN)/honcho start --port $(STACK_PORT)

# Fast-forward the demo: `make sweep AT=2026-12-08T10:00` sends what would be due then.
sweep: $(STAMP)
	$(FLASK) jobs sweep $(if $(AT),--at $(AT))

# Languages: `make messages` (= `make extract update`) extracts every _() of the code and
# templates into the template catalogue and merges it into each language's .po (new
# strings arrive empty, never fuzzy); translate them, then `make catalogues` compiles the .mo files, which are committed so that
# `make run` and a wheel need nothing more. tests/test_catalogues.py fails on an empty or
# fuzzy string, a stale .mo, or template text outside _().
POT := portal/translations/messages.pot
extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --sort-by-file \
	  --project Signoff --version 0.1.0 --msgid-bugs-address "the Signoff issue tracker" \
	  --copyright-holder "Signoff" -o $(POT) .

update: extract
	$(BIN)/pybabel update -i $(POT) -d portal/translations --no-fuzzy-matching --ignore-obsolete -w 96

messages: update

catalogues: $(STAMP)
	$(BIN)/pybabel compile -d portal/translations --statistics

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# `pip install .` (not editable) gives a working app: CI serves /login from the wheel.
wheel-check:
	bash .ci/wheel-check

clean:
	rm -rf $(VENV) instance .pytest_cache
