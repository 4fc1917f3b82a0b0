"""The stand-in's arms: how a batch is composed × what the trunk knew before task 0, looked at side by side.

An arm is a stream composition and a learner, every other setting the default stand-in's:

* composition: ``conjunction`` (``round1-calibrated``: every image of a task carries every factor the task names) or
  ``mixture`` (``round1-calibrated-mixture``: each image comes from one of the task's factor subdirectories, as the
  challenge's batches did; core/streams.py);
* learner: ``today`` (the trunk pretrained on generated objects under all 81 factor-level combinations), ``neutral``
  (the same pretraining at the neutral levels only: it never saw the benchmark's factor levels) or ``lite0``
  (EfficientNet-Lite0 from ImageNet, model/lite0.py).

:func:`look` trains finetune and V2' on each instance the caller names (fit instances for a look: never an evaluation
instance unless the caller is judging) and scores each with the fixed objective (experiments/objective.py): the RMSE on
54 entries, its skill over the flat line, finetune's 45 entries alone, the history effect (tasks 0-2 after task 8
minus after task 3; the paper: +23.3 points) and where the forgetting's pattern lives (rows or columns). The
hypotheses these looks answer were written before the runs (docs/journal/2026-12-07-standin-arms-hypotheses.md).
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.streams import FIT_INSTANCES
from dynnn_lib.experiments.objective import calibration_entries, calibration_error, skill
from dynnn_lib.experiments.paper import PAPER_FINETUNE, V2_OVERRIDES

COMPOSITIONS = {"conjunction": "round1-calibrated", "mixture": "round1-calibrated-mixture"}
# Lite0 as it learns (model/lite0.py, measured): ImageNet's statistics kept; a tenth of the small CNN's learning rates
LITE0 = {"backbone": "efficientnet_lite0", "pretrained": "imagenet", "norm": "frozen_bn", "base_lr": 3e-4,
         "inc_lr": 3e-4, "lr_trick_lr": 1e-4}
LEARNERS: dict[str, dict[str, Any]] = {"today": {"pretrained": True}, "neutral": {"pretrained": "neutral"},
                                       "lite0": LITE0}
ARMS = {f"{c[0].upper()}-{learner}": (c, learner) for c in COMPOSITIONS for learner in LEARNERS}
EARLY, AFTER_NOVEL, AFTER_SEEN = slice(0, 3), 3, 8  # tasks 0-2; the rows after task 3 (all new) and task 8 (all seen)


def history_effect(matrix: Any) -> float:
    """Mean accuracy on tasks 0-2 after task 8 minus after task 3, in points: how much a learner that met task 8's
    subdirectories before (in tasks 3 and 5) keeps of the early tasks, beside a row whose batch was all new."""
    r = np.asarray(matrix, dtype=float)
    return float(100 * (r[AFTER_SEEN, EARLY].mean() - r[AFTER_NOVEL, EARLY].mean()))


PAPER_HISTORY_EFFECT = history_effect(PAPER_FINETUNE[0])  # the paper's mean finetune matrix, fractions


def after_novel(matrix: Any) -> float:
    """H1's measure: mean accuracy on tasks 0-2 after task 3 (whose subdirectories no earlier batch named), points."""
    return float(100 * np.asarray(matrix, dtype=float)[AFTER_NOVEL, EARLY].mean())


def row_forgetting(matrix: Any) -> np.ndarray:
    """Rows 1..n-1: the mean drop of each earlier task from its own diagonal entry, in points."""
    r = np.asarray(matrix, dtype=float)
    return np.array([100 * np.mean([r[j, j] - r[t, j] for j in range(t)]) for t in range(1, len(r))])


