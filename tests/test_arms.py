"""The stand-in's arms: what each arm trains, and the measures a look reports (experiments/arms.py)."""
import numpy as np
import pytest

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.experiments import arms
from dynnn_lib.experiments.objective import flat_line
from dynnn_lib.experiments.paper import PAPER_DYNAMICNN, PAPER_FINETUNE


def test_each_arm_is_a_composition_and_a_learner_on_the_default_stand_in():
    ft, v2 = arms.arm_configs("M-neutral", 101)
    assert ft.method == "finetune" and v2.method == "combined" and list(v2.method_params["expand_at"]) == [1, 3]
    assert ft.data.stream == v2.data.stream == "round1-calibrated-mixture" and ft.data.data_seed == 101
    assert ft.pretrained == "neutral" and arms.arm_configs("C-today", 101)[0].pretrained is True
    lite = arms.arm_configs("C-lite0", 100)[0]
    assert (lite.backbone, lite.pretrained, lite.data.stream) == ("efficientnet_lite0", "imagenet", "round1-calibrated")
    assert (lite.norm, lite.base_lr, lite.inc_lr) == ("frozen_bn", 3e-4, 3e-4)  # as Lite0 learns (model/lite0.py)
    assert len({arms.arm_configs(a, 100)[0].key() for a in arms.ARMS}) == 6
    with pytest.raises(ConfigError, match="unknown arm 'X-today'; choose from: C-today"):
        arms.arm_configs("X-today", 100)


def test_a_look_scores_the_paper_as_perfect_and_the_flat_line_as_skill_0():
    paper = arms.score_instance(PAPER_FINETUNE[0], PAPER_DYNAMICNN[0])
    assert paper["objective"] == 0 and paper["skill"] == 1 and paper["finetune_45"] == 0
    assert paper["history_effect"] == pytest.approx(23.33, abs=0.01)  # tasks 0-2: 98.0 after task 8, 74.7 after 3
    ft, v2 = flat_line()
    flat = arms.score_instance(ft, v2)
    assert flat["skill"] == pytest.approx(0, abs=1e-12) and flat["history_effect"] == pytest.approx(0, abs=1e-9)
    assert np.isclose(flat["objective"], 5.98, atol=0.005)


def test_a_summary_splits_the_objective_into_bias_and_spread_over_instances():
    ft, v2 = np.asarray(PAPER_FINETUNE[0]), np.asarray(PAPER_DYNAMICNN[0])
    shifted = {("C-today", 100): (ft - 0.05, v2 - 0.05), ("C-today", 101): (ft - 0.05, v2 - 0.05),
               ("M-today", 100): (ft - 0.05, v2), ("M-today", 101): (ft + 0.05, v2)}
    out = arms.summarise(shifted)
    # the same 5-point offset on every entry of both instances: all bias, no spread
    assert out["C-today"]["bias"] == pytest.approx(5) and out["C-today"]["spread"] == pytest.approx(0, abs=1e-9)
    # finetune's 45 entries mirrored between two instances: no bias, all spread (sd of +-5 = 7.07 on 45 of 54)
    assert out["M-today"]["bias"] == pytest.approx(0, abs=1e-9)
    assert out["M-today"]["spread"] == pytest.approx(np.sqrt(50 * 45 / 54))
    assert out["C-today"]["mean"]["objective"] == pytest.approx(5)
    assert "| C-today |" in arms.table(out) and arms.table(out).splitlines()[0].endswith("| bias | spread |")


def test_the_seen_share_is_read_from_the_streams_spec_and_matches_round1():
    # round 1 (method_and_dataset.md §2.3): rows 1-3 all new, 4-6 half seen, 7 two thirds, 8 all seen
    expected = [0, 0, 0, 0.5, 0.5, 0.5, 2 / 3, 1]
    assert np.allclose(arms.seen_shares(), expected) and np.allclose(arms.seen_shares("round1-calibrated"), expected)


