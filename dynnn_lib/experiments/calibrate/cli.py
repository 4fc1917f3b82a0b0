"""``dynnn calibrate``'s options and what each mode runs: the search (search.py), ``--evaluate`` (evaluate.py),
``--step``, ``--confirm`` and ``--on-evaluation`` (steps.py); each prints one summary line and writes its record.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from dynnn_lib.core import make_all, options
from dynnn_lib.core.config import apply_assignments, parse_value
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.store import atomic_text
from dynnn_lib.core.streams import CONFIRM_INSTANCES, FIT_INSTANCES
from dynnn_lib.evaluation.stats import Paired
from dynnn_lib.experiments.calibrate.evaluate import FIT_RECORD, evaluate, write_report
from dynnn_lib.experiments.calibrate.knobs import SPACE, candidate_values
from dynnn_lib.experiments.calibrate.search import Calibration, calibrate, predict_variants
from dynnn_lib.experiments.calibrate.steps import judge, judge_instances, step
from dynnn_lib.experiments.objective import calibration_error, flat_line


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """dynnn calibrate's options; the search's trials and seeds default to make calibrate's (params/make_all.yaml)."""
    s = make_all.read()  # the defaults: make calibrate's (params/make_all.yaml)
    ap.add_argument("--trials", type=int, default=s["cal_trials"],
                    help=f"trials to finish in all (a re-run continues; default {s['cal_trials']})")
    ap.add_argument("--minutes", type=float, help="stop starting trials after this many minutes")
    ap.add_argument("--seeds", type=int, default=s["cal_seeds"],
                    help=f"seeds per fit instance (default {s['cal_seeds']}: the instance is the unit)")
    ap.add_argument("--fit-instances", type=int, nargs="+", default=None, metavar="DATA_SEED",
                    help=f"the instances the objective reads (default {' '.join(map(str, FIT_INSTANCES))}: "
                         "core/streams.FIT_INSTANCES, never an evaluation instance; with --confirm "
                         f"{' '.join(map(str, CONFIRM_INSTANCES))})")
    ap.add_argument("--journal", default=None, help="the study's journal (default <out>/calibration-study.log; make "
                                                    "calibrate: params/calibration-study.log, committed, so a search "
                                                    "resumes on another machine)")
    ap.add_argument("--knobs", nargs="+", metavar="KNOB", help="fit only these knobs (default: all of calibrate.SPACE, knobs.py)")
    ap.add_argument("--fix", nargs="+", metavar="KNOB=VALUE",
                    help="hold these knobs at these values and search the others (trials 0-2 too: round1, the "
                         "hand-made point and the fit in use, each with them), e.g. --fix scenes_per_class=30")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="a RunConfig field every calibration run gets, e.g. --set inc_epochs=4 (YAML values)")
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--address", help="Ray cluster address (with --executor ray)")
    options.jobs(ap)
    options.runs_dir(ap)
    ap.add_argument("--out", default="reports", help="folder for calibration.md/.html/.json and the study (default reports/)")
    ap.add_argument("--predict-seeds", type=int, default=0, metavar="N",
                    help="then run the paper's five variants on today's and the fitted stream, N seeds each: their "
                         "square scores are predictions the fit never read (default 0: skip)")
    ap.add_argument("--instances", type=int, nargs="+", default=None,
                    help="with --evaluate: the evaluation instances (default: the fidelity side-by-side's, "
                         "core/streams.EVALUATION_INSTANCES); with --on-evaluation: those it judges on (default "
                         f"{make_all.as_make(s['instances'])})")
    ap.add_argument("--evaluate", action="store_true",
                    help="no search: re-measure the committed fit (core/round1_calibrated.yaml against round1) with "
                         "--seeds seeds and write the report with the search history of --record (make all)")
    ap.add_argument("--step", nargs="+", metavar="KNOB=VALUE",
                    help="no search: the committed fit with and without this change on the fit instances; adopted iff "
                         "their mean objective falls (writes <out>/calibration-step.json)")
    ap.add_argument("--confirm", metavar="REPORT",
                    help="no search: a search's best (after.values of its calibration.json) as a fit step on the "
                         "held-back fit-side instances (default core/streams.CONFIRM_INSTANCES): a candidate iff it "
                         "beats the fit in use there too (writes <out>/calibration-step.json)")
    ap.add_argument("--on-evaluation", action="store_true",
                    help="with --step or --confirm: the adoption rule's last stage instead, for a change that passed "
                         "the fit and held-back instances: it and the fit in use trained on evaluation instances "
                         "(--instances); adopted iff it lowers the median objective over the first three and over "
                         "all (writes <out>/calibration-judged.json)")
    ap.add_argument("--record", default=str(FIT_RECORD),
                    help="with --evaluate: the report of the search that chose the fit (default params/calibration.json)")
    options.no_progress(ap)


def command(args: argparse.Namespace) -> int:
    """dynnn calibrate: fit the knobs (or, with --evaluate, --step, --confirm, re-measure or judge), then write
    reports/calibration.md|html|json or the step's record."""
    if args.on_evaluation and not (args.step or args.confirm):
        raise ConfigError("--on-evaluation judges a change: give it with --step KNOB=VALUE or --confirm REPORT")
    if args.evaluate:
        return _evaluate(args)
    if args.step or args.confirm:
        change = _change(args)
        return _judge(args, change) if args.on_evaluation else _step(args, change)
    return _search(args)


