"""Reference notebooks for nbval: every notebook with tiny parameters, outputs kept only where they teach.

    python -m dynnn_lib.workbench.nbval_refs [--params params/tiny.yaml] [--out tests/nbval]   (also: make nbval-refs)

The notebooks themselves live as jupytext scripts without outputs.  nbval needs ``.ipynb`` files, and it
compares outputs only where a reference output exists.  This module writes ``tests/nbval/<name>.ipynb``:
the notebook with the tiny parameters injected (papermill's ``injected-parameters`` cell, ``runs_dir=None``
so runs go to ``$DYNNN_RUNS``), executed once, then stripped of every output except the cells tagged
``nbval-check-output`` (printed task lists, metric tables, explorer status).  ``pytest`` runs these
notebooks cell by cell (``--nbval-lax``, set in pyproject) and compares those cells after the substitutions
in ``tests/nbval_sanitize.cfg`` (accuracies, timings, paths, ids).  :func:`stale` tells when a notebook
changed without its reference; a test fails then and names this command.  The references run from their own folder,
as nbval runs them, with ``notebooks/`` on ``PYTHONPATH`` (:func:`importable_notebook_files`; the tests set it too) so
that a notebook imports the files beside it (07: ``novelty.py``) as it does from ``notebooks/``.
"""
from __future__ import annotations

import argparse
import copy
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

from dynnn_lib.workbench.batch import NOTEBOOK_DIR, plan

from dynnn_lib.workbench.notebook import load_notebook, run_notebook, temporary_env

ROOT = NOTEBOOK_DIR.parent
DEFAULT_PARAMS = ROOT / "params" / "tiny.yaml"
DEFAULT_OUT = ROOT / "tests" / "nbval"
CHECK_TAG = "nbval-check-output"
KEEP_OUTPUTS = ("stream", "execute_result", "display_data")


def importable_notebook_files() -> str:
    """PYTHONPATH with the notebooks' folder first: a notebook run from another folder imports the files beside it."""
    return os.pathsep.join([str(NOTEBOOK_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])


def reference_parameters(params_file: str | Path = DEFAULT_PARAMS) -> dict[Path, dict[str, Any]]:
    """Parameters per notebook for the references: the tiny set, runs going to $DYNNN_RUNS."""
    params = yaml.safe_load(Path(params_file).read_text()) or {}
    params["all"] = {**(params.get("all") or {}), "runs_dir": None}  # plan() gives it to notebooks that declare it
    return plan(params)


def parameterized(path: Path, parameters: Mapping[str, Any]):
    """The notebook with papermill's injected-parameters cell, not executed."""
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook(path)
    for cell in nb.cells:  # papermill adds empty tag lists before parameterizing; so do we
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    return parameterize_notebook(nb, dict(parameters), report_mode=False)


def code_sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def strip(nb):
    """Keep outputs (text only) of cells tagged nbval-check-output; clear everything else."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"  # stable ids: regenerating a reference only changes what really changed
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if CHECK_TAG in cell.metadata.get("tags", []):
            outs = []
            for o in cell.outputs:
                if o.output_type == "stream":
                    outs.append(o)
                elif o.output_type in KEEP_OUTPUTS and "text/plain" in o.get("data", {}):
                    o.data = {"text/plain": o.data["text/plain"]}
                    outs.append(o)
            cell.outputs = outs
        else:
            cell.outputs = []
            cell.execution_count = None
    return nb


def build(params_file: str | Path = DEFAULT_PARAMS, out_dir: str | Path = DEFAULT_OUT,
          only: list[str] | None = None) -> list[Path]:
    import nbformat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with (tempfile.TemporaryDirectory(prefix="dynnn-nbval-") as tmp, temporary_env("DYNNN_RUNS", str(Path(tmp) / "runs")),
          temporary_env("PYTHONPATH", importable_notebook_files())):
        for path, prm in reference_parameters(params_file).items():
            if only and path.stem not in only:
                continue
            executed = run_notebook(path, Path(tmp) / f"{path.stem}.ipynb", prm, cwd=out_dir)
            nb = strip(nbformat.read(executed, as_version=4))
            target = out_dir / f"{path.stem}.ipynb"
            nbformat.write(nb, target)
            written.append(target)
            print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return written


def stale(params_file: str | Path = DEFAULT_PARAMS, out_dir: str | Path = DEFAULT_OUT) -> list[str]:
    """Names of notebooks whose reference is missing or whose cells differ from the notebook source."""
    import nbformat

    out = []
    for path, prm in reference_parameters(params_file).items():
        ref_path = Path(out_dir) / f"{path.stem}.ipynb"
        if not ref_path.exists() or code_sources(nbformat.read(ref_path, as_version=4)) != code_sources(parameterized(path, prm)):
            out.append(path.stem)
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--params", default=str(DEFAULT_PARAMS), help="tiny parameter YAML (default params/tiny.yaml)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the reference notebooks (default tests/nbval)")
    ap.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="only these notebooks (e.g. 09_schedules)")


def command(args: argparse.Namespace) -> int:
    """dynnn nbval-refs: regenerate ``tests/nbval/*.ipynb`` after editing a notebook."""
    build(args.params, args.out, args.only)
    return 0
