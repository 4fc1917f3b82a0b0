# Two commands on a fresh machine:
#   make all    set up .venv, plan every run the reports and notebooks need and train the union once
#               (1 seed x 6 evaluation instances for the fidelity report), then the reproduction tables per head
#               rule, the fidelity report (paired 95 % intervals) on the calibrated stand-in and the smaller
#               side-by-side on the one before it, the calibration report (the committed fit re-measured on the
#               evaluation instances), and every notebook headless into reports/ (2 seeds each); each phase is timed
#               into reports/phases.json. The plan is sized for an hour on a 2-core family-25 EPYC (tests/test_plan.py)
#   make test   set up .venv, build the API reference (make docs) and run the test suite
# conda:        conda env create -f environment.yml && conda activate dynnn && make test VENV=$CONDA_PREFIX
#               (a VENV that is a conda environment is installed into, not created)
# CPU only:     make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the pinned torch and torchvision
#               from PyTorch's CPU-only index (PyPI's Linux x86_64 wheel is the CUDA build: several GB)
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_INDEX ?=
# the torch and torchvision pins, read from pyproject.toml (never typed twice)
TORCH_PINS := $(shell grep -oE '"torch(vision)?==[^"]+"' pyproject.toml | tr -d '"')
# make all's settings (SEEDS, INSTANCES, REPRO_SEEDS, STANDINS, CAL_*, MAX_HEADS, SCHED_SEEDS, BASELINE_SEEDS,
# BENCH_SEEDS): params/make_all.yaml, the one place they are written and explained, read with the system python3
# (dynnn_lib/core/make_all.py: the standard library only, so before .venv exists); the experiments' defaults read
# the same file (exported as DYNNN_MAKE_ALL). A variable on the command line wins: make all SEEDS=2 INSTANCES="1 2";
# another file: make all MAKE_ALL=path
MAKE_ALL ?= params/make_all.yaml
export DYNNN_MAKE_ALL := $(abspath $(MAKE_ALL))
setting = $(shell python3 dynnn_lib/core/make_all.py $(MAKE_ALL) $(1))
SEEDS ?= $(call setting,seeds)
INSTANCES ?= $(call setting,instances)
REPRO_SEEDS ?= $(call setting,repro_seeds)
STANDINS ?= $(call setting,standins)
CAL_TRIALS ?= $(call setting,cal_trials)
CAL_SEEDS ?= $(call setting,cal_seeds)
CAL_JOURNAL ?= $(call setting,cal_journal)
MAX_HEADS ?= $(call setting,max_heads)
SCHED_SEEDS ?= $(call setting,sched_seeds)
BASELINE_SEEDS ?= $(call setting,baseline_seeds)
BENCH_SEEDS ?= $(call setting,bench_seeds)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PHASE := python3 benchmarks/phase.py

.PHONY: all setup browser-deps train reproduce fidelity calibration calibrate schedules notebooks baselines test docs nbval-refs bench speed sharing readme lab clean
all:
	@$(PHASE) setup -- $(MAKE) --no-print-directory setup
	@$(PHASE) train -- $(MAKE) --no-print-directory train
	@$(PHASE) reproduce -- $(MAKE) --no-print-directory reproduce
	@$(PHASE) fidelity -- $(MAKE) --no-print-directory fidelity
	@$(PHASE) calibration -- $(MAKE) --no-print-directory calibration
	@$(PHASE) notebooks -- $(MAKE) --no-print-directory notebooks
	@echo "phase timings: reports/phases.json"

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@if [ -d "$(VENV)/conda-meta" ]; then echo "installing into the conda environment $(VENV)"; \
	else python3 -m venv $(VENV); fi
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install -q $(TORCH_PINS) --index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[notebooks,test,lite0,docs,export]"
	@# Ray for dynnn sweep --executor ray and its cluster tests; where it cannot be installed they are skipped
	$(PY) -m pip install -q -e ".[ray]" || echo "note: Ray could not be installed; the Ray sweep tests will be skipped"
	touch $@

# every run of the phases below, planned first and trained once (two at a time); later phases read the cache
train: setup
	$(PY) -m dynnn_lib.cli plan params/default.yaml --seeds $(SEEDS) --instances $(INSTANCES) --repro-seeds $(REPRO_SEEDS) --streams $(STANDINS) --jobs $(JOBS)

reproduce: setup
	$(PY) -m dynnn_lib.cli reproduce --seeds $(REPRO_SEEDS) --jobs $(JOBS) --no-progress

