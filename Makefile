# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The browser's socket.io client, fetched from the npm registry at setup (never a CDN at
# run time, never committed); the app serves it from /static/vendor/.
SOCKETIO_VERSION := 4.8.1
VENDOR := web/static/vendor
SOCKETIO_JS := $(VENDOR)/socket.io.min.js

.PHONY: demo test lint setup clean bench screenshots

setup: $(STAMP) $(SOCKETIO_JS)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(SOCKETIO_JS):
	mkdir -p $(VENDOR)
	cd $(VENDOR) && npm pack --silent socket.io-client@$(SOCKETIO_VERSION) >/dev/null
	tar -xzf $(VENDOR)/socket.io-client-$(SOCKETIO_VERSION).tgz -C $(VENDOR) --strip-components=2 \
		package/dist/socket.io.min.js
	tar -xzf $(VENDOR)/socket.io-client-$(SOCKETIO_VERSION).tgz -O package/LICENSE \
		> $(VENDOR)/socket.io.LICENSE
	rm $(VENDOR)/socket.io-client-$(SOCKETIO_VERSION).tgz

demo: $(STAMP) $(SOCKETIO_JS)
	$(BIN)/desk demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint $(SOCKETIO_JS)
	$(BIN)/pytest -q -p no:cacheprovider

# The README's screenshots, taken by the browser tests (a plain test run keeps them in var/).
screenshots: $(STAMP) $(SOCKETIO_JS)
	DESK_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/browser

# Benchmarks are not tests: they print figures and write them into docs/benchmarks.md.
# The one command for all of them. The SLA and pop options are those docs/benchmarks.md was
# measured with: the SLA defaults alone would take some 25 min on a 2-core machine.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench.ingest --write-docs
	$(BIN)/python -m bench.pop_latency --duration 10 --quiet-wait 60 --write-docs
	$(BIN)/python -m bench.cluster --write-docs
	$(BIN)/python -m bench.router --write-docs
	$(BIN)/python -m bench.sla --runs 3 --api-tickets 5000 --api-runs 1 --write-docs
	$(BIN)/python -m bench.kb --write-docs
	$(BIN)/python -m bench.surveys --write-docs
	$(BIN)/python -m bench.http --write-docs

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
