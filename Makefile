# Two commands on a fresh machine:
#   make all    set up .venv, run the seed's 5 variants x 3 seeds on the embedded benchmark, the fidelity
#               report (reports/fidelity.*), then every notebook headless (papermill) into reports/
#               (index.html, summary.md, executed/)
#   make test   set up .venv and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
SEEDS ?= 5
JOBS ?= 2

.PHONY: all setup browser-deps reproduce fidelity notebooks test nbval-refs bench lab clean
all: reproduce fidelity notebooks

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[notebooks,test]"
	touch $@

reproduce: setup
	$(PY) -m dynnn_lib.cli reproduce --seeds $(SEEDS) --jobs $(JOBS)

fidelity: setup
	$(PY) -m dynnn_lib.fidelity --seeds $(SEEDS) --jobs $(JOBS) --out reports >/dev/null
	@echo "wrote reports/fidelity.md and reports/fidelity.html"

# side-by-side benchmarks vs Avalanche and a bare PyTorch loop (installs the [bench] extra); see benchmarks/compare.py
bench: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/compare.py --seeds $(SEEDS)

notebooks: setup
	$(PY) -m dynnn_lib.batch params/default.yaml --out reports --jobs $(JOBS)

# The browser test (JupyterLab in headless Chromium) needs Debian's chromium: installed here when we can
# (root + apt-get, as in CI); otherwise that one test is skipped and says why.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser test (apt-get)"; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "note: no chromium on PATH; the browser test will be skipped (Debian: sudo apt-get install chromium)"; fi; }

# unit + integration tests, every notebook via papermill and cell by cell via nbval (tests/nbval), browser test
test: setup browser-deps
	$(PY) -m pytest -q

# regenerate tests/nbval/*.ipynb after editing a notebook (a test says when they are stale)
nbval-refs: setup
	$(PY) -m dynnn_lib.nbval_refs

lab: setup
	cd notebooks && ../$(VENV)/bin/jupytext --to ipynb --update *.py >/dev/null
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf runs reports/*.html reports/executed .pytest_cache
