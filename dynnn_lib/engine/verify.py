"""Audit a runs folder: retrain cached runs alone and compare them with what the cache holds (``dynnn verify``).

A cached result must equal its configuration trained alone in a fresh folder. ``verify`` retrains the runs you
name (or a random sample) in a temporary runs folder with prefix sharing off (``DYNNN_SHARE=off``; with
``--fresh-caches`` the generated streams and pretrained weights are made again too), and compares:

* run trained on this CPU (its ``provenance.cpu``): **bit for bit**: every head rule's matrix, the stored test-set
  outputs (logits, features), the heads each task used, the actions and the final weights;
* run trained on another CPU, or one that did not record it: **within the measured cross-CPU tolerance**: matrices
  within :data:`ACROSS_CPUS_MATRIX_ATOL`, the same actions and heads (float kernels differ between CPU
  generations; a different expansion decision is a real difference).

A run whose key no longer matches its configuration was trained by other code, data or thread count: it is never
served (the key differs) and is reported as ``stale`` rather than retrained under code it was not trained with.
"""
from __future__ import annotations

import contextlib
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.core.fingerprint import cpu

# Across CPU generations float kernels differ. Measured on the reference cases at 1 torch thread: Intel Xeon (family 6,
# model 106) against AMD EPYC (family 25): matrices at most one test image per task apart (1/32), actions and heads
# identical, final losses up to 2.9e-3 relative (tests/data/reference_runs, 2026-11-29); AMD EPYC family 26 against
# family 25: losses 3e-5 to 3e-3 relative, matrices within 1/32. The loss tolerance is about 3x the largest seen.
ACROSS_CPUS_MATRIX_ATOL = 1 / 32 + 1e-9
ACROSS_CPUS_LOSS_RTOL = 1e-2

IDENTICAL, WITHIN, MISMATCH, STALE, UNREADABLE = "identical", "within tolerance", "MISMATCH", "stale", "unreadable"


@dataclass
class Check:
    """One cached run against the same configuration retrained alone."""

    key: str
    method: str = ""
    seed: int | None = None
    trained_on: str = ""          # the CPU the cached run was trained on ("unknown" when it did not record it)
    status: str = ""
    detail: str = ""
    max_diff: float | None = None  # largest |difference| between the two matrices (every head rule)

    @property
    def failed(self) -> bool:
        return self.status == MISMATCH


def complete_runs(runs_dir: Path) -> list[Path]:
    """The folders of `runs_dir` that hold a finished result."""
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if not p.name.startswith("_") and (p / "result.json").is_file())


def choose(runs_dir: Path, keys: Sequence[str], sample: int | None, seed: int = 0) -> list[Path]:
    """The run folders to verify: the `keys` given (a unique beginning of a key is enough), or `sample` of the
    finished runs drawn at random (seeded: the same sample again)."""
    runs = complete_runs(runs_dir)
    if keys:
        out = []
        for k in keys:
            hits = [p for p in runs if p.name.startswith(k)]
            if len(hits) != 1:
                raise ConfigError(f"run key {k!r} matches {len(hits)} finished runs in {runs_dir}; "
                                  f"give a longer part of the key (see dynnn runs)")
            out.append(hits[0])
        return out
    if sample is None:
        raise ConfigError("name the runs to verify (KEY ...) or draw some with --sample N")
    if sample < 1:
        raise ConfigError(f"--sample {sample}: draw at least 1 run")
    if not runs:
        raise ConfigError(f"{runs_dir} holds no finished run to verify")
    return sorted(random.Random(seed).sample(runs, min(sample, len(runs))))


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _outputs_equal(a, b) -> bool:
    from dynnn_lib.engine.cache import load_outputs

    oa, ob = load_outputs(a).state(), load_outputs(b).state()
    for name in ("logits", "features"):
        if len(oa[name]) != len(ob[name]) or not all(torch.equal(x, y) for x, y in zip(oa[name], ob[name])):
            return False
    return oa["rows"] == ob["rows"]


