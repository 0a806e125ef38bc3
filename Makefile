# Everything installs itself: a fresh machine needs only Python 3.11+ (and Node 20 for the Workers tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed

.PHONY: demo test bench install clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[local,dev]'
	touch $@

# wrangler and miniflare for the Workers tests (tests/test_wrangler.py); without npm they are skipped.
$(NODE_INSTALLED): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund && touch $@; \
	else echo "npm not found: the wrangler tests will be skipped"; fi

install: $(INSTALLED)

demo: $(INSTALLED)
	$(VENV)/bin/clipcrawler demo

test: $(INSTALLED) $(NODE_INSTALLED)
	$(PY) -m pytest

# Minutes, not seconds: writes bench/report.md and bench/results.json.
bench: $(INSTALLED)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
