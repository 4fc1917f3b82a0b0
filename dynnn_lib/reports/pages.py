"""The experiments' pages, each rendered from its experiment's JSON document alone (experiments/contract.py):
fidelity.md|html and fidelity_claims.md, standins.md. An experiment writes its document, then
the pages from the document as written (:func:`publish`), so a page rendered later from the file is the same page;
a renderer refuses a document of another schema version in one line.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dynnn_lib.core.store import atomic_text
from dynnn_lib.evaluation.stats import mean_sd
from dynnn_lib.reports.blocks import checked, claims_rows, machine_line
from dynnn_lib.reports.tables import html_page, html_table, markdown_matrix, markdown_table, pm

FIDELITY_SCHEMA = "dynnn.fidelity/3"
STANDINS_SCHEMA = "dynnn.standins/4"

Document = Mapping[str, Any]


def publish(doc: Document, path: str | Path, pages: Mapping[Path, Callable[[Document], str]]) -> list[Path]:
    """Write `doc` to `path` as JSON (NaN refused: a missing entry is null), then each page rendered from the
    document as written; returns the document's path, then the pages'."""
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    atomic_text(Path(path), text)
    written = json.loads(text)
    for page, render in pages.items():
        atomic_text(page, render(written))
    return [Path(path), *pages]


def matrix_json(m) -> list[list[float | None]]:
    """A matrix as JSON rows, a missing entry (NaN: not published, or no result) as null; :func:`matrix_of` reads
    it back."""
    return [[float(x) if np.isfinite(x) else None for x in row] for row in np.asarray(m, dtype=float)]


def matrix_of(rows) -> np.ndarray:
    """A matrix from JSON rows, null as NaN."""
    return np.array(rows, dtype=float)


def _mean_sd(m: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return matrix_of(m["mean"]), matrix_of(m["sd"])


def _figures_html(figs: Sequence[Any], prefix: str) -> list[str]:
    """Plotly figures as <div>s, plotly.js embedded once, in the first (the page works offline)."""
    import plotly.io as pio

    return [pio.to_html(f, full_html=False, include_plotlyjs=i == 0, div_id=f"{prefix}-{i}")
            for i, f in enumerate(figs)]


# ------------------------------------------------------------------ fidelity and the stand-ins
def verdict_legend(margin: float) -> str:
    """What a verdict means, under the equivalence margin `margin` (a fraction)."""
    return (f"The unit is the generated instance: each side is averaged over its seeds within an instance, "
            f"then Δ = a − b for the claim \"a > b\" is paired over the instances, in points, with its 95 % "
            f"confidence interval (Student t, K − 1 degrees of freedom: it covers the spread between "
            f"instances). *held*: the interval lies above 0; *not held*: below 0; *equivalent*: the 90 % "
            f"interval lies inside ±{margin * 100:g} point (the margin fixed in code before any run: the "
            f"paper's run-to-run spread and its ordering steps are about that size; two one-sided tests); "
            f"*inconclusive*: none of these, with the instances it would need at the observed spread (5 % "
            f"level, 80 % power). A claim \"within x points\" is judged as a − b > −x. The ordering row "
            f"holds only if every step held. With many claims at 95 % each, about one interval in twenty "
            f"misses by chance.")


# the paper's two published tables by their key in the fidelity document: heading, name in a figure's title, note
TABLES = {"finetune": ("Finetune", "finetune", "lower triangle published"),
          "v2": ("DynamicNN V2'", "DynamicNN V2'", "worst head, expand@[1,3]")}


def _routing_table(routing: Mapping[str, Mapping[str, Sequence[float] | None]]) -> str:
    rows = [["variant", "routing accuracy (mean ± sd over instances)"]]
    for name, v in routing.items():
        means = [x[0] for x in v.values() if x]
        rows.append([name, pm(*mean_sd(means)) if len(means) == len(v) and means else "—"])
    return markdown_table(rows)


def _statistics_table(stats: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [["statistic", "the paper: finetune", "ours: finetune", "the paper: V2'", "ours: V2'"]]
    for label, s in stats.items():
        ours = list(s["ours"].values())
        rows.append([label] + [x for key in ("finetune", "v2") for x in
                               (f"{s['paper'][key] * 100:.2f}", pm(*mean_sd([o[key] for o in ours])))])
    return markdown_table(rows)


def fidelity_claims_md(doc: Document) -> str:
    """fidelity_claims.md: the claims table alone (the README includes it)."""
    checked(doc, FIDELITY_SCHEMA)
    return markdown_table(claims_rows(doc["claims"], mark=lambda v: f"**{v}**")) + "\n"


def fidelity_md(doc: Document) -> str:
    """fidelity.md: the machine, the claims, routing accuracy, the lower-triangle statistics and the paper's two
    tables beside ours (mean ± sd over the instances, lower triangle)."""
    checked(doc, FIDELITY_SCHEMA)
    st, inst, seeds, rule = doc["stream"], doc["instances"], doc["seeds"], doc["head_rule"]
    md = [machine_line(doc["machine"]), "", f"# Fidelity: the paper's tables beside ours (stand-in {st})", "",
          f"Generated stream `{st}`, {doc['n_tasks']} tasks, {len(inst)} generated evaluation instances "
          f"data_seed = {inst} (the calibration never read them); seeds {seeds} on each (the same on every "
          f"configuration); head rule {rule!r}. Percent; ours are means ± sd over the instances of each "
          "instance's mean over seeds. The paper's numbers are from the poster/slide 8 (lower triangle only) and its "
          f"headline table; ours use the same statistics. {doc['decided']} of {len(doc['claims'])} claims are "
          f"decided. Regenerate: `dynnn fidelity --seeds {len(seeds)} --instances {' '.join(map(str, inst))} "
          f"--head-rule {rule} --streams {st}`.", "",
          "## Claims", "", fidelity_claims_md(doc).rstrip("\n"), "", verdict_legend(doc["margin"]), "",
          "## Routing accuracy", "",
          "Fraction of each task's test images the router sends to the head responsible for it, after the whole "
          "stream (mean over tasks; mean ± sample std over seeds). Variants that never expand have one head, so "
          "every image reaches it.", "", _routing_table(doc["routing_accuracy"]), "",
          "## Lower-triangle statistics (same definitions on both sides)", "", _statistics_table(doc["statistics"]),
          "", "V2' = the paper's DynamicNN table: KD from the worst-scoring head, expansion at tasks 1 and 3.", ""]
    for key, (title, _, _) in TABLES.items():
        m = doc["matrices"][key]
        md += [f"## {title}: the paper", "", markdown_matrix(*_mean_sd(m["paper"]), lower_only=True), "",
               f"## {title}: ours, mean ± sd over the {len(inst)} instances (lower triangle; full matrix in "
               f"fidelity.html)", "", markdown_matrix(*_mean_sd(m["ours"]), lower_only=True), ""]
    return "\n".join(md) + "\n"


def fidelity_html(doc: Document) -> str:
    """fidelity.html: the claims and the paper's two tables beside ours, full matrices (plotly heatmaps, offline)."""
    from dynnn_lib.reports import figures as viz

    checked(doc, FIDELITY_SCHEMA)
    over = f"mean ± sd over {len(doc['instances'])} instances"
    figs = []
    for key, (_, name, note) in TABLES.items():
        m = doc["matrices"][key]
        figs += [viz.heatmap(*_mean_sd(m["paper"]), None, title=f"the paper: {name} ({note})", zmin=50),
                 viz.heatmap(*_mean_sd(m["ours"]), doc["task_names"], title=f"ours: {name} ({over})", zmin=50)]
    divs = _figures_html(figs, "fidelity")
    table = [[x if x.startswith("<b>") else html.escape(x) for x in row]
             for row in claims_rows(doc["claims"], mark=lambda v: f"<b>{html.escape(v)}</b>")]
    return html_page("Fidelity: the paper's tables beside ours",
                     f"<p>{html.escape(machine_line(doc['machine']))}</p>"
                     f"<p>Generated stream {html.escape(str(doc['stream']))}, instances {doc['instances']}, "
                     f"seeds {doc['seeds']}, head rule {html.escape(doc['head_rule'])}; "
                     f"colour scale from 50 %.</p>{html_table(table, raw=True)}"
                     f"<p>{html.escape(verdict_legend(doc['margin']))}</p>"
                     f"<div class='pair'>{divs[0]}{divs[1]}</div><div class='pair'>{divs[2]}{divs[3]}</div>")


def standins_md(doc: Document) -> str:
    """standins.md: every claim's interval and verdict on each stand-in side by side, and whether it depends on the
    stand-in (its verdicts differ)."""
    checked(doc, STANDINS_SCHEMA)
    names, claims = doc["streams"], doc["claims"]
    rows = [["claim", "the paper"] + [f"{st}: Δ [95 % CI]; verdict" for st in names] + ["depends on the stand-in"]]
    rows += [[c["claim"], c["paper"], *[f"{c['diff'][st] or c['ours'][st]}; **{c['overall'][st]}**" for st in names],
              "yes" if c["depends_on_standin"] else "no"] for c in claims]
    n_dep = sum(c["depends_on_standin"] for c in claims)
    return "\n".join([
        f"# The paper's claims on {len(names)} stand-ins", "",
        f"Each claim judged on the generated stand-ins {', '.join(f'`{n}`' for n in names)} (instances "
        f"{doc['instances']}, the same seeds on every configuration; paired over the instances as in fidelity.md). "
        f"A claim whose verdict differs between them depends on the stand-in: {n_dep} of {len(claims)} do.", "",
        markdown_table(rows), "", verdict_legend(doc["margin"]), ""])
