"""What a cached run depends on besides its configuration: the code, the data on disk, the thread count.

* :func:`code_fingerprint` hashes the syntax trees (comments and formatting ignored) of every module that
  shapes a result whatever the method (the shared loop, model, data, evaluation), so editing one and re-running
  retrains instead of returning a stale result; :func:`method_fingerprint` hashes a method's own modules, so
  editing DynamicNN (``methods/dynamicnn/``) changes the keys of expand, kd and combined only;
* :func:`data_fingerprint` hashes the file list (relative path, size, mtime) of a real dataset's root; the
  embedded stream is determined by its configuration and the generator's code (already fingerprinted);
* :func:`threads` is the torch thread count every run is pinned to (``DYNNN_THREADS``, default 1): float
  summation order depends on it, so it is part of the key and recorded in the result;
* :func:`git_state` records the commit and whether the tree had uncommitted changes;
* :func:`cpu` names the processor (model, family, model number, stepping, AVX-512): float kernels and speed differ
  between CPU generations (our machines differ up to 4x), so every timing and every recorded float names it.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

PACKAGE = Path(__file__).resolve().parents[1]
# modules whose code changes a run's numbers whatever the method (reports, experiments, the workbench and the CLI do
# not); each method's own modules are fingerprinted per run (method_fingerprint), so editing lwf.py retrains only
# LwF and editing methods/dynamicnn/ only expand, kd and combined
RESULT_MODULES = ("core/config.py", "core/streams.py", "model/network.py", "model/build.py", "model/pretrain.py", "methods/__init__.py",
                  "methods/base.py", "methods/training.py", "evaluation/routing.py", "evaluation/outputs.py",
                  "engine/runner.py", "data/stream.py", "data/load.py", "data/synthetic.py", "data/source.py",
                  "data/images.py", "data/sources/__init__.py", "data/sources/synthetic.py", "data/sources/openloris.py",
                  "data/sources/image_folders.py")


def _normalised(path: Path) -> str:
    st = path.stat()
    return _normalised_at(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _normalised_at(path: str, mtime_ns: int, size: int) -> str:
    """A file's syntax tree, parsed once until the file changes (every prefix key reads its method's code)."""
    src = Path(path).read_text()
    try:
        return ast.dump(ast.parse(src))
    except SyntaxError:
        return src


PRETRAIN_MODULES = ("model/network.py", "model/pretrain.py", "core/streams.py", "data/synthetic.py")


@functools.lru_cache(maxsize=None)
def code_fingerprint(root: str | None = None, modules: tuple[str, ...] = RESULT_MODULES) -> str:
    base = Path(root) if root else PACKAGE
    h = hashlib.sha256()
    for name in modules:
        p = base / name
        h.update(name.encode())
        h.update(_normalised(p).encode() if p.exists() else b"-")
    return h.hexdigest()[:16]


def _code_object_digest(code, h) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_object_digest(const, h)
        else:
            h.update(repr(const).encode())


def _class_digest(cls: type, h) -> None:
    """A class defined where there is no source file (a notebook cell): its methods' bytecode and constants."""
    for name, value in sorted(vars(cls).items()):
        h.update(name.encode())
        fn = getattr(value, "__func__", value)
        if hasattr(fn, "__code__"):
            _code_object_digest(fn.__code__, h)
        elif isinstance(value, type):
            _class_digest(value, h) if value.__module__ == cls.__module__ else h.update(value.__qualname__.encode())
        elif not name.startswith("__"):
            h.update(repr(value).encode())
        if name == "Params" and isinstance(value, type):
            import dataclasses

            h.update(repr([(f.name, f.default) for f in dataclasses.fields(value)]).encode())


def method_fingerprint(cls: type) -> str:
    """Hash of a method's own code: the module of each class in its MRO below Method (the file's syntax tree), or,
    for a class defined in a notebook, its methods' bytecode. Part of the run key."""
    import sys

    h = hashlib.sha256()
    for klass in cls.__mro__:
        if klass.__name__ == "Method" and klass.__module__.endswith("methods.base"):
            break
        module = sys.modules.get(klass.__module__)
        path = getattr(module, "__file__", None)
        h.update(klass.__qualname__.encode())
        if path and klass.__module__ != "__main__" and Path(path).exists():
            h.update(_normalised(Path(path)).encode())
        else:
            _class_digest(klass, h)
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def data_fingerprint(source: str, root: str | None) -> str:
    if source == "synthetic" or not root or not Path(root).is_dir():
        return ""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def threads() -> int:
    value = os.environ.get("DYNNN_THREADS", "1")
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        from dynnn_lib.core.errors import ConfigError

        raise ConfigError(f"DYNNN_THREADS={value!r} must be a positive integer (torch threads per run)")
    return n


@contextlib.contextmanager
def pinned_threads() -> Iterator[int]:
    """Run the block with torch pinned to :func:`threads` threads, then restore the previous count."""
    import torch

    before, n = torch.get_num_threads(), threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def git_state() -> dict:
    """{"commit": sha or None, "dirty": bool or None} of the checkout holding this package."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = None
        if commit:
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PACKAGE,
                                    capture_output=True, text=True, timeout=10).stdout
            dirty = bool(status.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@functools.lru_cache(maxsize=1)
def cpu() -> dict:
    """The first processor as /proc/cpuinfo describes it: {"model", "family", "model_number", "stepping",
    "avx512", "signature"}; the signature ``model name|family|model|stepping`` tells CPU generations apart."""
    import platform

    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip() and info:
                break
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    fields = (model, info.get("cpu family", "?"), info.get("model", "?"), info.get("stepping", "?"))
    return {"model": model, "family": fields[1], "model_number": fields[2], "stepping": fields[3],
            "avx512": "avx512f" in info.get("flags", "").split(), "signature": "|".join(fields)}


def machine_line(run_threads: int | None = None) -> str:
    """One line naming the machine a timing came from: CPU model and family, cores, torch threads per run."""
    c = cpu()
    t = threads() if run_threads is None else run_threads
    return (f"{c['model']} (CPU family {c['family']}, model {c['model_number']}"
            f"{', AVX-512' if c['avx512'] else ''}), {os.cpu_count()} cores, {t} torch thread{'s' if t != 1 else ''}"
            f" per run")
