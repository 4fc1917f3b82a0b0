"""Task streams from data sources: the embedded synthetic benchmark, OpenLORIS-Object and your own image folders.

``stream`` holds what a stream is (Task, Stream: uint8 images and labels per task, the decision set), ``source``
what a data source is (a class with its ``Params``, a cheap task count and ``load()``) and its registry,
``sources/`` the built-in sources (one module each: ``synthetic``, ``openloris``, ``image_folders``), ``images``
the reading, resizing and caching of images from disk any source uses, ``synthetic`` the generator of the embedded
stand-in, and ``load`` turns a DataConfig into a Stream. Imports ``core`` only.
"""
from .load import load_stream, stream_length
from .source import Source, available_sources, get_source, register
from .stream import Stream, Task

__all__ = ["Stream", "Task", "load_stream", "stream_length", "Source", "register", "get_source", "available_sources"]
