"""Fidelity: our accuracy matrices beside the paper's, and which of the paper's claims held here, with statistics.

    python -m dynnn_lib.experiments.fidelity [--seeds 5] [--jobs 2] [--instances 0 1] [--head-rule router] [--runs-dir runs]
                                 [--out reports]   (part of make all)

The paper (the Hikvision poster, slide 8) published two 9x9 tables (lower triangle only, mean ± std over runs):
finetune, and DynamicNN "V2': use worst branch for KD loss, expand @ task [1,3]".  We run the same two
configurations and the paper's five headline variants on the embedded benchmark, with the same seeds
(``--seeds``, default 5) on every configuration, on each generated benchmark instance (``data.data_seed`` in
``--instances``, default 0 and 1).

Every claim "a > b" is a paired comparison over those seeds (:func:`dynnn_lib.evaluation.stats.paired`: mean difference
and its 95 % confidence interval) judged *held*, *not held* or *inconclusive* on each instance, and counts as
held only where it held on every instance (:func:`dynnn_lib.evaluation.stats.combine_verdicts`).  Writes, under ``--out``:

* ``fidelity.md``        - the report: machine, claims, routing accuracy, lower-triangle statistics, matrices;
* ``fidelity_claims.md`` - the claims table alone (the README includes it);
* ``fidelity.json``      - every claim's numbers per instance (schema ``dynnn.fidelity/1``);
* ``fidelity.html``      - the claims and the paper's two tables beside ours on the first instance (heatmaps,
  offline).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dynnn_lib.experiments.paper import (AUTO_NAME, AUTO_OVERRIDES, PAPER_DYNAMICNN, PAPER_FINETUNE, PAPER_SCORES,
                                         V2_NAME, V2_OVERRIDES, VARIANTS)
from dynnn_lib.core import options
from dynnn_lib.core.config import DataConfig, RunConfig
from dynnn_lib.core.streams import DEFAULT_STREAM
from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.core.fingerprint import cpu, machine_line as _machine_line, threads
from dynnn_lib.evaluation.metrics import average_accuracy, diagonal, final, overall
from dynnn_lib.reports.tables import html_page, html_table, markdown_matrix, markdown_table, pm
from dynnn_lib.experiments.reproduce import VariantSummary, variant_configs
from dynnn_lib.evaluation.routing import HEAD_RULES
from dynnn_lib.engine.executors import run_many
from dynnn_lib.evaluation.stats import HELD, INCONCLUSIVE, NOT_HELD, all_of, combine_verdicts, mean_sd, paired
from dynnn_lib.core.store import atomic_text

_NAN = float("nan")

ALL_VARIANTS: dict[str, Mapping[str, Any]] = {**VARIANTS, V2_NAME: V2_OVERRIDES, AUTO_NAME: AUTO_OVERRIDES}
DISSIMILAR = (1, 3, 5)  # where the paper's finetune forgets most (and where it chose to expand)
SCHEMA = "dynnn.fidelity/1"

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
class Judged:
    """One claim on one benchmark instance."""

    ours: str                 # our numbers (percent, mean ± sample std over seeds of each side)
    diff: str                 # the paired difference a - b in points with its 95 % CI ("" when not paired)
    verdict: str              # held | not held | inconclusive
    numbers: dict = field(default_factory=dict)  # JSON-ready: per-seed values, means, the interval


@dataclass
class Claim:
    """One of the paper's claims, judged on every benchmark instance."""

    claim: str
    paper: str                # the paper's numbers, or "not published"
    on: dict[int, Judged]     # instance -> judgement
    kind: str = "paired"      # paired | all steps (a chain of paired sub-claims) | descriptive

    @property
    def overall(self) -> str:
        return combine_verdicts(j.verdict for j in self.on.values())

    def to_dict(self) -> dict:
        return {"claim": self.claim, "paper": self.paper, "kind": self.kind, "overall": self.overall,
                "instances": {str(k): dataclasses.asdict(j) for k, j in self.on.items()}}


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a statistic of one variant's accuracy matrices under a head rule."""

    variant: str
    stat: Callable[[Any], float]
    rule: str | None = None   # None: the head rule the report was built with (RunResult.matrix)


