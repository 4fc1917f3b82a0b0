"""The fidelity report: the paper's tables transcribed right, the claims judged over instances with a margin, the
report written."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import TINY_DATA
from dynnn_lib.experiments import fidelity
from dynnn_lib.evaluation.metrics import average_accuracy, diagonal, final
from dynnn_lib.experiments.reproduce import VariantSummary
from dynnn_lib.evaluation.routing import HEAD_RULES
from dynnn_lib.evaluation.stats import MARGIN, VERDICTS

BASE = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": {**TINY_DATA, "n_tasks": 4,  # V2' expands at task 3
                 "image_size": 16, "n_classes": 3, "train_per_class": 4, "test_per_class": 2}}  # 24 runs in seconds


def test_paper_tables_give_the_numbers_derived_in_the_reference():
    """method_and_dataset.md: finetune lower mean 92.65, final row 95.53, BWT -4.87; V2' 96.90, 97.54, +0.34, 97.24."""
    ft, v2 = fidelity.PAPER_FINETUNE[0], fidelity.PAPER_DYNAMICNN[0]
    assert average_accuracy(ft) * 100 == pytest.approx(92.65, abs=0.01)
    assert final(ft) * 100 == pytest.approx(95.53, abs=0.01)
    assert fidelity.bwt_final(ft) * 100 == pytest.approx(-4.87, abs=0.01)
    assert diagonal(ft) * 100 == pytest.approx(99.87, abs=0.01)
    assert average_accuracy(v2) * 100 == pytest.approx(96.90, abs=0.01)
    assert final(v2) * 100 == pytest.approx(97.54, abs=0.01)
    assert fidelity.bwt_final(v2) * 100 == pytest.approx(0.34, abs=0.01)
    assert diagonal(v2) * 100 == pytest.approx(97.24, abs=0.01)
    assert np.isnan(ft[0, 1]) and not np.isnan(ft[8, 0])
    # the paper's finetune forgets most after tasks 1, 3 and 5: where it chose to expand
    assert fidelity.worst_tasks(ft) == [1, 3, 5]


def _summary(name, matrices, rules=None):
    """Fake runs, seed i = matrices[i]; `rules` maps a head rule to a matrix shift (default: all rules equal)."""
    results = []
    for i, m in enumerate(matrices):
        m = np.array(m, dtype=float)
        results.append(SimpleNamespace(
            matrix=m, matrices={r: m + (rules or {}).get(r, 0.0) for r in HEAD_RULES}, routing=np.full(m.shape, 0.9),
            config=SimpleNamespace(seed=i, key=lambda: "fake", data=SimpleNamespace(stream="round1-calibrated")),
            task_names=[f"task {j}" for j in range(len(m))]))
    return VariantSummary(name, results)


def _instance(ft, shifts, v2, seeds=1, noise=0.002, rng=None):
    """One benchmark instance: every variant = base + its shift + the instance's luck (shared by every variant: the
    pairing carries it out), per seed a little noise."""
    rng = rng or np.random.default_rng(0)
    luck = rng.normal(0, 0.03)
    jitter = lambda: [rng.normal(0, noise) for _ in range(seeds)]  # noqa: E731
    out = {"finetune": _summary("finetune", [ft + luck + e for e in jitter()])}
    for name, shift in shifts.items():
        out[name] = _summary(name, [BASE9 + shift + luck + e for e in jitter()],
                             rules={"mean_prob": -0.05, "oracle": 0.01})
    out[fidelity.V2_NAME] = _summary(fidelity.V2_NAME, [v2 + luck + e for e in jitter()])
    return out


BASE9 = np.full((9, 9), 0.9)
ORDERING = "ordering: finetune < no expand < expand@1 < no expand + LR trick (square)"
FORGETS = ("finetune forgets more right after the dissimilar tasks 1, 3, 5 than after the others (mean drop on "
           "earlier tasks)")
