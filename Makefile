# The README's two commands, `make demo` and `make test`, do all setup on a fresh
# machine: a virtualenv in .venv with the project and its test extras, and Debian's
# prometheus package (promtool + prometheus) when promtool is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo-out

.PHONY: demo test bench prometheus clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

prometheus:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's prometheus package (promtool and prometheus are missing)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	  else \
	    echo "promtool/prometheus not found: install Debian's 'prometheus' package (sudo apt-get install prometheus)"; exit 1; \
	  fi; \
	fi
	@if ! command -v alertmanager >/dev/null 2>&1 && ! command -v prometheus-alertmanager >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's prometheus-alertmanager package (alertmanager is missing)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; \
	  else \
	    echo "alertmanager not found: install Debian's 'prometheus-alertmanager' package (sudo apt-get install prometheus-alertmanager); the Alertmanager tests need it"; \
	  fi; \
	fi

demo: $(STAMP) prometheus
	$(PY) -m monitor.demo --out $(DEMO_DIR)

test: $(STAMP) prometheus
	$(PY) -m pytest -q

bench: $(STAMP) prometheus
	@set -e; for b in benchmarks/*_bench.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(DEMO_DIR) bench-out .pytest_cache

# The weekly report's screenshot test opens the page in Debian's headless chromium.
REPORT_DIR ?= bench-out/report
.PHONY: chromium report-screenshot
test: chromium
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's chromium package (the report screenshot test needs it)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else \
	    echo "chromium not found: install Debian's 'chromium' package (sudo apt-get install chromium)"; exit 1; \
	  fi; \
	fi

# Renders the simulated week's report, screenshots it with headless chromium and
# keeps both under $(REPORT_DIR) to look at (the same test `make test` runs).
report-screenshot: $(STAMP) prometheus chromium
	REPORT_SCREENSHOT_DIR=$(abspath $(REPORT_DIR)) $(PY) -m pytest -q tests/test_report_screenshot.py
