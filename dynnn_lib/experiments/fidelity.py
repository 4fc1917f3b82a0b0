"""Fidelity: our accuracy matrices beside the paper's, and which of the paper's claims held here, with statistics.

    dynnn fidelity [--seeds 1] [--jobs N] [--instances 1 2 3 4 5 6 7 8] [--head-rule router] [--runs-dir runs]
                   [--out reports] [--streams ...]   (part of make all)

The paper (the Hikvision poster, slide 8) published two 9x9 tables (lower triangle only, mean ± std over runs):
finetune, and DynamicNN "V2': use worst branch for KD loss, expand @ task [1,3]".  We run the same two
configurations and the paper's five headline variants on the embedded benchmark, with the same seeds on every
configuration, on each generated evaluation instance (``data.data_seed``; ``core/streams.EVALUATION_INSTANCES``,
never read by the calibration).

A claim about the method is a claim about data like the paper's, so the **instance** is the unit: each claim
"a > b" averages each side over its seeds within an instance and pairs the instances
(:func:`dynnn_lib.evaluation.stats.over_instances`: the interval covers the spread between instances), judged
against an equivalence margin fixed in code before any run (:data:`~dynnn_lib.evaluation.stats.MARGIN`, one
point, unless the claim says otherwise): *held*, *not held*, *equivalent* or *inconclusive*, the last with the
number of instances it would need at the observed spread. Writes, under ``--out``:

* ``fidelity.md``        - the report: machine, claims, routing accuracy, lower-triangle statistics, the
  calibration's objective and its skill beside the null models (experiments/objective.py), matrices;
* ``fidelity_claims.md`` - the claims table alone (the README includes it);
* ``fidelity.json``      - the document: every claim's numbers, per instance too, the routing accuracy, the
  statistics, the calibration's objective and skill per instance beside the null models, and the matrices (schema
  ``dynnn.fidelity/4``); the three pages are rendered from it alone
  (reports/pages.py);
* ``fidelity.html``      - the claims and the paper's two tables beside ours (mean over the instances; heatmaps,
  offline).
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dynnn_lib.experiments.objective import calibration_error, null_models, skill
from dynnn_lib.experiments.paper import (AUTO_NAME, AUTO_OVERRIDES, PAPER_DYNAMICNN, PAPER_FINETUNE, PAPER_SCORES,
                                         V2_NAME, V2_OVERRIDES, VARIANTS)
from dynnn_lib.core import make_all, options
from dynnn_lib.core.config import DataConfig, RunConfig
from dynnn_lib.core.streams import DEFAULT_STREAM, EVALUATION_INSTANCES
from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.core.fingerprint import machine
from dynnn_lib.evaluation.metrics import average_accuracy, diagonal, final, overall
from dynnn_lib.reports import pages
from dynnn_lib.reports.tables import pm
from dynnn_lib.experiments.reproduce import VariantSummary, variant_configs
from dynnn_lib.evaluation.routing import HEAD_RULES
from dynnn_lib.engine.executors import run_many
from dynnn_lib.evaluation.stats import (HELD, INCONCLUSIVE, MARGIN, NOT_HELD, Paired, all_of, mean_sd,
                                        over_instances)

_NAN = float("nan")

ALL_VARIANTS: dict[str, Mapping[str, Any]] = {**VARIANTS, V2_NAME: V2_OVERRIDES, AUTO_NAME: AUTO_OVERRIDES}
DISSIMILAR = (1, 3, 5)  # where the paper's finetune forgets most (and where it chose to expand)
SCHEMA = pages.FIDELITY_SCHEMA

FT, NOEXP, EXP1 = "finetune", "DynamicNN (no expand)", "DynamicNN (expand@1)"
NOEXP_LR, EXP1_LR = "DynamicNN (no expand) + LR trick", "DynamicNN (expand@1) + LR trick"
CHAIN = (FT, NOEXP, EXP1, NOEXP_LR)  # the paper's ordering by square performance
ORACLE_MARGIN = 0.02  # "the oracle is within 2 points of the router"


# ------------------------------------------------------------------ lower-triangle statistics (both sides)
# average_accuracy (lower triangle incl. the diagonal), final and diagonal are the project's own metrics; they read
# only published entries, so they apply to the paper's half-empty tables as they are.


def bwt_final(m) -> float:
    """Mean over tasks j < n-1 of (accuracy on j at the end) - (accuracy on j right after learning it)."""
    m = np.asarray(m, dtype=float)
    n = len(m)
    return float(np.mean([m[-1, j] - m[j, j] for j in range(n - 1)]))


def drops(m) -> np.ndarray:
    """drops[i] = mean over old tasks j < i of the accuracy lost while training task i (i >= 1)."""
    m = np.asarray(m, dtype=float)
    return np.array([_NAN] + [float(np.mean(m[i - 1, :i] - m[i, :i])) for i in range(1, len(m))])


def worst_tasks(m, k: int = 3) -> list[int]:
    d = drops(m)[1:]
    return sorted((np.argsort(-d)[:k] + 1).tolist())


STATS = {"lower-triangle mean": average_accuracy, "final row": final, "diagonal": diagonal,
         "BWT (final row)": bwt_final}


def stat_over_seeds(results, fn: Callable[[Any], float]) -> tuple[float, float]:
    """(mean, sample std) over seeds of fn(accuracy matrix)."""
    return mean_sd([fn(r.matrix) for r in results])


# ------------------------------------------------------------------ claims
Instances = Mapping[int, Mapping[str, VariantSummary]]  # benchmark instance (data_seed) -> variant name -> its runs


@dataclass
class Claim:
    """One claim, judged over the generated instances (the unit): the verdict, the numbers it came from."""

    claim: str                # the sentence, formatted from its sides
    paper: str                # the paper's numbers, or "not published"
    verdict: str              # held | not held | equivalent | inconclusive
    ours: str = ""            # our numbers: each side's mean ± sd between instances (percent)
    diff: str = ""            # the paired difference a - b in points with its 95 % interval ("" when not paired)
    needed: int | None = None  # an inconclusive claim: instances it would need at the observed spread
    kind: str = "paired"      # paired | all steps (a chain of paired sub-claims)
    numbers: dict = field(default_factory=dict)  # JSON-ready: per-instance values, the test

    @property
    def overall(self) -> str:
        return self.verdict

    def to_dict(self) -> dict:
        return {"claim": self.claim, "paper": self.paper, "kind": self.kind, "verdict": self.verdict,
                "ours": self.ours, "diff": self.diff, "needed": self.needed, "numbers": self.numbers}


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a statistic of one variant's accuracy matrices under a head rule."""

    variant: str
    stat: Callable[[Any], float]
    rule: str | None = None   # None: the head rule the report was built with (RunResult.matrix)


