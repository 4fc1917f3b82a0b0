"""Task streams: the embedded synthetic benchmark and OpenLORIS-Object read from disk.

``stream`` holds what a stream is (Task, Stream: uint8 images and labels per task, the decision set), ``synthetic``
generates the embedded factor-controlled benchmark, ``openloris`` reads the dataset's layouts from disk, and ``load``
turns a DataConfig into a Stream. Imports ``core`` only.
"""
from .load import load_stream
from .stream import Stream, Task

__all__ = ["Stream", "Task", "load_stream"]