def test_the_hypotheses_measures_on_the_paper_and_on_a_matrix_built_to_answer_them():
    assert arms.after_novel(PAPER_FINETUNE[0]) == pytest.approx(74.72, abs=0.01)
    assert arms.forgetting_slope(PAPER_FINETUNE[0], arms.seen_shares()) < -10  # the paper forgets less when seen
    shares = arms.seen_shares()
    # a matrix whose row t forgets 20 * (1 - share) points of every earlier task: slope -20 exactly
    m = np.ones((9, 9))
    for t in range(1, 9):
        m[t, :t] -= 0.2 * (1 - shares[t - 1])
    assert arms.row_forgetting(m) == pytest.approx(20 * (1 - shares))
    assert arms.forgetting_slope(m, shares) == pytest.approx(-20)
    assert arms.after_novel(m) == pytest.approx(80)


def test_hypotheses_are_paired_verdicts_over_instances():
    def res(after, slope):
        return {"instances": {k: {"after_novel": a, "forgetting_slope": s} for k, (a, s) in
                              enumerate(zip(after, slope), start=100)}}
    out = {"C-today": res([90, 92, 91], [-5, -6, -5.5]), "C-neutral": res([80, 83, 81], [1, -1, 2])}
    lines = arms.hypotheses(out)
    assert lines[0].startswith("H1 C-today keeps more of tasks 0-2 after task 3 than C-neutral: +9.67")
    assert lines[0].endswith("over 3 instances: held")
    assert lines[1].startswith("H3 C-today: forgetting falls with the seen share: slope -5.50") and lines[1].endswith("held")
    assert lines[2].endswith("inconclusive")  # C-neutral's slopes straddle 0
    assert len(lines) == 3  # no lite0 or mixture arm in the look: no line for them


def test_the_row_and_column_shares_find_where_a_pattern_lives():
    n = 9
    by_row, by_col = np.ones((n, n)), np.ones((n, n))
    for t in range(1, n):
        by_row[t, :t] -= 0.02 * t          # row t loses 2t points of everything: the batch sets the loss
        by_col[t, :t] -= 0.02 * np.arange(t)  # task j is lost by 2j points whatever came after it
    rows_only, cols_only = arms.row_column_shares(by_row), arms.row_column_shares(by_col)
    assert rows_only["rows"] == pytest.approx(1) and rows_only["columns"] < 0.5
    assert cols_only["columns"] == pytest.approx(1) and cols_only["rows"] < 0.5
    assert rows_only["both"] == pytest.approx(1) and arms.row_column_shares(np.ones((n, n)))["rows"] == 0
    paper = arms.row_column_shares(PAPER_FINETUNE[0])
    assert paper["rows"] > 0.7 > 0.1 > paper["columns"]  # the paper's forgetting is the batch's, not the task's
    assert {"rows_share", "columns_share"} <= arms.score_instance(PAPER_FINETUNE[0], PAPER_DYNAMICNN[0]).keys()


def test_settings_every_arm_gets_stay_below_the_arms_own():
    ft, v2 = arms.arm_configs("M-today", 100, base={"inc_epochs": 32, "inc_lr": 0.1})
    assert ft.inc_epochs == v2.inc_epochs == 32 and ft.inc_lr == 0.1
    assert arms.arm_configs("C-lite0", 100, base={"inc_lr": 0.1})[0].inc_lr == 3e-4  # the learner's own setting wins
    assert ft.key() != arms.arm_configs("M-today", 100)[0].key()


def test_a_search_history_is_read_for_where_its_trials_forgetting_lives(tmp_path, capsys):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from dynnn_lib.cli import main

    n, by_row = 9, np.ones((9, 9))
    for t in range(1, n):
        by_row[t, :t] -= 0.02 * t
    journal = tmp_path / "study.log"
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(journal))), study_name="s")
    for value, matrix in ((3.0, by_row), (5.0, PAPER_FINETUNE[0]), (None, by_row)):
        trial = study.ask()
        trial.set_user_attr("finetune", np.asarray(matrix).tolist())
        if value is not None:  # the third is left running: never read
            study.tell(trial, value)
    [r] = arms.searched_shares(str(journal))
    assert (r["trials"], r["rows_above_columns"], r["best_trial"], r["best_objective"]) == (2, 2, 0, 3.0)
    assert r["rows_max"] == pytest.approx(1) and r["best_rows"] == pytest.approx(1)
    assert r["columns_min"] == pytest.approx(arms.row_column_shares(PAPER_FINETUNE[0])["columns"])  # the lower of the two
    assert main(["arms", "--searched", str(journal)]) == 0
    assert f"| {journal} | s | 2 | " in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--searched nope.log: no such search history"):
        arms.searched_shares("nope.log")
