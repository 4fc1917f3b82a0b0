"""The renderers of the experiments' documents: each takes one experiment's JSON document (its typed, versioned
analysis, experiments/contract.py) and returns Markdown; nothing here reads a run or trains. The README's and
docs' generated blocks and reproduction.md are these functions' output; the fidelity, stand-ins and calibration
pages (Markdown and HTML) are in reports/pages.py.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from dynnn_lib.core.errors import DynnnError
from dynnn_lib.evaluation.metrics import metric_label, with_extra_metrics
from dynnn_lib.evaluation.stats import Paired
from dynnn_lib.reports.glossary import term
from dynnn_lib.reports.tables import markdown_table, pm, pm_cell


def linked(header: Sequence[str], base: str = "") -> list[str]:
    """A table's header row with each term the glossary defines linked to its entry (`base`: where docs/ is from
    the page the block sits in), so a reader never has to guess which BWT a column is."""
    return [term(h, base) for h in header]


def checked(doc: Any, schema: str, where: str = "the document") -> Mapping[str, Any]:
    """`doc` when it is a document of `schema`; else one line naming the version found and asking to regenerate it."""
    if not isinstance(doc, Mapping) or doc.get("schema") != schema:
        found = doc.get("schema") if isinstance(doc, Mapping) else type(doc).__name__
        raise DynnnError(f"{where} is {found or 'unversioned'}, this code reads {schema}; regenerate it (make all)")
    return doc


def fit_step(step: Mapping[str, Any]) -> str:
    """One fit step of a calibration record as the README's block and the calibration page both say it: its change
    (floats to 3 decimals), the mean objective over its fit instances without and with it, the verdict and, if it
    had one, its confirmation on held-back fit-side instances."""
    change = ", ".join(f"`{k}={v:.3f}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in step["change"].items())
    c = step.get("confirmed")
    return (f"a fit step ({change}: the mean objective over the fit instances {step['fit_instances']} "
            f"{step['fitted']:.2f} -> {step['with']:.2f}, {'adopted' if step['adopt'] else 'not adopted'}"
            + (f", confirmed on held-back instances {c['fit_instances']} {c['fitted']:.2f} -> {c['with']:.2f}" if c else "")
            + ")")


def machine_line(m: Mapping[str, Any] | str) -> str:
    """A document's machine: "Machine: <CPU, family, model, cores, threads>; generated <date> at commit <sha>."."""
    if isinstance(m, str):
        return m if m.startswith("Machine") else f"Machine: {m}."
    t = m.get("threads_per_run", 1)
    family = "" if "cpu_family" in m else " (CPU family not recorded: not comparable with another machine's)"
    where = m.get("line") or f"{m.get('cpu', '?')}{family}, {m.get('cores', '?')} cores, {t} torch thread(s) per run"
    at = f" at commit {m['commit'][:10]}" if m.get("commit") else ""
    return f"Machine: {where}" + (f"; generated {m['date']}{at}." if m.get("date") else f"{at}.")


# ------------------------------------------------------------------ claims (fidelity, standins)
def claims_rows(claims: Sequence[Mapping[str, Any]], mark=lambda v: v) -> list[list[str]]:
    """Header row, then one row per claim (a claim's document entry): claim, the paper, ours (each side's mean ± sd
    between instances), Δ [95 % CI], verdict, and the instances an inconclusive claim would need; `mark` dresses
    the verdict cells."""
    rows = [["claim", "the paper", "ours (mean ± sd over instances)", "Δ [95 % CI]", "verdict", "instances needed"]]
    for c in claims:
        rows.append([c["claim"], c["paper"], c.get("ours", ""), c.get("diff") or "—", mark(c["verdict"]),
                     str(c["needed"]) if c.get("needed") else "—"])
    return rows


