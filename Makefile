# mathcalc: `make run` (the main demo) and `make test` (the whole suite).
# The set-up is idempotent: .venv is created when missing and the package is
# (re)installed only when pyproject.toml changes (stamp file in .venv).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mathcalc-installed
BENCH_STAMP := $(VENV)/.mathcalc-bench-installed

KATEX_VERSION := 0.16.22
KATEX_DIR     := .katex
KATEX_STAMP   := $(KATEX_DIR)/.installed-$(KATEX_VERSION)

.PHONY: run serve test bench setup katex chromium clean distclean

run: setup
	$(PY) examples/neuron.py

# The page (SPEC section 10) on http://127.0.0.1:8765/ until Ctrl-C; SERVE_ARGS="--port 0 --open".
serve: setup
	$(VENV)/bin/mathcalc serve $(SERVE_ARGS)

test: setup katex chromium
	$(PY) -m pytest

# The bench extra (threadpoolctl, jax, torch) is large: installed only by `make bench`.
bench: $(BENCH_STAMP)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Editable install with the test extra: one set-up serves `run` and `test`.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test,bench]'
	@touch $@

# KaTeX for the LaTeX rendering tests, into the git-ignored .katex/. The tests
# (tests/conftest.py) skip only when node is absent; with node and no KaTeX
# they fail, so node without npm and without a KaTeX already installed (where
# tests/katex_render.py looks) is a warning that says so.
katex:
	@if ! command -v node >/dev/null 2>&1; then \
		echo "note: node not found: the KaTeX rendering tests will be skipped"; \
	elif command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(KATEX_STAMP); \
	elif [ -f "$$MATHCALC_KATEX_DIR/package.json" ] || [ -f $(KATEX_DIR)/node_modules/katex/package.json ] \
			|| [ -f node_modules/katex/package.json ] \
			|| node -e "require.resolve('katex')" >/dev/null 2>&1; then \
		echo "note: npm not found: the KaTeX rendering tests use the KaTeX already installed"; \
	else \
		echo "warning: node is installed but npm is not: KaTeX cannot be installed into $(KATEX_DIR)/," \
			"and the KaTeX rendering tests will FAIL (they are skipped only when node is absent)." \
			"Install npm, or put KaTeX in $(KATEX_DIR)/node_modules/katex or \$$MATHCALC_KATEX_DIR."; \
	fi

# Chromium for the browser tests of the page (tests/test_browser.py, driven by
# Playwright with the system's browser: Playwright's own download is never used).
# Installed with apt where it is missing and we are root (or have sudo without a
# password); elsewhere the browser tests skip and say so.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: chromium not found and apt-get is not available: the browser tests will be skipped"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests (apt-get)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			|| echo "warning: apt-get could not install chromium: the browser tests will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		echo "installing Debian's chromium for the browser tests (sudo apt-get)"; \
		(sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			|| echo "warning: apt-get could not install chromium: the browser tests will be skipped"; \
	else \
		echo "note: chromium not found (install it: apt-get install chromium): the browser tests will be skipped"; \
	fi

$(KATEX_STAMP):
	@mkdir -p $(KATEX_DIR)
	npm install --prefix $(KATEX_DIR) --no-audit --no-fund --loglevel=error katex@$(KATEX_VERSION)
	@touch $@

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(KATEX_DIR)
