# alarscrew: two commands on a fresh machine.
#   make demo   create .venv, install, run the cohort analysis and the S1 alar screw plan, print report paths
#   make test   same .venv, whole test suite
#   make lint   same .venv, ruff over src, tests and bench
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SHARED ?= ../shared
OUT    ?= demo-out

.PHONY: install demo test lint system-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Headless Chromium is used by the report tests (screenshot of the 3D view). Installed from Debian's
# packages when missing and when we are allowed to (root); otherwise those tests skip (and fail under CI=true).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the report tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium"; \
	  else echo "note: chromium not found and not root; browser tests will skip"; fi; \
	fi

test: install system-deps
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests bench

demo: install
	$(VENV)/bin/alarscrew demo --out $(OUT) --shared $(SHARED) --force

clean:
	rm -rf $(OUT) .pytest_cache
