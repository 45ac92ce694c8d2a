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

.PHONY: run test bench setup katex clean distclean

run: setup
	$(PY) examples/neuron.py

test: setup katex
	$(PY) -m pytest

# The bench extra (threadpoolctl, jax, torch) is large: installed only by `make bench`.
bench: setup
	@if [ -f benchmarks/run_all.py ]; then \
		$(MAKE) --no-print-directory $(BENCH_STAMP) && $(PY) benchmarks/run_all.py $(BENCH_ARGS); \
	else \
		echo "make bench: benchmarks/run_all.py does not exist yet (the benchmark task has not landed)"; \
	fi

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

# KaTeX for the LaTeX rendering tests, into the git-ignored .katex/.
katex:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(KATEX_STAMP); \
	else \
		echo "note: node/npm not found: KaTeX not installed, the LaTeX rendering tests will be skipped"; \
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
