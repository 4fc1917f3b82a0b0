"""The interactive expansion explorer: choose the method (DynamicNN, a baseline or a registered plugin), the
expansion tasks (or the automatic threshold rule), KD head, CE samples, LR trick, seeds and the test-time head
rule; the heatmap, the metrics and the routing accuracy update in place.

The controls are DynamicNN's own definitions, not retyped: the KD-head and CE choices are the method's
(``KD_HEADS``, ``CE_ON``), and any registered subclass of DynamicNN's frozen-trunk method (a notebook's, a plugin's)
gets the controls its ``Params`` has, on its own entry in the method menu.

Changing a control only reads the run cache (cheap, keeps the kernel responsive); the head rule is
evaluation-only, so switching it re-scores stored runs and never trains.  A configuration that was never
trained is trained by the **Train** button from its longest shared prefix (engine/cache.py): toggling the
expansion at task 5 retrains tasks 5.. only, since tasks 0..4 were trained alike before. The heatmap's rows appear
as tasks finish, the status says which seed and task is training, and the line below it what the last training
reused and trained; if training fails the status says why and the button is enabled again.  All logic is here so that it is tested without a browser; the notebook only
displays ``Explorer(...).ui``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from dynnn_lib.reports import figures as viz
from dynnn_lib.core.config import from_dict
from dynnn_lib.core.registry import head_rule_names
from dynnn_lib.core.errors import DynnnError
from dynnn_lib.methods import available_methods
from dynnn_lib.methods.dynamicnn.frozen_trunk import CE_ON, KD_HEADS, FrozenTrunkMethod
from dynnn_lib.evaluation.metrics import aggregate, matrix_metrics
from dynnn_lib.reports.tables import html_table, pm
from dynnn_lib.engine.cache import cached_result
from dynnn_lib.engine.executors import run_many
from dynnn_lib.engine.runner import run


DYNAMICNN_PACKAGE = FrozenTrunkMethod.__module__.rpartition(".")[0]  # methods/dynamicnn/


def _paper_variants() -> set[str]:
    """DynamicNN's own variants (expand, kd, combined: the methods its package registers), driven together by the
    controls as one "DynamicNN" entry."""
    return {n for n, c in available_methods().items() if c.__module__.startswith(DYNAMICNN_PACKAGE + ".")}


def _frozen_trunk(name: str) -> type | None:
    """The method's class when it is DynamicNN's kind (a subclass of its frozen-trunk method), else None."""
    cls = available_methods().get(name)
    return cls if isinstance(cls, type) and issubclass(cls, FrozenTrunkMethod) else None


def control_options() -> dict[str, list[str]]:
    """What the controls offer, read from the registries when the explorer opens (plugins imported before it
    included): the methods (DynamicNN's variants as one entry), the head rules, and the metrics of its summary."""
    return {"method": ["DynamicNN"] + sorted(set(available_methods()) - _paper_variants()),
            "head_rule": list(head_rule_names()), "metric": list(matrix_metrics())}


class Explorer:
    def __init__(self, base: Mapping[str, Any] | None = None, n_tasks: int = 9, max_seeds: int = 5,
                 runs_dir: str | Path | None = None, live: bool = True, jobs: int = 1):
        self.base = dict(base or {})
        self.runs_dir = runs_dir
        self.jobs = jobs
        self.n_tasks = n_tasks
        offered = control_options()
        self.method = widgets.Dropdown(options=offered["method"], value="DynamicNN", description="method",
                                       tooltip="DynamicNN uses the expansion controls below; other methods their defaults")
        self.expand = widgets.SelectMultiple(options=[(f"task {t}", t) for t in range(1, n_tasks)], rows=min(8, n_tasks - 1),
                                             description="expand at")
        self.threshold = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="auto <",
                                             tooltip="expand automatically below this accuracy (0 = off)")
        self.kd_head = widgets.ToggleButtons(options=list(KD_HEADS), description="KD head")
        self.ce_on = widgets.ToggleButtons(options=list(CE_ON), description="CE on")
        self.head_rule = widgets.Dropdown(options=offered["head_rule"], value="router", description="head rule")
        self.lr_trick = widgets.Checkbox(description="LR trick", value=False)
        self.seeds = widgets.IntSlider(value=1, min=1, max=max_seeds, description="seeds")
        self.train_button = widgets.Button(description="Train", icon="play", disabled=True)
        self.status = widgets.Label()
        self.activity = widgets.Label()  # what the last training reused from shared prefixes and trained
        self.summary = widgets.HTML()
        empty = np.full((n_tasks, n_tasks), np.nan)
        fig = viz.heatmap(empty, None, title="pick expansion tasks")
        self.fig = go.FigureWidget(fig) if live else fig
        for w in (self.method, self.expand, self.threshold, self.kd_head, self.ce_on, self.head_rule, self.lr_trick, self.seeds):
            w.observe(lambda _change: self.refresh(), names="value")
        self.train_button.on_click(lambda _b: self.train())
        controls = widgets.VBox([self.method, self.expand, self.threshold, self.kd_head, self.ce_on, self.head_rule, self.lr_trick,
                                 self.seeds, widgets.HBox([self.train_button, self.status]), self.activity])
        top = widgets.HBox([controls, self.summary])
        self.ui = widgets.VBox([top, self.fig]) if live else top  # a static Figure is shown beside, not inside
        self.live = live
        self.refresh()

    def show(self) -> None:
        """Display the controls and the heatmap (live widget, or a static figure in batch runs)."""
        from IPython.display import display

        display(self.ui)
        if not self.live:
            display(self.fig)

    # ------------------------------------------------------------------ state
    def values(self) -> dict[str, Any]:
        """RunConfig fields for the current selection (no expansion = the 'kd' method; a threshold > 0 replaces
        the fixed schedule by the automatic rule)."""
        tasks = sorted(self.expand.value)
        values = {**self.base, "lr_trick": self.lr_trick.value, "head_rule": self.head_rule.value}
        values["data"] = {**values.get("data", {}), "n_tasks": self.n_tasks}
        if self.method.value != "DynamicNN":  # a baseline or a plugin: its own defaults, the shared controls, and
            return {**values, "method": self.method.value, **self._subclass_params()}  # DynamicNN's for its kind
        dynamicnn = {"kd_head": self.kd_head.value, "ce_on": self.ce_on.value}  # DynamicNN's method_params
        if self.threshold.value > 0:
            values.update({"method": "combined", "method_params": {**dynamicnn, "expand_threshold": float(self.threshold.value)}})
        else:
            values.update({"method": "combined" if tasks else "kd", "method_params": {**dynamicnn, "expand_at": tasks}})
        return values

    def _controls(self) -> dict[str, Any]:
        """DynamicNN's parameters the selected method has, each with its control (none for other methods)."""
        if self.method.value == "DynamicNN":
            return {"expand_at": self.expand, "expand_threshold": self.threshold, "kd_head": self.kd_head,
                    "ce_on": self.ce_on}
        cls = _frozen_trunk(self.method.value)
        if cls is None:
            return {}
        import dataclasses

        names = {f.name for f in dataclasses.fields(cls.Params)}
        expanding = ("expand_at", "expand_threshold") if cls.expands else ()
        return {k: w for k, w in (("expand_at", self.expand), ("expand_threshold", self.threshold),
                                  ("kd_head", self.kd_head), ("ce_on", self.ce_on))
                if k in names and (k in expanding or not k.startswith("expand"))}

    def _subclass_params(self) -> dict[str, Any]:
        """method_params from the controls a subclass of DynamicNN has (a threshold > 0 replaces the schedule)."""
        controls = self._controls()
        if not controls:
            return {}
        params = {k: w.value for k, w in controls.items() if k in ("kd_head", "ce_on")}
        if "expand_threshold" in controls and self.threshold.value > 0:
            params["expand_threshold"] = float(self.threshold.value)
        elif "expand_at" in controls:
            params["expand_at"] = sorted(self.expand.value)
        return {"method_params": params}

    def configs(self):
        cfg = from_dict(self.values())
        return [cfg.replace(seed=s) for s in range(self.seeds.value)]

    def label(self) -> str:
        if self.method.value != "DynamicNN":
            own = self._subclass_params().get("method_params", {})
            where = own.get("expand_threshold") or own.get("expand_at")
            return f"method: {self.method.value}" + (f", expanded: {where}" if where else "")
        if self.threshold.value > 0:
            return f"expanded: auto < {self.threshold.value:.2f}"
        tasks = sorted(self.expand.value)
        return "expanded: " + (",".join(map(str, tasks)) if tasks else "none")

    # ------------------------------------------------------------------ actions
    def refresh(self) -> bool:
        """Show the selection from the cache; returns whether it was there."""
        active = list(self._controls().values())
        for w in (self.expand, self.threshold, self.kd_head, self.ce_on):
            w.disabled = not any(w is a for a in active)
        try:
            configs = self.configs()
        except DynnnError as e:
            self.train_button.disabled = True
            self.status.value = f"invalid selection: {e}"
            return False
        results = [cached_result(c, self.runs_dir) for c in configs]
        missing = sum(r is None for r in results)
        if missing:
            self.train_button.disabled = False
            self.status.value = f"{self.label()} | {missing} run(s) not trained yet: press Train"
            return False
        self._show(results)
        return True

    def train(self) -> bool:
        """Train what the selection lacks, each run from its longest shared prefix; with one job the seeds train
        here one after another and the heatmap shows each row as its task finishes (several jobs: in parallel,
        the heatmap at the end). On failure the status shows the error and Train is enabled again."""
        import time

        self.train_button.disabled = True
        self.status.value = f"{self.label()} | training..."
        start, self._done = time.perf_counter(), []
        try:
            configs = self.configs()
            if self.jobs > 1 and len(configs) > 1:
                results = run_many(configs, self.runs_dir, jobs=self.jobs, progress=True)
            else:
                results = [self._train_live(cfg, i, len(configs)) for i, cfg in enumerate(configs)]
        except Exception as e:  # noqa: BLE001 - the widget must recover whatever went wrong
            self.status.value = f"{self.label()} | training failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            self.train_button.disabled = False
            return False
        self._show(results)
        self.activity.value = f"last training ({time.perf_counter() - start:.1f} s): " + (
            "; ".join(self._done) if self._done else "all runs were cached")
        return True

    def _train_live(self, cfg, i: int, n_seeds: int):
        """One seed in this process, its rows drawn as tasks finish (reused rows at once)."""
        hit = cached_result(cfg, self.runs_dir)
        if hit is not None:
            return hit
        reused: list[int] = []
        trained: list[int] = []
        rule, n = cfg.head_rule, self.n_tasks

        def on_task(t, outputs, was_reused):
            (reused if was_reused else trained).append(t)
            matrix = outputs.score(rule)
            fresh = viz.heatmap(matrix, None, title=f"{self.label()} | seed {i + 1}/{n_seeds}, after task {t}")
            with _batch(self.fig):
                self.fig.data[0].z = fresh.data[0].z
                self.fig.data[0].text = fresh.data[0].text
                self.fig.layout.title.text = fresh.layout.title.text
            done = f"tasks 0–{reused[-1]} reused" if reused else "nothing reused"
            self.status.value = (f"{self.label()} | seed {i + 1}/{n_seeds}: {done}, task {t} of {n - 1} "
                                 f"{'reused' if was_reused else 'trained'}")

        res = run(cfg, self.runs_dir, on_task=on_task)
        self._done.append(f"seed {cfg.seed}: " + (f"reused tasks 0–{reused[-1]}, " if reused else "")
                          + (f"trained {trained[0]}–{trained[-1]}" if trained else "trained nothing"))
        return res

    def _show(self, results) -> None:
        agg = aggregate([r.matrix for r in results])
        mean, std = agg["matrix_mean"], agg["matrix_std"]
        fresh = viz.heatmap(mean, std, results[0].task_names, title=self._title(agg))
        trace = fresh.data[0]
        with _batch(self.fig):
            self.fig.data[0].z = trace.z
            self.fig.data[0].text = trace.text
            self.fig.data[0].customdata = trace.customdata
            self.fig.layout.title.text = fresh.layout.title.text
        rows = [["metric", "mean ± std"]] + [[viz.figure_label(k), pm(m, s)] for k, (m, s) in agg["metrics"].items()]
        routing = [float(np.nanmean(r.routing[-1])) for r in results if r.routing is not None]
        if routing:
            rows.append(["routing acc. (final row)", f"{np.mean(routing) * 100:.2f}"])
        heads = sorted({tuple(r.task_heads) for r in results})
        rows.append(["head per task", "; ".join(str(list(h)) for h in heads)])
        self.summary.value = html_table(rows)
        self.train_button.disabled = True
        self.status.value = self.label()

    def _title(self, agg) -> str:
        m, s = agg["metrics"]["overall"]
        return (f"{self.label()} | square {m * 100:.2f} ± {s * 100:.2f} ({agg['n_seeds']} seed(s), "
                f"head rule {self.head_rule.value})")


class _batch:
    """fig.batch_update() for a FigureWidget, a no-op context for a plain Figure."""

    def __init__(self, fig):
        self.ctx = fig.batch_update() if hasattr(fig, "batch_update") else None

    def __enter__(self):
        return self.ctx.__enter__() if self.ctx else None

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc) if self.ctx else False