LR_NOEXP = "the LR trick helps without expansion (square)"
STEP2 = "ordering step 2: DynamicNN (expand@1) beats DynamicNN (no expand) (expanding at task 1 helps; square)"
GOOD = {"DynamicNN (no expand)": 0.01, "DynamicNN (expand@1)": 0.03, "DynamicNN (no expand) + LR trick": 0.05,
        "DynamicNN (expand@1) + LR trick": 0.06}


def _matrices():
    ft = BASE9 - 0.02
    for t, loss in ((1, 0.3), (3, 0.4), (5, 0.2), (7, 0.05)):
        ft[t, :t] -= loss  # forgetting right after tasks 1, 3, 5 (and a little after 7)
    v2 = BASE9.copy()
    np.fill_diagonal(v2, 0.85)
    return ft, v2


def _six():
    ft, v2 = _matrices()
    return {k: _instance(ft, GOOD, v2, rng=np.random.default_rng(k)) for k in range(1, 7)}


def _bad():
    """expand@1 far below no expand on instance 1 only."""
    ft, v2 = _matrices()
    return {**_six(), 1: _instance(ft, {**GOOD, "DynamicNN (expand@1)": -0.2}, v2)}


def test_claims_are_judged_over_instances_from_the_numbers():
    six = _six()
    cl = {c.claim: c for c in fidelity.claims(six)}
    assert all(c.verdict in VERDICTS for c in cl.values())
    assert cl[ORDERING].verdict == "held" and cl[ORDERING].kind == "all steps"
    steps = [c for name, c in cl.items() if name.startswith("ordering step")]
    assert len(steps) == 3 and all(c.verdict == "held" for c in steps)
    assert cl[FORGETS].verdict == "held"
    assert cl["the frozen trunk costs plasticity (diagonal: finetune above V2')"].verdict == "held"
    assert cl["DynamicNN V2' forgets less than finetune (BWT, final row)"].verdict == "held"
    assert cl["DynamicNN expand@1: the router beats mean_prob (final row)"].verdict == "held"
    oracle = next(c for name, c in cl.items() if "oracle is within 2 points" in name)
    assert oracle.verdict == "held"  # oracle 1 point above the router
    judged = cl["ordering step 1: DynamicNN (no expand) beats finetune (DynamicNN (KD) beats finetune; square)"]
    assert judged.numbers["n"] == 6 and judged.numbers["ci_low"] > 0 and "[" in judged.diff
    assert set(judged.numbers["instances"]) == {str(k) for k in six} and judged.numbers["margin"] == MARGIN
    assert fidelity.decided(list(cl.values())) == len(cl)


def test_a_difference_on_one_instance_only_is_not_a_finding_and_equal_sides_are_equivalent():
    ft, v2 = _matrices()
    cl = {c.claim: c for c in fidelity.claims(_bad())}  # step 2 is no longer decided over the instances
    assert cl[STEP2].verdict == "inconclusive" and cl[STEP2].needed and cl[STEP2].needed > 6
    assert cl[ORDERING].verdict == "inconclusive" and cl[ORDERING].diff == "1 of 3 steps held"  # step 3 starts from expand@1 too
    # the LR trick changes nothing (per instance within 0.1 point): equivalent within the 1-point margin
    flat = {k: _instance(ft, {**GOOD, "DynamicNN (no expand) + LR trick": 0.01}, v2, rng=np.random.default_rng(k))
            for k in range(1, 7)}
    cl = {c.claim: c for c in fidelity.claims(flat)}
    assert cl[LR_NOEXP].verdict == "equivalent" and cl[LR_NOEXP].needed is None
    # one instance: nothing paired is decided
    one = {1: _instance(ft, GOOD, v2, seeds=3)}
    assert {c.verdict for c in fidelity.claims(one) if c.kind == "paired"} == {"inconclusive"}


