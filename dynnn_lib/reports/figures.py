"""Plotly figures: accuracy-matrix heatmaps (mean ± std in the hover), per-task curves, metric tables.

Pure functions returning ``go.Figure``; the explorer wraps the same figure in a ``go.FigureWidget``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from dynnn_lib.evaluation.metrics import matrix_metrics, metric_label


def figure_label(name: str) -> str:
    """A metric's name on a figure: its registry label (the glossary's term), said in full where the metric gives a
    longer form (the square: "square (all N²)")."""
    return metric_label(name, full=True)


def heatmap(mean: np.ndarray, std: np.ndarray | None = None, task_names: Sequence[str] | None = None,
            title: str = "accuracy matrix", zmin: float = 0.0) -> go.Figure:
    """Rows: after training task i; columns: tested on task j; values in percent."""
    mean = np.asarray(mean, dtype=float) * 100
    std = np.zeros_like(mean) if std is None else np.asarray(std, dtype=float) * 100
    n = len(mean)
    names = list(task_names) if task_names else [f"task {j}" for j in range(n)]
    # a missing entry (not trained yet, or a run that stopped) is a gap: None, never NaN, which is not JSON
    # and breaks a FigureWidget's comm messages in JupyterLab
    ok = np.isfinite(mean)
    z = [[float(mean[i, j]) if ok[i, j] else None for j in range(n)] for i in range(n)]
    text = [[f"{mean[i, j]:.1f}" if ok[i, j] else "" for j in range(n)] for i in range(n)]
    hover = [[f"after task {i}<br>{names[j]}<br>" + (f"{mean[i, j]:.2f} ± {std[i, j]:.2f} %" if ok[i, j] else "no result")
              for j in range(n)] for i in range(n)]
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"T{j}" for j in range(n)], y=[f"after T{i}" for i in range(n)], text=text,
        texttemplate="%{text}", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        colorscale="Viridis", zmin=zmin, zmax=100, colorbar={"title": "%"}))
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, width=620, height=540,
                      margin={"l": 80, "r": 20, "t": 60, "b": 40})
    return fig


def error_heatmap(diff: np.ndarray, title: str = "ours − the paper", limit: float = 30.0) -> go.Figure:
    """A matrix of differences (fractions; shown in points) on a diverging scale centred on 0: blue above the
    reference, red below; missing entries are gaps."""
    d = np.asarray(diff, dtype=float) * 100
    n = len(d)
    ok = np.isfinite(d)
    z = [[float(d[i, j]) if ok[i, j] else None for j in range(n)] for i in range(n)]
    text = [[f"{d[i, j]:+.1f}" if ok[i, j] else "" for j in range(n)] for i in range(n)]
    fig = go.Figure(go.Heatmap(z=z, x=[f"T{j}" for j in range(n)], y=[f"after T{i}" for i in range(n)], text=text,
                               texttemplate="%{text}", colorscale="RdBu", zmid=0, zmin=-limit, zmax=limit,
                               colorbar={"title": "points"}))
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, width=560, height=500,
                      margin={"l": 80, "r": 20, "t": 60, "b": 40})
    return fig


def task_curves(mean: np.ndarray, std: np.ndarray | None = None, title: str = "accuracy per task over training") -> go.Figure:
    """One line per test task j: its accuracy after each training step i (forgetting shows as dips)."""
    mean = np.asarray(mean, dtype=float) * 100
    std = np.zeros_like(mean) if std is None else np.asarray(std, dtype=float) * 100
    n = len(mean)
    fig = go.Figure()
    for j in range(n):
        fig.add_trace(go.Scatter(x=list(range(n)), y=mean[:, j].tolist(), name=f"task {j}", mode="lines+markers",
                                 error_y={"type": "data", "array": std[:, j].tolist(), "visible": True, "thickness": 1}))
    fig.update_layout(title=title, xaxis_title="after training task", yaxis_title="accuracy (%)",
                      width=700, height=420, yaxis={"range": [0, 101]})
    return fig


def metrics_table(rows: dict[str, dict[str, tuple[float, float]]], paper_scores: dict[str, float] | None = None) -> go.Figure:
    """A table: one row per variant, columns = metrics as mean ± std (percent); the paper's number (its square
    performance) right after our square."""
    names = list(rows)
    header, cols = ["variant"], [names]
    for m in matrix_metrics():
        header.append(figure_label(m))
        cols.append([f"{rows[n][m][0] * 100:.2f} ± {rows[n][m][1] * 100:.2f}" for n in names])
        if m == "overall" and paper_scores:
            header.append("the paper (square)")
            cols.append([f"{paper_scores[n]:.2f}" if n in paper_scores else "" for n in names])
    fig = go.Figure(go.Table(header={"values": header, "align": "left"}, cells={"values": cols, "align": "left"}))
    fig.update_layout(height=80 + 30 * len(names), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def image_grid(images, nrow: int, title: str = "", labels: Sequence[str] | None = None) -> go.Figure:
    """A uint8 (N, 3, H, W) batch as one picture, `nrow` images per row."""
    import torch
    from torchvision.utils import make_grid

    grid = make_grid(torch.as_tensor(images), nrow=nrow, padding=2, pad_value=255).permute(1, 2, 0).numpy()
    fig = go.Figure(go.Image(z=grid))
    fig.update_layout(title=title, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                      xaxis={"visible": False}, yaxis={"visible": False},
                      width=min(1000, grid.shape[1] * 3 + 40), height=grid.shape[0] * 3 + 60)
    return fig


def training_log(logs: Sequence[dict], title: str = "training, task by task") -> go.Figure:
    """Loss per epoch split into its parts (ce, kd, reg...) over the whole stream, the learning rate on a second
    axis, a line at each task boundary labelled with what the task did (full, expand, kd, lwf...)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x, series, lrs, bounds = 0, {}, [], []
    for log in logs:
        bounds.append((x, f"T{log['task']} {log['action']}" + (f" ({log['note']})" if log.get("note") else "")))
        for e in log.get("epochs", []):
            x += 1
            for k, v in e.items():
                if k not in ("epoch", "lr", "time_s"):
                    series.setdefault(k, {})[x] = v
            lrs.append((x, e["lr"]))
    for k, pts in series.items():
        fig.add_trace(go.Scatter(x=list(pts), y=list(pts.values()), mode="lines+markers", name=k,
                                 line={"dash": "solid" if k == "loss" else "dot"}))
    if lrs:
        fig.add_trace(go.Scatter(x=[a for a, _ in lrs], y=[b for _, b in lrs], name="learning rate", mode="lines",
                                 line={"color": "grey", "shape": "hv"}), secondary_y=True)
    for pos, label in bounds:
        fig.add_vline(x=pos + 0.5, line={"color": "#bbb", "width": 1})
        fig.add_annotation(x=pos + 0.6, y=1.0, yref="paper", text=label, showarrow=False, xanchor="left",
                           textangle=-90, yanchor="top", font={"size": 10})
    fig.update_layout(title=title, height=380, xaxis_title="epoch (all tasks in order)", yaxis_title="loss per sample")
    fig.update_yaxes(title_text="learning rate", type="log", secondary_y=True)
    return fig


