"""Run every notebook headless and build the report.

    python -m dynnn_lib.workbench.batch [params.yaml] [--out reports] [--jobs 2] [--only 01_finetune ...]

``params.yaml`` maps a notebook name (``01_finetune``) to its parameters; the key ``all`` applies to every
notebook that declares the parameter.  Every notebook runs on the reproduction's instance of the generated stream
(``reproduce.on_its_instance``: the first evaluation instance, which the calibration never read) unless its
parameters name one (``base``'s ``data.data_seed``; ``data_seed`` in 00_data), so that its runs are the
reproduction's and the fidelity report's.  Executed notebooks go to ``<out>/executed/``, their recorded
results beside them (``.json``), then ``<out>/index.html`` (offline: plotly.js embedded once) and
``<out>/summary.md`` are written.  A failure names the notebook and the cell.
"""
from __future__ import annotations

import argparse
import html
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Mapping

from dynnn_lib.experiments.paper import PAPER_SCORES
from dynnn_lib.evaluation.metrics import metric_label, with_extra_metrics
from dynnn_lib.reports.tables import html_page, markdown_table, pm
from dynnn_lib.core import options
from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.workbench.notebook import load_notebook, parameters_of, read_records, run_notebook
from dynnn_lib.core.store import atomic_text

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def plan(params: Mapping[str, Mapping[str, Any]], folder: Path = NOTEBOOK_DIR,
         only: list[str] | None = None) -> dict[Path, dict]:
    """Parameters per notebook: `all` (where declared) overlaid with the notebook's own section, on the
    reproduction's instance unless they name one (:func:`on_its_instance`)."""
    books = notebooks(folder)
    names = {p.stem for p in books}
    unknown = sorted(set(params) - names - {"all"})
    if unknown:
        raise ConfigError(f"parameter file names unknown notebook(s) {', '.join(unknown)}; notebooks: {', '.join(sorted(names))}")
    if only:
        missing = sorted(set(only) - names)
        if missing:
            raise ConfigError(f"--only {', '.join(missing)}: no such notebook; notebooks: {', '.join(sorted(names))}")
        books = [p for p in books if p.stem in only]
    out = {}
    for path in books:
        declared = parameters_of(load_notebook(path))
        common = {k: v for k, v in (params.get("all") or {}).items() if k in declared}
        out[path] = on_its_instance(declared, {**common, **(params.get(path.stem) or {})})
    return out


def on_its_instance(declared: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A notebook's parameters `values` on the reproduction's instance (reproduce.on_its_instance) where they name
    none: its `base` (the notebook's default unless given) gets that data.data_seed, and a `data_seed` parameter
    (00_data) that value. `declared`: the notebook's parameters and their defaults."""
    from dynnn_lib.experiments.reproduce import on_its_instance as reproduction_base

    out = dict(values)
    if "base" in declared:
        out["base"] = reproduction_base(values.get("base", declared["base"]))
    if "data_seed" in declared and "data_seed" not in values:
        out["data_seed"] = reproduction_base()["data"]["data_seed"]
    return out


def _execute(path: str, out: str, parameters: dict) -> str:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return str(run_notebook(path, out, parameters))


def run_all(params: Mapping[str, Mapping[str, Any]], out_dir: str | Path = "reports", jobs: int = 2,
            only: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> Path:
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    executed = out_dir / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    todo = plan(params, folder, only)
    failures = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_execute, str(p), str(executed / (p.stem + ".ipynb")), prm): p for p, prm in todo.items()}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="notebooks", unit="nb"):
            try:
                fut.result()
            except DynnnError as e:
                failures.append(str(e))
    if failures:
        raise DynnnError(" | ".join(failures))
    return build_report(out_dir)


