"""What a cached run depends on besides its configuration: the code, the data on disk, the thread count.

Every code fingerprint is *derived* from the code, never from a hand-kept list:

* :func:`shared_modules` are the modules that shape a result whatever the method: every module under the folders
  (layers) that training imports, found by following the package's imports from ``engine/runner.py`` (any import,
  function-level ones included), less the modules of the built-in methods. A new module under ``data/`` enters
  every key without an edit anywhere. :func:`code_fingerprint` hashes their syntax trees (comments and
  formatting ignored); the same rule from ``model/pretrain.py`` keys the pretrained weights and from
  ``data/load.py`` the generated stream's cache (:func:`code_fingerprint` with another entry), and the real
  images' decoding cache is keyed by the modules ``data/images.py`` imports (:func:`module_fingerprint`);
* :func:`class_fingerprint` hashes a class's own code: every class of its inheritance chain whose code the shared
  fingerprint does not already cover (a built-in method's modules, a plugin's file and the files of its own
  package it imports, a notebook class's bytecode), always with each class's bytecode, constants, closures and
  ``Params`` fields, so two classes from one factory differ. It is in every run key and in the prefix key of
  every task a method trains (``Method.task_recipe``): editing ``methods/lwf.py`` retrains LwF only;
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
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterator

PACKAGE = Path(__file__).resolve().parents[1]
PACKAGE_NAME = PACKAGE.name
# what trains a run, pretrains the generic convs, and generates or decodes a stream: the keys follow their imports
TRAINING_ENTRY = "engine/runner.py"
PRETRAIN_ENTRY = "model/pretrain.py"
DATA_ENTRY = "data/load.py"
DECODE_ENTRY = "data/images.py"


@functools.lru_cache(maxsize=512)
def _normalised_at(path: str, mtime_ns: int, size: int) -> str:
    """A file's syntax tree, parsed once until the file changes (every prefix key reads its method's code)."""
    src = Path(path).read_text()
    try:
        return ast.dump(ast.parse(src))
    except SyntaxError:
        return src


@functools.lru_cache(maxsize=512)
def _tree_digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(_normalised_at(path, mtime_ns, size).encode()).hexdigest()


def file_digest(path: Path) -> str:
    """Hash of a module's syntax tree (comments and formatting ignored), computed once until the file changes."""
    st = path.stat()
    return _tree_digest(str(path), st.st_mtime_ns, st.st_size)


# ------------------------------------------------------------------ which modules: the package's own imports
def _module_path(dotted: str, base: Path, top: str) -> Path | None:
    """The file of module `dotted` (``top.a.b``) under `base` (the folder of package `top`), or None."""
    parts = dotted.split(".")
    if parts[0] != top:
        return None
    p = base.joinpath(*parts[1:])
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    return p.with_suffix(".py") if p.with_suffix(".py").is_file() else None


@functools.lru_cache(maxsize=1024)
def _imports_at(path: str, mtime_ns: int, size: int, base: str, top: str) -> tuple[str, ...]:
    """Files of package `top` (rooted at `base`) that the module at `path` imports, anywhere in its body."""
    file, root = Path(path), Path(base)
    try:
        tree = ast.parse(file.read_text())
    except (SyntaxError, OSError):
        return ()
    package = [top, *file.relative_to(root).with_suffix("").parts][:-1]  # a module's package (an __init__: itself)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(package[:len(package) - node.level + 1] + ([mod] if mod else []))
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    out = set()
    for name in names:
        parts = name.split(".")
        for i in range(2, len(parts) + 1):  # the packages on the way too (not the top one: the public facade)
            p = _module_path(".".join(parts[:i]), root, top)
            if p is not None:
                out.add(str(p))
    return tuple(sorted(out))


def _imports(path: Path, base: Path, top: str) -> tuple[str, ...]:
    st = path.stat()
    return _imports_at(str(path), st.st_mtime_ns, st.st_size, str(base), top)


def import_closure(files: list[Path], base: Path = PACKAGE, top: str = PACKAGE_NAME, within=None) -> set[Path]:
    """`files` and every file of package `top` they import, transitively (function-level imports included);
    `within` (a predicate on a file): follow only the imports it accepts."""
    seen: set[Path] = set()
    todo = [Path(f) for f in files]
    while todo:
        f = todo.pop()
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        todo.extend(q for q in map(Path, _imports(f, base, top)) if within is None or within(q))
    return seen