def task_samples(stream, per_row: int = 10, title: str = "") -> go.Figure:
    """One training image of each of the first `per_row` classes (columns) for every task (rows)."""
    import torch

    rows = []
    for task in stream.tasks:
        first = [int((task.train_y == c).nonzero()[0]) for c in range(min(per_row, stream.n_classes))]
        rows.append(task.train_x[first])
    return image_grid(torch.cat(rows), nrow=len(rows[0]),
                      title=title or f"tasks 0-{len(rows) - 1} (rows) x classes (columns)")


def factor_levels(n_classes: int, data_seed: int = 0, per_row: int = 10, image_size: int = 32,
                  stream: str | None = None) -> go.Figure:
    """The generated objects under each level of one factor, the other factors at their neutral level, rendered with
    the knobs of `stream` (default: the default stand-in)."""
    import torch

    from dynnn_lib.core.streams import DEFAULT_STREAM, load_spec
    from dynnn_lib.data import synthetic

    knobs = load_spec(stream or DEFAULT_STREAM).knobs()
    protos = synthetic.class_prototypes(n_classes, data_seed)
    labels = torch.arange(min(per_row, n_classes))
    grids = [synthetic.render({factor: level}, labels, protos, image_size, torch.Generator().manual_seed(1), knobs=knobs)
             for factor, levels in synthetic.LEVELS.items() for level in levels]
    return image_grid(torch.cat(grids), nrow=len(labels),
                      title=f"{stream or DEFAULT_STREAM}; rows: "
                            + " | ".join(f"{f}: {', '.join(l)}" for f, l in synthetic.LEVELS.items()))


