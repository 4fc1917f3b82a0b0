"""The committed fit re-measured (``make all``; ``dynnn calibrate --evaluate``) on evaluation instances the fit never
read, beside what the fit scored on its own (its record, params/calibration.json), and the report's document
(reports/calibration.json), which the pages in reports/ render.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.streams import EVALUATION_INSTANCES
from dynnn_lib.experiments.calibrate.knobs import before_values, fitted_values
from dynnn_lib.experiments.calibrate.scoring import INSTANCE_KEYS, RMSE_LABELS, bias_and_spread, score
from dynnn_lib.experiments.objective import READS, null_models, skill
from dynnn_lib.experiments.paper import PAPER_DYNAMICNN, PAPER_FINETUNE
from dynnn_lib.reports import pages


SCHEMA = pages.CALIBRATION_SCHEMA  # the report's document (reports/calibration.json); /3: the fit instances' scores


# from the fit's record (not re-trained), the five variants predicted on the default stand-in only, the paper's matrices;
# /4: the null models and skill (per instance, and the median over the evaluation instances)
FIT_RECORD = Path(__file__).resolve().parents[3] / "params" / "calibration.json"


def evaluation_plan(seeds: int = 1, base: Mapping[str, Any] | None = None, record: str | Path = FIT_RECORD,
                    instances: Sequence[int] | None = None):
    """What :func:`evaluate` reads: (the fit's record, the instances it read, the evaluation instances, the two
    sides, (side, instance, variant) -> one configuration per seed)."""
    from dynnn_lib.core.streams import DEFAULT_STREAM
    from dynnn_lib.experiments.fidelity import SIDE_BY_SIDE, plan
    from dynnn_lib.experiments.paper import PAPER_SCORES, V2_NAME

    record = Path(record)
    if not record.is_file():
        raise ConfigError(f"{record}: no calibration record (the report of the dynnn calibrate that chose "
                          "core/round1_calibrated.yaml); run dynnn calibrate and copy its calibration.json there")
    evaluation = tuple(instances or EVALUATION_INSTANCES[:SIDE_BY_SIDE])
    fit = json.loads(record.read_text())
    if "fit_instances" not in fit:
        raise ConfigError(f"{record} does not say which instances the fit read (fit_instances); add them")
    read = tuple(fit["fit_instances"])
    if set(evaluation) & set(read):
        raise ConfigError(f"instances {sorted(set(evaluation) & set(read))} were read by the fit ({record}); "
                          f"evaluate on others, e.g. {list(EVALUATION_INSTANCES)}")
    sides = {"before": ("round1", before_values()), "after": (DEFAULT_STREAM, fitted_values())}
    groups = {(side, k, name): cfgs for side, (stream, _) in sides.items()
              for (k, name), cfgs in plan(base, seeds, evaluation, "router", stream).items()
              if name in ("finetune", V2_NAME) or (side in PREDICTED and name in PAPER_SCORES)}
    return fit, read, evaluation, sides, groups


PREDICTED = ("after",)  # the sides whose five variants' squares are predicted: the default stand-in's (round1's


# side-by-side is the smaller one, finetune and V2': fidelity.SIDE_BY_SIDE_VARIANTS, to keep make all within the hour)


def evaluate(seeds: int = 1, jobs: int = 2, runs_dir: str | None = None, base: Mapping[str, Any] | None = None,
             progress: bool = True, record: str | Path = FIT_RECORD, instances: Sequence[int] | None = None
             ) -> dict[str, Any]:
    """The committed fit re-measured (``make all``; ``dynnn calibrate --evaluate``) on the stand-in before
    (``round1``) and after (``round1-calibrated``): finetune and V2' on evaluation instances the fit never read
    (`instances`, default the first ``fidelity.SIDE_BY_SIDE`` evaluation instances: the fidelity report's own runs,
    so make all trains them once), `seeds` seeds each, scored with the fixed objective per instance. The headline is
    the evaluation instances' median; the paper's five variants' squares on the default stand-in are predictions
    (mean ± sd over the evaluation instances). What the fit scored on the instances it read (its record's
    ``fit_instances``), the search's trials and history come from `record`, the report of the ``dynnn calibrate``
    that chose the values (core/round1_calibrated.yaml), on the machine and code it ran on."""
    from dynnn_lib.core.fingerprint import machine
    from dynnn_lib.engine.executors import run_many
    from dynnn_lib.evaluation.metrics import overall
    from dynnn_lib.evaluation.stats import mean_sd
    from dynnn_lib.experiments.paper import PAPER_SCORES, V2_NAME

    fit, read, evaluation, sides, groups = evaluation_plan(seeds, base, record, instances)
    results = iter(run_many([c for cs in groups.values() for c in cs], runs_dir, jobs=jobs, progress=progress))
    runs = {key: [next(results) for _ in cfgs] for key, cfgs in groups.items()}
    mean = lambda side, k, name: np.mean([r.matrix for r in runs[side, k, name]], 0)  # noqa: E731
    data = {"reads": list(READS), "study": fit.get("study"), "knobs": list(fitted_values()), "seeds": seeds,
            "machine": machine(), "base": dict(base or {}), "trials": fit["trials"], "history": fit["history"],
            "fit_instances": list(read), "evaluation_instances": list(evaluation), "null_models": null_models(),
            "evaluated": (f"evaluation instances {list(evaluation)} (never read by the fit; the headline is their "
                          f"median), {seeds} seed(s) each, the fidelity report's runs, beside what the fit scored on "
                          f"its instance(s) {list(read)} (its record: {fit.get('machine')})"),
            **_fit_history(fit)}
    for side, (stream, values) in sides.items():
        fts, v2s = ([mean(side, k, name) for k in evaluation] for name in ("finetune", V2_NAME))
        per = {k: score(f, v, values, seeds) for k, f, v in zip(evaluation, fts, v2s)}
        data[side] = {"trial": fit[side]["trial"], "stream": stream,
                      **score(np.mean(fts, 0), np.mean(v2s, 0), values, seeds),
                      **{key: float(np.median([per[k][key] for k in evaluation])) for key in INSTANCE_KEYS},
                      **bias_and_spread(fts, v2s),
                      "fit": {**{key: fit[side][key] for key in RMSE_LABELS},
                              "skill": skill(fit[side]["rmse_calibration"])},
                      "instances": {str(k): {key: per[k][key] for key in INSTANCE_KEYS} for k in per}}
    data["variants"] = {name: {"paper": PAPER_SCORES[name],
                               **{side: mean_sd([float(np.mean([overall(np.asarray(r.matrix)) * 100
                                                                for r in runs[side, k, name]])) for k in evaluation])
                                  if side in PREDICTED else None for side in sides}} for name in PAPER_SCORES}
    return data


def document(data: Mapping[str, Any]) -> dict[str, Any]:
    """The report's document (reports/calibration.json): `data` (:func:`calibrate`, :func:`evaluate`: with the null
    models the objective is judged beside), its schema and the paper's two matrices the pages compare against (their
    upper triangles null)."""
    return {"schema": SCHEMA, **data,
            "paper": {"finetune": pages.matrix_json(PAPER_FINETUNE[0]), "v2": pages.matrix_json(PAPER_DYNAMICNN[0])}}


def write_report(data: Mapping[str, Any], out: str | Path) -> list[Path]:
    """reports/calibration.json (:func:`document`), then calibration.md and .html (heatmaps of ours − the paper,
    before and after) rendered from it (reports/pages.py); returns the .md, .html and .json paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "calibration.md", out / "calibration.html"
    path, *_ = pages.publish(document(data), out / "calibration.json", {md: pages.calibration_md,
                                                                         page: pages.calibration_html})
    return [md, page, path]


