"""The registries: names -> Method classes, data Source classes, experiments, head rules and metrics; and the names a method retired
from the top level of RunConfig.

A leaf below the configuration (it imports nothing of the package at module level), so that ``config`` can
validate ``method_params`` by the method's own ``Params`` and ``data``'s parameters by the source's own
``Params`` without importing the methods or the data layer (no import circle), and so that every layer can list the
experiments (``dynnn plan``, ``dynnn readme``, the CLI). The built-ins register themselves the first time a name
is looked up (their modules are loaded then, like a plugin); other packages declare theirs under an entry point
group (``dynnn.methods``, ``dynnn.sources``: ``methods/base.py``, ``data/source.py``). Which modules hold the
built-ins is declared above every layer, by the package's root (``dynnn_lib/__init__.py``, :meth:`Registry.declare`),
never here: core names nothing above it, even as a string, and tests/test_layout.py reads each declaration as an
import of the module that makes it.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, TypeVar

from dynnn_lib.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> registered objects (each has a ``name``) of one kind: the built-in modules are imported on the
    first lookup that misses, then the loaders (entry points) are called."""

    def __init__(self, what: str, hint: str) -> None:
        self.what, self.hint = what, hint
        self.builtins: tuple[str, ...] = ()
        self.table: dict[str, T] = {}
        self.loaders: list[Callable[[], None]] = []

    def add(self, obj: T) -> T:
        self.table[obj.name] = obj  # type: ignore[attr-defined]
        return obj

    def declare(self, *modules: str) -> None:
        """Name modules whose import registers built-ins, imported on the first lookup that misses (lazily: the
        configuration layer validates a method's parameters without importing the methods up front)."""
        self.builtins += tuple(m for m in modules if m not in self.builtins)

    def add_loader(self, fn: Callable[[], None]) -> None:
        if fn not in self.loaders:
            self.loaders.append(fn)

    def load_builtins(self) -> None:
        for module in self.builtins:
            importlib.import_module(module)  # registers the built-ins (a no-op once imported)

    def load(self) -> None:
        self.load_builtins()
        for fn in list(self.loaders):
            fn()

    def available(self) -> dict[str, T]:
        self.load()
        return dict(self.table)

    def check_class(self, cls: Any, base: type) -> None:
        """What a registered class must be: a `base` subclass with a short ``name`` and a dataclass ``Params``."""
        import dataclasses

        kind = base.__name__
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ConfigError(f"@register takes a {kind} subclass, got {cls!r}")
        if not cls.name or not isinstance(cls.name, str) or not cls.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{cls.__name__}.name={cls.name!r}: give the {kind.lower()} a short name of letters, "
                              "digits, - or _")
        if not dataclasses.is_dataclass(cls.Params):
            raise ConfigError(f"{cls.__name__}.Params must be a dataclass of the {kind.lower()}'s parameters")

    def get(self, name: str) -> T:
        if name not in self.table:
            self.load()
        if name not in self.table:
            raise ConfigError(f"{self.what}={name!r} is not registered; choose one of: "
                              f"{', '.join(sorted(self.table))} ({self.hint.format(name=name)})")
        return self.table[name]


METHODS: Registry[type] = Registry("method",
                                   "a plugin: import its module first, e.g. dynnn run --import mymodule --method {name}")
SOURCES: Registry[type] = Registry("data.source",
                                   "a plugin: import its module first, e.g. dynnn run --import mysource "
                                   "--set data.source={name}")
# the experiments make all plans and dynnn readme renders (experiments/contract.py); the notebooks' runs are declared
# beside the notebook batch
EXPERIMENTS: Registry[Any] = Registry("experiment",
                                      "one of yours: import its module first, e.g. dynnn plan --import mymodule")

# the test-time head rules and the metrics: evaluation only (training decides with the built-in rules, which stay in
# the modules it imports: evaluation/routing.py), so a plugin rule or metric re-scores stored runs and retrains nothing
HEAD_RULES: Registry[Any] = Registry("head_rule",
                                     "a plugin: import its module first, e.g. dynnn show RUN --import myrule.py "
                                     "--rule {name}")
METRICS: Registry[Any] = Registry("metric",
                                  "a plugin: import its module first, e.g. dynnn runs --import mymetric.py")

_REGISTRY = METHODS.table    # name -> Method class
_SOURCES = SOURCES.table     # name -> Source class
add, add_loader, available_methods, get_method = METHODS.add, METHODS.add_loader, METHODS.available, METHODS.get
add_source, add_source_loader = SOURCES.add, SOURCES.add_loader
available_sources, get_source = SOURCES.available, SOURCES.get

# name -> the default it had when it was a RunConfig field (configs written before it moved into a method's Params)
_RETIRED: dict[str, Any] = {}


def retire(defaults: dict[str, Any]) -> None:
    """Declare names that were top-level RunConfig fields and now belong to a method's Params (with their old
    defaults): a stored configuration still carrying them is migrated on load (config.from_dict)."""
    _RETIRED.update({k: _plain(v) for k, v in defaults.items()})


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def is_retired_default(name: str, value: Any) -> bool:
    return _plain(value) == _RETIRED.get(name)


def head_rule_names() -> tuple[str, ...]:
    """Every registered head rule, the built-ins first (the order of the CLI's and the explorer's choices)."""
    return tuple(HEAD_RULES.available())


def metric_names() -> tuple[str, ...]:
    """Every registered metric, the built-ins first (the order of the runs table's columns)."""
    return tuple(METRICS.available())


def retired() -> dict[str, Any]:
    METHODS.load_builtins()
    return dict(_RETIRED)


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