def seen_shares(stream: str = COMPOSITIONS["mixture"]) -> np.ndarray:
    """Rows 1..n-1: the fraction of the row's batch's factor subdirectories that an earlier batch named (read from
    the stream's spec; the paper's round 1: 0 for rows 1-3, a half for rows 4-6, two thirds for row 7, 1 for row 8)."""
    from dynnn_lib.core.streams import load_spec

    named = [set(task.subdirectories()) for task in load_spec(stream).tasks]
    return np.array([len(named[t] & set().union(*named[:t])) / len(named[t]) for t in range(1, len(named))])


def forgetting_slope(matrix: Any, shares: Any) -> float:
    """H3's measure: the least-squares slope of a row's forgetting on its seen share (points per unit share;
    negative: rows whose subdirectories were seen before forget less)."""
    return float(np.polyfit(np.asarray(shares, float), row_forgetting(matrix), 1)[0])


def row_column_shares(matrix: Any) -> dict[str, float]:
    """Where the forgetting's pattern lives: the share of the variance of the off-diagonal lower entries (36 on 9
    tasks) that an additive model explains with one number per row (which task was just trained), per column (which
    task is tested) and both. Rows dominate when a batch's training sets how much of everything is lost; columns when
    some tasks are fragile whatever comes after them (the paper: rows 0.73, columns 0.08)."""
    r = 100 * np.asarray(matrix, dtype=float)
    n = len(r)
    rows, cols = np.tril_indices(n, -1)
    y = r[rows, cols]
    one_hot = lambda labels, levels: (labels[:, None] == np.asarray(levels)[None, :]).astype(float)  # noqa: E731
    designs = {"rows": one_hot(rows, range(1, n)), "columns": one_hot(cols, range(n - 1)),
               "both": np.hstack([one_hot(rows, range(1, n)), one_hot(cols, range(n - 1))])}
    total = float(np.sum((y - y.mean()) ** 2))
    out = {}
    for name, x in designs.items():
        fit = x @ np.linalg.lstsq(x, y, rcond=None)[0]
        out[name] = 1 - float(np.sum((y - fit) ** 2)) / total if total else 0.0
    return out


def searched_shares(journal: str) -> list[dict[str, Any]]:
    """Where the forgetting lives in every finished trial of a calibration search (its committed history: each complete
    trial keeps its mean finetune matrix over the fit instances), study by study: how many trials, the rows' and
    columns' shares (median and extreme), how many trials have more rows than columns, and the best trial's. Reads
    the history only; trains nothing."""
    from dynnn_lib.experiments.calibrate.search import import_optuna

    optuna = import_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not os.path.isfile(journal):
        raise ConfigError(f"--searched {journal}: no such search history (a calibration study's .log)")
    storage = JournalStorage(JournalFileBackend(journal))
    out = []
    for s in storage.get_all_studies():
        done = [t for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
                if t.state.name == "COMPLETE" and "finetune" in t.user_attrs]
        if not done:
            continue
        shares = [row_column_shares(t.user_attrs["finetune"]) for t in done]
        rows, cols = np.array([x["rows"] for x in shares]), np.array([x["columns"] for x in shares])
        best = min(range(len(done)), key=lambda i: done[i].value)
        out.append({"study": s.study_name, "trials": len(done), "rows_median": float(np.median(rows)),
                    "rows_max": float(rows.max()), "columns_median": float(np.median(cols)),
                    "columns_min": float(cols.min()), "rows_above_columns": int(np.sum(rows > cols)),
                    "best_trial": done[best].number, "best_objective": float(done[best].value),
                    "best_rows": float(rows[best]), "best_columns": float(cols[best])})
    return out


def arm_configs(arm: str, instance: int, seed: int = 0, base: Mapping[str, Any] | None = None) -> tuple[RunConfig, RunConfig]:
    """(finetune, V2') of one arm on one generated instance."""
    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}; choose from: {', '.join(ARMS)}")
    composition, learner = ARMS[arm]
    values = {**dict(base or {}), **LEARNERS[learner], "seed": seed,
              "data": {**dict((base or {}).get("data", {})), "stream": COMPOSITIONS[composition],
                       "data_seed": instance}}
    return from_dict({**values, "method": "finetune"}), from_dict({**values, **V2_OVERRIDES})


