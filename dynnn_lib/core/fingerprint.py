"""What a cached run depends on besides its configuration: the code that trains it, the data on disk, the environment.

Every input of a key is *derived*, never declared by hand, and read as it is when the key is computed (an edited
file or class changes the key in the same process: nothing here is cached for a process's life):

* :func:`shared_modules` are the modules that train every run: ``engine/train.py`` (the loop; it scores nothing)
  and every module of the package it imports, following the imports (any import, function-level ones included)
  but not into the registered extensions (the built-in methods and data sources, which the registry imports by
  name). Scoring (metrics, head rules' tables, statistics, reports, ``verify``) is not imported by training, so
  editing it retrains nothing: results are re-scored from their stored outputs. :func:`code_inputs` hashes their
  syntax trees with docstrings and comments left out, file by file (``dynnn why`` names the file that changed);
  the same rule from ``model/pretrain.py`` keys the pretrained weights and from ``data/load.py`` the generated
  stream's cache (with the built-in sources' modules, read by name), and the real images' decoding cache is keyed by
  the modules ``data/images.py`` imports (:func:`module_fingerprint`);
* :func:`class_fingerprint` hashes a class's own code: each class of its inheritance chain that the shared modules
  do not cover, by the files it comes from (a built-in method's or source's module and what it imports beyond the
  shared modules, a plugin's file and its own package's modules it imports) and its bytecode, constants, closures,
  the module globals its functions read (a notebook cell's ``ALPHA = 0.5``) and its ``Params`` defaults, every
  value by content (:func:`value_digest`: tensors by their bytes, never by a repr that prints alike);
* :func:`data_fingerprint` hashes a real dataset's files by content (symlinked folders followed; a file is read
  again only when its size, times or inode change);
* :func:`environment` is what a result also depends on: Python, torch, torchvision and numpy versions and the
  device (the CPU's model, family, model number and stepping for CPU runs; the GPU, CUDA and cuDNN for GPU runs);
  pretrained weights files enter by content (core/weights.py); the torch thread count is the configuration's
  ``threads`` field;
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
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Iterator

PACKAGE = Path(__file__).resolve().parents[1]
PACKAGE_NAME = PACKAGE.name
# what trains a run, pretrains the generic convs, and generates or decodes a stream: the keys follow their imports
TRAINING_ENTRY = "engine/train.py"
PRETRAIN_ENTRY = "model/pretrain.py"
DATA_ENTRY = "data/load.py"
DECODE_ENTRY = "data/images.py"


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """The tree less every docstring (a module's, class's or function's first string statement): words, not code."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=2048)
def _normalised_digest(raw: bytes) -> str:
    """The digest of a source file's syntax tree, less comments, formatting and docstrings (parsed once per content)."""
    try:
        text = ast.dump(_without_docstrings(ast.parse(raw)))
    except SyntaxError:
        text = raw.decode(errors="replace")
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """Hash of a module's code as it is on disk now: its syntax tree without comments, formatting or docstrings."""
    return _normalised_digest(Path(path).read_bytes())


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


@functools.lru_cache(maxsize=2048)
def _imports_at(path: str, raw: bytes, base: str, top: str) -> tuple[str, ...]:
    """Files of package `top` (rooted at `base`) that the module at `path` (whose bytes are `raw`) imports, anywhere
    in its body."""
    file, root = Path(path), Path(base)
    try:
        tree = ast.parse(raw)
    except SyntaxError:
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
    try:
        raw = path.read_bytes()
    except OSError:
        return ()
    return _imports_at(str(path), raw, str(base), top)


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
    path = Path(path)
    try:
        return path.relative_to(PACKAGE).as_posix()
    except ValueError:
        return path.resolve().relative_to(PACKAGE).as_posix()


_SCOPE = threading.local()


@contextlib.contextmanager
def one_reading() -> Iterator[None]:
    """Within the block the package and the classes are read once: a key and its prefix keys are computed from one
    reading of the code (nested blocks share the outer one's)."""
    if getattr(_SCOPE, "memo", None) is not None:
        yield
        return
    _SCOPE.memo = {}
    try:
        yield
    finally:
        _SCOPE.memo = None


def _memo(name, compute):
    memo = getattr(_SCOPE, "memo", None)
    if memo is None:
        return compute()
    if name not in memo:
        memo[name] = compute()
    return memo[name]


def package_stamp() -> tuple:
    return _memo("stamp", _package_stamp)


def _package_stamp() -> tuple:
    """Every module file of the package with its size, times and inode, as they are now (about a millisecond):
    what is derived from the package's import structure (which modules training imports) is computed once per
    stamp, so an edit is seen at once. The code that enters a key is always read from the files themselves."""
    out = []
    for dirpath, dirnames, filenames in os.walk(PACKAGE):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith(".py"):
                st = os.stat(os.path.join(dirpath, f))
                out.append((dirpath, f, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(out)


def extension_modules() -> frozenset[str]:
    """The registered extensions' own modules in the package: each built-in method's and data source's classes
    (below the ``Method`` / ``Source`` interface) and the package modules such a module's folder holds for it alone
    (a method's package ``__init__``). The registry imports them by name; each enters the keys of the runs that use
    it (:func:`class_fingerprint`), not every key."""
    from dynnn_lib.core import registry

    registry.METHODS.load_builtins()
    registry.SOURCES.load_builtins()
    classes = tuple(c for table in (registry.METHODS.table, registry.SOURCES.table) for c in table.values()
                    if c.__module__.startswith(PACKAGE_NAME + "."))
    return _extension_modules(classes)


method_modules = extension_modules  # the name earlier code and tests use


@functools.lru_cache(maxsize=8)
def _extension_modules(classes: tuple[type, ...]) -> frozenset[str]:
    out = set()
    for cls in classes:
        for klass in cls.__mro__:
            if (klass.__name__, klass.__module__) in (("Method", f"{PACKAGE_NAME}.methods.base"),
                                                       ("Source", f"{PACKAGE_NAME}.data.source")):
                break
            path = getattr(sys.modules.get(klass.__module__), "__file__", None)
            if path and Path(path).resolve().is_relative_to(PACKAGE):
                out.add(_rel(Path(path)))
    # a folder holding nothing but extension modules is an extension's package: its __init__ is that extension's too
    for init in {(PACKAGE / m).parent / "__init__.py" for m in out}:
        siblings = {_rel(p) for p in init.parent.glob("*.py")} - {_rel(init)}
        if init.is_file() and siblings <= out:
            out.add(_rel(init))
    return frozenset(out)


def shared_modules(entry: str = TRAINING_ENTRY) -> tuple[str, ...]:
    """The modules in every key of what `entry` makes: `entry` and the package modules it imports, transitively.
    Training (the default) stops at the extensions (each run keys its own method and source); the pretrained
    weights and the generated stream's cache start from the built-in sources too (the registry imports them)."""
    return _shared_modules(entry, package_stamp())


@functools.lru_cache(maxsize=16)
def _shared_modules(entry: str, stamp: str) -> tuple[str, ...]:
    if entry == TRAINING_ENTRY:
        own = extension_modules()
        files = import_closure([PACKAGE / entry], within=lambda q: _rel(q) not in own)
        return tuple(sorted(_rel(f) for f in files if _rel(f) not in own))
    sources = [PACKAGE / m for m in extension_modules() if m.startswith("data/")]
    return tuple(sorted(_rel(f) for f in import_closure([PACKAGE / entry, *sources])))


def code_inputs(entry: str = TRAINING_ENTRY) -> dict:
    """The code in a key: {"digest": one hash, "files": {module: its digest}} over :func:`shared_modules`."""
    return _memo(("code", entry), lambda: _code_inputs(entry))


def _code_inputs(entry: str) -> dict:
    files = {name: file_digest(PACKAGE / name) if (PACKAGE / name).exists() else "-" for name in shared_modules(entry)}
    return {"digest": _hash_files(files), "files": files}


def _hash_files(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name, digest in sorted(files.items()):
        h.update(name.encode())
        h.update(digest.encode())
    return h.hexdigest()[:16]


def code_fingerprint(entry: str = TRAINING_ENTRY) -> str:
    """Hash of the syntax trees of :func:`shared_modules` of `entry` (training by default), read now."""
    return code_inputs(entry)["digest"]


def module_fingerprint(entry: str) -> str:
    """Hash of `entry` and the package modules it imports, module by module (the decoding cache of real images:
    editing the configuration does not decode a dataset again, editing the decoder does)."""
    names = sorted(_rel(p) for p in import_closure([PACKAGE / entry]))
    return _hash_files({n: file_digest(PACKAGE / n) for n in names})


# ------------------------------------------------------------------ values by content
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
_DEPTH = 4  # how deep values, functions and classes a function reads are followed


def value_digest(value, h, depth: int = 0) -> None:
    """Feed `value` to hash `h` by content: numbers exactly, tensors and arrays by dtype, shape and bytes,
    containers and dataclasses element by element, functions and classes by their code, modules by name, any other
    object by its type and attributes. Two values that only print alike hash apart."""
    import dataclasses

    kind = type(value)
    h.update(f"<{kind.__module__}.{kind.__qualname__}>".encode())
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        h.update(repr(value).encode())  # exact for these types (a float's repr round-trips)
    elif depth > _DEPTH:
        h.update(b"<deep>")
    elif type(value).__module__ == "torch" and hasattr(value, "detach"):
        t = value.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch_uint8()).numpy().tobytes() if t.numel() else b"")
    elif type(value).__module__ == "numpy" and hasattr(value, "tobytes"):
        h.update(f"{getattr(value, 'dtype', '')}{getattr(value, 'shape', '')}".encode())
        h.update(value.tobytes())
    elif isinstance(value, (list, tuple)):
        for v in value:
            value_digest(v, h, depth + 1)
    elif isinstance(value, (set, frozenset)):
        for d in sorted(_digest_of(v, depth + 1) for v in value):
            h.update(d.encode())
    elif isinstance(value, dict):
        for d in sorted(_digest_of(k, depth + 1) + _digest_of(v, depth + 1) for k, v in value.items()):
            h.update(d.encode())
    elif isinstance(value, type(sys)):
        h.update(value.__name__.encode())
    elif isinstance(value, type):
        _type_digest(value, h, depth)
    elif hasattr(value, "__code__"):
        _function_digest(value, h, depth + 1)
    elif dataclasses.is_dataclass(value):
        value_digest({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, h, depth + 1)
    elif hasattr(value, "__dict__"):
        value_digest(vars(value), h, depth + 1)
    else:
        h.update(repr(value).encode())  # a value with no attributes (an enum member, a slice...): its repr is all of it


def torch_uint8():
    import torch

    return torch.uint8


def _digest_of(value, depth: int) -> str:
    h = hashlib.sha256()
    value_digest(value, h, depth)
    return h.hexdigest()


def _type_digest(cls: type, h, depth: int) -> None:
    """A class a function reads: by name where its code is keyed as a file (the package, an installed or standard
    library), else (a notebook's, a script's) by its code."""
    h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if cls.__module__ in ("__main__", "builtins") or not path:
        if cls.__module__ != "builtins":
            _class_digest(cls, h, depth + 1)


def _function_digest(fn, h, depth: int = 0) -> None:
    """A function's code, its defaults and closures by content, and the module globals its code reads."""
    code = fn.__code__
    _code_object_digest(code, h)
    value_digest(getattr(fn, "__defaults__", None), h, depth + 1)
    value_digest(getattr(fn, "__kwdefaults__", None), h, depth + 1)
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            h.update(b"<empty>")
            continue
        value_digest(value, h, depth + 1)
    _globals_digest(code, getattr(fn, "__globals__", {}), h, depth)


def _globals_digest(code, namespace: dict, h, depth: int) -> None:
    """The module globals `code` (and the code objects nested in it) reads, by content: a cell's ``ALPHA = 0.5``."""
    for name in sorted(_global_names(code)):
        if name in namespace and name != "__builtins__":
            h.update(name.encode())
            value_digest(namespace[name], h, depth + 1)


def _global_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            names |= _global_names(const)
    return names


def _code_object_digest(code, h) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_object_digest(const, h)
        else:
            value_digest(const, h)


_SKIP = ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__firstlineno__",
         "__static_attributes__", "__annotations__", "__parameters__", "__orig_bases__")


def _class_digest(cls: type, h, depth: int = 0) -> None:
    """A class's methods (their bytecode, constants, defaults, closures and the globals they read), its plain
    attributes and its nested classes (a ``Params`` dataclass with its defaults), all by content: what a file's
    syntax tree cannot tell apart (two classes made by one factory, a class in a notebook cell)."""
    import dataclasses

    for name, value in sorted(vars(cls).items()):
        if name in _SKIP:
            continue
        h.update(name.encode())
        fn = getattr(value, "__func__", value)
        if isinstance(value, property):
            for part in (value.fget, value.fset, value.fdel):
                if part is not None:
                    _function_digest(part, h, depth + 1)
        elif hasattr(fn, "__code__"):
            _function_digest(fn, h, depth + 1)
        elif isinstance(value, type):
            if value.__module__ == cls.__module__ and value.__qualname__.startswith(cls.__qualname__ + "."):
                _class_digest(value, h, depth + 1)
            else:
                h.update(f"{value.__module__}.{value.__qualname__}".encode())
            if dataclasses.is_dataclass(value):
                value_digest([(f.name, f.default) for f in dataclasses.fields(value)], h, depth + 1)
        elif not name.startswith("__"):
            value_digest(value, h, depth + 1)


# ------------------------------------------------------------------ a class's own code
def _is_interface(klass: type) -> bool:
    """The package's base classes a plugin derives from (``Method``, ``Source``): shared modules, in every key."""
    module = sys.modules.get(klass.__module__)
    path = getattr(module, "__file__", None)
    return bool(path) and Path(path).resolve().is_relative_to(PACKAGE) and _rel(Path(path)) in shared_modules()


def _own_files(klass: type) -> list[Path]:
    """The files whose code is a class's own: for a class of the package, its module and every module it imports
    beyond the shared ones; for a plugin, its file and the modules of its own package it imports."""
    module = sys.modules.get(klass.__module__)
    path = getattr(module, "__file__", None)
    if not path or klass.__module__ == "__main__" or not Path(path).is_file():
        return []
    path = Path(path).resolve()
    if path.is_relative_to(PACKAGE):
        return [PACKAGE / m for m in _own_modules(_rel(path), package_stamp())]
    top = klass.__module__.split(".")[0]
    top_file = getattr(sys.modules.get(top), "__file__", None)
    if top_file and Path(top_file).name == "__init__.py":
        return sorted(import_closure([path], Path(top_file).resolve().parent, top))
    return [path]


@functools.lru_cache(maxsize=256)
def _own_modules(module: str, stamp: str) -> tuple[str, ...]:
    """A package module that is not shared and the modules it imports beyond the shared ones."""
    shared = set(_shared_modules(TRAINING_ENTRY, stamp))
    if module in shared:
        return ()
    return tuple(sorted(_rel(q) for q in import_closure([PACKAGE / module], within=lambda q: _rel(q) not in shared)))


def class_fingerprint(cls: type) -> str:
    """Hash of a class's own code, read as it is now (an edited file or a class patched in place, by
    ``%autoreload``, changes it): every class of its inheritance chain that the shared modules do not cover
    (interfaces such as ``Method`` and Python's builtins are left out), each by the files it comes from and its own
    bytecode, closures, globals read and ``Params`` defaults. Part of every run key and of the prefix key of every
    task its method trains."""
    return _memo(("class", cls), lambda: _class_fingerprint(cls))


def _class_fingerprint(cls: type) -> str:
    h = hashlib.sha256()
    for name, files, digest in class_parts(cls):
        h.update(name.encode())
        for f in files:
            h.update(f.name.encode())
            h.update(file_digest(f).encode())
        h.update(digest.encode())
    return h.hexdigest()[:16]


def class_parts(cls: type) -> tuple[tuple[str, tuple[Path, ...], str], ...]:
    """Per class of `cls`'s chain that is its own: its name, its files and the digest of its code and values."""
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


# ------------------------------------------------------------------ data and environment
@functools.lru_cache(maxsize=65536)
def _content_digest(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    """A file's bytes hashed, read again only when its size, times or inode change."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digest(path: str | Path) -> str:
    st = os.stat(path)
    return _content_digest(str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def data_fingerprint(source: str, root: str | None) -> str:
    """Hash of a real dataset's files by content (relative path and bytes), symlinked folders followed; ``""`` for
    the generated stream (its configuration and the generator's code determine it)."""
    if source == "synthetic" or not root or not Path(root).is_dir():
        return ""
    h, seen = hashlib.sha256(), set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            try:
                digest = content_digest(p)
            except OSError:
                continue
            h.update(f"{p.relative_to(root)}\0{digest}\n".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def environment(device: str = "cpu") -> dict:
    """What a result depends on besides code, data and configuration, as Bazel keys an action by its toolchain:
    the library versions loaded in this process and the device kind (floats differ between CPU generations and GPU
    models). Fixed for a process's life: a library upgraded on disk is not the one that trains here."""
    import platform
    from importlib import metadata

    import numpy
    import torch

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    env = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": version("torchvision"),
           "numpy": numpy.__version__}
    if device == "cuda":  # no GPU visible: the run stops before training, saying so (its key names none)
        visible = torch.cuda.is_available()
        env["device"] = {"gpu": torch.cuda.get_device_name() if visible else None, "cuda": torch.version.cuda,
                         "cudnn": torch.backends.cudnn.version() if visible else None}
    else:
        env["device"] = {"cpu": cpu()["signature"]}
    return env


def default_threads() -> int:
    """The torch thread count a configuration gets when it names none: ``DYNNN_THREADS`` (default 1), read when the
    configuration is made (the key reads the configuration's ``threads``, never the environment)."""
    value = os.environ.get("DYNNN_THREADS", "1")
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        from dynnn_lib.core.errors import ConfigError

        raise ConfigError(f"DYNNN_THREADS={value!r} must be a positive integer (torch threads per run)")
    return n


threads = default_threads  # the name earlier code uses


@contextlib.contextmanager
def pinned_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with torch pinned to `n` threads (default :func:`default_threads`), then restore the count."""
    import torch

    before, n = torch.get_num_threads(), n or default_threads()
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
