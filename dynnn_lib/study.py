"""What a method notebook does, in one object: run variants over seeds, draw them, record them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import plotly.graph_objects as go

from . import viz
from .config import SEED_SCORES
from .notebook import record
from .reproduce import VariantSummary, reproduce, summary_table


@dataclass
class Study:
    summaries: list[VariantSummary]

    def __getitem__(self, name: str) -> VariantSummary:
        for s in self.summaries:
            if s.name == name:
                return s
        raise KeyError(f"no variant {name!r}; variants: {', '.join(s.name for s in self.summaries)}")

    def heatmap(self, name: str) -> go.Figure:
        s = self[name]
        agg = s.agg
        m, sd = agg["metrics"]["overall"]
        return viz.heatmap(agg["matrix_mean"], agg["matrix_std"], s.results[0].task_names,
                           title=f"{name}: square {m * 100:.2f} ± {sd * 100:.2f} ({agg['n_seeds']} seeds)")

    def curves(self, name: str) -> go.Figure:
        agg = self[name].agg
        return viz.task_curves(agg["matrix_mean"], agg["matrix_std"], title=f"{name}: accuracy per task over training")

    def table(self) -> go.Figure:
        return viz.metrics_table({s.name: s.agg["metrics"] for s in self.summaries}, SEED_SCORES)

    def summary(self) -> str:
        """The metrics of every variant as a Markdown table (mean ± std, percent), the seed's number beside."""
        return summary_table(self.summaries)

    def record(self) -> dict[str, Any]:
        data = {s.name: s.payload() for s in self.summaries}
        record("variants", data)
        return data


def compare(variants: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any] | None = None, seeds: int = 3,
            jobs: int = 2, runs_dir: str | Path | None = None, progress: bool = True) -> Study:
    """Run every variant (RunConfig overrides on top of `base`) for seeds 0..seeds-1 and collect them."""
    return Study(reproduce(base, seeds=range(seeds), jobs=jobs, runs_dir=runs_dir, progress=progress,
                           variants=variants))
