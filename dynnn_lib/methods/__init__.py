"""Methods as plugins: one small module each behind one interface; DynamicNN in dynamicnn/.

One interface (:class:`Method`, base.py), one shared loop (training.py), one registry (core/registry.py).
Built in: the paper's ``finetune``, ``expand``, ``kd``, ``combined`` and the baselines ``lwf``, ``ewc``,
``replay`` and ``joint``. Register your own with :func:`register` (from a notebook or a module) or under the
``dynnn.methods`` entry point group of your package; then ``run(RunConfig(method="yours"))``, the CLI
(``dynnn run --import yourmodule --method yours``), the batch report and the explorer run it like the others.
Imports core, data, model and evaluation; never the engine, a report or an experiment.
"""
from __future__ import annotations

import torch

from dynnn_lib.methods.base import (Method, NoParams, TaskContext, TaskLog, available_methods, get_method, register,
                                    train_first_task)
from dynnn_lib.methods.training import Batch, Concat, OptimizerMemory, Samples, fit, kd_loss, task_seed
from dynnn_lib.evaluation.outputs import History


def _discover() -> None:
    """Import every module of this folder (so each built-in registers itself): a new built-in method is one new
    file here, as a data source is one file in data/sources/ (no list of names to keep in step)."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def train_task(model, task, cfg, device: torch.device, progress: bool = False, history: History | None = None,
               stream=None, method: Method | None = None, memory: OptimizerMemory | None = None) -> TaskLog:
    """Train `model` on `task` as `cfg` says (task 0: full training; later: the method's step)."""
    torch.manual_seed(task_seed(cfg.seed, task.index))
    if task.index == 0:
        return train_first_task(model, task, cfg, device, progress, memory)
    method = method or get_method(cfg.method)(cfg, cfg.params())
    ctx = TaskContext.build(model, task, cfg, device, method, history=history or History(), stream=stream,
                            progress=progress, memory=memory)
    log = method.train_task(ctx)
    log.n_heads = len(model.heads)
    return log


__all__ = ["Method", "NoParams", "TaskContext", "TaskLog", "register", "get_method", "available_methods",
           "train_task", "train_first_task", "fit", "OptimizerMemory", "kd_loss", "task_seed", "Concat", "Batch", "Samples"]

_discover()