def _rel(path: Path) -> str:
    return path.resolve().relative_to(PACKAGE).as_posix()


def layers(entry: str = TRAINING_ENTRY) -> tuple[str, ...]:
    """The package's folders that `entry` imports, directly or not (training: core, data, engine, evaluation,
    methods, model)."""
    rels = (_rel(p) for p in import_closure([PACKAGE / entry]))
    return tuple(sorted({r.split("/")[0] for r in rels if "/" in r}))


def _under(folders: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(p.relative_to(PACKAGE).as_posix() for f in folders for p in (PACKAGE / f).rglob("*.py")
                        if "__pycache__" not in p.parts))


def _is_interface(klass: type) -> bool:
    """The package's base classes a plugin derives from (``Method``): their code is shared by every run."""
    module = sys.modules.get(klass.__module__)
    path = getattr(module, "__file__", None)
    return bool(path) and Path(path).resolve().is_relative_to(PACKAGE) and _rel(Path(path)) not in method_modules()


def method_modules() -> frozenset[str]:
    """The built-in methods' own modules: those of each built-in class's inheritance chain below ``Method``
    (``methods/lwf.py``, ``methods/dynamicnn/kd.py``, ``frozen_trunk.py``...), read from the registry, and the
    method modules they import. They enter the keys of their methods only (:func:`class_fingerprint`)."""
    from dynnn_lib.core import registry

    registry.METHODS.load_builtins()
    classes = tuple(c for c in registry._REGISTRY.values() if c.__module__.startswith(PACKAGE_NAME + "."))
    return _method_modules(classes)


@functools.lru_cache(maxsize=8)
def _method_modules(classes: tuple[type, ...]) -> frozenset[str]:
    out = set()
    for cls in classes:
        for klass in cls.__mro__:
            if klass.__name__ == "Method" and klass.__module__ == f"{PACKAGE_NAME}.methods.base":
                break
            path = getattr(sys.modules.get(klass.__module__), "__file__", None)
            if path and Path(path).resolve().is_relative_to(PACKAGE):
                out.add(_rel(Path(path)))
    # a folder holding nothing but method modules is a method's package: its __init__ is that method's too
    for init in {(PACKAGE / m).parent / "__init__.py" for m in out}:
        siblings = {_rel(p) for p in init.parent.glob("*.py")} - {_rel(init)}
        if init.is_file() and siblings <= out:
            out.add(_rel(init))
    return frozenset(out)


@functools.lru_cache(maxsize=8)
def shared_modules(entry: str = TRAINING_ENTRY) -> tuple[str, ...]:
    """Every module under the layers `entry` imports, less the built-in methods' own modules (each in the keys of
    its own methods): the modules in every key of what `entry` makes."""
    modules = _under(layers(entry))
    own = method_modules() if any(m.startswith("methods/") for m in modules) else frozenset()
    return tuple(m for m in modules if m not in own)