def _base(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields every run gets (--set)."""
    return apply_assignments({}, args.set or [])


def _assignments(flag: str, items: Sequence[str] | None, example: str) -> dict[str, Any]:
    """KNOB=VALUE arguments (--step, --fix) as a mapping, the values read as YAML; one line for a malformed one."""
    bad = [a for a in items or [] if "=" not in a]
    if bad:
        raise ConfigError(f"{flag} {bad[0]!r}: write KNOB=VALUE, e.g. {flag} {example}")
    return {k: parse_value(v) for k, v in (a.split("=", 1) for a in items or [])}


def _evaluate(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.jobs < 1:
        raise ConfigError("--seeds and --jobs must be at least 1")
    data = evaluate(seeds=args.seeds, jobs=args.jobs, runs_dir=args.runs_dir, record=args.record,
                    instances=args.instances, base=_base(args), progress=not args.no_progress)
    return _written(data, write_report(data, args.out))


def _change(args: argparse.Namespace) -> dict[str, Any]:
    """The change a fit step judges: --step's, over a search's best where it differs from the fit (--confirm)."""
    change = _assignments("--step", args.step, "colour_candidates=16")
    if args.confirm:
        change = {**candidate_values(args.confirm), **change}
        if not change:
            raise ConfigError(f"--confirm {args.confirm}: the search's best is the fit in use; nothing to confirm")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return change


def _judge(args: argparse.Namespace, change: Mapping[str, Any]) -> int:
    """--on-evaluation: the last stage, on evaluation instances; writes <out>/calibration-judged.json."""
    out = judge(change, tuple(args.instances or judge_instances()), args.seeds, args.jobs, args.runs_dir,
                progress=not args.no_progress, base=_base(args))
    atomic_text(Path(args.out) / "calibration-judged.json", json.dumps(out, indent=1) + "\n")
    m = lambda side, part: out[side][f"median_{part}"]["rmse_calibration"]  # noqa: E731
    med = {side: f"{m(side, 'headline'):.2f} (first {len(out['headline'])}) / {m(side, 'all'):.2f} (all, "
                 f"{_split(out[side])})" for side in ("fitted", "with")}
    diff = Paired.from_dict(out["paired"]["rmse_calibration"])
    print(f"median objective over evaluation instances {out['evaluation_instances']}: the fit {med['fitted']}, "
          f"with {out['change']} {med['with']}; paired {diff.describe(scale=1)}: "
          + ("adopt it" if out["adopt"] else "keep the fit"))
    return 0


def _step(args: argparse.Namespace, change: Mapping[str, Any]) -> int:
    """--step, --confirm: on the fit instances (--confirm: the held-back ones); writes <out>/calibration-step.json."""
    instances = tuple(args.fit_instances or (CONFIRM_INSTANCES if args.confirm else FIT_INSTANCES))
    out = step(change, instances, args.seeds, args.jobs, args.runs_dir, progress=not args.no_progress,
               base=_base(args))
    atomic_text(Path(args.out) / "calibration-step.json", json.dumps(out, indent=1) + "\n")
    rmse = {side: f"{out[side]['rmse_calibration']:.2f}" + (f" ({_split(out[side])})" if "bias" in out[side] else "")
            for side in ("before", "fitted", "with")}
    print(f"objective (mean over fit instances {out['fit_instances']}): round1 {rmse['before']}, the fit "
          f"{rmse['fitted']}, with {out['change']} {rmse['with']}: " + ("adopt it" if out["adopt"] else "keep the fit"))
    return 0


def _search(args: argparse.Namespace) -> int:
    """The search itself, then (--predict-seeds) the five variants' predictions; writes the report."""
    fixed = _assignments("--fix", args.fix, "scenes_per_class=30")
    cal = Calibration(trials=args.trials, minutes=args.minutes, seeds=args.seeds, knobs=tuple(args.knobs or SPACE),
                      fixed=fixed, base=_base(args), executor=args.executor, jobs=args.jobs,
                      address=args.address, runs_dir=args.runs_dir, out=args.out, progress=not args.no_progress,
                      instances=tuple(args.fit_instances or FIT_INSTANCES), journal=args.journal)
    data = calibrate(cal)
    if args.predict_seeds:
        predict_variants(data, cal, args.predict_seeds)
    return _written(data, write_report(data, args.out))


def _split(side: Mapping[str, Any]) -> str:
    """"bias B, spread S" of a side scored on two or more instances (:func:`bias_and_spread`)."""
    return f"bias {side['bias']:.2f}, spread {side['spread']:.2f}"


def _written(data: Mapping[str, Any], paths: Sequence[Path]) -> int:
    b, a = data["before"], data["after"]
    print(f"calibration: {data['trials']} trials; RMSE on the 54 calibration entries {b['rmse_calibration']:.2f} -> "
          f"{a['rmse_calibration']:.2f} points, skill {b['skill']:.2f} -> {a['skill']:.2f} (the flat line "
          f"{calibration_error(*flat_line()):.2f}: skill 0; finetune {b['rmse_finetune_45']:.2f} -> "
          f"{a['rmse_finetune_45']:.2f}, "
          f"V2' diagonal {b['rmse_v2_diagonal_9']:.2f} -> {a['rmse_v2_diagonal_9']:.2f}); held out, V2' off-diagonal "
          f"{b['held_out_rmse_v2_offdiagonal_36']:.2f} -> {a['held_out_rmse_v2_offdiagonal_36']:.2f}")
    print("wrote " + ", ".join(map(str, paths)))
    return 0
