"""make all plans the union of its runs first: shared runs are trained once."""
import re
from pathlib import Path

import pytest
import yaml

from dynnn_lib.cli import main
from dynnn_lib.experiments.catalogue import paper_configs
from dynnn_lib.experiments.contract import unique
from dynnn_lib.workbench.plan import notebook_configs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "params" / "default.yaml").read_text())
TINY = yaml.safe_load((ROOT / "params" / "tiny.yaml").read_text())


def test_the_reports_and_the_notebooks_share_runs():
    paper = {c.key() for c in paper_configs(5, (0, 1))}
    assert len(paper) == 7 * 5 * 2  # 5 paper variants, V2', the automatic rule; 5 seeds; 2 instances
    books = notebook_configs(DEFAULT)
    from dynnn_lib import from_dict
    from dynnn_lib.experiments.reproduce import on_its_instance
    from dynnn_lib.experiments.studies import lr_trick

    seeds = DEFAULT["all"]["seeds"]
    nb05 = [from_dict({**on_its_instance(), **ov, "seed": s}) for ov in lr_trick().values() for s in range(seeds)]
    assert all(c.key() in {b.key() for b in books} for c in nb05)
    assert all(c.key() in paper for c in nb05)   # 05's variants are the fidelity report's runs
    union = unique(paper_configs(5, (0, 1)) + books)
    assert len(union) < len(paper) + len(books)
    assert len({c.key() for c in union}) == len(union)


def test_head_rule_variants_are_one_run():
    cfgs = paper_configs(1, (0,))
    rescored = [c.replace(head_rule="oracle") for c in cfgs]
    assert len(unique(cfgs + rescored)) == len(cfgs)


def test_dry_run_counts_without_training(tmp_path, capsys):
    assert main(["plan", str(ROOT / "params" / "default.yaml"), "--seeds", "2", "--instances", "1", "--dry-run",
                 "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "runs planned, 0 cached" in out and not any(tmp_path.iterdir())
    assert " min; " in out and "s per task training (" in out  # an ETA before anything is cached: the reference
    assert main(["plan", str(tmp_path / "missing.yaml")]) == 2


def test_the_plan_holds_the_reproduction_on_an_evaluation_instance():
    from dynnn_lib.core.streams import EVALUATION_INSTANCES
    from dynnn_lib.experiments.catalogue import reproduction_runs
    from dynnn_lib.experiments.contract import Settings

    repro = reproduction_runs(Settings(repro_seeds=3))
    assert len(repro) == 15 and {c.data.data_seed for c in repro} == {EVALUATION_INSTANCES[0]}
    fidelity = {c.key() for c in paper_configs(1, EVALUATION_INSTANCES)}
    assert sum(c.key() in fidelity for c in repro) == 5  # seed 0 of each variant is the fidelity report's run


def _asked(path: Path, parameters: dict, monkeypatch) -> set[str]:
    """The keys of the runs notebook `path` hands to the executors with these parameters: its code cells executed
    here from its folder, in papermill's order (the parameters cell, then the given values), until its first call
    that trains, which is recorded instead of run."""
    import copy

    import jupytext

    from dynnn_lib.engine import executors
    from dynnn_lib.experiments import reproduce, schedules

    class Asked(Exception):
        pass

    asked = []

    def record(configs, *args, **kwargs):
        asked.extend(configs)
        raise Asked

    monkeypatch.setattr(reproduce, "run_many", record)     # study.compare's runs
    monkeypatch.setattr(schedules, "train_tree", record)   # the schedule landscape's
    monkeypatch.setattr(executors, "run_many", record)     # the calibration's re-measurement (08)
    monkeypatch.chdir(path.parent)
    monkeypatch.syspath_prepend(str(path.parent))          # a kernel imports the files beside the notebook
    namespace: dict = {}
    try:
        for cell in jupytext.read(path).cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, str(path), "exec"), namespace)
                if "parameters" in cell.metadata.get("tags", []):
                    namespace.update(copy.deepcopy(parameters))
    except Asked:
        return {c.key() for c in asked}
    raise AssertionError(f"{path.name} asked for no runs")


@pytest.mark.parametrize("params", [TINY, DEFAULT], ids=["tiny", "default"])
def test_the_notebooks_plan_is_exactly_what_they_ask_for(params, tmp_path, monkeypatch):
    """make all trains beforehand every run a planned notebook then looks up, and nothing else: the keys
    notebook_configs plans are those the notebooks' own code hands to the executors (nothing is trained here),
    07's method from notebooks/novelty.py, 08's re-measured calibration and 09's schedule landscape among them."""
    from dynnn_lib.experiments.studies import NOTEBOOK_STUDIES
    from dynnn_lib.workbench.batch import plan as batch_plan

    params = {**params, "all": {**params["all"], "runs_dir": str(tmp_path / "runs")}}
    planned = {c.key() for c in notebook_configs(params)}
    asked = {path.stem: _asked(path, p, monkeypatch) for path, p in batch_plan(params).items()
             if path.stem in NOTEBOOK_STUDIES}
    assert {"07_your_method", "08_calibration", "09_schedules"} <= set(asked)
    assert set().union(*asked.values()) == planned
    for stem in ("07_your_method", "09_schedules"):  # runs only they ask for: the plan without them fails above
        assert asked[stem] - set().union(*(v for k, v in asked.items() if k != stem)), stem


