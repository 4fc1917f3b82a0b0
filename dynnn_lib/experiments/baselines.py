"""DynamicNN beside the in-workbench baselines (LwF, EWC, online EWC, replay, joint) on the same stream, loop and
model: one table of metrics and paired 95 % intervals of DynamicNN against each (``dynnn baselines``)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from dynnn_lib.core import make_all, options
from dynnn_lib.core.registry import import_modules
from dynnn_lib.core.store import atomic_text
from dynnn_lib.experiments.paper import AUTO_NAME, AUTO_OVERRIDES, BASELINES, VARIANTS
from dynnn_lib.reports import blocks
from dynnn_lib.experiments.reproduce import VariantSummary, reproduce
from dynnn_lib.evaluation.stats import paired

OURS = AUTO_NAME
COMPARED: dict[str, Mapping[str, Any]] = {"finetune": VARIANTS["finetune"],
                                          "DynamicNN (expand@1)": VARIANTS["DynamicNN (expand@1)"],
                                          OURS: AUTO_OVERRIDES, **BASELINES}


def compare(base: Mapping[str, Any] | None = None, seeds: Sequence[int] = (0, 1, 2), jobs: int = 2,
            runs_dir: str | Path | None = None, progress: bool = True,
            extra: Sequence[str] = ()) -> list[VariantSummary]:
    """The compared methods over `seeds`; `extra` adds registered methods by name (yours: import its module first),
    each with its default parameters, judged against DynamicNN on the same seeds like every baseline."""
    return reproduce(base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=progress, variants=variants(extra))


SCHEMA = "dynnn.baselines/2"


def variants(extra: Sequence[str] = ()) -> dict[str, Mapping[str, Any]]:
    return {**COMPARED, **{name: {"method": name} for name in extra if name not in COMPARED}}


def document(summaries: Sequence[VariantSummary]) -> dict[str, Any]:
    """The baselines' document: each method's summary and DynamicNN minus it (square and final row), paired over
    the same seeds."""
    from dynnn_lib.core.fingerprint import machine

    ours = next(s for s in summaries if s.name == OURS)
    methods = {}
    for s in summaries:
        diffs = {} if s is ours else {
            metric: paired([r.metrics[metric] for r in ours.results], [r.metrics[metric] for r in s.results]).to_dict()
            for metric in ("overall", "final")}
        methods[s.name] = {**s.payload(), "marks": s.results[0].config.method_class().marks(), "vs_dynamicnn": diffs}
    data = ours.results[0].config.data
    return {"schema": SCHEMA, "machine": machine(), "ours": OURS, "seeds": len(ours.results),
            "stream": data.stream, "instance": data.data_seed,
            "head_rule": ours.results[0].config.head_rule,
            "commits": sorted({(r.provenance.get("commit") or "?")[:10] for s in summaries for r in s.results}),
            "methods": methods}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", default="reports", help="folder for baselines.md/.json (default reports/)")
    ap.add_argument("--with", dest="extra", action="append", default=[], metavar="METHOD",
                    help="add a registered method to the table, paired against DynamicNN on the same seeds (yours: "
                         "--import its module), e.g. --import mymethods --with mine")
    options.run_options(ap)
    ap.set_defaults(seeds=make_all.read()["baseline_seeds"])  # make baselines' (params/make_all.yaml)


def command(args: argparse.Namespace) -> int:
    """dynnn baselines: DynamicNN beside LwF, EWC, online EWC, replay and joint (reports/baselines.md|json)."""
    options.check_counts(args)
    import_modules(args.imports)
    summaries = compare(options.base_config(args), seeds=range(args.seeds), jobs=args.jobs, runs_dir=args.runs_dir,
                        progress=not args.no_progress, extra=args.extra)
    doc = document(summaries)
    text = blocks.baselines_md(doc)
    print(text)
    out = Path(args.out)
    atomic_text(out / "baselines.md", "# DynamicNN beside the in-workbench baselines\n\n" + text + "\n")
    atomic_text(out / "baselines.json", json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {out / 'baselines.md'} and {out / 'baselines.json'}")
    return 0
