# Two commands on a fresh machine:
#   make all    set up .venv and run the main job (the seed's 5 variants x 3 seeds on the embedded benchmark)
#   make test   set up .venv and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
SEEDS ?= 3
JOBS ?= 2

.PHONY: all setup reproduce test lab clean
all: reproduce

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[notebooks,test]"
	touch $@

reproduce: setup
	$(PY) -m dynnn_lib.cli reproduce --seeds $(SEEDS) --jobs $(JOBS)

test: setup
	$(PY) -m pytest -q

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf runs reports/*.html reports/executed .pytest_cache
