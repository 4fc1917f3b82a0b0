"""The paper's headline experiment: five variants x several seeds, summarised like the poster, under each
test-time head rule (the same trained runs re-scored; the head rule never retrains)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.experiments.paper import PAPER_SCORES, VARIANTS
from dynnn_lib.evaluation.metrics import aggregate
from dynnn_lib.engine.executors import run_many
from dynnn_lib.engine.results import RunResult
from dynnn_lib.reports.tables import markdown_table, pm  # noqa: F401 (pm: re-exported)
from dynnn_lib.evaluation.stats import mean_sd


@dataclass
class VariantSummary:
    name: str
    results: list[RunResult]

    @cached_property
    def agg(self) -> dict:
        return aggregate([r.matrix for r in self.results])

    def payload(self) -> dict:
        """JSON-ready summary: mean/std matrices, metrics, expansions and the run keys behind them."""
        agg = self.agg
        return {"keys": [r.config.key() for r in self.results], "metrics": agg["metrics"], "n_seeds": agg["n_seeds"],
                "matrix_mean": agg["matrix_mean"].tolist(), "matrix_std": agg["matrix_std"].tolist(),
                "task_names": self.results[0].task_names, "expanded_at": self.expansions}

    @property
    def expansions(self) -> list[list[int]]:
        return [r.expanded_at for r in self.results]

    @property
    def seconds(self) -> float:
        return float(np.mean([r.timings.get("total_s", 0.0) for r in self.results]))

    @property
    def routing(self) -> tuple[float, float] | None:
        """Routing accuracy after the whole stream (mean over tasks), mean ± sample std over seeds."""
        vals = [float(np.nanmean(r.routing[-1])) for r in self.results if r.routing is not None]
        return mean_sd(vals) if vals else None

    def with_rule(self, rule: str) -> "VariantSummary":
        """The same runs scored under another head rule."""
        return VariantSummary(self.name, [r.with_rule(rule) for r in self.results])


def on_its_instance(base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The reproduction's base: `base` on the first evaluation instance unless it names one (an instance the
    calibration never read, core/streams.py), so its seed-0 runs are the fidelity report's."""
    from dynnn_lib.core.streams import EVALUATION_INSTANCES

    values = dict(base or {})
    data = dict(values.get("data") or {})
    data.setdefault("data_seed", EVALUATION_INSTANCES[0])
    return {**values, "data": data}


def variant_configs(base: Mapping[str, Any] | None = None, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                    variants: Mapping[str, Mapping[str, Any]] = VARIANTS) -> dict[str, list[RunConfig]]:
    base = dict(base or {})
    return {name: [from_dict({**base, **ov, "seed": s}) for s in seeds] for name, ov in variants.items()}


def reproduce(base: Mapping[str, Any] | None = None, seeds: Sequence[int] = (0, 1, 2, 3, 4), jobs: int = 1,
              runs_dir: str | Path | None = None, progress: bool = True,
              variants: Mapping[str, Mapping[str, Any]] = VARIANTS) -> list[VariantSummary]:
    groups = variant_configs(base, seeds, variants)
    flat = [cfg for cfgs in groups.values() for cfg in cfgs]
    results = run_many(flat, runs_dir, jobs=jobs, progress=progress)
    out, i = [], 0
    for name, cfgs in groups.items():
        out.append(VariantSummary(name, results[i:i + len(cfgs)]))
        i += len(cfgs)
    return out


def summary_table(summaries: Sequence[VariantSummary]) -> str:
    """Markdown table in the poster's terms; 'square' is the mean of the full N x N matrix."""
    rows = [["variant", "the paper", "square (ours)", "average acc.", "final row", "BWT", "routing acc.", "expanded at",
             "s/run"]]
    for s in summaries:
        m = s.agg["metrics"]
        seed = PAPER_SCORES.get(s.name)
        exp = sorted({tuple(e) for e in s.expansions})
        exp_s = "; ".join(str(list(e)) for e in exp) if any(exp) else "-"
        routing = s.routing
        rows.append([s.name, "" if seed is None else f"{seed:.2f}", pm(*m["overall"]), pm(*m["average_accuracy"]),
                     pm(*m["final"]), pm(*m["bwt"]), "" if routing is None else pm(*routing), exp_s, f"{s.seconds:.1f}"])
    n = summaries[0].agg["n_seeds"] if summaries else 0
    lines = [markdown_table(rows), ""]
    lines.append(f"Mean ± sample std over {n} seed(s), percent. 'square' = mean of the full accuracy matrix (the paper's "
                 "'square performance'); BWT < 0 means forgetting; routing acc. = test images sent to the head "
                 "responsible for their task (final row). s/run: training + evaluation of one run (task 0 counted "
                 "even where it was shared).")
    return "\n".join(lines)


def ordering_report(summaries: Sequence[VariantSummary]) -> str:
    """Did the paper's ordering (finetune < no expand < expand@1 < no expand + LR trick) hold on the means?
    (A descriptive check; the fidelity report judges each step with a paired 95 % interval.)"""
    scores = {s.name: s.agg["metrics"]["overall"][0] for s in summaries}
    chain = [n for n in ("finetune", "DynamicNN (no expand)", "DynamicNN (expand@1)",
                         "DynamicNN (no expand) + LR trick") if n in scores]
    pairs = [(a, b, scores[a] < scores[b]) for a, b in zip(chain, chain[1:])]
    held = all(ok for _, _, ok in pairs)
    lines = [f"The paper's ordering {'held' if held else 'did not hold'} on the means (see reports/fidelity.md for "
             "paired intervals):"]
    lines += [f"- {a} ({scores[a] * 100:.2f}) {'<' if ok else '>='} {b} ({scores[b] * 100:.2f})" for a, b, ok in pairs]
    return "\n".join(lines)
