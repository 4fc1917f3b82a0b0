"""The paper's headline experiment: five variants x several seeds, summarised like the poster, under each
test-time head rule (the same trained runs re-scored; the head rule never retrains)."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core import options
from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.evaluation.routing import HEAD_RULES
from dynnn_lib.core.store import atomic_text
from dynnn_lib.experiments.paper import PAPER_SCORES, VARIANTS
from dynnn_lib.evaluation.metrics import aggregate
from dynnn_lib.engine.executors import run_many
from dynnn_lib.engine.results import RunResult
from dynnn_lib.reports import blocks
from dynnn_lib.reports.tables import pm  # noqa: F401 (re-exported)
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
                "task_names": self.results[0].task_names, "expanded_at": self.expansions,
                "routing": self.routing, "seconds": self.seconds, "paper": PAPER_SCORES.get(self.name)}

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
    calibration never read, core/streams.py), so its seed-0 runs are the fidelity report's; a base on another data
    source than the generated stream is returned as it is."""
    from dynnn_lib.core.streams import EVALUATION_INSTANCES

    values = dict(base or {})
    data = dict(values.get("data") or {})
    if data.get("source", "synthetic") == "synthetic":
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
    """Markdown table in the poster's terms (reports/blocks.variant_table of the summaries' document entries)."""
    return blocks.variant_table({s.name: s.payload() for s in summaries})


def ordering_report(summaries: Sequence[VariantSummary]) -> str:
    """The paper's ordering on the means: a description, not a claim (reports/blocks.ordering)."""
    return blocks.ordering({s.name: s.payload() for s in summaries})


SCHEMA = "dynnn.reproduction/2"


def document(summaries: Sequence[VariantSummary], rules: Sequence[str]) -> dict[str, Any]:
    """The reproduction's document: every variant's summary under each head rule (the same runs, re-scored)."""
    from dynnn_lib.core.fingerprint import machine

    first = summaries[0].results[0].config
    return {"schema": SCHEMA, "machine": machine(), "instance": first.data.data_seed,
            "seeds": sorted({r.config.seed for s in summaries for r in s.results}),
            "rules": {rule: {s.name: s.with_rule(rule).payload() for s in summaries} for rule in rules}}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", default="reports", help="folder for reproduction.md/.json (default reports/)")
    ap.add_argument("--head-rules", nargs="+", choices=list(HEAD_RULES), default=["router", "oracle", "mean_prob"],
                    help="one table per test-time head rule (default: router oracle mean_prob)")
    options.run_options(ap)


def command(args: argparse.Namespace) -> int:
    """dynnn reproduce: the paper's five variants on the reproduction's instance, a table per head rule
    (reports/reproduction.md|json)."""
    options.check_counts(args)
    summaries = reproduce(on_its_instance(options.base_config(args)), seeds=range(args.seeds), jobs=args.jobs,
                          runs_dir=args.runs_dir, progress=not args.no_progress)
    doc = document(summaries, args.head_rules)
    text = blocks.reproduction_md(doc)
    print(text)
    out = Path(args.out)
    atomic_text(out / "reproduction.md", text + "\n")
    atomic_text(out / "reproduction.json", json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {out / 'reproduction.md'} and {out / 'reproduction.json'}")
    return 0