@dataclass(frozen=True)
class ClaimSpec:
    """A claim "a > b + offset" in code, before any run: its sentence, the paper's numbers, its sides and the
    equivalence margin it is judged against (its reason beside :data:`MARGIN`)."""

    claim: str
    paper: str
    a: Side
    b: Side
    offset: float = 0.0
    margin: float = MARGIN


def _matrix(r, rule: str | None):
    if rule is None:
        return r.matrix
    if rule not in r.matrices:
        raise DynnnError(f"run {r.config.key()} stores no matrix under head rule {rule!r}; delete its folder to "
                         "recompute it with every head rule")
    return r.matrices[rule]


def _per_seed(s: VariantSummary, side: Side) -> dict[int, float]:
    return {r.config.seed: float(side.stat(_matrix(r, side.rule))) for r in s.results}


def compare(by_instance: Instances, spec: ClaimSpec) -> Claim:
    """Judge "a > b + offset" with the instance as the unit: each side's mean over the seeds both ran on an
    instance, paired over the instances (stats.over_instances)."""
    a, b = spec.a, spec.b
    va, vb, per = {}, {}, {}
    for k, runs in by_instance.items():
        xa, xb = _per_seed(runs[a.variant], a), _per_seed(runs[b.variant], b)
        seeds = sorted(xa.keys() & xb.keys())
        if not seeds:
            raise DynnnError(f"{a.variant!r} and {b.variant!r} share no seed on instance {k}; run both with the "
                             "same seeds")
        va[k], vb[k] = [xa[s] for s in seeds], [xb[s] for s in seeds]
        per[str(k)] = {"seeds": seeds, "a": float(np.mean(va[k])), "b": float(np.mean(vb[k]))}
    test = over_instances(va, vb, spec.offset, spec.margin)
    ma, mb = (mean_sd([per[str(k)][side] for k in by_instance]) for side in ("a", "b"))
    numbers = {"a": a.variant, "b": b.variant, "instances": per, **test.to_dict()}
    return Claim(spec.claim, spec.paper, test.verdict, f"{pm(*ma)} vs {pm(*mb)}", test.format(), test.needed,
                 numbers=numbers)