def _matrix(r, rule: str | None):
    if rule is None:
        return r.matrix
    if rule not in r.matrices:
        raise DynnnError(f"run {r.config.key()} stores no matrix under head rule {rule!r}; delete its folder to "
                         "recompute it with every head rule")
    return r.matrices[rule]


def _per_seed(s: VariantSummary, side: Side) -> dict[int, float]:
    return {r.config.seed: float(side.stat(_matrix(r, side.rule))) for r in s.results}


def _pct(x: float) -> str:
    return f"{x * 100:+.2f}" if np.isfinite(x) else ("+∞" if x > 0 else "-∞")


def compare(runs: Mapping[str, VariantSummary], a: Side, b: Side, margin: float = 0.0) -> Judged:
    """Judge "a > b + margin" on one instance, paired over the seeds both sides ran."""
    va, vb = _per_seed(runs[a.variant], a), _per_seed(runs[b.variant], b)
    seeds = sorted(va.keys() & vb.keys())
    if not seeds:
        raise DynnnError(f"{a.variant!r} and {b.variant!r} share no seed; run both with the same seeds")
    xa, xb = [va[s] for s in seeds], [vb[s] for s in seeds]
    test = paired(xa, xb, margin)
    (ma, sa), (mb, sb) = mean_sd(xa), mean_sd(xb)
    numbers = {"seeds": seeds, "a": {"variant": a.variant, "values": xa, "mean": ma, "sd": sa},
               "b": {"variant": b.variant, "values": xb, "mean": mb, "sd": sb}, **test.to_dict()}
    return Judged(f"{pm(ma, sa)} vs {pm(mb, sb)}",
                  f"{_pct(test.mean_diff)} [{_pct(test.ci_low)}, {_pct(test.ci_high)}]", test.verdict, numbers)


def _paper_square(a: str, b: str) -> str:
    return f"{PAPER_SCORES[a]:.2f} vs {PAPER_SCORES[b]:.2f}"


def _paper_stat(fn: Callable[[Any], float], signed: bool = False) -> str:
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return f"{fmt.format(fn(PAPER_DYNAMICNN[0]) * 100)} vs {fmt.format(fn(PAPER_FINETUNE[0]) * 100)}"


PairSpec = tuple[str, str, Side, Side, float]  # claim "a > b + margin", the paper's numbers, a, b, margin


def _sq(v: str, rule: str | None = None) -> Side:
    return Side(v, overall, rule)


def _fin(v: str, rule: str | None = None) -> Side:
    return Side(v, final, rule)


# two steps of the ordering are claims of their own
STEP_MEANING = {(FT, NOEXP): "DynamicNN (KD) beats finetune", (NOEXP, EXP1): "expanding at task 1 helps"}


def _step_claims() -> list[PairSpec]:
    """The paper's ordering (square performance), one paired claim per step."""
    out = []
    for i, (lo, hi) in enumerate(zip(CHAIN, CHAIN[1:]), 1):
        meaning = STEP_MEANING.get((lo, hi))
        out.append((f"ordering step {i}: {hi} beats {lo} ({meaning + '; ' if meaning else ''}square)",
                    _paper_square(hi, lo), _sq(hi), _sq(lo), 0.0))
    return out


def _square_claims() -> list[PairSpec]:
    """The paper's headline table (square performance) beyond the ordering: the LR trick."""
    return [("the LR trick helps with expansion (square)", _paper_square(EXP1_LR, EXP1), _sq(EXP1_LR), _sq(EXP1), 0),
            ("the LR trick helps without expansion (square)", _paper_square(NOEXP_LR, NOEXP), _sq(NOEXP_LR),
             _sq(NOEXP), 0)]