def _weights_equal(a, b) -> bool:
    wa, wb = (torch.load(r.path.parent / "model.pt", weights_only=False)["model"] for r in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def compare(cached, fresh, bitwise: bool) -> tuple[str, str, float]:
    """(status, what differs, the largest matrix difference) of a cached result against its retrained twin."""
    diffs = [float(np.nanmax(np.abs(cached.matrices[r] - fresh.matrices[r]))) if rule_ok else np.inf
             for r in cached.matrices
             for rule_ok in [r in fresh.matrices and cached.matrices[r].shape == fresh.matrices[r].shape]]
    worst = max(diffs, default=0.0)
    actions = [log["action"] for log in cached.logs], [log["action"] for log in fresh.logs]
    if actions[0] != actions[1]:
        return MISMATCH, f"actions {actions[0]} cached, {actions[1]} trained alone", worst
    if list(cached.task_heads) != list(fresh.task_heads):
        return MISMATCH, f"heads {cached.task_heads} cached, {fresh.task_heads} trained alone", worst
    if bitwise:
        same = all(np.array_equal(cached.matrices[r], fresh.matrices[r], equal_nan=True) for r in cached.matrices)
        if not same:
            return MISMATCH, "matrices differ (same CPU: must be bit-identical)", worst
        if not _outputs_equal(cached, fresh):
            return MISMATCH, "stored test-set outputs differ (same CPU)", worst
        if not _weights_equal(cached, fresh):
            return MISMATCH, "final weights differ (same CPU)", worst
        return IDENTICAL, "matrices, outputs, weights, actions and heads bit for bit", worst
    if worst <= ACROSS_CPUS_MATRIX_ATOL:
        return WITHIN, f"matrices within {ACROSS_CPUS_MATRIX_ATOL:.4f} (another CPU), same actions and heads", worst
    return MISMATCH, f"matrices differ by {worst:.4f} > {ACROSS_CPUS_MATRIX_ATOL:.4f} (another CPU)", worst


def _only_cpu_differs(cfg, folder: Path) -> bool:
    """A run from a colleague's CPU (served with DYNNN_ACROSS_CPUS=1): everything but the CPU kind is this one's."""
    from dynnn_lib.engine.cache import portable_key, stored_inputs

    inputs = stored_inputs(folder)
    return inputs is not None and portable_key(inputs) == portable_key(cfg.key_inputs())


def verify(folders: Sequence[Path], jobs: int = 1, fresh_caches: bool = False, progress: bool = True) -> list[Check]:
    """Retrain each run folder's configuration alone (a temporary runs folder, no shared prefixes) and compare."""
    from dynnn_lib.engine.executors import run_many
    from dynnn_lib.engine.results import load_result

    checks, todo = [], []
    here = cpu()["signature"]
    for folder in folders:
        check = Check(key=folder.name)
        checks.append(check)
        try:
            cached = load_result(folder / "result.json")
        except DynnnError as e:
            check.status, check.detail = UNREADABLE, str(e)
            continue
        cfg, prov = cached.config, cached.provenance
        check.method, check.seed = cfg.method, cfg.seed
        check.trained_on = prov.get("cpu") or "unknown"
        if cfg.key() != folder.name and not _only_cpu_differs(cfg, folder):
            check.status = STALE
            check.detail = "its key no longer matches: trained by other code, data or environment (never served now)"
            continue
        todo.append((check, cached))
    if todo:
        with tempfile.TemporaryDirectory(prefix="dynnn-verify-") as tmp, \
                _env(DYNNN_SHARE="off", **({"DYNNN_CACHE": str(Path(tmp) / "cache")} if fresh_caches else {})):
            fresh = run_many([c.config for _, c in todo], Path(tmp) / "runs", jobs=jobs, progress=progress)
            for (check, cached), again in zip(todo, fresh):
                check.status, check.detail, check.max_diff = compare(cached, again, check.trained_on == here)
    return checks


def table(checks: Sequence[Check]) -> str:
    """The checks as an aligned text table, a run a line."""
    here = cpu()["signature"]
    rows = [("run", "method", "seed", "trained on", "result", "max |Δ|", "detail")]
    rows += [(c.key, c.method, "" if c.seed is None else str(c.seed),
              "this CPU" if c.trained_on == here else c.trained_on.split("|")[0],
              c.status, "" if c.max_diff is None else f"{c.max_diff:.4f}", c.detail) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def add_arguments(p) -> None:
    p.add_argument("keys", nargs="*", metavar="KEY", help="run keys to verify (a unique beginning is enough)")
    p.add_argument("--sample", type=int, help="verify N finished runs drawn at random (seeded)")
    p.add_argument("--sample-seed", type=int, default=0, help="the draw's seed (default 0)")
    from dynnn_lib.core import options

    options.runs_dir(p, "; the folder to audit")
    options.jobs(p, "parallel retrainings")
    p.add_argument("--fresh-caches", action="store_true",
                   help="also regenerate the streams and pretrained weights in a temporary cache")
    options.imports(p)
    options.no_progress(p)


def command(args) -> int:
    """Retrain cached runs alone (no shared prefixes, a temporary runs folder) and compare them with the cache: bit
    for bit for runs trained on this CPU, within the measured cross-CPU tolerance otherwise. Exit status 1 when a
    run differs."""
    from dynnn_lib.core.fingerprint import machine_line
    from dynnn_lib.core.registry import import_modules
    from dynnn_lib.engine.cache import default_runs_dir

    import_modules(args.imports)
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: need at least 1 process")
    runs_dir = Path(args.runs_dir or default_runs_dir())
    folders = choose(runs_dir, args.keys, args.sample, args.sample_seed)
    checks = verify(folders, jobs=args.jobs, fresh_caches=args.fresh_caches, progress=not args.no_progress)
    print(table(checks))
    counts = {s: sum(c.status == s for c in checks) for s in (IDENTICAL, WITHIN, MISMATCH, STALE, UNREADABLE)}
    print(f"\n{len(checks)} runs of {runs_dir}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + f"; retrained on {machine_line()}")
    return 1 if counts[MISMATCH] or counts[UNREADABLE] else 0
