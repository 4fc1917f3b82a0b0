"""dynnn calibrate: the objective reads exactly the 54 published numbers it names; the search runs, resumes and
reports (on a 9-task stream of tiny tasks, seconds)."""
import json

import numpy as np
import pytest

from dynnn_lib.experiments import paper
from dynnn_lib.reports import blocks
from dynnn_lib import ConfigError
from dynnn_lib.core.fingerprint import cpu
from dynnn_lib.core.streams import DEFAULT_STREAM, load_spec
from dynnn_lib.experiments.calibrate import (FIT_RECORD, SPACE, Calibration, calibrate, calibration_entries, calibration_error,
                                             evaluate, fitted_values, held_out, knob_table, lower_bound, partial_bound,
                                             rmse_table, skill, squared_errors, write_report)
from dynnn_lib.cli import main

pytest.importorskip("optuna")

TINY9 = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
         "data": {"n_classes": 3, "train_per_class": 3, "test_per_class": 2, "image_size": 16}}


def test_the_objective_reads_only_the_finetune_lower_triangle_and_the_v2_diagonal(monkeypatch):
    """Every published number the objective does not name is replaced by garbage: the objective does not move.
    Each of the 54 it names moves it."""
    rng = np.random.default_rng(0)
    ft, v2 = rng.uniform(0.5, 1, (9, 9)), rng.uniform(0.5, 1, (9, 9))
    before = calibration_error(ft, v2)
    garbage_ft, garbage_v2 = paper.PAPER_FINETUNE[0].copy(), paper.PAPER_DYNAMICNN[0].copy()
    garbage_ft[np.triu_indices(9, 1)] = 7.0                     # finetune's upper triangle (not published anyway)
    off = ~np.eye(9, dtype=bool)
    garbage_v2[off] = 7.0                                       # V2' off the diagonal: held out
    monkeypatch.setattr("dynnn_lib.experiments.objective.PAPER_FINETUNE", (garbage_ft, paper.PAPER_FINETUNE[1] * 0 + 7.0))
    monkeypatch.setattr("dynnn_lib.experiments.objective.PAPER_DYNAMICNN", (garbage_v2, paper.PAPER_DYNAMICNN[1] * 0 + 7.0))
    assert calibration_error(ft, v2) == before
    # our entries it does not read do not move it either; the 54 it reads each do
    ft2, v22 = ft.copy(), v2.copy()
    ft2[np.triu_indices(9, 1)] = 0.0
    v22[off] = 0.0
    assert calibration_error(ft2, v22) == before
    monkeypatch.undo()
    moved = 0
    for i, j in zip(*np.tril_indices(9)):
        f = ft.copy()
        f[i, j] += 0.01
        moved += calibration_error(f, v2) != before
    for i in range(9):
        v = v2.copy()
        v[i, i] += 0.01
        moved += calibration_error(ft, v) != before
    assert moved == 54 and len(calibration_entries(ft, v2)) == 54
    # the held-out score reads the 36 entries below V2's diagonal, none of the 54
    assert held_out(paper.PAPER_DYNAMICNN[0]) == 0.0 and held_out(v22) != held_out(v2)
    # the bound that lets a hopeless trial skip its V2' runs never exceeds the objective; it is the objective when
    # V2's diagonal is the paper's
    for _ in range(20):
        f, v = rng.uniform(0.3, 1, (9, 9)), rng.uniform(0.3, 1, (9, 9))
        assert lower_bound(f) <= calibration_error(f, v)
    exact = v2.copy()
    np.fill_diagonal(exact, np.diag(paper.PAPER_DYNAMICNN[0]))
    assert lower_bound(ft) == pytest.approx(calibration_error(ft, exact), abs=1e-12)