def test_the_stand_ins_side_by_side_say_which_claims_depend_on_the_stand_in(tmp_path):
    six, bad = _six(), _bad()
    path = fidelity.standins_report({"round1-calibrated": fidelity.claims(six), "round1": fidelity.claims(bad)},
                                    list(six), tmp_path)
    md, body = path.read_text(), json.loads((tmp_path / "standins.json").read_text())
    assert body["streams"] == ["round1-calibrated", "round1"] and len(body["claims"]) == len(fidelity.claims(six))
    by = {c["claim"]: c for c in body["claims"]}
    assert by[ORDERING]["overall"] == {"round1-calibrated": "held", "round1": "inconclusive"}
    assert by[ORDERING]["depends_on_standin"] and not by[FORGETS]["depends_on_standin"]
    n_dep = sum(c["depends_on_standin"] for c in body["claims"])
    assert f"depends on the stand-in: {n_dep} of {len(body['claims'])} do" in md
    assert f"| {ORDERING} |" in md and "| round1-calibrated: Δ [95 % CI]; verdict |" in md


def test_report_from_real_runs(tmp_path):
    [path] = fidelity.build(BASE, seeds=1, jobs=1, runs_dir=tmp_path / "runs", out_dir=tmp_path / "reports",
                            progress=False, instances=(1, 2, 3))
    md = path.read_text()
    assert md.startswith("Machine: ") and " cores, 1 torch thread per run; generated " in md.splitlines()[0]
    assert "| lower-triangle mean | 92.65 |" in md and "| BWT (final row) | -4.87 |" in md
    assert "needs the 9-task stream (have 4)" in md and "## Routing accuracy" in md
    assert "The calibration's objective reads the paper's 9x9 tables: not scored on 4 tasks." in md
    report = json.loads((tmp_path / "reports" / "fidelity.json").read_text())
    assert report["schema"] == "dynnn.fidelity/4" and report["margin"] == MARGIN
    assert report["instances"] == [1, 2, 3] and report["seeds"] == [0] and report["head_rule"] == "router"
    assert report["machine"]["cores"] >= 1
    claims = report["claims"]
    assert len(claims) == 19  # ordering + 3 steps, 2 LR trick, forgetting, 3 on the tables, 4 head rules, 5 auto rule
    assert report["decided"] == sum(c["verdict"] != "inconclusive" for c in claims)
    assert f"{report['decided']} of 19 claims are decided" in md
    paired = [c for c in claims if c["kind"] == "paired" and c["numbers"]]
    assert all(c["verdict"] in VERDICTS and c["numbers"]["n"] == 3 and set(c["numbers"]["instances"]) == {"1", "2", "3"}
               for c in paired)
    table = (tmp_path / "reports" / "fidelity_claims.md").read_text()
    assert table.startswith("| claim | the paper | ours (mean ± sd over instances) | Δ [95 % CI] | verdict |")
    assert table.count("\n") == len(claims) + 2 and all(c["claim"] in table for c in claims) and table in md
    page = (tmp_path / "reports" / "fidelity.html").read_text()
    assert page.count("plotly-graph-div") >= 4 and page.count("<script") >= 2
    runs = [d for d in (tmp_path / "runs").iterdir() if (d / "result.json").exists()]
    assert len(runs) == 21  # (5 paper variants, V2', the auto rule) x 1 seed x 3 instances, in one pool
    data_seeds = {json.loads((d / "config.json").read_text())["data"]["params"]["data_seed"] for d in runs}
    assert data_seeds == {1, 2, 3}


def test_evaluation_instances_are_disjoint_from_the_fit_and_the_default():
    from dynnn_lib.core.streams import EVALUATION_INSTANCES, FIT_INSTANCES

    from dynnn_lib.experiments.calibrate import FIT_RECORD

    assert not set(EVALUATION_INSTANCES) & set(FIT_INSTANCES) and len(EVALUATION_INSTANCES) >= 6
    assert not set(EVALUATION_INSTANCES) & set(json.loads(FIT_RECORD.read_text())["fit_instances"])  # the fit in use
    plan = fidelity.plan()
    assert {k for k, _ in plan} == set(EVALUATION_INSTANCES) and all(len(c) == 1 for c in plan.values())


