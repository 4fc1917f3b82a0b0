"""Every table and page the workbench writes goes through here: Markdown and HTML tables, HTML pages, matrices in
the terminal and as PNG. One place decides how a number, an interval or a matrix looks."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import numpy as np


def pm(mean: float, std: float, scale: float = 100.0) -> str:
    """A mean ± spread in percent points: 93.41 ± 0.64."""
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def pm_cell(v: Sequence[float] | None) -> str:
    """A stored (mean, spread) pair already in points, "96.10 ± 0.42"; "—" where it was not measured (None)."""
    return "—" if v is None else f"{v[0]:.2f} ± {v[1]:.2f}"


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """rows[0] is the header; cells are str()-ed and '|' escaped."""
    cell = lambda r: "| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |"  # noqa: E731
    return "\n".join([cell(rows[0]), "|---" * len(rows[0]) + "|", *map(cell, rows[1:])])


def markdown_matrix(mean: np.ndarray, std: np.ndarray | None = None, lower_only: bool = False) -> str:
    """An accuracy matrix (row = after task i, column = test on task j) in percent, ± std when given."""
    n = len(mean)
    rows: list[list[object]] = [[""] + list(range(n))]
    for i in range(n):
        rows.append([f"T{i}"] + ["" if (lower_only and j > i) or not np.isfinite(mean[i, j])
                                 else f"{mean[i, j] * 100:.2f}" + ("" if std is None else f"±{std[i, j] * 100:.2f}")
                                 for j in range(n)])
    return markdown_table(rows)


def html_table(rows: Sequence[Sequence[object]], raw: bool = False) -> str:
    """rows[0] is the header; cells are escaped unless raw (cells already HTML)."""
    esc = (lambda x: str(x)) if raw else (lambda x: html.escape(str(x)))
    head = "".join(f"<th>{esc(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in r) + "</tr>" for r in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(title: str, body: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>td,th{{border:1px solid #ccc;padding:4px}} "
            "table{border-collapse:collapse} .pair{display:flex}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


def text_matrix(mean: np.ndarray, std: np.ndarray | None = None, color: bool = False) -> str:
    """The matrix as aligned text; with color, each cell's background shows its accuracy (ANSI 256 colours)."""
    n = len(mean)
    width = 13 if std is not None else 7
    lines = ["after\\test " + "".join(f"{j:>{width}}" for j in range(n))]
    for i in range(n):
        cells = []
        for j in range(n):
            v = mean[i, j]
            text = "" if not np.isfinite(v) else f"{v * 100:.2f}" + ("" if std is None else f"±{std[i, j] * 100:<5.2f}")
            text = f"{text:>{width}}"
            if color and np.isfinite(v):
                shade = 232 + int(round(np.clip(v, 0, 1) * 23))  # grey ramp: dark = low, light = high
                fg = 16 if shade > 244 else 255
                text = f"\x1b[48;5;{shade}m\x1b[38;5;{fg}m{text}\x1b[0m"
            cells.append(text)
        lines.append(f"T{i:<9} " + "".join(cells))
    return "\n".join(lines)


def matrix_png(mean: np.ndarray, path: str | Path, title: str = "", cell: int = 56) -> Path:
    """The matrix as a PNG heatmap (viridis-like ramp, values in the cells), drawn with Pillow."""
    from PIL import Image, ImageDraw

    n = len(mean)
    top, left = 28 + cell // 2, cell // 2 + 8
    img = Image.new("RGB", (left + n * cell + 8, top + n * cell + 8), "white")
    draw = ImageDraw.Draw(img)
    draw.text((8, 6), title, fill="black")
    ramp = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    for j in range(n):
        draw.text((left + j * cell + cell // 2 - 4, top - 16), str(j), fill="black")
    for i in range(n):
        draw.text((8, top + i * cell + cell // 2 - 6), f"T{i}", fill="black")
        for j in range(n):
            v = mean[i, j]
            box = (left + j * cell, top + i * cell, left + (j + 1) * cell - 1, top + (i + 1) * cell - 1)
            if not np.isfinite(v):
                draw.rectangle(box, fill=(240, 240, 240))
                continue
            x = float(np.clip(v, 0, 1)) * (len(ramp) - 1)
            a, b = ramp[int(x)], ramp[min(int(x) + 1, len(ramp) - 1)]
            colour = tuple(int(a[k] + (b[k] - a[k]) * (x - int(x))) for k in range(3))
            draw.rectangle(box, fill=colour)
            draw.text((box[0] + 8, box[1] + cell // 2 - 6), f"{v * 100:.1f}", fill="black" if v > 0.6 else "white")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