def _matrix_claims() -> list[PairSpec]:
    """The paper's two published tables (V2' against finetune), then the head rules on DynamicNN expand@1."""
    return [
        ("DynamicNN V2' forgets less than finetune (BWT, final row)", _paper_stat(bwt_final, signed=True),
         Side(V2_NAME, bwt_final), Side(FT, bwt_final), 0),
        ("the frozen trunk costs plasticity (diagonal: finetune above V2')",
         f"{diagonal(PAPER_FINETUNE[0]) * 100:.2f} vs {diagonal(PAPER_DYNAMICNN[0]) * 100:.2f}",
         Side(FT, diagonal), Side(V2_NAME, diagonal), 0),
        ("DynamicNN V2' beats finetune on the published (lower-triangle) entries", _paper_stat(average_accuracy),
         Side(V2_NAME, average_accuracy), Side(FT, average_accuracy), 0),
        ("DynamicNN expand@1: the router beats mean_prob (final row)", "not published",
         _fin(EXP1, "router"), _fin(EXP1, "mean_prob"), 0),
        (f"DynamicNN expand@1: the oracle is within {ORACLE_MARGIN * 100:g} points of the router (final row; "
         f"judged as router > oracle − {ORACLE_MARGIN * 100:g})", "not published",
         _fin(EXP1, "router"), _fin(EXP1, "oracle"), -ORACLE_MARGIN),
        ("DynamicNN (expand@1, router) beats finetune (final row)", "not published",
         _fin(EXP1, "router"), _fin(FT), 0),
        ("DynamicNN (expand@1, router) beats finetune (square)", _paper_square(EXP1, FT),
         _sq(EXP1, "router"), _sq(FT), 0),
        ("DynamicNN (auto < 0.5, routed KD, router) beats finetune (final row)", "not published",
         _fin(AUTO_NAME, "router"), _fin(FT), 0),
        ("DynamicNN (auto < 0.5, routed KD, router) beats finetune (square)", "not published",
         _sq(AUTO_NAME, "router"), _sq(FT), 0),
        (f"DynamicNN (auto < 0.5, routed KD): the oracle is within {ORACLE_MARGIN * 100:g} points of the router "
         f"(final row)", "not published", _fin(AUTO_NAME, "router"), _fin(AUTO_NAME, "oracle"), -ORACLE_MARGIN),
        ("the automatic rule protects task 0 better than expand@1 (task 0 after the whole stream, oracle)",
         "not published", Side(AUTO_NAME, _task0_final, "oracle"), Side(EXP1, _task0_final, "oracle"), 0),
        ("the automatic rule beats the paper's expand@1 schedule (final row, router)", "not published",
         _fin(AUTO_NAME, "router"), _fin(EXP1, "router"), 0),
    ]


def _task0_final(m) -> float:
    """Accuracy on task 0 after the whole stream: what distilling later domains into head 0 overwrote."""
    return float(np.asarray(m, dtype=float)[-1, 0])


def _ordering(by_instance: Instances, steps: Sequence[Claim]) -> Claim:
    """The paper's whole ordering: held only if every step held, not held if any step was not held."""
    on = {}
    for k, runs in by_instance.items():
        verdicts = [s.on[k].verdict for s in steps]
        means = ", ".join(pm(*stat_over_seeds(runs[v].results, overall)) for v in CHAIN)
        on[k] = Judged(means, f"{verdicts.count(HELD)} of {len(steps)} steps held", all_of(verdicts),
                       {"steps": verdicts})
    return Claim("ordering: finetune < no expand < expand@1 < no expand + LR trick (square)",
                 " < ".join(f"{PAPER_SCORES[v]:.2f}" for v in CHAIN), on, kind="all steps")


def _forgetting(runs: Mapping[str, VariantSummary]) -> Judged:
    """Descriptive: does finetune lose most right after tasks 1, 3, 5?  All three: held, two: inconclusive."""
    ft = runs[FT]
    n = len(ft.results[0].matrix)
    if n != 9:
        return Judged(f"needs the 9-task stream (have {n})", "", INCONCLUSIVE, {"n_tasks": n})
    per_seed = [worst_tasks(r.matrix) for r in ft.results]
    mean_drops = np.mean([drops(r.matrix) for r in ft.results], 0)[1:]
    worst = worst_tasks(ft.agg["matrix_mean"])
    overlap = len(set(worst) & set(DISSIMILAR))
    text = f"tasks {worst} (per seed {per_seed}; drops {', '.join(f'{d * 100:.1f}' for d in mean_drops)})"
    return Judged(text, "", {3: HELD, 2: INCONCLUSIVE}.get(overlap, NOT_HELD),
                  {"worst": worst, "per_seed": per_seed, "mean_drops": mean_drops.tolist(), "overlap": overlap})


