"""Task streams: the embedded synthetic benchmark and loaders for OpenLORIS-Object on disk."""
from .stream import Stream, Task, load_stream

__all__ = ["Stream", "Task", "load_stream"]