def test_the_notebooks_run_on_the_reproductions_instance():
    """make all's notebooks (params/default.yaml) run on the reproduction's instance, never typed in the YAML: the
    batch puts every notebook there unless its parameters name an instance, so their runs are the reproduction's."""
    from dynnn_lib.core.streams import EVALUATION_INSTANCES
    from dynnn_lib.workbench.batch import plan as batch_plan
    from dynnn_lib.experiments.catalogue import reproduction_runs
    from dynnn_lib.experiments.contract import Settings

    def names_an_instance(value) -> bool:
        return isinstance(value, dict) and ("data_seed" in value or any(map(names_an_instance, value.values())))

    def instance(p: dict):  # base's data.data_seed, or 00_data's data_seed parameter
        return p.get("base", {}).get("data", {}).get("data_seed", p.get("data_seed"))

    assert not names_an_instance(DEFAULT)
    assert {instance(p) for p in batch_plan(DEFAULT).values()} == {EVALUATION_INSTANCES[0]}
    configs = notebook_configs(DEFAULT)
    from dynnn_lib.experiments.studies import calibration_check

    check = {c.key() for c in calibration_check({"seeds": 1})}  # 08 reads the fit's and the evaluation instances
    assert {c.data.data_seed for c in configs if c.key() not in check} == {EVALUATION_INSTANCES[0]}
    assert {c.key() for c in reproduction_runs(Settings())} <= {c.key() for c in configs}  # 05's: the reproduction's seeds
    named = {path.stem: instance(p) for path, p in
             batch_plan({"00_data": {"data_seed": 7}, "01_finetune": {"base": {"data": {"data_seed": 5}}}}).items()}
    assert (named["00_data"], named["01_finetune"], named["02_expansion"]) == (7, 5, EVALUATION_INSTANCES[0])


def test_a_notebook_opened_in_jupyterlab_reads_the_runs_make_all_trained(monkeypatch):
    """study.compare and the landscape put their runs on the reproduction's instance unless the base names one (so
    a notebook's defaults find make all's cache), and leave a base on another data source as it is."""
    from dynnn_lib.core.streams import EVALUATION_INSTANCES
    from dynnn_lib.experiments import schedules
    from dynnn_lib.workbench import study

    seen = []
    monkeypatch.setattr(study, "reproduce", lambda base, **kw: seen.append(base) or [])
    study.compare({"finetune": {"method": "finetune"}})
    study.compare({"finetune": {"method": "finetune"}}, base={"data": {"data_seed": 7}})
    study.compare({"finetune": {"method": "finetune"}}, base={"data": {"source": "image-folders", "root": "x"}})
    assert [b["data"].get("data_seed") for b in seen] == [EVALUATION_INSTANCES[0], 7, None]
    land = schedules.plan({"data": {"n_tasks": 4}}, seeds=[0], max_heads=2)
    assert {c.data.data_seed for c in land.configs()} == {EVALUATION_INSTANCES[0]}


def test_make_alls_plan_fits_the_hour_on_the_slow_machine():
    """make all's runs (params/make_all.yaml: 1 seed on every evaluation instance, both stand-ins, the notebooks'
    batch parameters), counted as a tree: at the family-25 reference per task training and 2 jobs, the train phase
    leaves setup and the notebooks room within 60 minutes; round1, the stand-in beside the default, runs finetune and
    V2' on the side-by-side's instances only."""
    from dynnn_lib.core.streams import DEFAULT_STREAM, EVALUATION_INSTANCES
    from dynnn_lib.engine.executors import TreePlan
    from dynnn_lib.experiments import fidelity
    from dynnn_lib.experiments.catalogue import standins_runs
    from dynnn_lib.experiments.contract import Settings, planned, unique
    from dynnn_lib.workbench.plan import REFERENCE_TASK_S

    s = Settings(params=yaml.safe_load((ROOT / "params" / "default.yaml").read_text()))
    assert (s.seeds, s.repro_seeds) == (1, 2) and s.streams[0] == DEFAULT_STREAM and len(s.streams) == 2
    assert len(s.instances) >= 6 and set(s.instances) <= set(EVALUATION_INSTANCES)
    side = standins_runs(s)
    assert {c.data.stream for c in side} == {"round1"} and {c.method for c in side} == {"finetune", "combined"}
    assert {c.data.data_seed for c in side} == set(EVALUATION_INSTANCES[:fidelity.SIDE_BY_SIDE]) and len(side) == 6
    tasks = TreePlan.make(unique([c for cfgs in planned(s).values() for c in cfgs]), ROOT / "no-runs-here").tree_tasks
    assert tasks * REFERENCE_TASK_S["25/1"] / 2 / 60 <= 55, f"{tasks} task trainings: over the hour on family 25"


