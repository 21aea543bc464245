# The README's two commands, `make demo` and `make test`, do all setup on a fresh
# machine: a virtualenv in .venv with the project and its test extras, and Debian's
# packages the run needs (prometheus for promtool + prometheus; for the tests also
# prometheus-alertmanager, chromium, postgresql and zsh), installed in one apt run when missing and
# running as root; otherwise one line says what to install.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo-out
REPORT_DIR ?= bench-out/report
UI_DIR ?= bench-out/ui

.PHONY: demo test bench report-screenshot ui-screenshots prometheus test-packages clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# apt_install PACKAGES...: install the missing Debian packages, or say what to install.
define apt_install
	@missing="$(strip $(1))"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages: $$missing (sudo apt-get install $$missing)"; exit 1; \
	  fi; \
	fi
endef

have = $(shell command -v $(1) >/dev/null 2>&1 && echo yes)
PROMETHEUS_PKG = $(if $(and $(call have,promtool),$(call have,prometheus)),,prometheus)
ALERTMANAGER_PKG = $(if $(or $(call have,alertmanager),$(call have,prometheus-alertmanager)),,prometheus-alertmanager)
CHROMIUM_PKG = $(if $(call have,chromium),,chromium)
ZSH_PKG = $(if $(call have,zsh),,zsh)
# Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH.
POSTGRES_PKG = $(if $(or $(call have,initdb),$(wildcard /usr/lib/postgresql/*/bin/initdb)),,postgresql)

prometheus:
	$(call apt_install,$(PROMETHEUS_PKG))

# The tests also run a real Alertmanager and a private PostgreSQL cluster, open the
# report and the web UI in headless Chromium and check the generated zsh completion
# script with zsh itself.
test-packages:
	$(call apt_install,$(PROMETHEUS_PKG) $(ALERTMANAGER_PKG) $(CHROMIUM_PKG) $(ZSH_PKG) $(POSTGRES_PKG))

demo: $(STAMP) prometheus
	$(PY) -m monitor.demo --out $(DEMO_DIR)

test: $(STAMP) test-packages
	$(PY) -m pytest -q

bench: $(STAMP) prometheus
	@set -e; for b in benchmarks/*_bench.py; do echo "== $$b"; $(PY) $$b; done

# Renders the simulated week's report, screenshots it with headless Chromium and
# keeps both under $(REPORT_DIR) to look at (the same test `make test` runs).
report-screenshot: $(STAMP) test-packages
	REPORT_SCREENSHOT_DIR=$(abspath $(REPORT_DIR)) $(PY) -m pytest -q tests/test_report_screenshot.py

# Runs the web UI's browser tests (a live daemon on the simulated fleet, driven through headless
# Chromium) and keeps a PNG of each page under $(UI_DIR) to look at (the same tests `make test` runs).
ui-screenshots: $(STAMP) test-packages
	UI_SCREENSHOT_DIR=$(abspath $(UI_DIR)) $(PY) -m pytest -q tests/test_ui_browser.py

clean:
	rm -rf $(DEMO_DIR) bench-out .pytest_cache .test-cache