# An interval end this close to its threshold (points) can cross it on another CPU, whose float kernels differ: in
# the 2026-12-05 record (docs/journal/2026-12-05-findings-six-instances.md) four verdicts moved between two CPUs
# on the same code and instances, three of them with an end within 0.4 point.
NEAR_POINTS = 0.5
CPU_RECORD = "journal/2026-12-05-findings-six-instances.md"


def fragile(claims: Sequence[Mapping[str, Any]], near: float = NEAR_POINTS) -> list[str]:
    """The claims whose 95 % interval ends within `near` points of the threshold it is judged against (a decided one
    can lose its verdict on another CPU, an inconclusive one can gain one)."""
    out = []
    for c in claims:
        n = c.get("numbers") or {}
        ends = [n[k] for k in ("ci_low", "ci_high") if n.get(k) is not None]
        if ends and min(abs(e - n.get("offset", 0.0)) for e in ends) * 100 < near:
            out.append(c["claim"])
    return out


def fidelity(doc: Mapping[str, Any]) -> str:
    """The claims block, the one place a claim is judged: the machine, what was run, how many verdicts sit near
    their threshold (and so may move on another CPU), the claims table."""
    rows = claims_rows(doc["claims"], mark=lambda v: f"**{v}**")
    near = fragile(doc["claims"])
    return (f"{machine_line(doc['machine'])}\n\nStand-in `{doc['stream']}`, generated evaluation instances "
            f"{doc['instances']} (the unit of every claim), seeds {doc['seeds']} on each; {doc['decided']} of "
            f"{len(doc['claims'])} claims decided (margin {doc['margin'] * 100:g} point). {len(near)} of the "
            f"{len(doc['claims'])} intervals end within {NEAR_POINTS:g} point of their threshold: those verdicts can "
            f"move on another CPU, whose float kernels differ ([a record of one such move]({CPU_RECORD})). Source: "
            f"`reports/fidelity.json` (`make all`).\n\n" + markdown_table([linked(rows[0]), *rows[1:]]))


def standins(doc: Mapping[str, Any]) -> str:
    """The paper's own claims (those with a published number) on the other stand-in(s), and whether each claim's
    verdict depends on the stand-in; our extensions' claims are counted (and listed in standins.md). The default
    stand-in's verdict is not shown here: it is judged once, over all its evaluation instances, in the fidelity
    document (docs/fidelity.md), and a verdict on a subset of them beside it would be a second verdict."""
    from dynnn_lib.core.config import DataConfig

    default = DataConfig().stream
    others = [s for s in doc["streams"] if s != default]
    papers = [x for x in doc["claims"] if x["paper"] != "not published"]
    k = len(doc["instances"])
    rows = [["the paper's claim", "the paper", *[f"`{s}`, {k} instances ({term('verdict', 'docs/')})" for s in others],
             f"depends on the stand-in (`{default}` on the same {k} instances differs)"]]
    rows += [[f"[{x['claim']}](docs/fidelity.md)", x["paper"], *[x["overall"][s] for s in others],
              "**yes**" if x["depends_on_standin"] else "no"] for x in papers]
    n = sum(x["depends_on_standin"] for x in doc["claims"])
    ours = len(doc["claims"]) - len(papers)
    where = f" {machine_line(doc['machine'])}" if "machine" in doc else ""
    return (f"Both stand-ins run on the same {k} instances {doc['instances']}, seeds {doc.get('seeds', '?')} on "
            f"each (paired over the instances, 95 % intervals). Each claim's verdict on the default stand-in "
            f"`{default}` is judged once, over all its evaluation instances, in [the fidelity findings]"
            f"(docs/fidelity.md) (each claim below links there); this table gives the verdicts on "
            f"{', '.join(f'`{s}`' for s in others)} and whether the verdict on the same {k} instances changes with the "
            f"stand-in. {n} of the {len(doc['claims'])} claims judged on both depend on the stand-in; "
            + (f"the {ours} about our own extensions (router, automatic rule) and every interval are" if ours else
               "every interval is") + " in `reports/standins.md` (`make all`).\n\n" + markdown_table(rows)
            + f"\n\nSource: `reports/standins.json` (`make all`).{where}\n")


