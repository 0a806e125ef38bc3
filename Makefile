# Everything installs itself: a fresh machine needs only Python 3.11+ (and Node 20 for the Workers tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed
WHEELS := .pyodide-wheels
WHEELS_FETCHED := $(WHEELS)/manifest.json

.PHONY: demo lint test test-workers test-property test-messages-property soak bench install clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[local,dev]'
	touch $@

# wrangler, miniflare and pyodide for the Workers tests (tests/test_wrangler.py, tests/test_workers_harness.py);
# without npm they are skipped.
$(NODE_INSTALLED): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund && touch $@; \
	else echo "npm not found: the wrangler tests will be skipped"; fi

# The Workers' own Python packages as wheels for Pyodide, for the Workers harness (tests/workers_harness/).
$(WHEELS_FETCHED): pyproject.toml scripts/fetch-wheels $(INSTALLED) $(NODE_INSTALLED)
	$(PY) scripts/fetch-wheels $(WHEELS)
	touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(VENV)/bin/clipcrawler demo

LINT_WAIVED :=

# ruff over the whole tree, mypy --strict over the Workers' code (a few seconds with warm caches).
lint: $(INSTALLED)
	$(VENV)/bin/ruff check $(if $(LINT_WAIVED),--extend-ignore '$(LINT_WAIVED)') .
	$(PY) -m mypy --strict shared producer consumer

# Lint first, so a type error fails the suite before any test runs (CI runs this target).
test: lint $(NODE_INSTALLED) $(WHEELS_FETCHED)
	$(PY) -m pytest

# Only the Workers harness: both entries in Pyodide on Miniflare's D1 and Queues (about 30 s).
test-workers: $(INSTALLED) $(NODE_INSTALLED) $(WHEELS_FETCHED)
	$(PY) -m pytest tests/test_workers_harness.py

# The delivery-schedule property test with many more examples than the suite's 40.
test-property: $(INSTALLED)
	CLIPCRAWLER_PROPERTY_EXAMPLES=500 $(PY) -m pytest tests/test_property_delivery.py

# The hostile-message property test (tests/test_property_messages.py) with 5,000 examples, not the suite's 200.
test-messages-property: $(INSTALLED)
	CLIPCRAWLER_MESSAGE_EXAMPLES=5000 $(PY) -m pytest -p no:logging tests/test_property_messages.py

# 1,000 streamers under duplicates, crashes, 5xx, 429 bursts and a token expiry; exits non-zero on any loss.
soak: $(INSTALLED)
	$(VENV)/bin/clipcrawler soak

# Minutes, not seconds: writes bench/report.md and bench/results.json.
bench: $(INSTALLED)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis $(WHEELS)
