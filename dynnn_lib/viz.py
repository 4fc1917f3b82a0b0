"""Plotly figures: accuracy-matrix heatmaps (mean ± std in the hover), per-task curves, metric tables.

Pure functions returning ``go.Figure``; the explorer wraps the same figure in a ``go.FigureWidget``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from .metrics import METRICS

METRIC_LABELS = {"average_accuracy": "average acc.", "bwt": "BWT", "fwt": "FWT", "overall": "square (all N²)",
                 "final": "final row", "diagonal": "diagonal"}


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


def metrics_table(rows: dict[str, dict[str, tuple[float, float]]], seed_scores: dict[str, float] | None = None) -> go.Figure:
    """A table: one row per variant, columns = metrics as mean ± std (percent)."""
    names = list(rows)
    header = ["variant"] + (["the paper"] if seed_scores else []) + [METRIC_LABELS[m] for m in METRICS]
    cols: list[list[str]] = [names]
    if seed_scores:
        cols.append([f"{seed_scores[n]:.2f}" if n in seed_scores else "" for n in names])
    for m in METRICS:
        cols.append([f"{rows[n][m][0] * 100:.2f} ± {rows[n][m][1] * 100:.2f}" for n in names])
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
