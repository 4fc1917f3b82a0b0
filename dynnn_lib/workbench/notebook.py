"""Notebook machinery: parameter checking, headless execution with papermill, and the result channel.

Notebooks live as jupytext percent scripts (``notebooks/*.py``); each has one cell tagged
``parameters`` holding independent literals.  :func:`run_notebook` rejects parameters the notebook does
not declare (papermill itself only warns), executes with ``store_widget_state=False`` and turns a failing
cell into one line naming the notebook and the cell.  :func:`record` is how a notebook hands its results
to the batch report: a JSON file next to the executed notebook.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.core.store import atomic_text

RECORD_ENV = "DYNNN_RECORD"


def load_notebook(path: str | Path):
    """A NotebookNode from a jupytext .py script or an .ipynb file.

    The jupytext pairing metadata is dropped: it describes the source in notebooks/, and a copy carrying
    it (an executed notebook in reports/, a test notebook) would not open in JupyterLab's jupytext-aware
    contents manager ("matches none of the export formats").
    """
    import jupytext

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"notebook {path} does not exist; notebooks are in notebooks/*.py")
    nb = jupytext.read(path)
    nb.metadata.pop("jupytext", None)
    return nb


def parameters_of(nb) -> dict[str, Any]:
    """Names and literal defaults of the cell tagged 'parameters'."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ConfigError(f"a notebook needs exactly one cell tagged 'parameters', found {len(cells)}")
    out: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and node.value is not None:
            out[target.id] = ast.literal_eval(node.value)
    return out


def check_parameters(nb, parameters: Mapping[str, Any], name: str = "notebook") -> None:
    known = parameters_of(nb)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ConfigError(f"{name} has no parameter {', '.join(unknown)}; its parameters are: {', '.join(known)}")


def run_notebook(path: str | Path, out_path: str | Path, parameters: Mapping[str, Any] | None = None,
                 timeout: int | None = None, cwd: str | Path | None = None) -> Path:
    """Execute a notebook headless with papermill; returns the executed notebook's path.

    The kernel runs in the notebook's folder (or `cwd`); the executed notebook is written next to a temporary name and
    renamed on success, so a half-run notebook never masquerades as a finished one (a failed one is kept as
    ``<name>.failed.ipynb`` for inspection).
    """
    import papermill as pm
    from traitlets.config import Config
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path, out_path = Path(path), Path(out_path)
    parameters = dict(parameters or {})
    nb = load_notebook(path)
    check_parameters(nb, parameters, path.name)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.stem + ".running.ipynb")
    record_path = out_path.with_suffix(".json")
    record_path.unlink(missing_ok=True)
    # transport_encryption="auto": no "Kernel is running over TCP without encryption" warning per kernel.
    # Passed as config (not as km=...) so that nbclient still owns and shuts down the kernel.
    config = Config({"KernelManager": {"transport_encryption": "auto"}})
    try:
        with temporary_env(RECORD_ENV, str(record_path.resolve())):
            pm.execute_notebook(nb, str(tmp), parameters=parameters, kernel_name="python3", progress_bar=False,
                                cwd=str(cwd or path.parent), store_widget_state=False, execution_timeout=timeout,
                                config=config)
    except pm.PapermillExecutionError as e:
        os.replace(tmp, out_path.with_name(out_path.stem + ".failed.ipynb"))
        raise DynnnError(f"{path.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue.splitlines()[0] if e.evalue else ''}); "
                         f"see {out_path.with_name(out_path.stem + '.failed.ipynb')}") from None
    except (CellTimeoutError, DeadKernelError) as e:
        raise DynnnError(f"{path.name} stopped: {type(e).__name__} ({str(e).splitlines()[0][:120]})") from None
    os.replace(tmp, out_path)
    return out_path


@contextlib.contextmanager
def temporary_env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable (kernels started meanwhile inherit it), then restore what was there."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def record(name: str, value: Any) -> None:
    """Hand a result to the batch report (no-op when the notebook runs interactively)."""
    target = os.environ.get(RECORD_ENV)
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = _jsonable(value)
    atomic_text(path, json.dumps(data, indent=1))


def read_records(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else {}