def test_bad_arguments_are_one_line(capsys):
    from dynnn_lib.cli import main

    assert main(["fidelity", "--seeds", "0", "--out", "unused"]) == 2
    assert main(["fidelity", "--head-rule", "vote", "--out", "unused"]) == 2
    assert main(["fidelity", "--instances", "0", "0", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("dynnn: error: ") for e in err)  # the one error tail
    assert "router" in err[1] and "distinct" in err[2]


def test_the_stand_in_beside_the_default_runs_the_paper_tables_only(tmp_path):
    """make all's smaller side-by-side: round1 runs finetune and V2' (fidelity.SIDE_BY_SIDE_VARIANTS) on the first
    SIDE_BY_SIDE instances, so standins.md judges the four claims between the paper's two tables on both."""
    paths = fidelity.build(BASE, seeds=1, jobs=1, runs_dir=tmp_path / "runs", out_dir=tmp_path / "reports",
                           progress=False, instances=(1, 2, 3, 4), streams=(None, "round1"))
    assert [p.name for p in paths] == ["fidelity.md", "fidelity-round1.md", "standins.md"]
    side = json.loads((tmp_path / "reports" / "fidelity-round1.json").read_text())
    assert side["instances"] == [1, 2, 3] and {c["numbers"].get("a") for c in side["claims"]} <= {
        fidelity.FT, fidelity.V2_NAME, None}
    standins = json.loads((tmp_path / "reports" / "standins.json").read_text())
    assert len(standins["claims"]) == 4 and standins["instances"] == [1, 2, 3]
    assert any("BWT" in c["claim"] for c in standins["claims"])


def test_the_report_scores_the_calibrations_objective_and_skill_per_instance(tmp_path):
    """On the 9-task stream each instance's objective (finetune and V2' against the paper's 54 entries) and its skill
    (1 - MSE / MSE of the flat line) are in the report, with their medians beside the three null models; the paper's
    own tables as our matrices score skill 1 and the flat line's prediction 0."""
    from dynnn_lib.experiments.objective import calibration_error, flat_line, null_models, skill

    ft, v2 = _matrices()
    three = {k: _instance(ft, GOOD, v2, rng=np.random.default_rng(k)) for k in range(1, 4)}
    path = fidelity.report(three, tmp_path, machine_info={"cpu": "CPU X", "cores": 2})
    doc = json.loads((tmp_path / "fidelity.json").read_text())
    o = doc["objective"]
    means = {k: [np.mean([r.matrix for r in runs[v].results], 0) for v in (fidelity.FT, fidelity.V2_NAME)]
             for k, runs in three.items()}
    assert o["instances"] == {str(k): pytest.approx({"rmse_calibration": calibration_error(*m),
                                                     "skill": skill(calibration_error(*m))}) for k, m in means.items()}
    assert o["skill"] == pytest.approx(np.median([v["skill"] for v in o["instances"].values()]))
    assert o["null_models"] == null_models()  # JSON keeps a float exactly
    md = path.read_text()
    assert (f"**Stand-in `round1-calibrated`, median over the instances [1, 2, 3]: skill {o['skill']:.2f}** at an "
            f"objective of {o['rmse_calibration']:.2f} points") in md
    assert "score RMSE: flat line 5.98 (skill 0.00), row means 3.21 (skill 0.71), rows + columns 2.98" in md
    assert f"| 2 | {o['instances']['2']['rmse_calibration']:.2f} | {o['instances']['2']['skill']:.2f} |" in md
    assert "median over the instances [1, 2, 3]: skill" in (tmp_path / "fidelity.html").read_text()

    def one(finetune, v2):
        return {1: {fidelity.FT: _summary(fidelity.FT, [finetune]), fidelity.V2_NAME: _summary(fidelity.V2_NAME, [v2])}}

    assert fidelity.objective(one(fidelity.PAPER_FINETUNE[0], fidelity.PAPER_DYNAMICNN[0]))["skill"] == 1.0
    assert fidelity.objective(one(*flat_line()))["skill"] == pytest.approx(0.0, abs=1e-12)
    assert fidelity.objective(one(*(m - 0.02 for m in flat_line())))["skill"] < 0  # worse than no pattern
