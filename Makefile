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

clean:
	rm -rf $(VENV) db.sqlite3 var/test.sqlite3* var/payloads