# ------------------------------------------------------------------ reproduction
def variant_table(variants: Mapping[str, Mapping[str, Any]], link: bool = False) -> str:
    """The poster's terms, one row per variant (a variant's document entry, reproduce.VariantSummary.payload):
    'square' is the mean of the full N x N matrix. `link`: the header's terms link to docs/glossary.md (on a page
    in docs/; a notebook's or reports/' copy has no glossary beside it). The metric columns carry the registry's
    labels (the glossary's terms), a plugin's metric after the built-ins."""
    shown = with_extra_metrics("average_accuracy", "final", "bwt")
    header = ["variant", "the paper", f"{metric_label('overall')} (ours)", *map(metric_label, shown), "routing acc.",
              "expanded at", "s/run"]
    rows = [linked(header) if link else header]
    n = 0
    for name, v in variants.items():
        m, n = v["metrics"], v["n_seeds"]
        exp = sorted({tuple(e) for e in v["expanded_at"]})
        exp_s = "; ".join(str(list(e)) for e in exp) if any(exp) else "-"
        rows.append([name, "" if v.get("paper") is None else f"{v['paper']:.2f}", pm(*m["overall"]),
                     *(pm(*m[k]) for k in shown),
                     "" if v.get("routing") is None else pm(*v["routing"]), exp_s, f"{v['seconds']:.1f}"])
    return "\n".join([markdown_table(rows), "",
                      f"Mean ± sample std over {n} seed(s), percent. 'square' = mean of the full accuracy matrix (the "
                      f"paper's 'square performance'); {metric_label('bwt')} < 0 means forgetting; routing acc. = test "
                      "images sent to the head responsible for their task (final row). s/run: training + evaluation of "
                      "one run (task 0 counted even where it was shared)."])


ORDERING = ("finetune", "DynamicNN (no expand)", "DynamicNN (expand@1)", "DynamicNN (no expand) + LR trick")


