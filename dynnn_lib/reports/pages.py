"""The experiments' pages, each rendered from its experiment's JSON document alone (experiments/contract.py):
fidelity.md|html and fidelity_claims.md, standins.md, calibration.md|html. An experiment writes its document, then
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
from dynnn_lib.reports.blocks import (SKILL_ROW, calibration_headline, checked, claims_rows, fit_name, fit_step,
                                      machine_line, null_model_rows, prediction_rows, skill_headline)
from dynnn_lib.reports.tables import html_page, html_table, markdown_matrix, markdown_table, pm

FIDELITY_SCHEMA = "dynnn.fidelity/4"
STANDINS_SCHEMA = "dynnn.standins/4"
CALIBRATION_SCHEMA = "dynnn.calibration/4"

Document = Mapping[str, Any]


def publish(doc: Document, path: str | Path, pages: Mapping[Path, Callable[[Document], str]]) -> list[Path]:
    """Write `doc` to `path` as JSON (NaN refused: a missing entry is null), then each page rendered from the
    document as written; returns the document's path, then the pages'. A document's machine gains the commit that
    wrote it, so every results block's provenance line names the code as well as the CPU and the date."""
    if isinstance(doc.get("machine"), Mapping) and "commit" not in doc["machine"]:
        from dynnn_lib.core.fingerprint import git_state

        doc = {**doc, "machine": {**doc["machine"], "commit": git_state()["commit"]}}
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


def _objective_md(doc: Document) -> list[str]:
    """fidelity.md's section on the calibration's objective: the median skill over the instances beside the null
    models, each instance's objective and skill, the null models' definitions; a line off the 9-task stream."""
    o = doc["objective"]
    if o is None:
        return [f"The calibration's objective reads the paper's 9x9 tables: not scored on {doc['n_tasks']} tasks.", ""]
    what = f"Stand-in `{doc['stream']}`, median over the instances {doc['instances']}"
    rows = [["instance", "objective (RMSE, points)", "skill"]] + [
        [k, f"{v['rmse_calibration']:.2f}", f"{v['skill']:.2f}"] for k, v in o["instances"].items()]
    return [skill_headline(o["null_models"], what, o["rmse_calibration"], o["skill"]), "", markdown_table(rows), "",
            markdown_table(null_model_rows(o["null_models"])), ""]


def fidelity_md(doc: Document) -> str:
    """fidelity.md: the machine, the claims, routing accuracy, the lower-triangle statistics, the calibration's
    objective and skill beside the null models, and the paper's two tables beside ours (mean ± sd over the
    instances, lower triangle)."""
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
          "", "V2' = the paper's DynamicNN table: KD from the worst-scoring head, expansion at tasks 1 and 3.", "",
          "## The calibration's objective and skill (finetune's 45 entries and the diagonal of V2' against the paper's)", "",
          *_objective_md(doc)]
    for key, (title, _, _) in TABLES.items():
        m = doc["matrices"][key]
        md += [f"## {title}: the paper", "", markdown_matrix(*_mean_sd(m["paper"]), lower_only=True), "",
               f"## {title}: ours, mean ± sd over the {len(inst)} instances (lower triangle; full matrix in "
               f"fidelity.html)", "", markdown_matrix(*_mean_sd(m["ours"]), lower_only=True), ""]
    return "\n".join(md) + "\n"


def fidelity_html(doc: Document) -> str:
    """fidelity.html: the claims, the calibration's objective's headline (skill beside the null models) and the
    paper's two tables beside ours, full matrices (plotly heatmaps, offline)."""
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
                     f"<p>{html.escape(_objective_md(doc)[0].replace('**', '').replace('`', ''))}</p>"
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


# ------------------------------------------------------------------ calibration
def knob_value(v: Any) -> str:
    """A knob's value as the calibration's tables show it (a float to 3 decimals; a triple, tuple or list, as
    ``(r, g, b)`` whatever the YAML or the dataclass made of it)."""
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(knob_value(float(x)) if isinstance(x, (int, float)) and not isinstance(x, bool)
                               else knob_value(x) for x in v) + ")"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def lower_difference(ours, paper) -> np.ndarray:
    """Ours − the paper on and below the diagonal (what the paper published), NaN above it."""
    d = np.asarray(ours, dtype=float) - np.asarray(paper, dtype=float)
    return np.where(np.tril(np.ones(d.shape, bool)), d, np.nan)


