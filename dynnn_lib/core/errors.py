"""The one exception family users see.

Every error raised on purpose by dynnn is a :class:`DynnnError` whose message is a single
line that says what is wrong and how to fix it.  The CLI prints it without a traceback.
"""
from __future__ import annotations


class DynnnError(Exception):
    """Base class: a problem with the user's input or run, explained in one line."""


class ConfigError(DynnnError, ValueError):
    """A configuration value is invalid."""


class DataError(DynnnError):
    """A dataset on disk is missing, malformed or unreadable."""


class TrainingDiverged(DynnnError):
    """The loss became NaN or infinite."""


class ResultCorrupt(DynnnError):
    """A stored result or checkpoint failed its checksum or schema check."""
