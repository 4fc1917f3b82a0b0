"""The leaf: configuration, errors, storage, fingerprints, the registries and the generated stream's description.

``config`` (RunConfig, DataConfig, the head rules' names: typed and validated at the edge), ``errors`` (the one
exception family, one-line messages), ``store`` (atomic, checksummed files and locks), ``fingerprint`` (what a run
depends on besides its configuration: code, data, threads, CPU) and ``registry`` (method, data source, experiment,
head rule and metric names -> their objects, so that the configuration validates a method's or a source's parameters
without importing the methods or data/; the built-ins' modules are declared by the package root) and ``streams``
(the factors, their levels, the generator's knobs and the stream specs the configuration validates ``data.stream``
against; data/ renders them). Imports nothing of the package outside this folder.
"""
__version__ = "0.1.0"