def _paper_square(a: str, b: str) -> str:
    return f"{PAPER_SCORES[a]:.2f} vs {PAPER_SCORES[b]:.2f}"


def _paper_stat(fn: Callable[[Any], float], signed: bool = False) -> str:
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return f"{fmt.format(fn(PAPER_DYNAMICNN[0]) * 100)} vs {fmt.format(fn(PAPER_FINETUNE[0]) * 100)}"


def _sq(v: str, rule: str | None = None) -> Side:
    return Side(v, overall, rule)


def _fin(v: str, rule: str | None = None) -> Side:
    return Side(v, final, rule)


# two steps of the ordering are claims of their own
STEP_MEANING = {(FT, NOEXP): "DynamicNN (KD) beats finetune", (NOEXP, EXP1): "expanding at task 1 helps"}


def _step_claims() -> list[ClaimSpec]:
    """The paper's ordering (square performance), one paired claim per step."""
    out = []
    for i, (lo, hi) in enumerate(zip(CHAIN, CHAIN[1:]), 1):
        meaning = STEP_MEANING.get((lo, hi))
        out.append(ClaimSpec(f"ordering step {i}: {hi} beats {lo} ({meaning + '; ' if meaning else ''}square)",
                             _paper_square(hi, lo), _sq(hi), _sq(lo)))
    return out


def _square_claims() -> list[ClaimSpec]:
    """The paper's headline table (square performance) beyond the ordering: the LR trick."""
    return [ClaimSpec("the LR trick helps with expansion (square)", _paper_square(EXP1_LR, EXP1), _sq(EXP1_LR),
                      _sq(EXP1)),
            ClaimSpec("the LR trick helps without expansion (square)", _paper_square(NOEXP_LR, NOEXP), _sq(NOEXP_LR),
                      _sq(NOEXP))]


def drop_after(tasks: Sequence[int]) -> Callable[[Any], float]:
    """The mean accuracy lost on the earlier tasks while training each task of `tasks` (a statistic of a matrix)."""
    def stat(m) -> float:
        return float(np.mean(drops(m)[list(tasks)]))
    stat.__name__ = f"drop_after_{'_'.join(map(str, tasks))}"
    return stat


OTHERS = tuple(t for t in range(2, 9) if t not in DISSIMILAR)  # the similar tasks of the 9-task stream


def _forgetting_claim() -> ClaimSpec:
    tasks = ", ".join(map(str, DISSIMILAR))
    paper = f"{drop_after(DISSIMILAR)(PAPER_FINETUNE[0]) * 100:.2f} vs {drop_after(OTHERS)(PAPER_FINETUNE[0]) * 100:.2f}"
    return ClaimSpec(f"finetune forgets more right after the dissimilar tasks {tasks} than after the others (mean "
                     "drop on earlier tasks)", paper, Side(FT, drop_after(DISSIMILAR)), Side(FT, drop_after(OTHERS)))


