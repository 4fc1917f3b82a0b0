"""What a method notebook does, in one object: run variants over seeds, draw them, record them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

import numpy as np

from dynnn_lib.reports import figures as viz
from dynnn_lib.experiments.paper import PAPER_SCORES
from dynnn_lib.core.registry import head_rule_names
from dynnn_lib.evaluation.metrics import aggregate, metric_label, with_extra_metrics
from dynnn_lib.workbench.notebook import record
from dynnn_lib.reports.tables import markdown_table, pm
from dynnn_lib.experiments.reproduce import VariantSummary, reproduce, summary_table


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
        rows = [["compared with"] + [f"{name} − it, {metric_label(m)} [95 % CI]" for m in metrics]]
        for other in others:
            b = {r.config.seed: r for r in self[other].results}
            seeds = sorted(set(a) & set(b))
            cells = []
            for m in metrics:
                p = paired([a[s].metrics[m] for s in seeds], [b[s].metrics[m] for s in seeds])
                cells.append(p.describe())
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
        shown = with_extra_metrics("overall", "final", "average_accuracy", "bwt")
        rows = [["head rule", *(metric_label(m) for m in shown)]]
        for rule in head_rule_names():
            m = aggregate([r.with_rule(rule).matrix for r in self[name].results])["metrics"]
            rows.append([rule, *(pm(*m[k]) for k in shown)])
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

    def forgetting(self, name: str, k: int = 3) -> str:
        """Which tasks cost the earlier tasks most in these runs: the `k` largest mean drops (accuracy on the tasks
        before task i lost while training task i), per seed too, beside the paper's finetune table when the stream
        has its length. Said from the runs, so the words follow the numbers."""
        return forgetting_statement(name, [r.matrix for r in self[name].results], k)

    def expansions(self, name: str) -> str:
        """Where a variant expanded in these runs, counted over seeds (a rule that never expanded says so)."""
        return expansion_statement(name, {r.config.seed: r.expanded_at for r in self[name].results})

    def difference(self, name: str, other: str, metric: str = "overall") -> str:
        """One sentence: `name` minus `other` on `metric`, paired by seed, with its 95 % interval and the verdict."""
        from dynnn_lib.evaluation.stats import paired

        a = {r.config.seed: r.metrics[metric] for r in self[name].results}
        b = {r.config.seed: r.metrics[metric] for r in self[other].results}
        seeds = sorted(set(a) & set(b))
        p = paired([a[s] for s in seeds], [b[s] for s in seeds])
        return difference_statement(name, other, metric_label(metric), p)

    def record(self) -> dict[str, Any]:
        data = {s.name: s.payload() for s in self.summaries}
        record("variants", data)
        return data


def compare(variants: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any] | None = None, seeds: int = 3,
            jobs: int = 2, runs_dir: str | Path | None = None, progress: bool = True, head_rule: str = "router") -> Study:
    """Run every variant (RunConfig overrides on top of `base`) for seeds 0..seeds-1 and collect them, scored under
    `head_rule` (evaluation-only: changing it re-scores the same runs). The runs are on the reproduction's instance
    (reproduce.on_its_instance: one the calibration never read) unless `base` names a ``data.data_seed``, so a
    notebook opened in JupyterLab reads the runs ``make all`` trained."""
    from dynnn_lib.experiments.reproduce import on_its_instance

    base = {**on_its_instance(base), "head_rule": head_rule}
    return Study(reproduce(base, seeds=range(seeds), jobs=jobs, runs_dir=runs_dir, progress=progress,
                           variants=variants))


VERDICT_WORDS = {"held": "held: the interval lies above 0", "not held": "not held: the interval lies below 0",
                 "inconclusive": "inconclusive: the interval contains 0"}


def forgetting_statement(name: str, matrices: Sequence[np.ndarray], k: int = 3) -> str:
    """The `k` tasks after which the mean accuracy on the earlier tasks dropped most (from the mean matrix), the same
    per seed, and the paper's finetune table's when the stream has its length."""
    from dynnn_lib.experiments.fidelity import drops, worst_tasks
    from dynnn_lib.experiments.paper import PAPER_FINETUNE

    mean = np.mean([np.asarray(m, dtype=float) for m in matrices], 0)
    n = len(mean)
    if n < 2:
        return f"{name}: a single task, nothing to forget."
    k = max(1, min(k, n - 2))  # never every task: naming all of them would single none out
    d = drops(mean)
    worst = worst_tasks(mean, k)
    per_seed = [worst_tasks(m, k) for m in matrices]
    if max(d[t] for t in worst) <= 0:
        head = (f"{name}, {len(matrices)} seed(s): no task lowered the mean accuracy on the tasks before it (every "
                "drop is 0 or a gain).")
    else:
        head = (f"{name}, {len(matrices)} seed(s): the {'largest mean drop' if k == 1 else f'{k} largest mean drops'} "
                f"(points of accuracy on the earlier tasks lost while training a task) "
                f"come{'s' if k == 1 else ''} after task{'s' if k > 1 else ''} "
                f"{', '.join(str(t) for t in worst)} ({', '.join(f'task {t}: {d[t] * 100:+.1f}' for t in worst)}).")
    lines = [head, f"Per seed: {'; '.join(', '.join(map(str, w)) for w in per_seed)}.",
             "Every task's drop: " + ", ".join(f"{t}: {d[t] * 100:+.1f}" for t in range(1, n)) + "."]
    paper = PAPER_FINETUNE[0]
    if n == len(paper):
        pw = worst_tasks(paper, k)
        common = sorted(set(pw) & set(worst))
        lines.append(f"The paper's finetune table: after tasks {', '.join(map(str, pw))}; in common with these runs: "
                     f"{', '.join(map(str, common)) if common else 'none'}.")
    else:
        lines.append(f"The paper's table has {len(paper)} tasks and this stream {n}: they are not compared.")
    return "\n".join(lines)


def expansion_statement(name: str, expanded: Mapping[int, Sequence[int]]) -> str:
    """Where `name` expanded, task by task over the seeds (seed -> tasks that got a new head)."""
    n = len(expanded)
    counts: dict[int, int] = {}
    for tasks in expanded.values():
        for t in tasks:
            counts[t] = counts.get(t, 0) + 1
    if not counts:
        return f"{name}: no new head in any of the {n} seed(s); every task after task 0 trained an existing head."
    where = "; ".join(f"task {t} in {c} of {n} seed(s)" for t, c in sorted(counts.items()))
    return f"{name} expanded at {where}."


def difference_statement(name: str, other: str, metric: str, p) -> str:
    """`name` − `other` on `metric` (paired): the mean difference in points, its 95 % interval and the verdict."""
    return (f"{name} − {other}, {metric}, paired over {p.n} seed(s): {p.format()} points (the difference and its "
            f"95 % interval); {VERDICT_WORDS[p.verdict]}.")