def ordering(variants: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's ordering on the means: descriptive only (no interval; the fidelity report judges each step)."""
    scores = {name: v["metrics"]["overall"][0] for name, v in variants.items()}
    chain = [n for n in ORDERING if n in scores]
    pairs = [(a, b, scores[a] < scores[b]) for a, b in zip(chain, chain[1:])]
    lines = [f"The means {'follow' if all(ok for *_, ok in pairs) else 'do not follow'} the paper's ordering; "
             "a description of these seeds, not a claim (the fidelity report judges each step with a paired "
             "95 % interval over instances):"]
    lines += [f"- {a} ({scores[a] * 100:.2f}) {'<' if ok else '>='} {b} ({scores[b] * 100:.2f})" for a, b, ok in pairs]
    return "\n".join(lines)


def reproduction_md(doc: Mapping[str, Any]) -> str:
    """reports/reproduction.md: a table and the ordering per head rule."""
    md = ["# Reproduction of the paper's headline table", "", machine_line(doc["machine"]), "",
          f"Generated instance data_seed = {doc['instance']} (one the calibration never read), seeds {doc['seeds']}.",
          ""]
    for rule, variants in doc["rules"].items():
        md += [f"## Head rule: {rule}", "", variant_table(variants), "", ordering(variants), ""]
    return "\n".join(md)


def reproduction(doc: Mapping[str, Any]) -> str:
    """The README's reproduction block: the router, oracle and mean_prob tables."""
    return "\n\n".join([f"{machine_line(doc['machine'])} Instance {doc['instance']}, seeds {doc['seeds']}; source: "
                        "`reports/reproduction.json` (`make all`)."]
                       + [f"**Head rule: {rule}**\n\n{variant_table(v, link=True)}\n\n{ordering(v)}"
                          for rule, v in doc["rules"].items() if rule in ("router", "oracle", "mean_prob")])


# ------------------------------------------------------------------ baselines
def baselines_md(doc: Mapping[str, Any]) -> str:
    """DynamicNN beside every compared method: metrics, and DynamicNN minus each with its paired 95 % interval."""
    label = metric_label
    rows = [linked(["method", *map(label, ("overall", "final", "bwt")), f"DynamicNN − it, {label('overall')} [95 % CI]",
                    f"DynamicNN − it, {label('final')} [95 % CI]", "note"])]
    for name, v in doc["methods"].items():
        m, diffs = v["metrics"], v.get("vs_dynamicnn", {})
        cell = lambda k: Paired.from_dict(diffs[k]).describe() if k in diffs else "—"  # noqa: E731
        rows.append([name, pm(*m["overall"]), pm(*m["final"]), pm(*m["bwt"]), cell("overall"), cell("final"),
                     "; ".join(v.get("marks", []))])
    return "\n".join([markdown_table(rows), "",
                      f"{machine_line(doc['machine'])} Runs trained at commit(s) {', '.join(doc['commits'])}.", "",
                      f"Mean ± sample std over {doc['seeds']} seeds (the same seeds for every method) on "
                      + (f"stand-in `{doc['stream']}`, instance {doc['instance']}" if "stream" in doc else
                         "a stand-in and instance not recorded")
                      + f", percent, head "
                      f"rule {doc['head_rule']}. DynamicNN = {doc['ours']}. A difference is *held* when its paired 95 % "
                      "interval lies above 0 (DynamicNN better), *not held* below 0, *inconclusive* when it contains "
                      "0. Replay and joint see earlier tasks' images, which the paper's rules forbid: they are "
                      "reference points, not competitors."])


# ------------------------------------------------------------------ calibration
SKILL_MEANS = ("skill = 1 − MSE / MSE(flat line) on the objective's 54 entries: 0 is the flat line, 1 the paper's own "
               "numbers, below 0 a forgetting pattern worse than none")
SKILL_ROW = "skill of the objective (1 − MSE / MSE of the flat line)"


def skill_headline(nulls: Mapping[str, Mapping[str, Any]], what: str, rmse: float, skill: float) -> str:
    """The objective's headline sentence: `what` scored (skill first, then the objective), what skill means, and the
    null models' RMSEs and skills (a document's ``null_models``, computed from the paper's table)."""
    bars = ", ".join(f"{name} {m['rmse']:.2f} (skill {m['skill']:.2f})" for name, m in nulls.items())
    return (f"**{what}: skill {skill:.2f}** at an objective of {rmse:.2f} points ({SKILL_MEANS}). The null models, "
            f"fitted in-sample on the paper's own 54 entries (bars a stand-in must beat), score RMSE: {bars}.")


def null_model_rows(nulls: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Header, then one row per null model (a document's ``null_models``): its RMSE, its skill, its definition."""
    return [["null model (in-sample on the paper's 54 entries)", "RMSE (points)", "skill", "definition"]] + [
        [name, f"{m['rmse']:.2f}", f"{m['skill']:.2f}", m["definition"]] for name, m in nulls.items()]


def fit_name(c: Mapping[str, Any]) -> str:
    """Which fit a calibration document's "after" is: a search's best trial alone, or that trial and the fit steps
    adopted after it (a later search's trial is adopted as a step), so a page never calls a fit by its first trial
    alone."""
    n = len(c.get("steps", []))
    return f"trial {c['after']['trial']}" + (f" then {n} fit step{'s' if n != 1 else ''}" if n else "")


def calibration_headline(c: Mapping[str, Any]) -> str:
    """A calibration document's headline: the default stand-in's median skill over the evaluation instances (make
    all's report), else a search's best, beside the null models."""
    a = c["after"]
    what = (f"The default stand-in, median over the evaluation instances {c['evaluation_instances']}" if "fit" in a
            else f"After (trial {a['trial']}), the mean matrices over the fit instances {c.get('fit_instances')}")
    return skill_headline(c["null_models"], what, a["rmse_calibration"], a["skill"])


def prediction_rows(variants: Mapping[str, Mapping[str, Any]], head: str, sides: Mapping[str, str]) -> list[list[str]]:
    """The paper's five variants' squares beside ours, a column for each side (``before``/``after``) measured on some
    variant: ``make all`` trains only finetune and V2' on ``round1`` (the smaller side-by-side), so a column of
    nothing but "—" is left out."""
    shown = [side for side in sides if any(v.get(side) is not None for v in variants.values())]
    return [[head, "the paper", *(sides[side] for side in shown)]] + [
        [name, f"{v['paper']:.2f}", *(pm_cell(v.get(side)) for side in shown)] for name, v in variants.items()]


def calibration(c: Mapping[str, Any]) -> str:
    """The README's calibration block, from calibration.json: the headline (median skill beside the null models),
    before/after RMSE and skill on what the fit read, the held-out prediction, and the variants."""
    b, a = c["before"], c["after"]
    split = "fit" in a  # per instance: the fit's instances beside the evaluation instances' median (the headline)
    fit, ev = c.get("fit_instances"), c.get("evaluation_instances")
    rows = [["points (RMSE against the paper)", "before: `round1`", "after: `round1-calibrated`"]]
    if split:
        rows = [["points (RMSE against the paper)", f"before, fit instance(s) {fit} (the fit's record)",
                 f"before, evaluation {ev} (median)", f"after, fit instance(s) {fit} (the fit's record)",
                 f"**after, evaluation {ev} (median)**"]]
    for key, label in (("rmse_finetune_45", "finetune, 45 entries (fitted)"),
                       ("rmse_v2_diagonal_9", "V2' diagonal, 9 entries (fitted)"),
                       ("rmse_calibration", "the objective: all 54"),
                       ("skill", SKILL_ROW),
                       ("held_out_rmse_v2_offdiagonal_36", "**held out**: V2' below the diagonal, 36 entries")):
        rows.append([label, f"{b['fit'][key]:.2f}", f"{b[key]:.2f}", f"{a['fit'][key]:.2f}", f"**{a[key]:.2f}**"]
                    if split else [label, f"{b[key]:.2f}", f"{a[key]:.2f}"])
    variants = prediction_rows(c.get("variants", {}), term("square (%, a prediction)", "docs/"), {"before": "before", "after": "after"})
    s = c.get("search") or {}
    where = (f"Measured on {c['evaluated']}" if "evaluated" in c else f"{c['seeds']} seed(s) per trial")
    steps = "".join(f", then {fit_step(st)}" for st in c.get("steps", []))
    head = (f"{where}. The fit in use, {fit_name(c)} (the search: {s.get('trials', c['trials'])} trials in "
            f"`params/calibration.json`, {s.get('wall_minutes', c.get('wall_minutes', 0)):.0f} min at "
            f"{s.get('jobs', c.get('jobs'))} jobs on {s.get('machine', c.get('machine'))}{steps}) read only the 54 "
            "calibration entries on its fit instances; everything else is a prediction.")
    split_line = ([f"Over the evaluation instances the default stand-in's objective is bias {a['bias']:.2f} (the RMSE "
                   f"of their mean matrices) and spread {a['spread']:.2f} between them (each one's square is about "
                   "bias² + spread² on average)."] if "bias" in a else [])
    return "\n\n".join([head, calibration_headline(c), markdown_table(rows)] + split_line
                       + ([markdown_table(variants)] if len(variants) > 1 else [])
                       + ["Source: `reports/calibration.json` (`make all`, `dynnn calibrate --evaluate`)."
                          + (f" {machine_line(c['machine'])}" if "machine" in c else "")])
