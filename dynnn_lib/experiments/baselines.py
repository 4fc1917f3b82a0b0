"""DynamicNN beside the in-workbench baselines (LwF, EWC, online EWC, replay, joint) on the same stream, loop and
model: one table of metrics and paired 95 % intervals of DynamicNN against each (``dynnn baselines``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from dynnn_lib.experiments.paper import AUTO_NAME, AUTO_OVERRIDES, BASELINES, VARIANTS
from dynnn_lib.reports.tables import markdown_table, pm
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
    variants = {**COMPARED, **{name: {"method": name} for name in extra if name not in COMPARED}}
    return reproduce(base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=progress, variants=variants)


def report(summaries: Sequence[VariantSummary]) -> tuple[str, dict]:
    """Markdown (metrics per method; DynamicNN minus each other method with its paired 95 % CI) and its numbers."""
    ours = next(s for s in summaries if s.name == OURS)
    rows = [["method", "square", "final row", "BWT", "DynamicNN − it, square [95 % CI]",
             "DynamicNN − it, final row [95 % CI]", "note"]]
    payload = {}
    for s in summaries:
        m, card = s.agg["metrics"], s.results[0].config.method_class()
        diffs = {}
        if s is not ours:
            for metric in ("overall", "final"):
                p = paired([r.metrics[metric] for r in ours.results], [r.metrics[metric] for r in s.results])
                diffs[metric] = p
        cell = lambda k: (f"{diffs[k].mean_diff * 100:+.2f} [{diffs[k].ci_low * 100:+.2f}, "  # noqa: E731
                          f"{diffs[k].ci_high * 100:+.2f}] {diffs[k].verdict}" if k in diffs else "—")
        rows.append([s.name, pm(*m["overall"]), pm(*m["final"]), pm(*m["bwt"]), cell("overall"),
                     cell("final"), "; ".join(card.marks())])
        payload[s.name] = {**s.payload(), "seconds": s.seconds, "marks": card.marks(),
                           "vs_dynamicnn": {k: p.to_dict() for k, p in diffs.items()}}
    n = len(ours.results)
    from dynnn_lib.experiments.fidelity import machine, machine_line

    commits = sorted({(r.provenance.get("commit") or "?")[:10] for s in summaries for r in s.results})
    text = "\n".join([markdown_table(rows), "", f"{machine_line(machine())} Runs trained at commit(s) {', '.join(commits)}.",
                      "",
                      f"Mean ± sample std over {n} seeds (the same seeds for every method), percent, head rule "
                      f"{ours.results[0].config.head_rule}. DynamicNN = {OURS}. A difference is *held* when its "
                      "paired 95 % interval lies above 0 (DynamicNN better), *not held* below 0, *inconclusive* "
                      "when it contains 0. Replay and joint see earlier tasks' images, which the paper's rules "
                      "forbid: they are reference points, not competitors."])
    return text, payload