def claims(by_instance: Instances) -> list[Claim]:
    """Every claim the code judges, on every instance; a claim whose variants did not all run is left out."""
    if not by_instance:
        raise ConfigError("claims need the runs of at least one benchmark instance")
    have = set.intersection(*(set(runs) for runs in by_instance.values()))
    out: list[Claim] = []

    def judge(specs: list[PairSpec]) -> list[Claim]:
        return [Claim(text, paper, {k: compare(runs, a, b, margin) for k, runs in by_instance.items()})
                for text, paper, a, b, margin in specs if {a.variant, b.variant} <= have]

    steps = judge(_step_claims())
    if set(CHAIN) <= have:
        out.append(_ordering(by_instance, steps))
    out += steps + judge(_square_claims())
    if FT in have:
        out.append(Claim("finetune forgets most right after the dissimilar tasks 1, 3, 5 (3 largest drops)",
                         f"tasks {worst_tasks(PAPER_FINETUNE[0])}",
                         {k: _forgetting(runs) for k, runs in by_instance.items()}, kind="descriptive"))
    return out + judge(_matrix_claims())


def routing_accuracy(by_instance: Instances) -> dict[str, dict[int, tuple[float, float] | None]]:
    """variant -> instance -> (mean, sd) over seeds of the mean over tasks of the routing matrix's last row (the
    fraction of each task's test images the router sends to the head responsible for it); None without routing."""
    out: dict[str, dict[int, tuple[float, float] | None]] = {}
    for k, runs in by_instance.items():
        for name, s in runs.items():
            out.setdefault(name, {})[k] = s.routing
    return out


# ------------------------------------------------------------------ report
def machine() -> dict:
    """The machine the report came from: CPU model and family, core count, torch threads per run, date."""
    return {"cpu": cpu()["model"], "cpu_family": cpu()["family"], "cores": os.cpu_count(), "threads_per_run": threads(),
            "line": _machine_line(), "date": datetime.date.today().isoformat()}


def machine_line(m: Mapping[str, Any]) -> str:
    t = m["threads_per_run"]
    where = m.get("line") or (f"{m['cpu']}, {m['cores']} cores, {t} torch thread{'s' if t != 1 else ''} per run")
    return f"Machine: {where}; generated {m['date']}."


def claims_table(cl: Sequence[Claim], instances: Sequence[int],
                 mark: Callable[[str], str] = lambda v: v) -> list[list[str]]:
    """Header row, then one row per claim: claim, the paper, per instance (ours, Δ with 95 % CI, verdict), overall
    verdict; `mark` dresses the verdict cells (e.g. bold)."""
    head = ["claim", "the paper"]
    for k in instances:
        head += [f"ours, instance {k}", f"Δ [95 % CI], instance {k}", f"verdict, instance {k}"]
    rows = [head + ["overall"]]
    for c in cl:
        row = [c.claim, c.paper]
        for k in instances:
            row += [c.on[k].ours, c.on[k].diff or "—", mark(c.on[k].verdict)]
        rows.append(row + [mark(c.overall)])
    return rows


VERDICT_LEGEND = ("Δ = a − b for the claim \"a > b\", in points: the mean over seeds of the paired (same-seed) "
                  "difference with its 95 % confidence interval (Student t, n − 1 degrees of freedom). *held*: the "
                  "interval lies above 0; *not held*: below 0; *inconclusive*: it contains 0 (always so with one "
                  "seed). Overall: held only if held on every benchmark instance, not held only if not held on every "
                  "one. The ordering row holds only if every step held. The forgetting claim is descriptive (no "
                  "pairing): held if finetune's 3 largest mean drops follow tasks 1, 3 and 5, inconclusive if two "
                  "of them do, not held otherwise.")


def _routing_table(routing: Mapping[str, Mapping[int, tuple[float, float] | None]], instances: Sequence[int]) -> str:
    rows = [["variant"] + [f"instance {k}" for k in instances]]
    rows += [[name] + [pm(*v[k]) if v.get(k) else "—" for k in instances] for name, v in routing.items()]
    return markdown_table(rows)


