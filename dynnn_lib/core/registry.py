"""The registries: names -> Method classes and names -> data Source classes, and the names a method retired from
the top level of RunConfig.

A leaf below the configuration (it imports nothing of the package at module level), so that ``config`` can
validate ``method_params`` by the method's own ``Params`` and ``data``'s parameters by the source's own
``Params`` without importing the methods or the data layer (no import circle). The built-ins register themselves
the first time a name is looked up (their package is loaded then, like a plugin); other packages declare theirs
under the ``dynnn.methods`` / ``dynnn.sources`` entry point groups (``methods/base.py``, ``data/source.py``).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from dynnn_lib.core.errors import ConfigError

BUILTIN_PACKAGE = "dynnn_lib.methods"
_REGISTRY: dict[str, type] = {}
_LOADERS: list[Callable[[], None]] = []   # called when a name is missing (entry points)
# name -> the default it had when it was a RunConfig field (configs written before it moved into a method's Params)
_RETIRED: dict[str, Any] = {}


def add(cls: type) -> type:
    _REGISTRY[cls.name] = cls
    return cls


def add_loader(fn: Callable[[], None]) -> None:
    if fn not in _LOADERS:
        _LOADERS.append(fn)


def retire(defaults: dict[str, Any]) -> None:
    """Declare names that were top-level RunConfig fields and now belong to a method's Params (with their old
    defaults): a stored configuration still carrying them is migrated on load (config.from_dict)."""
    _RETIRED.update({k: _plain(v) for k, v in defaults.items()})


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def is_retired_default(name: str, value: Any) -> bool:
    return _plain(value) == _RETIRED.get(name)


def retired() -> dict[str, Any]:
    _builtins()
    return dict(_RETIRED)


def _builtins() -> None:
    importlib.import_module(BUILTIN_PACKAGE)  # registers the built-ins (a no-op once imported)


def _load() -> None:
    _builtins()
    for fn in list(_LOADERS):
        fn()


def available_methods() -> dict[str, type]:
    _load()
    return dict(_REGISTRY)


def get_method(name: str) -> type:
    if name not in _REGISTRY:
        _load()
    if name not in _REGISTRY:
        raise ConfigError(f"method={name!r} is not registered; choose one of: {', '.join(sorted(_REGISTRY))} "
                          f"(a plugin: import its module first, e.g. dynnn run --import mymodule --method {name})")
    return _REGISTRY[name]


def import_modules(names) -> None:
    """Import modules or .py files that register methods (``--import``: their @register runs on import); a .py
    file's folder goes on sys.path so that worker processes import it by module name too."""
    import sys
    from pathlib import Path

    for name in names or []:
        path = Path(name)
        try:
            if name.endswith(".py"):
                if not path.is_file():
                    raise ConfigError(f"--import {name}: no such file")
                sys.path.insert(0, str(path.resolve().parent))
                importlib.import_module(path.stem)
            else:
                importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"--import {name}: cannot import it ({e}); check the name and that it is on PYTHONPATH") from None


# ------------------------------------------------------------------ data sources (data/source.py)
BUILTIN_SOURCES = "dynnn_lib.data.sources"
_SOURCES: dict[str, type] = {}
_SOURCE_LOADERS: list[Callable[[], None]] = []


def add_source(cls: type) -> type:
    _SOURCES[cls.name] = cls
    return cls


def add_source_loader(fn: Callable[[], None]) -> None:
    if fn not in _SOURCE_LOADERS:
        _SOURCE_LOADERS.append(fn)


def _load_sources() -> None:
    importlib.import_module(BUILTIN_SOURCES)  # registers the built-in sources (a no-op once imported)
    for fn in list(_SOURCE_LOADERS):
        fn()


def available_sources() -> dict[str, type]:
    _load_sources()
    return dict(_SOURCES)


def get_source(name: str) -> type:
    if name not in _SOURCES:
        _load_sources()
    if name not in _SOURCES:
        raise ConfigError(f"data.source={name!r} is not valid; choose one of: {', '.join(sorted(_SOURCES))} (a plugin: "
                          f"import its module first, e.g. dynnn run --import mysource --set data.source={name})")
    return _SOURCES[name]


def entry_point_loader(group: str, table: dict[str, type], base: type, register: Callable[[type], type],
                       what: str) -> Callable[[], None]:
    """A loader for the plugins other packages declare under the entry point `group` (name = module:Class): each
    `base` subclass not in `table` yet is registered (named after its entry point when it has no name); a broken
    plugin is a warning, never a broken workbench."""
    def load() -> None:
        import warnings
        from importlib.metadata import entry_points

        for ep in entry_points(group=group):
            if ep.name in table:
                continue
            try:
                cls = ep.load()
            except Exception as e:  # noqa: BLE001 - a broken plugin must not break the workbench
                warnings.warn(f"{what} plugin {ep.name!r} ({ep.value}) failed to load: {e}", stacklevel=2)
                continue
            if isinstance(cls, type) and issubclass(cls, base):
                if not cls.name:
                    cls.name = ep.name
                register(cls)
    return load