def build_report(out_dir: str | Path) -> Path:
    """index.html and summary.md from the records of the executed notebooks."""
    import numpy as np
    import plotly.io as pio

    from dynnn_lib.reports import figures as viz

    out_dir = Path(out_dir)
    variants: dict[str, dict] = {}
    sources: dict[str, str] = {}
    shown: dict[str, str] = {}  # the same runs with the same numbers (several notebooks, several names) -> one entry
    for rec in sorted((out_dir / "executed").glob("*.json")):
        for name, data in read_records(rec).get("variants", {}).items():
            same = json.dumps([sorted(data.get("keys", [name])), data["metrics"]], sort_keys=True)
            if same in shown:
                first = shown[same]
                if name != first and name not in first.split(" = "):
                    variants[f"{first} = {name}"] = variants.pop(first)
                    sources[f"{first} = {name}"] = sources.pop(first)
                    shown = {k: (f"{first} = {name}" if v == first else v) for k, v in shown.items()}
                    first = f"{first} = {name}"
                if rec.stem not in sources[first].split(", "):
                    sources[first] += f", {rec.stem}"
                continue
            if name in variants:  # the same name for other runs (other parameters): keep both, by notebook
                name = f"{name} [{rec.stem}]"
            shown[same] = name
            variants[name] = data
            sources[name] = rec.stem
    if not variants:
        raise DynnnError(f"no recorded results under {out_dir / 'executed'}; run the notebooks first")
    metrics = {n: {k: tuple(v) for k, v in d["metrics"].items()} for n, d in variants.items()}
    papers = {n: PAPER_SCORES[part] for n in variants for part in n.split(" = ") if part in PAPER_SCORES}
    parts, first = [], True

    def add(fig) -> None:
        nonlocal first
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=first))
        first = False

    add(viz.metrics_table(metrics, papers))
    for name, d in variants.items():
        parts.append(f"<h2>{html.escape(name)} <small>({html.escape(sources[name])})</small></h2>")
        add(viz.heatmap(np.array(d["matrix_mean"]), np.array(d["matrix_std"]), d["task_names"],
                        title=f"{name}: {d['n_seeds']} seed(s), expanded at {d['expanded_at'][0]}"))
    page = html_page("dynnn: accuracy matrices", "<p>Rows: after training task i; columns: test on task j. "
            "Hover for mean ± std over seeds. The table puts the paper's 'square performance' beside ours.</p>"
            + ("<p>The paper's published 9×9 tables beside ours, and which of its claims held (paired 95 % intervals): "
               "<a href='fidelity.html'>fidelity.html</a>.</p>" if (out_dir / "fidelity.html").exists() else "")
            + "\n".join(parts))
    atomic_text(out_dir / "index.html", page)
    shown = with_extra_metrics("average_accuracy", "final", "bwt")
    square = metric_label("overall")
    rows = [["variant", "notebook", square, f"the paper ({square})", *map(metric_label, shown)]]
    for name, m in metrics.items():
        paper = f"{papers[name]:.2f}" if name in papers else ""
        rows.append([name, sources[name], pm(*m["overall"]), paper, *(pm(*m[k]) for k in shown)])
    lines = ["# dynnn report", "", markdown_table(rows), "", "Percent, mean ± std over seeds; 'square' = mean of the whole accuracy matrix. Heatmaps: index.html."]
    atomic_text(out_dir / "summary.md", "\n".join(lines) + "\n")
    return out_dir / "index.html"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("params", nargs="?", help="YAML: {all: {...}, 01_finetune: {...}}")
    ap.add_argument("--out", default="reports")
    options.jobs(ap, "notebooks executed at a time")
    ap.add_argument("--only", nargs="+", help="notebook names to run")


def command(args: argparse.Namespace) -> int:
    """dynnn batch: every notebook headless, then reports/index.html and summary.md."""
    import yaml

    params: dict = {}
    if args.params:
        p = Path(args.params)
        if not p.is_file():
            raise ConfigError(f"parameter file {p} does not exist")
        params = yaml.safe_load(p.read_text()) or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{p} must map notebook names to parameter mappings")
    report = run_all(params, args.out, args.jobs, args.only)
    print(f"wrote {report} and {Path(args.out) / 'summary.md'}")
    return 0
