"""dynnn_lib: Dynamic Neural Network for incremental learning (Hikvision, IROS 2019 LOR challenge).

The data path is one line: stream -> model -> method -> metrics -> results -> plots.

>>> from dynnn_lib import RunConfig, run
>>> result = run(RunConfig(method="combined", method_params={"expand_at": (1,)}))      # doctest: +SKIP
>>> result.metrics["overall"]                                       # doctest: +SKIP
"""
from dynnn_lib.core import __version__  # noqa: E402,F401
from dynnn_lib.core import registry as _registry  # noqa: E402

# The modules that register the built-ins, imported on a registry's first lookup that misses: declared here, above
# every layer (each lives in a layer above core/registry.py, which names none of them; tests/test_layout.py reads
# these strings as this package's imports)
_registry.METHODS.declare("dynnn_lib.methods")
_registry.SOURCES.declare("dynnn_lib.data.sources")
_registry.EXPERIMENTS.declare("dynnn_lib.experiments.catalogue", "dynnn_lib.workbench.plan")
_registry.HEAD_RULES.declare("dynnn_lib.evaluation.routing")
_registry.METRICS.declare("dynnn_lib.evaluation.metrics")
from dynnn_lib.core.config import DataConfig, RunConfig, from_dict  # noqa: E402
from dynnn_lib.experiments.paper import PAPER_SCORES, VARIANTS  # noqa: E402
from dynnn_lib.methods import Method, TaskContext, TaskLog, available_methods, register  # noqa: E402
from dynnn_lib.core.errors import ConfigError, DataError, DynnnError, ResultCorrupt, TrainingDiverged  # noqa: E402
from dynnn_lib.evaluation.metrics import aggregate, summarize  # noqa: E402
from dynnn_lib.engine.executors import run_many, run_seeds  # noqa: E402
from dynnn_lib.engine.results import RunResult, load_result  # noqa: E402
from dynnn_lib.engine.runner import run  # noqa: E402
from dynnn_lib.engine.runs import runs_table  # noqa: E402

__all__ = [
    "DataConfig", "RunConfig", "VARIANTS", "PAPER_SCORES", "Method", "TaskContext", "TaskLog", "available_methods",
    "register", "from_dict", "ConfigError", "DataError", "DynnnError",
    "ResultCorrupt", "TrainingDiverged", "aggregate", "summarize", "RunResult", "load_result", "run", "run_many",
    "run_seeds", "runs_table",
]
