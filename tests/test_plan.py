"""make all plans the union of its runs first: shared runs are trained once."""
from pathlib import Path

import yaml

from dynnn_lib.cli import main
from dynnn_lib.experiments.catalogue import paper_configs
from dynnn_lib.experiments.contract import unique
from dynnn_lib.workbench.plan import notebook_configs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "params" / "default.yaml").read_text())


def test_the_reports_and_the_notebooks_share_runs():
    paper = {c.key() for c in paper_configs(5, (0, 1))}
    assert len(paper) == 7 * 5 * 2  # 5 paper variants, V2', the automatic rule; 5 seeds; 2 instances
    books = notebook_configs(DEFAULT)
    from dynnn_lib import from_dict
    from dynnn_lib.experiments.studies import lr_trick

    seeds = DEFAULT["all"]["seeds"]
    nb05 = [from_dict({**ov, "seed": s}) for ov in lr_trick().values() for s in range(seeds)]
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