def _matrix_claims() -> list[ClaimSpec]:
    """The paper's two published tables (V2' against finetune), then the head rules on DynamicNN expand@1."""
    within = f"the oracle is within {ORACLE_MARGIN * 100:g} points of the router (final row; judged as router > " \
             f"oracle − {ORACLE_MARGIN * 100:g})"
    return [
        ClaimSpec("DynamicNN V2' forgets less than finetune (BWT, final row)", _paper_stat(bwt_final, signed=True),
                  Side(V2_NAME, bwt_final), Side(FT, bwt_final)),
        ClaimSpec("the frozen trunk costs plasticity (diagonal: finetune above V2')",
                  f"{diagonal(PAPER_FINETUNE[0]) * 100:.2f} vs {diagonal(PAPER_DYNAMICNN[0]) * 100:.2f}",
                  Side(FT, diagonal), Side(V2_NAME, diagonal)),
        ClaimSpec("DynamicNN V2' beats finetune on the published (lower-triangle) entries",
                  _paper_stat(average_accuracy), Side(V2_NAME, average_accuracy), Side(FT, average_accuracy)),
        ClaimSpec("DynamicNN expand@1: the router beats mean_prob (final row)", "not published",
                  _fin(EXP1, "router"), _fin(EXP1, "mean_prob")),
        ClaimSpec(f"DynamicNN expand@1: {within}", "not published", _fin(EXP1, "router"), _fin(EXP1, "oracle"),
                  -ORACLE_MARGIN),
        ClaimSpec("DynamicNN (expand@1, router) beats finetune (final row)", "not published", _fin(EXP1, "router"),
                  _fin(FT)),
        ClaimSpec("DynamicNN (expand@1, router) beats finetune (square)", _paper_square(EXP1, FT),
                  _sq(EXP1, "router"), _sq(FT)),
        ClaimSpec("DynamicNN (auto < 0.5, routed KD, router) beats finetune (final row)", "not published",
                  _fin(AUTO_NAME, "router"), _fin(FT)),
        ClaimSpec("DynamicNN (auto < 0.5, routed KD, router) beats finetune (square)", "not published",
                  _sq(AUTO_NAME, "router"), _sq(FT)),
        ClaimSpec(f"DynamicNN (auto < 0.5, routed KD): {within}", "not published", _fin(AUTO_NAME, "router"),
                  _fin(AUTO_NAME, "oracle"), -ORACLE_MARGIN),
        ClaimSpec("the automatic rule protects task 0 better than expand@1 (task 0 after the whole stream, oracle)",
                  "not published", Side(AUTO_NAME, _task0_final, "oracle"), Side(EXP1, _task0_final, "oracle")),
        ClaimSpec("the automatic rule beats the paper's expand@1 schedule (final row, router)", "not published",
                  _fin(AUTO_NAME, "router"), _fin(EXP1, "router")),
    ]


def _task0_final(m) -> float:
    """Accuracy on task 0 after the whole stream: what distilling later domains into head 0 overwrote."""
    return float(np.asarray(m, dtype=float)[-1, 0])


def _ordering(by_instance: Instances, steps: Sequence[Claim]) -> Claim:
    """The paper's whole ordering: held only if every step held, not held if any step was not held."""
    verdicts = [s.verdict for s in steps]
    means = ", ".join(pm(*mean_sd([float(np.mean([overall(r.matrix) for r in by_instance[k][v].results]))
                                   for k in by_instance])) for v in CHAIN)
    return Claim("ordering: finetune < no expand < expand@1 < no expand + LR trick (square)",
                 " < ".join(f"{PAPER_SCORES[v]:.2f}" for v in CHAIN), all_of(verdicts), means,
                 f"{verdicts.count(HELD)} of {len(steps)} steps held", kind="all steps", numbers={"steps": verdicts})


def claims(by_instance: Instances) -> list[Claim]:
    """Every claim the code judges, over the instances of `by_instance`; a claim whose variants did not all run is
    left out, and the forgetting claim needs the 9-task stream."""
    if not by_instance:
        raise ConfigError("claims need the runs of at least one benchmark instance")
    have = set.intersection(*(set(runs) for runs in by_instance.values()))
    out: list[Claim] = []

    def judge(specs: list[ClaimSpec]) -> list[Claim]:
        return [compare(by_instance, spec) for spec in specs if {spec.a.variant, spec.b.variant} <= have]

    steps = judge(_step_claims())
    if set(CHAIN) <= have:
        out.append(_ordering(by_instance, steps))
    out += steps + judge(_square_claims())
    if FT in have:
        n = len(next(iter(by_instance.values()))[FT].results[0].matrix)
        spec = _forgetting_claim()
        out.append(compare(by_instance, spec) if n == 9 else
                   Claim(spec.claim, spec.paper, INCONCLUSIVE, f"needs the 9-task stream (have {n})"))
    return out + judge(_matrix_claims())


def decided(cl: Sequence[Claim]) -> int:
    """How many claims got a verdict other than inconclusive."""
    return sum(c.verdict != INCONCLUSIVE for c in cl)


def routing_accuracy(by_instance: Instances) -> dict[str, dict[int, tuple[float, float] | None]]:
    """variant -> instance -> (mean, sd) over seeds of the mean over tasks of the routing matrix's last row (the
    fraction of each task's test images the router sends to the head responsible for it); None without routing."""
    out: dict[str, dict[int, tuple[float, float] | None]] = {}
    for k, runs in by_instance.items():
        for name, s in runs.items():
            out.setdefault(name, {})[k] = s.routing
    return out


