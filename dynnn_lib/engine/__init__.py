"""Running configurations: the run loop, the run cache, the result schema, the executors.

Running configurations: the run loop (``runner``: stream -> model -> method -> evaluation, checkpointed), where runs
live (``cache``: run folders by key, checkpoints, the shared prefixes), what a run leaves (``results``: the result
schema), the stored runs as a table (``runs``) and the ways to run many (``executors``: local pool, in-process, Ray,
as a tree of shared prefixes). Imports
``core``, ``data``, ``model``, ``evaluation`` and ``methods``; never an experiment, a report or the workbench.
"""