def _hash_files(names: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name in names:
        p = PACKAGE / name
        h.update(name.encode())
        h.update(file_digest(p).encode() if p.exists() else b"-")
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def code_fingerprint(entry: str = TRAINING_ENTRY) -> str:
    """Hash of the syntax trees of :func:`shared_modules` of `entry` (training by default)."""
    return _hash_files(shared_modules(entry))


@functools.lru_cache(maxsize=None)
def module_fingerprint(entry: str) -> str:
    """Hash of `entry` and the package modules it imports, module by module (the decoding cache of real images:
    editing the configuration does not decode a dataset again, editing the decoder does)."""
    return _hash_files(tuple(sorted(_rel(p) for p in import_closure([PACKAGE / entry]))))


# ------------------------------------------------------------------ a class's own code
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def _stable_repr(value) -> str:
    return _ADDRESS.sub("", repr(value))


def _function_digest(fn, h, depth: int = 0) -> None:
    _code_object_digest(fn.__code__, h)
    h.update(_stable_repr(getattr(fn, "__defaults__", None)).encode())
    h.update(_stable_repr(getattr(fn, "__kwdefaults__", None)).encode())
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            h.update(b"<empty>")
            continue
        if hasattr(value, "__code__") and depth < 3:
            _function_digest(value, h, depth + 1)
        elif isinstance(value, type):
            h.update(f"{value.__module__}.{value.__qualname__}".encode())
        else:
            h.update(_stable_repr(value).encode())


def _code_object_digest(code, h) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_object_digest(const, h)
        else:
            h.update(_stable_repr(const).encode())


def _class_digest(cls: type, h) -> None:
    """A class's methods' bytecode, constants, defaults and closures, its plain attributes and its Params' fields
    (what a file's syntax tree cannot tell apart: two classes made by one factory, a class in a notebook cell)."""
    import dataclasses

    for name, value in sorted(vars(cls).items()):
        if name in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__firstlineno__",
                    "__static_attributes__", "__annotations__", "__parameters__", "__orig_bases__"):
            continue
        h.update(name.encode())
        fn = getattr(value, "__func__", value)
        if isinstance(value, property):
            for part in (value.fget, value.fset, value.fdel):
                if part is not None:
                    _function_digest(part, h)
        elif hasattr(fn, "__code__"):
            _function_digest(fn, h)
        elif isinstance(value, type):
            if value.__module__ == cls.__module__ and value.__qualname__.startswith(cls.__qualname__ + "."):
                _class_digest(value, h)
            else:
                h.update(f"{value.__module__}.{value.__qualname__}".encode())
            if dataclasses.is_dataclass(value):
                h.update(_stable_repr([(f.name, f.default) for f in dataclasses.fields(value)]).encode())
        elif not name.startswith("__"):
            h.update(_stable_repr(value).encode())


def _own_files(klass: type) -> list[Path]:
    """The files whose code is a class's own: its module and the modules of its own package that it imports (for a
    built-in method, the other method modules it imports; the package's shared code is in every key already)."""
    module = sys.modules.get(klass.__module__)
    path = getattr(module, "__file__", None)
    if not path or klass.__module__ == "__main__" or not Path(path).is_file():
        return []
    path = Path(path).resolve()
    if path.is_relative_to(PACKAGE):
        own = method_modules()
        if _rel(path) not in own:
            return []
        return sorted(import_closure([path], within=lambda q: _rel(q) in own))
    top = klass.__module__.split(".")[0]
    top_module = sys.modules.get(top)
    top_file = getattr(top_module, "__file__", None)
    if top_file and Path(top_file).name == "__init__.py":
        return sorted(import_closure([path], Path(top_file).resolve().parent, top))
    return [path]


def class_fingerprint(cls: type) -> str:
    """Hash of a class's own code: every class of its inheritance chain that the shared fingerprint does not
    cover (the package's interfaces such as ``Method`` and Python's builtins are left out), each by the files it
    comes from (syntax trees, re-read when a file changes) and its own bytecode, closures and ``Params`` fields.
    Part of every run key and of the prefix key of every task its method trains."""
    h = hashlib.sha256()
    for name, files, digest in _class_parts(cls):
        h.update(name.encode())
        for f in files:
            h.update(f.name.encode())
            h.update(file_digest(f).encode())
        h.update(digest.encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=512)
def _class_parts(cls: type) -> tuple[tuple[str, tuple[Path, ...], str], ...]:
    """Per class of `cls`'s chain that is its own: its name, its files and its bytecode digest (a class object's
    code does not change; a redefined class, in a notebook cell, is a new object)."""
    parts = []
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "builtins" or _is_interface(klass):
            continue
        module_file = getattr(sys.modules.get(klass.__module__), "__file__", None)
        if module_file and Path(module_file).resolve().is_relative_to(_STDLIB) and "site-packages" not in module_file:
            continue
        h = hashlib.sha256()
        _class_digest(klass, h)
        parts.append((f"{klass.__module__}.{klass.__qualname__}", tuple(_own_files(klass)), h.hexdigest()))
    return tuple(parts)



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


def machine() -> dict:
    """The machine a report came from, as a document records it: CPU model and family, cores, torch threads per
    run, the line above, the date."""
    import datetime

    return {"cpu": cpu()["model"], "cpu_family": cpu()["family"], "cores": os.cpu_count(), "threads_per_run": threads(),
            "line": machine_line(), "date": datetime.date.today().isoformat()}