def search_history_figure(history: Sequence[Mapping[str, Any]]):
    """The search: each trial's error (pruned ones at their last bound) and the best so far."""
    import plotly.graph_objects as go

    done = [h for h in history if h["value"] is not None]
    best, run = [], float("inf")
    for h in done:
        if h["state"] == "complete":
            run = min(run, h["value"])
        best.append(run)
    fig = go.Figure()
    for state, colour in (("complete", "#1f77b4"), ("pruned", "#bbbbbb")):
        pts = [h for h in done if h["state"] == state]
        fig.add_scatter(x=[h["trial"] for h in pts], y=[h["value"] for h in pts], mode="markers", name=state,
                        marker={"color": colour, "size": 9})
    fig.add_scatter(x=[h["trial"] for h in done], y=best, mode="lines", name="best so far", line={"shape": "hv"})
    return fig.update_layout(title="the search: RMSE on the 54 calibration entries per trial", height=380,
                             xaxis_title="trial (0: round1's knobs; 1: the hand-made point)", yaxis_title="RMSE (points)")


# The objective over the evaluation instances split in two (calibrate.bias_and_spread): each instance's squared
# objective is about bias² + spread² on average.
SPLIT = (("bias", "the objective's bias: RMSE of the mean over the evaluation instances (54 entries)"),
         ("spread", "the objective's spread: entries' sd between evaluation instances, root mean square"))


RMSE_ROWS = (("rmse_calibration", "RMSE, the 54 calibration entries (the objective)"),
             ("skill", SKILL_ROW),
             ("rmse_finetune_45", "RMSE, finetune's 45 entries"),
             ("rmse_v2_diagonal_9", "RMSE, V2' diagonal (9)"),
             ("held_out_rmse_v2_offdiagonal_36", "held out: RMSE, V2' off-diagonal (36), a prediction"))


def _split_rows(doc: Document) -> list[list[str]]:
    """make all's report: the fit's instances (its record) beside the evaluation instances it never read (the
    headline: their median), for each score, then the objective's bias and spread."""
    b, a = doc["before"], doc["after"]
    fit, ev = doc["fit_instances"], doc["evaluation_instances"]
    rows = [["", f"before (round1), fit instance(s) {fit}, the fit's record", f"before, evaluation {ev}: median",
             f"after ({fit_name(doc)}), fit instance(s) {fit}, the fit's record",
             f"after, evaluation {ev}: median"]]
    rows += [[label, f"{b['fit'][key]:.2f}", f"{b[key]:.2f}", f"{a['fit'][key]:.2f}", f"{a[key]:.2f}"]
             for key, label in RMSE_ROWS]
    return rows + [[label, "—", f"{b[key]:.2f}", "—", f"{a[key]:.2f}"] for key, label in SPLIT if key in a]


def after_stream(doc: Document) -> str:
    """The "after" side's stream: the default stand-in (round1-calibrated) where the document re-measures the fit in
    use or searched round1, else the searched stream at the best trial's knobs."""
    stream = before_stream(doc)
    return "round1-calibrated" if stream == "round1" else f"{stream} at the best trial's knobs"


def before_stream(doc: Document) -> str:
    """The stream a calibration document's "before" side is: a search's fitted stream (``--set data.stream=...``,
    e.g. round 1's batches as mixtures), else round1, the stream before the calibration."""
    return str(dict(doc.get("base") or {}).get("data", {}).get("stream", "round1"))


def _search_rows(doc: Document) -> list[list[str]]:
    """A search's report: before (trial 0) and after (its best), each scored on the mean matrices over the fit
    instances, with the objective itself (the mean over the fit instances of each one's RMSE) first."""
    b, a = doc["before"], doc["after"]
    rows = [["", f"before ({before_stream(doc)} at trial 0's knobs, the stream before the calibration)",
             f"after (trial {a['trial']})"]]
    labels = RMSE_ROWS
    if "objective" in a:
        rows.append([f"the objective: mean over the fit instances {doc.get('fit_instances')} of each one's RMSE "
                     "(54 entries)", f"{b['objective']:.2f}", f"{a['objective']:.2f}"])
        labels = tuple((key, label + ", of the mean matrices over the fit instances") for key, label in labels)
    return rows + [[label, f"{b[key]:.2f}", f"{a[key]:.2f}"] for key, label in labels]


