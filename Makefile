# Everything installs itself: a fresh machine needs only Python 3.11+ (and Node 20 for the Workers tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test install clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[local,dev]'
	touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(VENV)/bin/clipcrawler demo

test: $(INSTALLED)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