def test_the_row_by_row_bound_never_exceeds_the_objective_and_reaches_it():
    """After each task the bound from the rows so far is at most the objective the finished runs will have, and
    grows to the finetune-only bound once every row is in."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        fts = [rng.uniform(0.3, 1, (9, 9)) for _ in range(3)]
        v2s = [rng.uniform(0.3, 1, (9, 9)) for _ in range(3)]
        objective = np.mean([calibration_error(f, v) for f, v in zip(fts, v2s)])
        bounds = [partial_bound([squared_errors(f, t) for f in fts]) for t in range(9)]
        assert all(a <= b + 1e-12 for a, b in zip(bounds, bounds[1:])) and bounds[-1] <= objective
        assert bounds[-1] == pytest.approx(np.mean([lower_bound(f) for f in fts]))
        # an instance not started yet counts 0: still a bound
        assert partial_bound([squared_errors(fts[0], 8), 0.0, 0.0]) <= objective


def test_calibrate_runs_resumes_and_reports(tmp_path, capsys):
    out, runs = tmp_path / "rep", tmp_path / "runs"
    journal = str(tmp_path / "study.log")
    cal = Calibration(trials=3, seeds=1, base=TINY9, jobs=1, runs_dir=str(runs), out=str(out), progress=False,
                      knobs=("weak_gain", "complex_other_classes"), instances=(100, 101), journal=journal)
    data = calibrate(cal)
    assert data["trials"] == 3 and data["before"]["trial"] == 0 and data["fit_instances"] == [100, 101]
    # the objective is the mean over the fit instances of each one's RMSE
    per = data["after"]["per_instance"]
    assert set(per) == {"100", "101"} and data["after"]["objective"] == pytest.approx(np.mean(list(per.values())))
    seeds = {json.loads((d / "config.json").read_text())["data"]["params"]["data_seed"] for d in runs.glob("*")
             if d.name[0] != "_"}
    assert seeds == {100, 101}  # nothing else was read
    assert data["before"]["values"]["weak_gain"] == 0.3 and data["before"]["values"]["base_photometric"] == 0.0
    assert data["after"]["objective"] <= data["before"]["objective"]
    assert data["history"][1]["params"] == {"weak_gain": 0.5, "complex_other_classes": False}  # the hand-made point
    fit = fitted_values()  # trial 2: the fit in use
    assert data["history"][2]["params"] == {"weak_gain": fit["weak_gain"], "complex_other_classes": False}
    n_runs = len(list(runs.glob("*/result.json")))
    # a second call with a larger budget continues the same study: 3 old trials + 1 new
    again = calibrate(Calibration(**{**cal.__dict__, "trials": 4}))
    assert again["trials"] == 4 and [h["trial"] for h in again["history"]][:3] == [0, 1, 2]
    assert len(list(runs.glob("*/result.json"))) > n_runs
    # the CLI writes the three files
    rc = main(["calibrate", "--trials", "4", "--jobs", "1", "--knobs", "weak_gain", "complex_other_classes",
               "--fit-instances", "100", "101", "--journal", journal,
               "--runs-dir", str(runs), "--out", str(out), "--no-progress", "--predict-seeds", "2",
               *[f"--set={k}={json.dumps(v)}" for k, v in TINY9.items()]])
    assert rc == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "RMSE on the 54 calibration entries" in text and "held out" in text
    body = json.loads((out / "calibration.json").read_text())
    assert body["reads"] == ["PAPER_FINETUNE: the 45 entries on and below the diagonal",
                             "PAPER_DYNAMICNN: the 9 diagonal entries"]
    md = (out / "calibration.md").read_text()
    assert "held out: RMSE, V2' off-diagonal (36), a prediction" in md and "## Search history" in md
    assert "the objective: mean over the fit instances [100, 101] of each one's RMSE" in md
    assert "| DynamicNN (expand@1) + LR trick | 96.83 |" in md and set(body["variants"]) == set(paper.PAPER_SCORES)
    assert "plotly" in (out / "calibration.html").read_text()
    assert body["machine"].startswith(cpu()["model"]) and body["wall_minutes"] > 0 and body["jobs"] == 1

    # make all's report: the committed fit re-measured against round1 (here with the record just written)
    data = evaluate(seeds=1, jobs=1, runs_dir=str(runs), base=TINY9, progress=False, record=out / "calibration.json",
                    instances=(1, 2))
    assert data["before"]["stream"] == "round1" and data["after"]["stream"] == "round1-calibrated"
    assert data["after"]["values"]["weak_gain"] == load_spec(DEFAULT_STREAM).knobs().weak_gain and data["trials"] == body["trials"]
    assert data["before"]["rmse_calibration"] != data["after"]["rmse_calibration"]
    assert set(data["variants"]) == set(paper.PAPER_SCORES) and data["search"]["seeds"] == 1
    # the five variants are predicted on the default stand-in; round1 ran finetune and V2' only (the smaller side)
    assert all(v["before"] is None and len(v["after"]) == 2 for v in data["variants"].values())
    # the headline is the median over the evaluation instances; the fit's instances are reported beside it, as the
    # fit scored them (its record), not trained again
    assert data["fit_instances"] == [100, 101] and data["evaluation_instances"] == [1, 2]
    for side in ("before", "after"):
        per = data[side]["instances"]
        assert set(per) == {"1", "2"}
        assert data[side]["fit"]["rmse_calibration"] == body[side]["rmse_calibration"]
        assert data[side]["rmse_calibration"] == pytest.approx(
            float(np.median([per[k]["rmse_calibration"] for k in ("1", "2")])))
        # the mean over the instances of each one's squared objective is bias² + spread² / 2 (two instances)
        squares = [per[k]["rmse_calibration"] ** 2 for k in ("1", "2")]
        assert np.mean(squares) == pytest.approx(data[side]["bias"] ** 2 + data[side]["spread"] ** 2 / 2)
        # skill per instance from its objective, the headline its median; the fit's record's too
        assert all(per[k]["skill"] == skill(per[k]["rmse_calibration"]) for k in ("1", "2"))
        assert data[side]["skill"] == pytest.approx(float(np.median([per[k]["skill"] for k in ("1", "2")])))
        assert data[side]["fit"]["skill"] == skill(body[side]["rmse_calibration"])
    assert body["null_models"]["flat line"]["skill"] == 0.0 and data["null_models"] == body["null_models"]
    write_report(data, out)
    md = (out / "calibration.md").read_text()
    assert "evaluation instances [1, 2] (never read by the fit" in md and "## Per instance (points" in md
    nulls = {k: v["rmse"] for k, v in data["null_models"].items()}
    headline = (f"**The default stand-in, median over the evaluation instances [1, 2]: skill {data['after']['skill']:.2f}"
                f"** at an objective of {data['after']['rmse_calibration']:.2f} points")
    bars = (f"score RMSE: flat line {nulls['flat line']:.2f} (skill 0.00), row means {nulls['row means']:.2f} (skill "
            f"{data['null_models']['row means']['skill']:.2f}), rows + columns {nulls['rows + columns']:.2f}")
    assert headline in md and bars in md and headline in blocks.calibration(data) and bars in blocks.calibration(data)
    per = data["after"]["instances"]["2"]
    assert f"| 2 | {data['before']['instances']['2']['rmse_calibration']:.2f} | {per['rmse_calibration']:.2f} | " \
           f"{data['before']['instances']['2']['skill']:.2f} | {per['skill']:.2f} |" in md
    assert "| flat line | 5.98 | 0.00 | Null model 1, the flat line (3 numbers): every off-diagonal entry" in md
    assert (f"| skill of the objective (1 − MSE / MSE of the flat line) | {data['before']['fit']['skill']:.2f} | "
            f"{data['before']['skill']:.2f} |") in blocks.calibration(data)
    assert "row means" in (out / "calibration.html").read_text()
    assert (f"objective is bias {data['after']['bias']:.2f} (the RMSE of their mean matrices) and spread "
            f"{data['after']['spread']:.2f} between them") in blocks.calibration(data)
    assert f"the objective's bias: RMSE of the mean over the evaluation instances (54 entries) | — | " \
           f"{data['before']['bias']:.2f} | — | {data['after']['bias']:.2f} |" in md
    with pytest.raises(ConfigError, match="were read by the fit"):
        evaluate(seeds=1, record=out / "calibration.json", instances=(100, 1))
    assert list(rmse_table(data).index)[-1].startswith("held out")
    assert rmse_table(data).loc["the objective's skill (1 − MSE / MSE of the flat line; no unit)", "after"] == round(
        data["after"]["skill"], 2)
    steps = [k for s in json.loads(FIT_RECORD.read_text())["steps"] for k in s["change"] if k not in SPACE]
    shown = list(knob_table().index)  # every knob the search moves, then those the fit steps set outside it
    assert steps and shown[:len(SPACE)] == list(SPACE) and sorted(shown[len(SPACE):]) == sorted(set(steps))
    with pytest.raises(ConfigError, match="no calibration record"):
        evaluate(seeds=1, record=tmp_path / "none.json")
    # a fit step and its confirmation on held-back instances reach the README's block (the runs are cached)
    record = dict(body)  # the search's record (out/calibration.json is make all's report by now)
    score = lambda v: {"rmse_calibration": v}  # noqa: E731
    record["steps"] = [{"change": {"weak_cast": [1, 1, 1]}, "fit_instances": [100, 101], "adopt": True,
                        "fitted": score(10.0), "with": score(9.0),
                        "confirmed": {"fit_instances": [103], "fitted": score(9.5), "with": score(8.25)}}]
    (tmp_path / "stepped.json").write_text(json.dumps(record))
    stepped = evaluate(seeds=1, jobs=1, runs_dir=str(runs), base=TINY9, progress=False,
                       record=tmp_path / "stepped.json", instances=(1, 2))
    assert ("then a fit step (`weak_cast=[1, 1, 1]`: the mean objective over the fit instances [100, 101] 10.00 -> "
            "9.00, adopted, confirmed on held-back instances [103] 9.50 -> 8.25)") in blocks.calibration(stepped)


@pytest.mark.parametrize("argv, message", [
    (["--trials", "0"], "--trials 0 must be a positive integer"),
    (["--knobs", "weak_light"], "'weak_light' is not a calibrated knob"),
    (["--set", "data.n_tasks=4"], "drop data.n_tasks"),
    (["--set", "data.stream=round1-calibrated"], "a search sets the knobs of round1 or round1-mixture"),
])
def test_calibrate_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main(["calibrate", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_search_sets_the_knobs_of_round1_or_of_its_mixture():
    from dynnn_lib.experiments.calibrate.knobs import default_values, trial_configs

    values = {**default_values(), "weak_gain": 0.6}
    ft, v2 = trial_configs(values, 0, {"data": {"stream": "round1-mixture"}}, instance=101)
    assert ft.data.stream == v2.data.stream == "round1-mixture" and ft.data.data_seed == 101
    assert ft.data.generator["weak_gain"] == 0.6 and v2.method == "combined"
    assert trial_configs(values, 0, {})[0].data.stream == "round1"


def test_a_killed_calibration_runs_its_unfinished_trial_again(tmp_path):
    """A trial left RUNNING by a killed process is failed and its values queued again on the next call."""
    import optuna

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    cal = Calibration(trials=1, seeds=1, base=TINY9, jobs=1, runs_dir=str(tmp_path / "runs"), out=str(tmp_path),
                      progress=False, knobs=("weak_gain",), instances=(100,))
    url = JournalStorage(JournalFileBackend(str(tmp_path / "calibration-study.log")))
    study = optuna.create_study(storage=url, study_name=cal.study_name(), direction="minimize")
    study.ask({"weak_gain": optuna.distributions.FloatDistribution(0.1, 0.7)})   # then the process "dies"
    left = study.trials[0].params["weak_gain"]
    data = calibrate(Calibration(**{**cal.__dict__, "trials": 1}))
    states = [t.state.name for t in optuna.load_study(study_name=cal.study_name(), storage=url).trials]
    assert states[0] == "FAIL" and "COMPLETE" in states
    assert data["after"]["values"]["weak_gain"] == left      # the re-queued values were the ones evaluated


def test_a_trial_whose_rows_already_exceed_the_best_stops_there(tmp_path, monkeypatch):
    """Exact row-by-row pruning: once the bound from finetune's rows so far exceeds the best complete trial's
    objective, the trial stops after that task (its later tasks and its V2' runs never train)."""
    import dynnn_lib.experiments.calibrate.search as cal_mod  # where the loop reads partial_bound

    real = cal_mod.partial_bound
    monkeypatch.setattr(cal_mod, "partial_bound", lambda sse: 1e9 if any(s > 0 for s in sse) else real(sse))
    runs = tmp_path / "runs"
    data = calibrate(Calibration(trials=2, seeds=1, base=TINY9, jobs=1, runs_dir=str(runs), out=str(tmp_path),
                                 progress=False, knobs=("weak_gain",), instances=(100,)))
    # trial 0 has no best to compare with and runs both; trial 1 stops after its first task
    assert [h["state"] for h in data["history"]] == ["complete", "pruned"] and data["pruned"] == 1
    methods = sorted(json.loads(p.read_text())["config"]["method"] for p in runs.glob("*/result.json"))
    assert methods == ["combined", "finetune"]  # trial 1's finetune never finished, its V2' never started
    stopped = [d for d in runs.glob("*") if (d / "checkpoint.pt").exists()]
    assert len(stopped) == 1


def test_a_search_can_hold_knobs_fixed(tmp_path, capsys):
    """--fix KNOB=VALUE: every trial (the enqueued ones too) renders with that value and the search moves the others;
    the study is another one (a study from before --fix keeps its name), and the report records what was held."""
    runs = tmp_path / "runs"
    plain = Calibration(trials=1, seeds=1, base=TINY9, jobs=1, runs_dir=str(runs), out=str(tmp_path),
                        progress=False, knobs=("weak_gain", "scenes_per_class"), instances=(100,))
    held = Calibration(**{**plain.__dict__, "fixed": {"scenes_per_class": 2}})
    assert held.knobs == ("weak_gain",) and held.study_name() != plain.study_name()
    assert plain.study_name() == Calibration(**{**plain.__dict__, "fixed": {}}).study_name()
    data = calibrate(Calibration(**{**held.__dict__, "trials": 2}))
    assert data["fixed"] == {"scenes_per_class": 2} and data["knobs"] == ["weak_gain"]
    assert all(set(h["params"]) == {"weak_gain"} for h in data["history"])
    generators = [json.loads(p.read_text())["config"]["data"]["params"]["generator"] for p in runs.glob("*/result.json")]
    assert generators and all(g["scenes_per_class"] == 2 for g in generators)
    assert data["before"]["values"]["scenes_per_class"] == 2 and data["before"]["values"]["weak_gain"] == 0.3
    assert main(["calibrate", "--fix", "scenes_per_class=-1", "--out", str(tmp_path)]) == 2
    assert "scenes_per_class=-1 must be an integer in 0..1000" in capsys.readouterr().err
    assert main(["calibrate", "--fix", "scenes", "--out", str(tmp_path)]) == 2
    assert "--fix 'scenes': write KNOB=VALUE" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="nothing is left to search"):
        Calibration(knobs=("weak_gain",), fixed={"weak_gain": 0.5})