def side_by_side(figs: Sequence[go.Figure], height: int = 430) -> go.Figure:
    """Several single-trace figures (heatmaps) in one row, each keeping its title; one colour bar, the last one's."""
    from plotly.subplots import make_subplots

    out = make_subplots(rows=1, cols=len(figs), subplot_titles=[f.layout.title.text or "" for f in figs],
                        horizontal_spacing=0.04)
    for i, f in enumerate(figs, 1):
        for trace in f.data:
            out.add_trace(trace.update(showscale=i == len(figs)), row=1, col=i)
        out.update_yaxes(autorange="reversed", showticklabels=i == 1, row=1, col=i)
    out.update_layout(height=height, width=330 * len(figs) + 100, margin={"l": 80, "r": 20, "t": 60, "b": 40})
    return out


def class_balance(stream) -> go.Figure:
    """Training images per class and task (grouped bars)."""
    import torch

    counts = [torch.bincount(t.train_y, minlength=stream.n_classes).tolist() for t in stream.tasks]
    return go.Figure([go.Bar(name=f"task {i}", x=stream.class_names, y=c) for i, c in enumerate(counts)]).update_layout(
        barmode="group", title="training images per class and task", height=350)


def schedule_front(points: Sequence[tuple[str, int, float, float]], front: Sequence[str],
                   marks: dict[str, str] | None = None, title: str = "square accuracy against heads") -> go.Figure:
    """Every expansion schedule as a dot: heads (x, jittered apart) against mean square accuracy (percent, ± std
    over seeds in the hover); the Pareto front as a line; `marks` (label -> legend name) highlighted."""
    marks = dict(marks or {})
    rng = np.random.default_rng(0)
    labels = [p[0] for p in points]
    x = np.array([p[1] for p in points], float)
    jitter = x + rng.uniform(-0.18, 0.18, len(x))
    y = np.array([100 * p[2] for p in points])
    sd = np.array([100 * p[3] for p in points])
    fig = go.Figure(go.Scatter(x=jitter, y=y, mode="markers", name="schedules", text=labels,
                               customdata=sd, marker={"size": 6, "color": "#9aa5b1", "opacity": 0.7},
                               hovertemplate="%{text}<br>square %{y:.2f} ± %{customdata:.2f}<extra></extra>"))
    by_label = {p[0]: p for p in points}
    on_front = [by_label[f] for f in front if f in by_label]
    fig.add_trace(go.Scatter(x=[p[1] for p in on_front], y=[100 * p[2] for p in on_front], mode="lines+markers",
                             name="Pareto front", text=[p[0] for p in on_front], line={"color": "#1f77b4"},
                             hovertemplate="%{text}<br>square %{y:.2f}<extra>front</extra>"))
    symbols = ("star", "diamond", "square", "triangle-up", "x")
    for i, (label, legend) in enumerate(marks.items()):
        if label in by_label:
            p = by_label[label]
            fig.add_trace(go.Scatter(x=[p[1]], y=[100 * p[2]], mode="markers", name=legend,
                                     marker={"size": 13, "symbol": symbols[i % len(symbols)]},
                                     hovertemplate=f"{legend}<br>square %{{y:.2f}}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="heads (memory)", yaxis_title="square accuracy (%)", height=460,
                      xaxis={"dtick": 1}, legend={"orientation": "h", "y": -0.2})
    return fig