def _statistics(by_instance: Instances) -> tuple[str, dict]:
    """The lower-triangle statistics of finetune and V2', the paper's and ours: a Markdown table and its numbers."""
    inst = list(by_instance)
    rows = [["statistic", "the paper: finetune"] + [f"ours: finetune, instance {k}" for k in inst]
            + ["the paper: V2'"] + [f"ours: V2', instance {k}" for k in inst]]
    numbers: dict[str, dict] = {}
    for label, fn in STATS.items():
        ft = {k: stat_over_seeds(by_instance[k][FT].results, fn) for k in inst}
        v2 = {k: stat_over_seeds(by_instance[k][V2_NAME].results, fn) for k in inst}
        rows.append([label, f"{fn(PAPER_FINETUNE[0]) * 100:.2f}"] + [pm(*ft[k]) for k in inst]
                    + [f"{fn(PAPER_DYNAMICNN[0]) * 100:.2f}"] + [pm(*v2[k]) for k in inst])
        numbers[label] = {"paper": {"finetune": fn(PAPER_FINETUNE[0]), "v2": fn(PAPER_DYNAMICNN[0])},
                          "ours": {str(k): {"finetune": ft[k], "v2": v2[k]} for k in inst}}
    return markdown_table(rows), numbers


def _html(cl: Sequence[Claim], by_instance: Instances, mach: Mapping[str, Any], head_rule: str,
          seeds: list[int]) -> str:
    """The claims and the paper's two tables beside ours on the first instance (plotly heatmaps, offline)."""
    import plotly.io as pio

    from dynnn_lib.reports import figures as viz

    instances = list(by_instance)
    k0 = instances[0]
    ft, v2 = by_instance[k0][FT], by_instance[k0][V2_NAME]
    names = ft.results[0].task_names
    figs = [viz.heatmap(*PAPER_FINETUNE, None, title="the paper: finetune (lower triangle published)", zmin=50),
            viz.heatmap(ft.agg["matrix_mean"], ft.agg["matrix_std"], names,
                        title=f"ours: finetune (instance {k0}, {len(ft.results)} seeds)", zmin=50),
            viz.heatmap(*PAPER_DYNAMICNN, None, title="the paper: DynamicNN V2' (worst head, expand@[1,3])", zmin=50),
            viz.heatmap(v2.agg["matrix_mean"], v2.agg["matrix_std"], names,
                        title=f"ours: DynamicNN V2' (instance {k0}, {len(v2.results)} seeds)", zmin=50)]
    divs = [pio.to_html(f, full_html=False, include_plotlyjs=i == 0, div_id=f"fidelity-{i}")
            for i, f in enumerate(figs)]
    table = claims_table(cl, instances, mark=lambda v: f"<b>{html.escape(v)}</b>")
    table = [[x if x.startswith("<b>") else html.escape(x) for x in row] for row in table]
    return html_page("Fidelity: the paper's tables beside ours",
                     f"<p>{html.escape(machine_line(mach))}</p>"
                     f"<p>Generated stream {html.escape(str(ft.results[0].config.data.stream))}, instances {instances}, "
                     f"seeds {seeds}, head rule {html.escape(head_rule)}; "
                     f"colour scale from 50 %.</p>{html_table(table, raw=True)}<p>{html.escape(VERDICT_LEGEND)}</p>"
                     f"<div class='pair'>{divs[0]}{divs[1]}</div><div class='pair'>{divs[2]}{divs[3]}</div>")


def stem(stream: str | None) -> str:
    """The report's file stem: ``fidelity`` on the default stand-in, ``fidelity-<stream>`` on another one."""
    return "fidelity" if stream in (None, DEFAULT_STREAM) else "fidelity-" + Path(str(stream)).stem