def over_the_instances(by_instance: Instances, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """A variant's accuracy matrix averaged over the seeds of each instance, then its mean and sample sd over the
    instances (the spread a claim's interval covers)."""
    per = np.stack([np.mean([r.matrix for r in by_instance[k][variant].results], 0) for k in by_instance])
    return per.mean(0), (per.std(0, ddof=1) if len(per) > 1 else np.zeros_like(per[0]))


# ------------------------------------------------------------------ report
def statistics(by_instance: Instances) -> dict[str, dict]:
    """The lower-triangle statistics of finetune and V2', the paper's and ours (each instance's mean over seeds)."""
    out: dict[str, dict] = {}
    for label, fn in STATS.items():
        ours = {str(k): {key: stat_over_seeds(runs[v].results, fn)[0] for key, v in (("finetune", FT), ("v2", V2_NAME))}
                for k, runs in by_instance.items()}
        out[label] = {"paper": {"finetune": fn(PAPER_FINETUNE[0]), "v2": fn(PAPER_DYNAMICNN[0])}, "ours": ours}
    return out


def objective(by_instance: Instances) -> dict[str, Any] | None:
    """The calibration's objective (RMSE on its 54 entries) and its skill on each instance, from the mean over the
    instance's seeds of finetune and of V2', their medians over the instances (the headline) and the null models
    they stand beside; None off the 9-task stream (the objective reads the paper's 9x9 tables)."""
    per = {}
    for k, runs in by_instance.items():
        ft, v2 = (np.mean([r.matrix for r in runs[v].results], 0) for v in (FT, V2_NAME))
        if ft.shape != (9, 9):
            return None
        per[str(k)] = {"rmse_calibration": calibration_error(ft, v2), "skill": skill(calibration_error(ft, v2))}
    return {"null_models": null_models(), "instances": per,
            **{key: float(np.median([v[key] for v in per.values()])) for key in ("rmse_calibration", "skill")}}


def stem(stream: str | None) -> str:
    """The report's file stem: ``fidelity`` on the default stand-in, ``fidelity-<stream>`` on another one."""
    return "fidelity" if stream in (None, DEFAULT_STREAM) else "fidelity-" + Path(str(stream)).stem


def report(by_instance: Instances, out_dir: str | Path, head_rule: str = "router",
           machine_info: Mapping[str, Any] | None = None, stream: str | None = None) -> Path:
    """Write the document fidelity.json, then fidelity.md, fidelity_claims.md and fidelity.html rendered from it
    (reports/pages.py; ``fidelity-<stream>.*`` on a stand-in other than the default); return the path of the .md.

    `by_instance` maps each benchmark instance (data_seed) to its runs by variant name (finetune and V2' at least).
    """
    if not by_instance:
        raise ConfigError("the fidelity report needs the runs of at least one benchmark instance")
    for k, runs in by_instance.items():
        missing = [v for v in (FT, V2_NAME) if v not in runs]
        if missing:
            raise ConfigError(f"benchmark instance {k} lacks the runs of {', '.join(missing)}; build() runs them all")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    instances = list(by_instance)
    first = by_instance[instances[0]][FT].results[0]
    cl = claims(by_instance)
    tables = {"finetune": (FT, PAPER_FINETUNE), "v2": (V2_NAME, PAPER_DYNAMICNN)}
    seeds = sorted({r.config.seed for runs in by_instance.values() for s in runs.values() for r in s.results})
    payload = {"schema": SCHEMA, "machine": dict(machine_info or machine()), "stream": first.config.data.stream,
               "instances": instances, "seeds": seeds,
               "head_rule": head_rule, "margin": MARGIN, "decided": decided(cl), "n_tasks": len(first.matrix),
               "task_names": list(first.task_names), "claims": [c.to_dict() for c in cl],
               "routing_accuracy": {name: {str(k): v for k, v in per.items()}
                                    for name, per in routing_accuracy(by_instance).items()},
               "statistics": statistics(by_instance), "objective": objective(by_instance),
               "matrices": {key: {"variant": v, "paper": _matrix_json(*paper),
                                  "ours": _matrix_json(*over_the_instances(by_instance, v))}
                            for key, (v, paper) in tables.items()}}
    name = stem(stream)
    pages.publish(payload, out_dir / f"{name}.json", {out_dir / f"{name}.md": pages.fidelity_md,
                                                       out_dir / f"{name}_claims.md": pages.fidelity_claims_md,
                                                       out_dir / f"{name}.html": pages.fidelity_html})
    return out_dir / f"{name}.md"


def _matrix_json(mean, sd) -> dict[str, list]:
    """A matrix's mean and sd as JSON (a missing entry, e.g. the paper's upper triangle, as null)."""
    return {"mean": pages.matrix_json(mean), "sd": pages.matrix_json(sd)}


# ------------------------------------------------------------------ runs
def _instance_base(base: Mapping[str, Any] | None, instance: int, head_rule: str,
                   stream: str | None = None) -> dict[str, Any]:
    values = dict(base or {})
    data = values.get("data") or {}
    if isinstance(data, DataConfig):
        data = dataclasses.asdict(data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"base['data'] must be a mapping of data settings, got {type(data).__name__}")
    return {**values, "head_rule": head_rule,
            "data": {**data, "data_seed": instance, **({"stream": stream} if stream else {})}}


def plan(base: Mapping[str, Any] | None = None, seeds: int = 1, instances: Sequence[int] = EVALUATION_INSTANCES,
         head_rule: str = "router", stream: str | None = None, variants: Sequence[str] = tuple(ALL_VARIANTS)
         ) -> dict[tuple[int, str], list[RunConfig]]:
    """(instance, variant) -> one configuration per seed: `variants` (default the paper's five, V2' and the automatic
    rule) on every instance of the generated stream `stream` (None: the base's, else the default stand-in)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds={seeds!r}: need at least 1 seed per instance (the instances are the unit)")
    inst = list(instances)
    bad = [k for k in inst if isinstance(k, bool) or not isinstance(k, int) or k < 0]
    if not inst or bad or len(set(inst)) != len(inst):
        raise ConfigError(f"instances={inst!r} must be distinct non-negative data seeds, e.g. 0 1")
    if head_rule not in HEAD_RULES:
        raise ConfigError(f"head rule {head_rule!r} is not valid; choose one of: {', '.join(HEAD_RULES)}")
    return {(k, name): cfgs for k in inst
            for name, cfgs in variant_configs(_instance_base(base, k, head_rule, stream), range(seeds),
                                              {v: ALL_VARIANTS[v] for v in variants}).items()}


def build(base: Mapping[str, Any] | None = None, seeds: int = 1, jobs: int = 2, runs_dir: str | Path | None = None,
          out_dir: str | Path = "reports", progress: bool = True, instances: Sequence[int] = EVALUATION_INSTANCES,
          head_rule: str = "router", streams: Sequence[str | None] = (None,)) -> list[Path]:
    """Run (or read from the cache) the paper's five variants, V2' and the automatic rule with `seeds` seeds on
    every benchmark instance (data.data_seed) of every stand-in in `streams`, all in one worker pool, then write a
    fidelity report per stand-in and, with two or more, the stand-ins side by side (:func:`standins_report`);
    returns the reports' .md paths (the side-by-side one last)."""
    if not streams or len(set(streams)) != len(streams):
        raise ConfigError(f"--streams {list(streams)!r}: name one or more distinct generated streams")
    groups = {(st, k, name): cfgs for i, st in enumerate(streams)
              for (k, name), cfgs in plan(base, seeds, instances_of(i, instances), head_rule, st,
                                          variants_of(i)).items()}
    flat = [cfg for cfgs in groups.values() for cfg in cfgs]
    results = iter(run_many(flat, runs_dir, jobs=jobs, progress=progress))
    by_stream: dict[str | None, dict[int, dict[str, VariantSummary]]] = {}
    for (st, k, name), cfgs in groups.items():
        by_stream.setdefault(st, {}).setdefault(k, {})[name] = VariantSummary(name, [next(results) for _ in cfgs])
    paths = [report(by_instance, out_dir, head_rule, stream=st) for st, by_instance in by_stream.items()]
    if len(by_stream) > 1:
        side = {st: {k: runs for k, runs in b.items() if k in instances_of(1, instances)} for st, b in by_stream.items()}
        paths.append(standins_report({next(iter(b.values()))[FT].results[0].config.data.stream: claims(b)
                                      for b in side.values()}, list(instances_of(1, instances)), out_dir,
                                     list(range(seeds))))
    return paths


SIDE_BY_SIDE = 3  # instances a stand-in after the first is judged on (make all: round1 beside the default): the
                  # calibration's evaluation instances (at least 3, so its median and spread mean something) and the
                  # side-by-side report's; three instances decide little, the default stand-in is judged on all of them
SIDE_BY_SIDE_VARIANTS = (FT, V2_NAME)  # what a stand-in after the first runs: the paper's two published tables, so
                  # the side-by-side judges the four claims between them (forgetting after the dissimilar tasks, BWT,
                  # the diagonal, the lower triangle) and the calibration's objective; the five variants' ordering and
                  # our extensions (router, automatic rule) are judged on the default stand-in alone (make all's hour)


def instances_of(i: int, instances: Sequence[int]) -> tuple[int, ...]:
    """The instances the i-th stand-in of a fidelity build runs on: all of them for the first, the first
    :data:`SIDE_BY_SIDE` for the others (the side-by-side report compares the stand-ins there)."""
    return tuple(instances) if i == 0 else tuple(instances)[:SIDE_BY_SIDE]


def variants_of(i: int) -> tuple[str, ...]:
    """The variants the i-th stand-in of a fidelity build runs: every one for the first,
    :data:`SIDE_BY_SIDE_VARIANTS` for the others."""
    return tuple(ALL_VARIANTS) if i == 0 else SIDE_BY_SIDE_VARIANTS


STANDINS_SCHEMA = pages.STANDINS_SCHEMA


def standins_report(by_stream: Mapping[str, Sequence[Claim]], instances: Sequence[int], out_dir: str | Path,
                    seeds: Sequence[int] = (0,)) -> Path:
    """reports/standins.json, and standins.md from it: every claim's verdict on each stand-in side by side, and
    whether it depends on the stand-in (its verdicts differ) - what a reader can believe about the method whatever
    the stand-in."""
    names = list(by_stream)
    by_text = {st: {c.claim: c for c in cl} for st, cl in by_stream.items()}
    payload = []
    for text in (c.claim for c in by_stream[names[0]]):
        if all(text in by_text[st] for st in names):
            cs = {st: by_text[st][text] for st in names}
            payload.append({"claim": text, "paper": cs[names[0]].paper,
                            "depends_on_standin": len({c.verdict for c in cs.values()}) > 1,
                            "overall": {st: c.verdict for st, c in cs.items()},
                            "diff": {st: c.diff for st, c in cs.items()}, "ours": {st: c.ours for st, c in cs.items()}})
    out_dir = Path(out_dir)
    doc = {"schema": STANDINS_SCHEMA, "streams": names, "machine": machine(), "instances": list(instances),
           "seeds": list(seeds), "margin": MARGIN, "claims": payload}
    pages.publish(doc, out_dir / "standins.json", {out_dir / "standins.md": pages.standins_md})
    return out_dir / "standins.md"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    s = make_all.read()  # the defaults: make all's (params/make_all.yaml)
    ap.add_argument("--seeds", type=int, default=s["seeds"],
                    help=f"seeds per instance (default {s['seeds']}: the instance is the unit)")
    options.jobs(ap, "parallel runs")
    ap.add_argument("--instances", type=int, nargs="+", default=list(s["instances"]),
                    help="generated evaluation instances (data.data_seed; core/streams.EVALUATION_INSTANCES, never "
                         f"read by the calibration); default {make_all.as_make(s['instances'])}")
    ap.add_argument("--head-rule", default="router", help=f"head rule of the report: {', '.join(HEAD_RULES)}")
    options.runs_dir(ap)
    ap.add_argument("--out", default="reports")
    ap.add_argument("--streams", nargs="+", default=list(s["standins"]), metavar="STREAM",
                    help=f"generated stand-ins to judge the claims on, side by side in standins.md after the first "
                         f"(default {make_all.as_make(s['standins'])})")


def command(args: argparse.Namespace) -> int:
    """dynnn fidelity: the fidelity report (reports/fidelity.md, .html, .json; one per stand-in)."""
    paths = build(seeds=args.seeds, jobs=args.jobs, runs_dir=args.runs_dir, out_dir=args.out,
                  instances=args.instances, head_rule=args.head_rule, streams=args.streams)
    print(paths[-1].read_text())
    return 0