def test_the_eta_reference_is_the_cpus_family_and_model():
    """A family-25 model 17 is not model 1: the reference names whose figure it is, exact for a known model, the
    family's other model's (said so) for an unknown one, the slowest for an unknown family."""
    from dynnn_lib.core.machines import REFERENCES, reference_seconds

    sig = lambda family, model: {"family": family, "model_number": model}  # noqa: E731
    s, where = reference_seconds(sig("26", "2"))
    assert s == REFERENCES["26/2"][0] and "model 2's reference" in where
    s, where = reference_seconds(sig("25", "17"))
    assert s == REFERENCES["25/17"][0] < REFERENCES["25/1"][0] and "model 17's reference" in where
    s, where = reference_seconds(sig("25", "33"))  # a family-25 model with no figure of its own
    assert s == REFERENCES["25/1"][0] and "no reference for CPU family 25, model 33: model 1's" in where
    s, where = reference_seconds(sig("23", "49"))
    assert s == max(v[0] for v in REFERENCES.values()) and "the slowest" in where


def _recipe(target: str, *variables: str) -> list[str]:
    """The dynnn command line `make -n target` would run (VENV: this interpreter's), as argv after the script."""
    import shlex
    import subprocess
    import sys

    out = subprocess.run(["make", "-n", "--no-print-directory", target, f"VENV={sys.prefix}", *variables], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if "dynnn_lib.cli" in x)
    return shlex.split(line.split("dynnn_lib.cli", 1)[1].split(">", 1)[0])


def _parsed(argv: list[str]):
    """The options of dynnn `argv[0]` as its parser reads `argv` (defaults: the settings file in use)."""
    import argparse

    from dynnn_lib.experiments.contract import experiments
    from dynnn_lib.workbench import plan

    add = plan.add_arguments if argv[0] == "plan" else next(
        e.command.add_arguments for e in experiments().values() if e.command and e.command.name == argv[0])
    ap = argparse.ArgumentParser()
    add(ap)
    return vars(ap.parse_args(argv[1:]))


MAKE_ALL_TARGETS = {"train": ("seeds", "instances", "repro_seeds", "streams"), "fidelity": ("seeds", "instances",
                    "streams"), "schedules": ("seeds", "max_heads"), "baselines": ("seeds",), "calibrate": ("trials",
                    "seeds")}


@pytest.mark.skipif(__import__("shutil").which("make") is None, reason="no make on PATH")
@pytest.mark.parametrize("edit", [False, True], ids=["committed", "edited"])
def test_the_makefile_and_the_experiments_read_make_alls_settings_from_one_file(tmp_path, monkeypatch, edit):
    """params/make_all.yaml is the one place: what make passes on each command line is what that command and
    experiments/contract.Settings take by default, and an edited copy (MAKE_ALL=, DYNNN_MAKE_ALL=) moves both."""
    from dynnn_lib.core import make_all
    from dynnn_lib.experiments.contract import Settings

    file = make_all.DEFAULT
    if edit:
        file = tmp_path / "make_all.yaml"
        file.write_text(make_all.DEFAULT.read_text().replace("seeds: 1\n", "seeds: 4\n").replace(
            "instances: [1, 2, 3, 4, 5, 6]", "instances: [2, 3]").replace("sched_seeds: 3", "sched_seeds: 5")
            .replace("max_heads: 3", "max_heads: 2").replace("baseline_seeds: 3", "baseline_seeds: 2")
            .replace("cal_trials: 40", "cal_trials: 7").replace("standins: [round1-calibrated, round1]",
                                                                 "standins: [round1]"))
    monkeypatch.setenv(make_all.ENV, str(file))
    s = Settings()
    assert (s.seeds, s.instances, s.sched_seeds, s.max_heads) == ((4, (2, 3), 5, 2) if edit else (1, (1, 2, 3, 4, 5, 6),
                                                                                                    3, 3))
    for target, keys in MAKE_ALL_TARGETS.items():
        argv = _recipe(target, f"MAKE_ALL={file}")
        made, default = _parsed(argv), _parsed(argv[:1] + (["params/default.yaml"] if argv[0] == "plan" else []))
        assert {k: made[k] for k in keys} == {k: default[k] for k in keys}, target
    assert _parsed(_recipe("train", f"MAKE_ALL={file}"))["streams"] == list(s.streams)
    assert _recipe("train", f"MAKE_ALL={file}", "SEEDS=9")[3] == "9"  # a make variable still wins


def test_make_alls_settings_file_reads_as_yaml_reads_it_and_refuses_what_it_cannot_read():
    """The Makefile's reader (the standard library only) and YAML agree on the file; a nested block, which the two
    would read apart, is refused with its line."""
    from dynnn_lib.core import make_all

    assert make_all.read() == yaml.safe_load(make_all.DEFAULT.read_text())
    assert make_all.as_make([1, 2]) == "1 2" and make_all.as_make(None) == ""
    with pytest.raises(ValueError, match=":2: write `key: value`"):
        make_all.parse("seeds: 1\n  nested: 2\n")
    with pytest.raises(ValueError, match="not a plain value"):
        make_all.parse("seeds: yes\n")