def report(by_instance: Instances, out_dir: str | Path, head_rule: str = "router",
           machine_info: Mapping[str, Any] | None = None, stream: str | None = None) -> Path:
    """Write fidelity.md, fidelity_claims.md, fidelity.json and fidelity.html (``fidelity-<stream>.*`` on a stand-in
    other than the default); return the path of the .md.

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
    mach = dict(machine_info or machine())
    instances = list(by_instance)
    ft, v2 = by_instance[instances[0]][FT], by_instance[instances[0]][V2_NAME]
    n_tasks = len(ft.results[0].matrix)
    seeds = sorted({r.config.seed for runs in by_instance.values() for s in runs.values() for r in s.results})
    cl = claims(by_instance)
    routing = routing_accuracy(by_instance)
    stats_md, stats_json = _statistics(by_instance)
    claims_md = markdown_table(claims_table(cl, instances, mark=lambda v: f"**{v}**"))

    name = stem(stream)
    standin = ft.results[0].config.data.stream
    md = [machine_line(mach), "", f"# Fidelity: the paper's tables beside ours (stand-in {standin})", "",
          f"Generated stream `{standin}`, {n_tasks} tasks, generated instances data_seed = {instances}; seeds {seeds} "
          f"({len(seeds)} per configuration, the same on every configuration); head rule {head_rule!r}. Percent, "
          "mean ± sample std over seeds. The paper's numbers are from the poster/slide 8 (lower triangle only) and "
          f"its headline table; ours use the same statistics. Regenerate: `dynnn fidelity --seeds "
          f"{len(seeds)} --instances {' '.join(map(str, instances))} --head-rule {head_rule} --streams {standin}`.", "",
          "## Claims", "", claims_md, "", VERDICT_LEGEND, "",
          "## Routing accuracy", "",
          "Fraction of each task's test images the router sends to the head responsible for it, after the whole "
          "stream (mean over tasks; mean ± sample std over seeds). Variants that never expand have one head, so "
          "every image reaches it.", "", _routing_table(routing, instances), "",
          "## Lower-triangle statistics (same definitions on both sides)", "", stats_md, "",
          "V2' = the paper's DynamicNN table: KD from the worst-scoring head, expansion at tasks 1 and 3.", ""]
    for title, (sm, ss), ours in (("Finetune", PAPER_FINETUNE, ft), ("DynamicNN V2'", PAPER_DYNAMICNN, v2)):
        md += [f"## {title}: the paper", "", markdown_matrix(sm, ss, lower_only=True), "",
               f"## {title}: ours, instance {instances[0]} (lower triangle; full matrix in fidelity.html)", "",
               markdown_matrix(ours.agg["matrix_mean"], ours.agg["matrix_std"], lower_only=True), ""]
    atomic_text(out_dir / f"{name}.md", "\n".join(md) + "\n")
    atomic_text(out_dir / f"{name}_claims.md", claims_md + "\n")
    payload = {"schema": SCHEMA, "machine": mach, "stream": standin, "instances": instances, "seeds": seeds,
               "head_rule": head_rule,
               "n_tasks": n_tasks, "claims": [c.to_dict() for c in cl],
               "routing_accuracy": {name: {str(k): v for k, v in per.items()} for name, per in routing.items()},
               "statistics": stats_json}
    atomic_text(out_dir / f"{name}.json", json.dumps(payload, indent=1, allow_nan=False) + "\n")
    atomic_text(out_dir / f"{name}.html", _html(cl, by_instance, mach, head_rule, seeds))
    return out_dir / f"{name}.md"


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


def plan(base: Mapping[str, Any] | None = None, seeds: int = 5, instances: Sequence[int] = (0, 1),
         head_rule: str = "router", stream: str | None = None) -> dict[tuple[int, str], list[RunConfig]]:
    """(instance, variant) -> one configuration per seed: the paper's five variants, V2' and the automatic rule on
    every instance of the generated stream `stream` (None: the base's, else the default stand-in)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds={seeds!r}: need at least 1 seed (2 or more for a confidence interval; 5 by default)")
    inst = list(instances)
    bad = [k for k in inst if isinstance(k, bool) or not isinstance(k, int) or k < 0]
    if not inst or bad or len(set(inst)) != len(inst):
        raise ConfigError(f"instances={inst!r} must be distinct non-negative data seeds, e.g. 0 1")
    if head_rule not in HEAD_RULES:
        raise ConfigError(f"head rule {head_rule!r} is not valid; choose one of: {', '.join(HEAD_RULES)}")
    return {(k, name): cfgs for k in inst
            for name, cfgs in variant_configs(_instance_base(base, k, head_rule, stream), range(seeds),
                                              ALL_VARIANTS).items()}


def build(base: Mapping[str, Any] | None = None, seeds: int = 5, jobs: int = 2, runs_dir: str | Path | None = None,
          out_dir: str | Path = "reports", progress: bool = True, instances: Sequence[int] = (0, 1),
          head_rule: str = "router", streams: Sequence[str | None] = (None,)) -> list[Path]:
    """Run (or read from the cache) the paper's five variants, V2' and the automatic rule with `seeds` seeds on
    every benchmark instance (data.data_seed) of every stand-in in `streams`, all in one worker pool, then write a
    fidelity report per stand-in and, with two or more, the stand-ins side by side (:func:`standins_report`);
    returns the reports' .md paths (the side-by-side one last)."""
    if not streams or len(set(streams)) != len(streams):
        raise ConfigError(f"--streams {list(streams)!r}: name one or more distinct generated streams")
    groups = {(st, k, name): cfgs for st in streams
              for (k, name), cfgs in plan(base, seeds, instances, head_rule, st).items()}
    flat = [cfg for cfgs in groups.values() for cfg in cfgs]
    results = iter(run_many(flat, runs_dir, jobs=jobs, progress=progress))
    by_stream: dict[str | None, dict[int, dict[str, VariantSummary]]] = {}
    for (st, k, name), cfgs in groups.items():
        by_stream.setdefault(st, {}).setdefault(k, {})[name] = VariantSummary(name, [next(results) for _ in cfgs])
    paths = [report(by_instance, out_dir, head_rule, stream=st) for st, by_instance in by_stream.items()]
    if len(by_stream) > 1:
        paths.append(standins_report({next(iter(b.values()))[FT].results[0].config.data.stream: claims(b)
                                      for b in by_stream.values()}, list(instances), out_dir))
    return paths


STANDINS = (DEFAULT_STREAM, "round1")  # make all: the calibrated stand-in (the default) and the one before it


def standins_report(by_stream: Mapping[str, Sequence[Claim]], instances: Sequence[int], out_dir: str | Path) -> Path:
    """reports/standins.md|json: every claim's verdict on each stand-in side by side, and whether it depends on the
    stand-in (its overall verdicts differ) - what a reader can believe about the method whatever the stand-in."""
    names = list(by_stream)
    texts = [c.claim for c in by_stream[names[0]]]
    by_text = {st: {c.claim: c for c in cl} for st, cl in by_stream.items()}
    head = ["claim", "the paper"] + [f"{st}: Δ [95 % CI] per instance; verdict" for st in names] + ["depends on the stand-in"]
    rows, payload = [head], []
    for text in texts:
        if not all(text in by_text[st] for st in names):
            continue
        cs = [by_text[st][text] for st in names]
        cells = ["; ".join(c.on[k].diff or c.on[k].ours for k in instances) + f"; **{c.overall}**" for c in cs]
        depends = "yes" if len({c.overall for c in cs}) > 1 else "no"
        rows.append([text, cs[0].paper, *cells, depends])
        payload.append({"claim": text, "paper": cs[0].paper, "depends_on_standin": depends == "yes",
                        "overall": {st: c.overall for st, c in zip(names, cs)}})
    out_dir = Path(out_dir)
    n_dep = sum(p["depends_on_standin"] for p in payload)
    md = ["# The paper's claims on two stand-ins", "",
          f"Each claim judged on the generated stand-ins {', '.join(f'`{n}`' for n in names)} (instances {list(instances)}, "
          "the same seeds on every configuration; paired 95 % intervals as in fidelity.md). A claim whose overall "
          f"verdict differs between them depends on the stand-in: {n_dep} of {len(payload)} do.", "",
          markdown_table(rows), "", VERDICT_LEGEND, ""]
    atomic_text(out_dir / "standins.md", "\n".join(md))
    atomic_text(out_dir / "standins.json", json.dumps({"schema": "dynnn.standins/1", "streams": names,
                                                        "instances": list(instances), "claims": payload}, indent=1) + "\n")
    return out_dir / "standins.md"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    options.jobs(ap)
    ap.add_argument("--instances", type=int, nargs="+", default=[0, 1],
                    help="generated benchmark instances (data.data_seed); default 0 1")
    ap.add_argument("--head-rule", default="router", help=f"head rule of the report: {', '.join(HEAD_RULES)}")
    options.runs_dir(ap)
    ap.add_argument("--out", default="reports")
    ap.add_argument("--streams", nargs="+", default=[DEFAULT_STREAM], metavar="STREAM",
                    help=f"generated stand-ins to judge the claims on (default {DEFAULT_STREAM}; make all: "
                         f"{' '.join(STANDINS)}, side by side in standins.md)")


def command(args: argparse.Namespace) -> int:
    """dynnn fidelity: the fidelity report (reports/fidelity.md, .html, .json; one per stand-in)."""
    paths = build(seeds=args.seeds, jobs=args.jobs, runs_dir=args.runs_dir, out_dir=args.out,
                  instances=args.instances, head_rule=args.head_rule, streams=args.streams)
    print(paths[-1].read_text())
    return 0