def _per_instance_rows(doc: Document) -> list[list[str]]:
    """Each evaluation instance's objective, its skill and the held-out RMSE, before and after."""
    keys = (("rmse_calibration", "objective"), ("skill", "skill"), ("held_out_rmse_v2_offdiagonal_36", "held out"))
    rows = [["evaluation instance", *(f"{name} {side}" for _, name in keys for side in ("before", "after"))]]
    return rows + [[k] + [f"{doc[side]['instances'][k][key]:.2f}" for key, _ in keys for side in ("before", "after")]
                   for k in map(str, doc["evaluation_instances"])]


def _how(doc: Document) -> str:
    """How the values were chosen: the search and its fit steps, then where they were re-measured (make all), or the
    search's own settings."""
    search = doc.get("search")
    if search:  # make all: the committed fit re-measured
        return (f"The values were chosen by `dynnn calibrate` ({search['trials']} trials, TPE, {search['seeds']} "
                f"seed(s) per trial: RMSE {search['rmse_before']:.2f} -> {search['rmse_after']:.2f} in the search; "
                f"{search['wall_minutes']:.0f} min at {search['jobs']} jobs on {search['machine']})"
                + "".join(f"; then {fit_step(st)}" for st in doc.get("steps", []))
                + f". Re-measured here on {doc['evaluated']}: before = `round1`, after = `round1-calibrated` (the "
                "default).")
    return (f"{doc['trials']} trials (TPE; {doc.get('pruned', 0)} stopped early by the exact row-by-row bound), "
            f"{doc['seeds']} seed(s) on each fit instance {doc.get('fit_instances')}; fixed "
            f"settings: `{json.dumps(doc['base'])}`"
            + (f"; {doc['wall_minutes']:.0f} min at {doc['jobs']} jobs on {doc['machine']}" if "machine" in doc
               else "") + ".")


def _calibration_parts(doc: Document) -> dict[str, Any]:
    """What both calibration pages show: how the values were chosen, the headline (skill beside the null models),
    the RMSE table, per instance, the null models, the knobs, the variants' predictions, the search history."""
    b, a = doc["before"], doc["after"]
    split = "fit" in a  # the fit's instances beside the evaluation instances it never read
    return {"how": _how(doc), "headline": calibration_headline(doc),
            "rows": _split_rows(doc) if split else _search_rows(doc), "per": _per_instance_rows(doc) if split else [],
            "nulls": null_model_rows(doc["null_models"]),
            "knobs": [["knob", "default", "fitted"]] + [[k, knob_value(b["values"][k]), knob_value(a["values"][k])]
                                                        for k in doc["knobs"]],
            "variants": prediction_rows(doc.get("variants", {}), "variant (square, %)",
                                        {"before": "ours before", "after": "ours after"}),
            "history": [["trial", "state", "RMSE (points)"]] + [
                [h["trial"], h["state"], "-" if h["value"] is None else f"{h['value']:.2f}"] for h in doc["history"]]}


NULLS_TITLE = "Null models: fitted in-sample on the paper's own 54 entries, bars a stand-in must beat"


def _paper(doc: Document, which: str) -> np.ndarray:
    return matrix_of(doc["paper"][which])


# the four RMSEs of a side's score (experiments/calibrate/scoring.py score), by their labels in the notebook's table
RMSE_LABELS = {"rmse_finetune_45": "finetune, 45 entries (fitted)", "rmse_v2_diagonal_9": "V2' diagonal, 9 (fitted)",
               "rmse_calibration": "the objective: all 54", "held_out_rmse_v2_offdiagonal_36":
               "held out: V2' below the diagonal, 36 (a prediction)"}


def calibration_rmse_table(data: Document):
    """RMSE against the paper, in points, before and after, and the objective's skill after it (a pandas
    DataFrame; 08_calibration's table of ``dynnn calibrate --evaluate``'s data)."""
    import pandas as pd

    labels = [*RMSE_LABELS.items()]
    labels.insert(3, ("skill", "the objective's skill (1 − MSE / MSE of the flat line; no unit)"))  # after the objective
    return pd.DataFrame([{"RMSE (points)": label, "before": round(data["before"][k], 2), "after": round(data["after"][k], 2)}
                         for k, label in labels]).set_index("RMSE (points)")


