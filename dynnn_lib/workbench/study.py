"""What a method notebook does, in one object: run variants over seeds, draw them, record them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import plotly.graph_objects as go

import numpy as np

from dynnn_lib.reports import figures as viz
from dynnn_lib.experiments.paper import PAPER_SCORES
from dynnn_lib.evaluation.metrics import aggregate
from dynnn_lib.workbench.notebook import record
from dynnn_lib.reports.tables import markdown_table, pm
from dynnn_lib.experiments.reproduce import VariantSummary, reproduce, summary_table
from dynnn_lib.evaluation.routing import HEAD_RULES


METRIC_NAMES = {"overall": "square", "final": "final row", "average_accuracy": "average acc.", "bwt": "BWT"}


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

    def training(self, name: str, seed: int | None = None) -> go.Figure:
        """One run's training log (first seed unless given): loss parts per epoch, learning rate, task actions."""
        runs = self[name].results
        r = next((r for r in runs if seed is None or r.config.seed == seed), runs[0])
        return viz.training_log(r.logs, title=f"{name}, seed {r.config.seed}: loss per epoch and its parts")

    def paired(self, name: str, others: list[str], metrics: tuple[str, ...] = ("overall", "final")) -> str:
        """`name` minus each of `others` per seed (paired), mean with its 95 % interval and the verdict, as Markdown."""
        from dynnn_lib.evaluation.stats import paired

        a = {r.config.seed: r for r in self[name].results}
        rows = [["compared with"] + [f"{name} − it, {METRIC_NAMES.get(m, m)} [95 % CI]" for m in metrics]]
        for other in others:
            b = {r.config.seed: r for r in self[other].results}
            seeds = sorted(set(a) & set(b))
            cells = []
            for m in metrics:
                p = paired([a[s].metrics[m] for s in seeds], [b[s].metrics[m] for s in seeds])
                cells.append(f"{p.mean_diff * 100:+.2f} [{p.ci_low * 100:+.2f}, {p.ci_high * 100:+.2f}] {p.verdict}")
            rows.append([f"{other} ({len(seeds)} seed{'' if len(seeds) == 1 else 's'})"] + cells)
        return markdown_table(rows)

    def table(self) -> go.Figure:
        return viz.metrics_table({s.name: s.agg["metrics"] for s in self.summaries}, PAPER_SCORES)

    def summary(self) -> str:
        """The metrics of every variant as a Markdown table (mean ± std, percent), the paper's number beside."""
        return summary_table(self.summaries)

    def routing(self, name: str) -> go.Figure:
        """Routing accuracy R[i, j]: after task i, the share of task j's test images sent to the head responsible."""
        runs = [r.routing for r in self[name].results if r.routing is not None]
        agg = aggregate(runs)
        n = len(runs[0])
        mean = np.where(np.tril(np.ones((n, n))) > 0, agg["matrix_mean"], np.nan)
        return viz.heatmap(mean, agg["matrix_std"], self[name].results[0].task_names,
                           title=f"{name}: routing accuracy (image → responsible head)")

    def rules(self, name: str) -> str:
        """The same runs scored under every head rule (no retraining), as a Markdown table."""
        rows = [["head rule", "square", "final row", "average acc.", "BWT"]]
        for rule in HEAD_RULES:
            m = aggregate([r.matrices[rule] for r in self[name].results])["metrics"]
            rows.append([rule, pm(*m["overall"]), pm(*m["final"]), pm(*m["average_accuracy"]), pm(*m["bwt"])])
        return markdown_table(rows)

    def heads(self, name: str) -> str:
        """Per seed: where the network expanded, and the head responsible for each task."""
        return "\n".join(f"seed {r.config.seed}: expanded at {r.expanded_at}, head per task {r.task_heads}"
                         for r in self[name].results)

    def overwrite(self, name: str) -> str:
        """What distilling a task into an existing head cost that head's earlier tasks (oracle scoring): per KD
        step, the accuracy on the tasks the head was already responsible for, before and after (mean over seeds)."""
        steps: dict[tuple[int, int], list[tuple[float, float]]] = {}
        for r in self[name].results:
            m, owner = r.matrices["oracle"], {0: 0}
            for log in r.logs[1:]:
                t, h = log["task"], log["head"]
                mine = [j for j, hj in owner.items() if hj == h]
                if log["action"] == "kd" and mine:
                    steps.setdefault((t, h), []).append((float(m[t - 1, mine].mean()), float(m[t, mine].mean())))
                owner[t] = h
        rows = [["KD of task", "into head", "its earlier tasks before", "after", "change", "seeds"]]
        for (t, h), v in sorted(steps.items()):
            b, a = np.mean([x for x, _ in v]), np.mean([y for _, y in v])
            rows.append([t, h, f"{b * 100:.1f}", f"{a * 100:.1f}", f"{(a - b) * 100:+.1f}", len(v)])
        return markdown_table(rows)

    def record(self) -> dict[str, Any]:
        data = {s.name: s.payload() for s in self.summaries}
        record("variants", data)
        return data


def compare(variants: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any] | None = None, seeds: int = 3,
            jobs: int = 2, runs_dir: str | Path | None = None, progress: bool = True, head_rule: str = "router") -> Study:
    """Run every variant (RunConfig overrides on top of `base`) for seeds 0..seeds-1 and collect them, scored under
    `head_rule` (evaluation-only: changing it re-scores the same runs)."""
    base = {**(base or {}), "head_rule": head_rule}
    return Study(reproduce(base, seeds=range(seeds), jobs=jobs, runs_dir=runs_dir, progress=progress,
                           variants=variants))
