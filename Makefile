# Two commands on a fresh machine:
#   make all    set up .venv, run the seed's 5 variants x 3 seeds on the embedded benchmark, then every
#               notebook headless (papermill) into reports/ (index.html, summary.md, executed/)
#   make test   set up .venv and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
SEEDS ?= 3
JOBS ?= 2

.PHONY: all setup reproduce notebooks test lab clean
all: reproduce notebooks

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[notebooks,test]"
	touch $@

reproduce: setup
	$(PY) -m dynnn_lib.cli reproduce --seeds $(SEEDS) --jobs $(JOBS)

notebooks: setup
	$(PY) -m dynnn_lib.batch params/default.yaml --out reports --jobs $(JOBS)

test: setup
	$(PY) -m pytest -q

lab: setup
	cd notebooks && ../$(VENV)/bin/jupytext --to ipynb --update *.py >/dev/null
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf runs reports/*.html reports/executed .pytest_cache
