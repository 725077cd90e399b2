# Two entry points for newcomers: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo serve test bench localstack clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python manage.py demo

serve: $(BIN)/.installed
	$(BIN)/python manage.py demo --serve

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# LocalStack runs from its own Python 3.13 venv, cached outside the clone
# (${XDG_CACHE_HOME:-~/.cache}/outbox-localstack/) so fresh clones reuse it.
.PHONY: localstack-install test-localstack
localstack-install: $(BIN)/.installed
	$(BIN)/python bench/localstack.py install

# The tests marked `aws` (those using aws_settings) against one LocalStack.
test-localstack: $(BIN)/.installed
	OUTBOX_TEST_AWS=localstack $(BIN)/python -m pytest -m aws $(PYTEST_ARGS)

# The suite on the newest Django 6 and Python 3.13, in a venv of its own. The
# requirements are the same except for the Django line. LocalStack-only tests
# are skipped in this run as they are by `make test`, and so is the chaos
# test (minutes of 2,000 signups), which `make test` runs on Django 5.2.
PYTHON_DJANGO6 ?= $(or $(wildcard /root/.pyenv/versions/3.13.0/bin/python),python3.13)
VENV_DJANGO6 ?= .venv-django6
BIN_DJANGO6 = $(VENV_DJANGO6)/bin

.PHONY: test-django6
$(BIN_DJANGO6)/.installed: requirements.txt
	$(PYTHON_DJANGO6) -m venv $(VENV_DJANGO6)
	$(BIN_DJANGO6)/pip install --quiet --upgrade pip
	sed 's/^Django[<>=,.0-9]*$$/Django>=6,<7/' requirements.txt > $(VENV_DJANGO6)/requirements.txt
	$(BIN_DJANGO6)/pip install --quiet -r $(VENV_DJANGO6)/requirements.txt
	touch $@

test-django6: $(BIN_DJANGO6)/.installed
	$(BIN_DJANGO6)/python -m pytest -m "not localstack_only" \
		--deselect tests/test_guarantees_chaos.py::test_chaos_run_loses_nothing $(PYTEST_ARGS)

# Benchmarks on PostgreSQL (BENCH_DATABASE_URL, default: the database
# bench_perf on 127.0.0.1, created and emptied by the scripts). Each script
# prints its figures and appends them to docs/benchmarks.md; run one with
# --help for the options of larger runs.
bench: $(BIN)/.installed
	$(BIN)/python bench/localstack.py install
	$(BIN)/python bench/relay_throughput.py --sns start --fillfactor 100
	$(BIN)/python bench/signup.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/consumer_throughput.py
	$(BIN)/python bench/claim_growth.py
	$(BIN)/python bench/purge.py

clean:
	rm -rf $(VENV) $(VENV_DJANGO6) db.sqlite3 var/test.sqlite3* var/payloads
