"""Task streams: the embedded synthetic benchmark and loaders for OpenLORIS-Object on disk."""
from .load import load_stream
from .stream import Stream, Task

__all__ = ["Stream", "Task", "load_stream"]
