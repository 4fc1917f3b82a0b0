"""What a data source is: one class with a name, its parameters, how many tasks it has and how to load them.

A source turns a :class:`DataConfig` (``data.source`` names it, ``data.params`` holds its parameters) into a
:class:`Stream`. The built-in ones are the modules of ``data/sources/`` (the generated stand-in, the OpenLORIS
layouts, your own image folders); yours can live anywhere::

    @register
    class MyData(Source):
        name = "mydata"
        root_hint = "<root>/<day>/..."      # what data.root must hold (shown when it is missing)

        @dataclass(frozen=True)
        class Params:                       # its own parameters: data.params, validated here
            days: int = 3

        def count_tasks(self):              # cheap: folder names, a csv; never decode an image
            return self.params.days

        def load(self):                     # the stream: uint8 images and labels per task
            return Stream(tasks=[...], n_classes=..., class_names=[...], source=self.name)

then ``dynnn run --import mymodule --set data.source=mydata --set data.root=/data --set data.days=2``, the
sweeps and the notebooks read it like the others. A source's code enters the run key (core/config.py), and so does
the listing of its files under ``data.root`` (core/fingerprint.py ``data_fingerprint``). Its settings are
validated at the edge: ``Params.__post_init__`` for each alone, :meth:`Source.check` against the rest of the data
configuration, each a one-line ``ConfigError``; a problem with the files is a one-line ``DataError`` naming the
file and the fix (data/images.py reads and caches images for you).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dynnn_lib.core import registry
from dynnn_lib.core.config import DataConfig, source_params
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.data.stream import Stream


@dataclass(frozen=True)
class NoParams:
    pass


class Source:
    """Base class of every data source; subclasses set ``name`` and implement :meth:`count_tasks` and :meth:`load`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    needs_root: ClassVar[bool] = True       # reads files under data.root (False: generates its stream)
    root_hint: ClassVar[str] = "the data"   # what data.root holds, for the error when it is missing

    def __init__(self, data: DataConfig):
        self.data = data
        self.params = type(self).make_params(dict(data.params))
        self.root = Path(data.root).expanduser() if data.root else None

    # ---------------------------------------------------------------- the configuration's side (classmethods)
    @classmethod
    def make_params(cls, values: dict) -> Any:
        """data.params -> this source's Params (an unknown name or a bad value: one-line ConfigError)."""
        return source_params(cls, values)

    @classmethod
    def check(cls, data: DataConfig, params: Any) -> Any:
        """Validate the parameters against the rest of the data configuration and return them, completed where a
        default depends on it (one-line ConfigError). The default checks nothing more."""
        return params

    @classmethod
    def declared_tasks(cls, params: Any) -> int | None:
        """The stream's length when the parameters alone say it (a generated stream), else None."""
        return None

    @classmethod
    def stream_spec(cls, data: DataConfig) -> dict | None:
        """What a generated stream is, as plain data for the run key; None for data read from disk (its files'
        listing is in the key instead)."""
        return None

    @classmethod
    def base_photometric(cls, data: DataConfig) -> float:
        """Task 0's photometric augmentation when RunConfig.base_photometric is unset (a stand-in fitted with one)."""
        return 0.0

    @classmethod
    def describe(cls) -> str:
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else cls.name

    # ---------------------------------------------------------------- the data's side
    def count_tasks(self) -> int:  # pragma: no cover - the interface
        """The number of tasks, cheaply (folder names, a label file; never decoding an image)."""
        raise NotImplementedError

    def load(self) -> Stream:  # pragma: no cover - the interface
        """Every task of the stream (load_stream cuts it to data.n_tasks)."""
        raise NotImplementedError


# ------------------------------------------------------------------ registry
ENTRY_POINT_GROUP = "dynnn.sources"
available_sources = registry.available_sources
get_source = registry.get_source


def register(cls: type[Source]) -> type[Source]:
    """Class decorator: make a Source available by its ``name`` (data.source, the CLI, sweeps, notebooks).
    Registering the same name again replaces it (re-running a notebook cell)."""
    registry.SOURCES.check_class(cls, Source)
    common = {f.name for f in dataclasses.fields(DataConfig)}
    clash = sorted(common & {f.name for f in dataclasses.fields(cls.Params)})
    if clash:
        raise ConfigError(f"{cls.__name__}.Params.{clash[0]} is a field of every data configuration; rename it")
    return registry.add_source(cls)


def source_for(data: DataConfig) -> Source:
    """The source instance that reads `data`."""
    return get_source(data.source)(data)


# data sources other packages declare under the entry point group ENTRY_POINT_GROUP
registry.add_source_loader(registry.entry_point_loader(ENTRY_POINT_GROUP, registry.SOURCES.table, Source, register, "data source"))
