"""dynnn_lib: Dynamic Neural Network for incremental learning (Hikvision, IROS 2019 LOR challenge).

The data path is one line: stream -> model -> method -> metrics -> results -> plots.

>>> from dynnn_lib import RunConfig, run
>>> result = run(RunConfig(method="combined", method_params={"expand_at": (1,)}))      # doctest: +SKIP
>>> result.metrics["overall"]                                       # doctest: +SKIP
"""
__version__ = "0.1.0"

from .config import DataConfig, RunConfig, from_dict  # noqa: E402
from .paper import PAPER_SCORES, VARIANTS  # noqa: E402
from .methods import Method, TaskContext, TaskLog, available_methods, register  # noqa: E402
from .errors import ConfigError, DataError, DynnnError, ResultCorrupt, TrainingDiverged  # noqa: E402
from .metrics import aggregate, summarize  # noqa: E402
from .runner import RunResult, load_result, run, run_many, run_seeds  # noqa: E402
from .runs import runs_table  # noqa: E402

__all__ = [
    "DataConfig", "RunConfig", "VARIANTS", "PAPER_SCORES", "Method", "TaskContext", "TaskLog", "available_methods",
    "register", "from_dict", "ConfigError", "DataError", "DynnnError",
    "ResultCorrupt", "TrainingDiverged", "aggregate", "summarize", "RunResult", "load_result", "run", "run_many",
    "run_seeds", "runs_table",
]