def test_a_search_best_is_confirmed_on_held_back_fit_side_instances(tmp_path, capsys, monkeypatch):
    """--confirm REPORT: a search's best (where it differs from the fit in use) judged as a fit step on the held-back
    fit-side instances (core/streams.CONFIRM_INSTANCES, disjoint from the fit's and the evaluation's), before it is a
    candidate for the evaluation instances."""
    import dynnn_lib.experiments.calibrate.cli as cal_mod  # where the CLI calls step
    from dynnn_lib.core.streams import CONFIRM_INSTANCES, EVALUATION_INSTANCES, FIT_INSTANCES

    assert not set(CONFIRM_INSTANCES) & (set(FIT_INSTANCES) | set(EVALUATION_INSTANCES))
    best = {**fitted_values(), "weak_gain": 0.5}
    report = tmp_path / "calibration.json"
    report.write_text(json.dumps({"after": {"values": best}}))
    seen, real = {}, cal_mod.step  # what the CLI asks for, then a tiny step on one of them (seconds)
    monkeypatch.setattr(cal_mod, "step", lambda change, instances, *a, **k: seen.update(change=change, instances=instances)
                        or real(change, (103,), jobs=1, runs_dir=str(tmp_path / "runs"), progress=False, base=TINY9))
    assert main(["calibrate", "--confirm", str(report), "--out", str(tmp_path), "--no-progress"]) == 0
    assert seen == {"change": {"weak_gain": 0.5}, "instances": CONFIRM_INSTANCES}
    out = json.loads((tmp_path / "calibration-step.json").read_text())
    assert out["change"] == {"weak_gain": 0.5} and out["fit_instances"] == [103]
    assert "with {'weak_gain': 0.5}" in capsys.readouterr().out
    report.write_text(json.dumps({"after": {"values": fitted_values()}}))
    assert main(["calibrate", "--confirm", str(report), "--out", str(tmp_path)]) == 2
    assert "the search's best is the fit in use" in capsys.readouterr().err
    assert main(["calibrate", "--confirm", str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 2
    assert "not a search's report" in capsys.readouterr().err


def test_a_study_resumed_under_other_code_measures_a_finished_trial_again(tmp_path, monkeypatch):
    """Values measured by code that trains otherwise never mix: a resumed study re-measures a finished trial first
    and goes on only if it agrees (bit for bit on this CPU)."""
    import dynnn_lib.experiments.calibrate.search as cal_mod  # where the loop reads calibration_error

    cal = Calibration(trials=1, seeds=1, base=TINY9, jobs=1, runs_dir=str(tmp_path / "runs"), out=str(tmp_path),
                      progress=False, knobs=("weak_gain",), instances=(100,))
    first = calibrate(cal)
    monkeypatch.setattr(Calibration, "code", lambda self: "edited, trains alike")
    again = calibrate(Calibration(**{**cal.__dict__, "trials": 3}))
    assert again["trials"] == 3 and again["history"][1]["params"] == first["history"][0]["params"]  # trial 0 again
    monkeypatch.setattr(Calibration, "code", lambda self: "edited, trains otherwise")
    real = cal_mod.calibration_error
    monkeypatch.setattr(cal_mod, "calibration_error", lambda ft, v2: real(ft, v2) + 0.5)
    with pytest.raises(ConfigError, match="differs by \\+0.500 points: start a new study"):
        calibrate(Calibration(**{**cal.__dict__, "trials": 5}))


def test_a_fit_step_is_judged_on_the_fit_instances_only(tmp_path, capsys):
    """dynnn calibrate --step: the fitted stand-in with and without one more knob, and round1, on the fit instances;
    adopted iff the mean objective falls (the rule fixed before the runs); never on an evaluation instance."""
    from dynnn_lib.experiments.calibrate import step

    out = step({"colour_candidates": 4}, (100, 101), jobs=1, runs_dir=str(tmp_path / "runs"), progress=False, base=TINY9)
    assert out["fit_instances"] == [100, 101] and out["with"]["values"]["colour_candidates"] == 4
    for side in ("before", "fitted", "with"):
        per = out[side]["instances"]
        assert set(per) == {"100", "101"} and out[side]["rmse_calibration"] == pytest.approx(
            np.mean([per[k]["rmse_calibration"] for k in per]))
    assert out["adopt"] == (out["with"]["rmse_calibration"] < out["fitted"]["rmse_calibration"])
    assert out["with"]["rmse_calibration"] != out["fitted"]["rmse_calibration"]  # the knob changed the data
    with pytest.raises(ConfigError, match="reads fit instances only"):
        step({"colour_candidates": 4}, (1, 100))
    with pytest.raises(ConfigError, match="--step weak_light: not a knob"):
        step({"weak_light": 2}, (100,))
    with pytest.raises(ConfigError, match="colour_candidates=0 must be an integer"):
        step({"colour_candidates": 0}, (100,))
    assert main(["calibrate", "--step", "colour_candidates", "--out", str(tmp_path)]) == 2
    assert "write KNOB=VALUE" in capsys.readouterr().err


def test_bias_and_spread_split_the_objective_over_instances():
    """Mean over instances of each one's squared objective = bias² + spread² (n - 1)/n, exactly; a constant offset
    on every instance is all bias, draws that differ around the paper are all spread."""
    from dynnn_lib.experiments.calibrate import bias_and_spread, calibration_error
    from dynnn_lib.experiments.paper import PAPER_DYNAMICNN, PAPER_FINETUNE

    paper_ft, paper_v2 = np.nan_to_num(PAPER_FINETUNE[0]), np.nan_to_num(PAPER_DYNAMICNN[0])
    rng = np.random.default_rng(0)
    fts = [paper_ft + rng.normal(0, 0.03, (9, 9)) for _ in range(5)]
    v2s = [paper_v2 + rng.normal(0, 0.03, (9, 9)) for _ in range(5)]
    parts = bias_and_spread(fts, v2s)
    squares = [calibration_error(f, v) ** 2 for f, v in zip(fts, v2s)]
    assert np.mean(squares) == pytest.approx(parts["bias"] ** 2 + parts["spread"] ** 2 * 4 / 5)
    shifted = bias_and_spread([paper_ft - 0.05] * 3, [paper_v2 - 0.05] * 3)
    assert shifted == pytest.approx({"bias": 5.0, "spread": 0.0})
    twins = bias_and_spread([paper_ft - 0.05, paper_ft + 0.05], [paper_v2 - 0.05, paper_v2 + 0.05])
    assert twins["bias"] == pytest.approx(0.0, abs=1e-9) and twins["spread"] == pytest.approx(50 ** 0.5)
    with pytest.raises(ConfigError, match="two or more instances"):
        bias_and_spread([paper_ft], [paper_v2])


def test_the_last_stage_judges_a_change_on_evaluation_instances_by_their_medians(tmp_path, capsys):
    """dynnn calibrate --step ... --on-evaluation: the fit in use with and without the change on evaluation instances;
    adopted iff the median objective falls over the first three (the headline's) and over all; paired beside it."""
    from dynnn_lib.experiments.calibrate import fitted_values, judge

    runs = str(tmp_path / "runs")
    out = judge({"colour_candidates": 4}, (1, 2, 3, 4), jobs=1, runs_dir=runs, progress=False, base=TINY9)
    assert out["evaluation_instances"] == [1, 2, 3, 4] and out["headline"] == [1, 2, 3]
    median = lambda side, ks: float(np.median([out[side]["instances"][str(k)]["rmse_calibration"] for k in ks]))  # noqa: E731
    for side in ("fitted", "with"):
        assert set(out[side]["instances"]) == {"1", "2", "3", "4"}
        assert out[side]["median_headline"]["rmse_calibration"] == pytest.approx(median(side, (1, 2, 3)))
        assert out[side]["median_all"]["rmse_calibration"] == pytest.approx(median(side, (1, 2, 3, 4)))
    assert out["adopt"] == (median("with", (1, 2, 3)) < median("fitted", (1, 2, 3))
                            and median("with", (1, 2, 3, 4)) < median("fitted", (1, 2, 3, 4)))
    d = [out["with"]["instances"][k]["rmse_calibration"] - out["fitted"]["instances"][k]["rmse_calibration"]
         for k in ("1", "2", "3", "4")]
    p = out["paired"]["rmse_calibration"]
    assert p["n"] == 4 and p["margin"] == pytest.approx(1.0) and p["mean_diff"] == pytest.approx(np.mean(d))
    assert p["ci_low"] < p["mean_diff"] < p["ci_high"]
    assert d != [0.0] * 4  # the knob changed the data
    for side in ("fitted", "with"):  # the error split into what every draw shares and what moves between draws
        squares = [out[side]["instances"][k]["rmse_calibration"] ** 2 for k in ("1", "2", "3", "4")]
        assert np.mean(squares) == pytest.approx(out[side]["bias"] ** 2 + out[side]["spread"] ** 2 * 3 / 4)
    # the fit in use beside the fit in use with the change, nothing else
    assert out["fitted"]["values"] == fitted_values() and out["with"]["values"] == {**fitted_values(), "colour_candidates": 4}
    with pytest.raises(ConfigError, match="at least two evaluation instances"):
        judge({"colour_candidates": 4}, (1, 100))
    with pytest.raises(ConfigError, match="at least two evaluation instances"):
        judge({"colour_candidates": 4}, (1,))
    with pytest.raises(ConfigError, match="--step weak_light: not a knob"):
        judge({"weak_light": 2}, (1, 2))
    assert main(["calibrate", "--step", "colour_candidates=4", "--on-evaluation", "--instances", "1", "2", "3", "4",
                 "--jobs", "1", "--runs-dir", runs, "--out", str(tmp_path), "--no-progress",
                 ] + [a for k, v in TINY9.items() if k != "data"
                      for a in ("--set", f"{k}={json.dumps(v)}")]
                + [a for k, v in TINY9["data"].items() for a in ("--set", f"data.{k}={v}")]) == 0
    said = capsys.readouterr().out
    assert all(f"(all, bias {out[side]['bias']:.2f}, spread {out[side]['spread']:.2f})" in said
               for side in ("fitted", "with"))
    assert said.startswith("median objective over evaluation instances [1, 2, 3, 4]") and (
        ("adopt it" if out["adopt"] else "keep the fit") in said)
    assert json.loads((tmp_path / "calibration-judged.json").read_text())["adopt"] == out["adopt"]
    assert main(["calibrate", "--on-evaluation", "--out", str(tmp_path)]) == 2
    assert "--on-evaluation judges a change" in capsys.readouterr().err