fidelity: setup
	$(PY) -m dynnn_lib.cli fidelity --seeds $(SEEDS) --instances $(INSTANCES) --streams $(STANDINS) --jobs $(JOBS) --out reports >/dev/null
	@echo "wrote reports/fidelity.md|html|json (the default stand-in), fidelity-round1.* and standins.md|json (both side by side)"

# the committed fit (dynnn_lib/core/round1_calibrated.yaml) re-measured against round1 from the fidelity runs, with the search
# history of params/calibration.json: reports/calibration.md|html|json
calibration: setup
	$(PY) -m dynnn_lib.cli calibrate --evaluate --seeds $(SEEDS) --instances $(wordlist 1,3,$(INSTANCES)) --jobs $(JOBS) --out reports --no-progress

# the search itself (hours on 2 cores: a trial is a finetune and a V2' run on each of the 3 fit instances, exact
# row-by-row pruning; the study's journal is committed, so it resumes anywhere); adopt a fit by copying its
# values into dynnn_lib/core/round1_calibrated.yaml and reports/calibration.json to params/calibration.json (docs/benchmark.md)
calibrate: setup
	$(PY) -m dynnn_lib.cli calibrate --trials $(CAL_TRIALS) --seeds $(CAL_SEEDS) --jobs $(JOBS) --out reports --journal $(CAL_JOURNAL)

# every expansion schedule of the stream as a tree of shared prefixes, beside the paper's and the automatic rule:
# reports/schedules.md|html|json (MAX_HEADS=3: 37 schedules, ~40 min on a 2-core family-25 EPYC at 3 seeds;
# MAX_HEADS= for all 256; params/make_all.yaml)
schedules: setup
	$(PY) -m dynnn_lib.cli schedules --seeds $(SCHED_SEEDS) $(if $(MAX_HEADS),--max-heads $(MAX_HEADS)) --jobs $(JOBS) --out reports --no-progress

# DynamicNN beside the in-workbench baselines (LwF, EWC, online EWC, replay, joint), paired over BASELINE_SEEDS seeds
baselines: setup
	$(PY) -m dynnn_lib.cli baselines --seeds $(BASELINE_SEEDS) --jobs $(JOBS) --no-progress --out reports

# side-by-side benchmarks vs Avalanche and a bare PyTorch loop (installs the [bench] extra); see benchmarks/compare.py
# (3 seeds, one thread per run, one run at a time: about 1.5 h on a 2-core Intel Xeon family 6; make readme after it)
bench: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/compare.py --seeds $(BENCH_SEEDS) --threads 1

# throughput ours vs a bare loop vs Avalanche Naive, per-run time of each method, make all's phases (reports/speed.md)
speed: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/speed.py

# prefix sharing measured side by side (task trainings, wall time, disk) for make all's runs and the landscape;
# the explorer's click latency in the browser test: reports/sharing.md|json (benchmarks/sharing.py)
sharing: setup browser-deps
	$(PY) benchmarks/sharing.py

notebooks: setup
	$(PY) -m dynnn_lib.cli batch params/default.yaml --out reports --jobs $(JOBS)

# The browser test (JupyterLab in headless Chromium) needs Debian's chromium: installed here when we can
# (root + apt-get, as in CI); otherwise that one test is skipped and says why.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser test (apt-get)"; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "note: no chromium on PATH; the browser test will be skipped (Debian: sudo apt-get install chromium)"; fi; }

# the API reference from the docstrings, with the guide pages (README.md, docs/*.md), into build/docs/ (open
# build/docs/index.html); warnings are errors, and every build is from scratch (-E) so none hides in a cache
docs: setup
	$(PY) -m sphinx -b html -q -W --keep-going -E -c docs/api . build/docs
	@echo "API reference: build/docs/index.html"

# the API reference (a broken one fails here), unit + integration tests, every notebook via papermill and cell by
# cell via nbval (tests/nbval), browser test
test: setup browser-deps docs
	$(PY) -m pytest -q

# regenerate tests/nbval/*.ipynb after editing a notebook (a test says when they are stale)
nbval-refs: setup
	$(PY) -m dynnn_lib.cli nbval-refs

# refill the generated blocks of README.md and docs/ (fidelity, reproduction, speed, ...; the folder tree and the
# fingerprinted modules from the code) from reports/ after make all and make speed
readme: setup
	$(PY) -m dynnn_lib.cli readme

lab: setup
	cd notebooks && ../$(VENV)/bin/jupytext --to ipynb --update [0-9][0-9]_*.py >/dev/null
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf runs reports/*.html reports/executed .pytest_cache