def score_instance(finetune: Any, v2: Any, shares: Any | None = None) -> dict[str, float]:
    """One instance of one arm: the objective, its skill, finetune's 45 entries, the history effect, and (finetune)
    the hypotheses' measures: tasks 0-2 after task 3 (H1) and the forgetting's slope on the seen share (H3)."""
    ft, dyn = np.asarray(finetune, float), np.asarray(v2, float)
    entries = calibration_entries(ft, dyn)
    shares = seen_shares() if shares is None else shares
    return {"objective": calibration_error(ft, dyn), "skill": skill(calibration_error(ft, dyn)),
            "finetune_45": float(np.sqrt(np.mean(entries[:45] ** 2))), "history_effect": history_effect(ft),
            "after_novel": after_novel(ft), "forgetting_slope": forgetting_slope(ft, shares),
            **{f"{k}_share": v for k, v in row_column_shares(ft).items() if k != "both"}}


def look(arms: Sequence[str], instances: Sequence[int] = FIT_INSTANCES, jobs: int = 2, runs_dir: str | None = None,
         progress: bool = True, base: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each arm trained (finetune and V2', seed 0) on each instance and scored (:func:`summarise`). Every run is
    cached: a look repeated costs nothing."""
    from dynnn_lib.engine.executors import run_many

    pairs = {(arm, k): arm_configs(arm, k, base=base) for arm in arms for k in instances}
    results = iter(run_many([c for pair in pairs.values() for c in pair], runs_dir, jobs=jobs, progress=progress))
    return summarise({key: (next(results).matrix, next(results).matrix) for key in pairs})


def summarise(matrices: Mapping[tuple[str, int], tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    """{(arm, instance): (finetune, V2')} -> {arm: {"instances": {k: scores}, "mean": {measure: mean over the
    instances}, "bias", "spread"}}: bias and spread of the objective over the arm's instances (calibrate's
    :func:`bias_and_spread`; None with one instance)."""
    from dynnn_lib.experiments.calibrate.scoring import bias_and_spread

    shares = {c: seen_shares(s) for c, s in COMPOSITIONS.items()}
    by_arm: dict[str, dict[int, tuple[Any, Any]]] = {}
    for (arm, k), pair in matrices.items():
        by_arm.setdefault(arm, {})[k] = pair
    out: dict[str, dict[str, Any]] = {}
    for arm, pairs in by_arm.items():
        scored = {k: score_instance(ft, v2, shares[ARMS[arm][0]]) for k, (ft, v2) in pairs.items()}
        split = bias_and_spread(*zip(*pairs.values())) if len(pairs) > 1 else {"bias": None, "spread": None}
        out[arm] = {"instances": scored, **split,
                    "mean": {m: float(np.mean([v[m] for v in scored.values()])) for m in next(iter(scored.values()))}}
    return out


def table(out: Mapping[str, Mapping[str, Any]]) -> str:
    """The look as a markdown table: per arm, each measure's mean over the instances and the per-instance values,
    then the objective's bias and spread over the instances."""
    measures = ("objective", "skill", "finetune_45", "history_effect", "after_novel", "forgetting_slope", "rows_share",
                "columns_share")
    rows = ["| arm | " + " | ".join(measures) + " | bias | spread |", "|---|" + "---|" * (len(measures) + 2)]
    for arm, res in out.items():
        cells = [f"{res['mean'][m]:.2f} ({' / '.join(f'{v[m]:.2f}' for v in res['instances'].values())})"
                 for m in measures]
        cells += ["-" if res.get(m) is None else f"{res[m]:.2f}" for m in ("bias", "spread")]
        rows.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def hypotheses(out: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """H1 and H3 of the journal's entry as paired verdicts over the instances (experiments' rule: a 95 % interval):
    H1, per composition and fresh trunk, "today's trunk keeps more of tasks 0-2 after task 3" (today - other > 0);
    H3, per arm, "the forgetting falls with the seen share" (slope < 0). Arms not in the look are left out."""
    from dynnn_lib.evaluation.stats import paired

    lines = []
    for composition in COMPOSITIONS:
        today = f"{composition[0].upper()}-today"
        for other in (f"{composition[0].upper()}-{learner}" for learner in LEARNERS if learner != "today"):
            if today in out and other in out:
                ks = sorted(out[today]["instances"].keys() & out[other]["instances"].keys())
                p = paired([out[today]["instances"][k]["after_novel"] for k in ks],
                           [out[other]["instances"][k]["after_novel"] for k in ks])
                lines.append(f"H1 {today} keeps more of tasks 0-2 after task 3 than {other}: {p.mean_diff:+.2f} "
                             f"[{p.ci_low:+.2f}, {p.ci_high:+.2f}] points over {p.n} instances: {p.verdict}")
    for arm, res in out.items():
        slopes = [v["forgetting_slope"] for v in res["instances"].values()]
        p = paired([0.0] * len(slopes), slopes)
        lines.append(f"H3 {arm}: forgetting falls with the seen share: slope {-p.mean_diff:+.2f} "
                     f"[{-p.ci_high:+.2f}, {-p.ci_low:+.2f}] points per unit share over {p.n} instances: {p.verdict}")
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dynnn_lib.core import options

    p.add_argument("--arms", nargs="+", default=list(ARMS), metavar="ARM", help=f"arms to look at ({', '.join(ARMS)})")
    p.add_argument("--instances", type=int, nargs="+", default=list(FIT_INSTANCES),
                   help="generated instances (default the fit instances; an evaluation instance only to judge)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a RunConfig field every arm's runs get, e.g. --set inc_epochs=32 (YAML values; an arm's "
                        "learner and composition win over it)")
    p.add_argument("--searched", nargs="+", metavar="JOURNAL",
                   help="train nothing: where the forgetting lives (rows or columns) in each finished trial of these "
                        "searches' committed histories, e.g. params/calibration-study.log")
    options.jobs(p)
    options.runs_dir(p)
    options.no_progress(p)


def command(args: argparse.Namespace) -> int:
    """Train and score the stand-in's arms (composition x learner) on generated instances; print a table."""
    from dynnn_lib.core.config import apply_assignments

    if args.searched:
        found = [(journal, r) for journal in args.searched for r in searched_shares(journal)]
        print("| search history | study | finished trials | rows' share: median, max | columns' share: median, min "
              "| trials with rows > columns | best trial: objective, rows, columns |\n|---|---|---|---|---|---|---|")
        for journal, r in found:
            print(f"| {journal} | {r['study']} | {r['trials']} | {r['rows_median']:.2f}, {r['rows_max']:.2f} | "
                  f"{r['columns_median']:.2f}, {r['columns_min']:.2f} | {r['rows_above_columns']} | "
                  f"{r['best_trial']}: {r['best_objective']:.2f}, {r['best_rows']:.2f}, {r['best_columns']:.2f} |")
        shares = row_column_shares(PAPER_FINETUNE[0])
        print(f"the paper: rows {shares['rows']:.2f}, columns {shares['columns']:.2f}")
        return 0

    base = apply_assignments({}, args.set or [])
    out = look(args.arms, args.instances, jobs=args.jobs, runs_dir=args.runs_dir, progress=not args.no_progress,
               base=base)
    print(table(out))
    print(f"the paper's history effect: {PAPER_HISTORY_EFFECT:+.1f} points; tasks 0-2 after task 3: "
          f"{after_novel(PAPER_FINETUNE[0]):.1f}; forgetting slope on the seen share: "
          f"{forgetting_slope(PAPER_FINETUNE[0], seen_shares()):+.2f}")
    print("\n".join(hypotheses(out)))
    return 0