def calibration_matrices(doc: Document, which: str = "finetune"):
    """The paper's matrix beside ours before and after (``which``: finetune or v2), then ours − the paper, from the
    calibration's document (the paper's matrices in it)."""
    from dynnn_lib.reports.figures import error_heatmap, heatmap, side_by_side

    paper = _paper(doc, which)
    label = "finetune" if which == "finetune" else "V2'"
    mats = side_by_side([heatmap(paper, None, title=f"the paper: {label}", zmin=50),
                         heatmap(doc["before"][which], None, title=f"ours before ({before_stream(doc)})", zmin=50),
                         heatmap(doc["after"][which], None, title=f"ours after ({after_stream(doc)})", zmin=50)])
    errs = side_by_side([error_heatmap(lower_difference(doc[side][which], paper), title=f"ours − the paper, {side}")
                         for side in ("before", "after")])
    return mats, errs


def calibration_md(doc: Document) -> str:
    """calibration.md: what the objective reads, the headline (skill beside the null models), the RMSE and skill
    before and after (per instance too), the null models, the knobs, ours − the paper, the variants' predictions
    and the search history."""
    checked(doc, CALIBRATION_SCHEMA)
    p = _calibration_parts(doc)

    def diff(when: str, which: str) -> str:
        return markdown_matrix(lower_difference(doc[when][which], _paper(doc, which)), lower_only=True)

    return "\n".join([
        "# Calibration of the generated stream to the paper's matrices", "",
        f"The objective reads only: {'; '.join(doc['reads'])}. Everything else is a prediction.", "",
        p["how"], "", p["headline"], "", markdown_table(p["rows"]), "",
        *(["## Per instance (points; skill: 1 − MSE / MSE of the flat line)", "", markdown_table(p["per"]), ""]
          if p["per"] else []),
        f"## {NULLS_TITLE}", "", markdown_table(p["nulls"]), "",
        "## Knobs", "", markdown_table(p["knobs"]), "",
        "## Finetune, ours − the paper (points), before", "", diff("before", "finetune"), "",
        "## Finetune, ours − the paper (points), after", "", diff("after", "finetune"), "",
        "## V2', ours − the paper (points), after (diagonal: calibrated; below it: predicted)", "",
        diff("after", "v2"), "",
        *(["## Predictions: the five variants' square scores (not read by the fit)", "", markdown_table(p["variants"]),
           ""] if len(p["variants"]) > 1 else []),
        "## Search history", "", markdown_table(p["history"]), ""])


def calibration_html(doc: Document) -> str:
    """calibration.html: the tables as HTML tables, the error heatmaps (ours − the paper, before and after) and the
    search's history as plotly figures (offline)."""
    from dynnn_lib.reports.figures import error_heatmap

    checked(doc, CALIBRATION_SCHEMA)
    p = _calibration_parts(doc)
    figs = [error_heatmap(lower_difference(doc[when][which], _paper(doc, which)),
                          title=f"{label} {when}: ours − paper")
            for which, label in (("finetune", "finetune"), ("v2", "V2'")) for when in ("before", "after")]
    divs = _figures_html([*figs, search_history_figure(doc["history"])], "calibration")
    text = lambda s: f"<p>{html.escape(s.replace('`', ''))}</p>"  # noqa: E731
    return html_page("Calibration of the generated stream to the paper's matrices", "".join([
        text(f"The objective reads only: {'; '.join(doc['reads'])}. Everything else is a prediction."), text(p["how"]),
        text(p["headline"].replace("**", "")), html_table(p["rows"]),
        *(["<h2>Per instance (points)</h2>", html_table(p["per"])] if p["per"] else []),
        f"<h2>{html.escape(NULLS_TITLE)}</h2>", html_table(p["nulls"]), "<h2>Knobs</h2>", html_table(p["knobs"]),
        "<h2>Ours − the paper (points; finetune: all fitted; V2': diagonal fitted, below it predicted)</h2>",
        f"<div class='pair'>{divs[0]}{divs[1]}</div><div class='pair'>{divs[2]}{divs[3]}</div>",
        *(["<h2>Predictions: the five variants' square scores (not read by the fit)</h2>", html_table(p["variants"])]
          if len(p["variants"]) > 1 else []),
        "<h2>Search history</h2>", divs[4], html_table(p["history"])]))
