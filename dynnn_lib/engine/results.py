"""The result of a run: its schema (``dynnn.result/1``) and how it is stored and read back.

``result.json`` is written once, atomically, with a sha256 checksum: ``status`` (complete | failed), ``matrix``
(the configuration's head rule) and ``matrices`` (every head rule; rows of fractions, ``null`` for rows never
reached), ``routing`` (image -> responsible head), ``task_heads``, ``task_names``, ``logs`` (per task, with its
per-epoch training log), ``timings``, ``seed``, ``method`` (its description and how it departs from the paper's
protocol), ``provenance`` (commit, dirty tree, code fingerprint, threads), ``versions``, ``error``.
"""
from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dynnn_lib.core import __version__
from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.core.errors import ConfigError, DynnnError, ResultCorrupt
from dynnn_lib.evaluation.metrics import score_run
from dynnn_lib.evaluation.outputs import Outputs
from dynnn_lib.evaluation.routing import get_rule
from dynnn_lib.core.store import read_json_checked


@dataclass
class RunResult:
    config: RunConfig
    matrix: np.ndarray                 # N x N fractions; NaN rows for tasks never reached
    task_names: list[str]
    logs: list[dict]
    status: str = "complete"
    error: str | None = None
    timings: dict = field(default_factory=dict)
    model_bytes: int = 0
    path: Path | None = None
    cached: bool = False
    matrices: dict[str, np.ndarray] = field(default_factory=dict)  # every head rule
    routing: np.ndarray | None = None                              # R[i, j]: image of task j -> its head
    task_heads: list[int] = field(default_factory=list)            # head responsible for each task (last row)
    provenance: dict = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """Every registered metric under the result's head rule (a plugin's reading the outputs or logs too)."""
        return score_run(self.matrix, self.logs, self._stored_outputs, self.config.head_rule)

    def _stored_outputs(self) -> Outputs | None:
        path = None if self.path is None else self.path.parent / "outputs.pt"
        return Outputs.from_state(torch.load(path, weights_only=False)) if path and path.is_file() else None

    @property
    def routing_accuracy(self) -> list[float]:
        """Per task, after the whole stream: fraction of its test images routed to the head responsible for it."""
        return [] if self.routing is None else self.routing[-1].tolist()

    def with_rule(self, rule: str) -> "RunResult":
        """The same run scored under another head rule (no training; see evaluation.Outputs.score): a stored
        matrix, else (a rule registered after the run, e.g. a plugin's) its stored outputs scored now."""
        if rule not in self.matrices:
            matrix = self.outputs(rule).score(rule)
            return dataclasses.replace(self, matrix=matrix, matrices={**self.matrices, rule: matrix},
                                       config=self.config.replace(head_rule=rule))
        return dataclasses.replace(self, matrix=self.matrices[rule], config=self.config.replace(head_rule=rule))

    def outputs(self, rule: str | None = None) -> Outputs:
        """The run's stored test-set outputs (``outputs.pt`` beside result.json); `rule` names the rule wanted in
        the one-line error when they are not there."""
        get_rule(rule or self.config.head_rule)  # an unknown rule: its one-line error before any file is read
        outputs = self._stored_outputs()
        if outputs is None:
            why = f"head rule {rule!r} is not stored in this result" if rule else "this result has no stored outputs"
            raise ConfigError(f"{why} and its outputs.pt is not there to score it; rules stored: "
                              f"{', '.join(self.matrices) or 'none'}")
        return outputs

    @property
    def expanded_at(self) -> list[int]:
        return [log["task"] for log in self.logs if log["action"] == "expand"]

    def to_payload(self) -> dict:
        return {
            "status": self.status, "error": self.error, "config": self.config.to_dict(), "key": self.config.key(),
            "seed": self.config.seed, "task_names": self.task_names, "logs": self.logs, "timings": self.timings,
            "model_bytes": self.model_bytes, "matrix": _rows(self.matrix),
            "matrices": {k: _rows(m) for k, m in self.matrices.items()},
            "routing": None if self.routing is None else _rows(self.routing), "task_heads": self.task_heads,
            "provenance": self.provenance, "method": method_card(self.config),
            "versions": {"dynnn": __version__, "python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__},
        }

    @classmethod
    def from_payload(cls, body: dict, path: Path | None = None) -> "RunResult":
        try:
            routing = body.get("routing")
            return cls(config=from_dict(body["config"]), matrix=_array(body["matrix"]), task_names=list(body["task_names"]),
                       logs=list(body["logs"]), status=body["status"], error=body.get("error"),
                       timings=dict(body.get("timings", {})), model_bytes=int(body.get("model_bytes", 0)),
                       path=path, cached=True, matrices={k: _array(m) for k, m in body.get("matrices", {}).items()},
                       routing=None if routing is None else _array(routing), task_heads=list(body.get("task_heads", [])),
                       provenance=dict(body.get("provenance", {})))
        except (KeyError, TypeError, ValueError, DynnnError) as e:
            raise ResultCorrupt(f"{path or 'result'} does not match the result schema ({e}); delete it to recompute") from None


def _rows(matrix: np.ndarray) -> list:
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def _array(rows: list) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def load_result(path: str | Path) -> RunResult:
    """Read and verify a result.json."""
    path = Path(path)
    return RunResult.from_payload(read_json_checked(path), path)




def method_card(cfg: RunConfig) -> dict:
    """What the method is and how it departs from the paper's protocol (stored with every result)."""
    try:
        cls = cfg.method_class()
    except DynnnError:
        return {"name": cfg.method}
    return {"name": cls.name, "description": cls.describe(), "marks": cls.marks(), "frozen_trunk": cls.frozen_trunk,
            "expands": cls.expands, "uses_past_data": cls.uses_past_data, "incremental": cls.incremental}
