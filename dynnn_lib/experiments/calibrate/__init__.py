"""``dynnn calibrate``: fit the generated stream's knobs to the paper's own numbers, then report what they predict.

The objective was fixed in code before any fit (experiments/objective.py, with its null models and skill) and reads
exactly 54 published numbers (:data:`READS`):

* the paper's finetune matrix, its 45 entries on and below the diagonal (``paper.PAPER_FINETUNE``), against our
  mean finetune matrix on the generated round-1 stream;
* the diagonal of the paper's DynamicNN V2' matrix (9 entries: what heads on a frozen trunk can still learn), against
  our mean V2' (``paper.V2_OVERRIDES``) matrix's diagonal.

:func:`calibration_error` is their RMSE in percent points. Nothing else enters the fit; everything else is a
prediction, reported whatever it says (:func:`held_out`): the 36 off-diagonal entries of V2' and, with
``--predict``, the five variants' square scores.

The objective is measured on the generated instances reserved for fitting (``core/streams.FIT_INSTANCES``, one seed
each: the instance is the unit), as the mean over them of each instance's RMSE; no report of the stand-in's
fidelity reads those instances, and everything reported as its fidelity is measured on evaluation instances the fit
never read (:func:`evaluate`).

The search: Optuna's TPE sampler over :data:`SPACE` (the generator's knobs, core/streams.Knobs, and task 0's
photometric augmentation), trial 0 being the stream before the calibration (``round1``, the "before"), trial 1
the hand-made point :data:`HAND_POINT` and trial 2 the fit in use (``core/round1_calibrated.yaml``); ``--fix
KNOB=VALUE`` holds knobs at a value in every trial, those three included, and searches the others. ``jobs``
trials train side by side on the executors (one process pool for the whole search). Pruning is exact, never a
guess: the finetune matrices' rows arrive one task at a time on every fit instance and a sum of squared errors can
only grow, so after each task the trial's objective is at least
:func:`partial_bound` of what it has so far; a trial whose bound already exceeds the best complete trial's objective
stops there (before its later tasks and its V2' runs). The study is an append-only journal (``make calibrate``:
``params/calibration-study.log``, committed: 1.2 MB after the five searches so far): a search resumes later and on
another machine, a killed one re-queues the trials it was running (their finished tasks are cached).

Cost model: a trial trains finetune (9 tasks) and V2' (8 tasks after the shared task 0) on each fit instance, 17
task trainings per instance, 51 for three; at 4.2 s (family-26 EPYC) to 10.6 s (family-25) per task training
(workbench/plan.py's references, 2 jobs) that is 1.8-4.5 min a trial before pruning.

The package, one concern a module: ``knobs`` (the search space, the named points, a trial's runs), ``scoring`` (the
exact bounds and a side's score on top of experiments/objective.py), ``search`` (the Optuna study, its journal and
the pruned loop), ``evaluate`` (the committed fit re-measured: ``--evaluate``, make all; the report's document, which
reports/pages.py renders), ``steps`` (``--step``, ``--confirm``, ``--on-evaluation``) and ``cli`` (the options).
The names below are its public surface (tests, the notebook 08_calibration, the catalogue).
"""
from __future__ import annotations

from dynnn_lib.experiments.calibrate.cli import add_arguments, command
from dynnn_lib.experiments.calibrate.evaluate import (FIT_RECORD, PREDICTED, SCHEMA, document, evaluate,
                                                      evaluation_plan, history_figure, matrices_figure, rmse_table,
                                                      write_report)
from dynnn_lib.experiments.calibrate.knobs import (HAND_POINT, SPACE, TRAINING_KNOBS, before_values, candidate_values,
                                                   default_values, fitted_values, knob_config, knob_table,
                                                   stream_tasks, trial_configs)
from dynnn_lib.experiments.calibrate.scoring import (INSTANCE_KEYS, RMSE_LABELS, bias_and_spread, lower_bound,
                                                     partial_bound, score, squared_errors)
from dynnn_lib.experiments.calibrate.search import REVALIDATE_ATOL, Calibration, calibrate, predict_variants, summary
from dynnn_lib.experiments.calibrate.steps import judge, judge_instances, step
from dynnn_lib.experiments.objective import READS, calibration_entries, calibration_error, held_out, null_models, skill
from dynnn_lib.experiments.paper import PAPER_DYNAMICNN, PAPER_FINETUNE

__all__ = [
    "Calibration", "FIT_RECORD", "HAND_POINT", "INSTANCE_KEYS", "PAPER_DYNAMICNN", "PAPER_FINETUNE", "PREDICTED",
    "READS", "REVALIDATE_ATOL", "RMSE_LABELS", "SCHEMA", "SPACE", "TRAINING_KNOBS", "add_arguments", "before_values",
    "bias_and_spread", "calibrate", "calibration_entries", "calibration_error", "candidate_values", "command",
    "default_values", "document", "evaluate", "evaluation_plan", "fitted_values", "held_out", "history_figure",
    "judge", "judge_instances", "knob_config", "knob_table", "lower_bound", "matrices_figure", "null_models",
    "partial_bound", "predict_variants", "rmse_table", "score", "skill", "squared_errors", "step", "stream_tasks",
    "summary", "trial_configs", "write_report",
]