def _fit_history(fit: Mapping[str, Any]) -> dict[str, Any]:
    """What the report says of the search that chose the fit and of the fit steps after it, from its record."""
    def rmse(side: Mapping[str, Any]) -> dict[str, float]:
        return {name: side[name]["rmse_calibration"] for name in ("fitted", "with")}

    search = {k: fit.get(k) for k in ("seeds", "trials", "wall_minutes", "machine", "jobs", "executor",
                                      "threads_per_run")}
    search |= {"rmse_before": fit["before"].get("search", fit["before"])["rmse_calibration"],
               "rmse_after": fit["after"].get("search", fit["after"])["rmse_calibration"]}
    steps = [{"change": st["change"], "fit_instances": st["fit_instances"], "adopt": st["adopt"], **rmse(st),
              **({"confirmed": {"fit_instances": st["confirmed"]["fit_instances"], **rmse(st["confirmed"])}}
                 if "confirmed" in st else {})}
             for st in fit.get("steps", [])]
    return {"search": search, "steps": steps}


def rmse_table(data: Mapping[str, Any]):
    """The notebook's RMSE table of :func:`evaluate`'s data (reports/pages.py calibration_rmse_table)."""
    return pages.calibration_rmse_table(data)


def matrices_figure(data: Mapping[str, Any], which: str = "finetune"):
    """The notebook's matrices of :func:`evaluate`'s data beside the paper's (reports/pages.py calibration_matrices)."""
    return pages.calibration_matrices(document(data), which)


def history_figure(record: str | Path = FIT_RECORD, history: Sequence[Mapping[str, Any]] | None = None):
    """The search: each trial's error and the best so far, from `history` (a document's), else from the record of
    the search that chose the fit in use (params/calibration.json)."""
    if history is None:
        history = json.loads(Path(record).read_text())["history"]
    return pages.search_history_figure(history)
