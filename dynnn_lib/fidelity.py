"""Fidelity: our accuracy matrices beside the seed's, and which of the seed's claims held here.

    python -m dynnn_lib.fidelity [--seeds 3] [--jobs 2] [--runs-dir runs] [--out reports]   (part of make all)

The seed published two 9x9 tables (poster/slide 8; lower triangle only, mean ± std over runs): finetune, and
DynamicNN "V2': use worst branch for KD loss, expand @ task [1,3]".  We run the same two configurations (and the
five poster variants) on the embedded benchmark, compute the same lower-triangle statistics on both sides and
check each claim.  Writes ``<out>/fidelity.md`` and ``<out>/fidelity.html`` (heatmaps side by side, offline).
"""
from __future__ import annotations

import argparse
import html
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .config import SEED_SCORES, VARIANTS
from .errors import DynnnError
from .metrics import average_accuracy, diagonal, final
from .reproduce import VariantSummary, pm, reproduce
from .store import atomic_text

_NAN = float("nan")


def _table(rows: list[list[tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray]:
    n = len(rows)
    mean, std = np.full((n, n), _NAN), np.full((n, n), _NAN)
    for i, row in enumerate(rows):
        for j, (m, s) in enumerate(row):
            mean[i, j], std[i, j] = m / 100, s / 100
    return mean, std


# ../shared/reference/method_and_dataset.md §1.5 (poster/slide 8), percent, mean ± std; upper triangle not reported
SEED_FINETUNE = _table([
    [(99.71, .06)],
    [(85.61, .72), (99.91, .10)],
    [(97.93, .40), (80.92, 2.61), (99.88, .10)],
    [(76.87, 1.19), (68.28, 1.04), (79.01, 1.89), (99.99, .01)],
    [(87.40, .76), (91.02, .84), (86.81, 1.08), (96.93, .53), (99.95, .03)],
    [(88.29, .85), (89.33, .99), (84.16, .54), (81.67, 1.70), (82.71, 2.02), (99.90, .02)],
    [(99.00, .23), (95.62, 1.04), (99.07, .25), (98.75, .35), (94.97, .86), (95.81, .59), (99.72, .08)],
    [(92.01, .74), (97.01, .09), (89.40, .95), (87.62, 2.25), (93.58, 1.40), (99.30, .01), (91.21, 1.06), (99.91, .05)],
    [(98.54, .28), (96.09, .49), (99.53, .01), (92.72, 1.88), (92.69, 1.22), (93.54, .21), (95.57, .89), (91.31, .83),
     (99.82, .02)],
])
SEED_DYNAMICNN = _table([
    [(99.30, .18)],
    [(97.13, .46), (98.42, .39)],
    [(99.25, .28), (95.92, .33), (97.88, .30)],
    [(96.74, .57), (95.74, .28), (94.69, .24), (99.21, .06)],
    [(94.50, .35), (97.08, .08), (93.12, .60), (99.31, .20), (97.10, .51)],
    [(93.63, .68), (97.25, .14), (92.08, .93), (99.26, .24), (96.82, .55), (90.89, .42)],
    [(96.77, .93), (98.01, .69), (96.15, 1.38), (99.35, .20), (97.58, .53), (93.41, 1.21), (98.26, .49)],
    [(96.82, .39), (98.96, .24), (96.08, .57), (97.83, .53), (97.84, .43), (96.43, .84), (97.85, .18), (96.09, .75)],
    [(97.98, .33), (99.10, .33), (98.00, .35), (98.17, .45), (97.94, .38), (95.33, 1.06), (98.38, .19), (94.97, .85),
     (97.97, .26)],
])
V2_NAME = "DynamicNN V2' (worst head, expand@[1,3])"
V2_OVERRIDES = {"method": "combined", "expand_at": [1, 3], "kd_head": "worst"}
DISSIMILAR = (1, 3, 5)  # where the seed's finetune forgets most (and where it chose to expand)


# ------------------------------------------------------------------ lower-triangle statistics (both sides)
# average_accuracy (lower triangle incl. the diagonal), final and diagonal are the project's own metrics; they read
# only published entries, so they apply to the seed's half-empty tables as they are.


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


STATS = {"lower-triangle mean": average_accuracy, "final row": final, "diagonal": diagonal, "BWT (final row)": bwt_final}


def stat_over_seeds(results, fn) -> tuple[float, float]:
    vals = [fn(r.matrix) for r in results]
    return float(np.mean(vals)), float(np.std(vals))


# ------------------------------------------------------------------ claims
@dataclass
class Claim:
    claim: str
    seed: str
    ours: str
    held: str  # "yes" | "no" | "partly" | "n/a"


def _sq(s: VariantSummary) -> tuple[float, float]:
    return s.agg["metrics"]["overall"]


def claims(summaries: Mapping[str, VariantSummary], v2: VariantSummary) -> list[Claim]:
    out: list[Claim] = []
    sq = {n: _sq(s) for n, s in summaries.items()}
    chain = ["finetune", "DynamicNN (no expand)", "DynamicNN (expand@1)", "DynamicNN (no expand) + LR trick"]
    if all(n in sq for n in chain):
        ok = [sq[a][0] < sq[b][0] for a, b in zip(chain, chain[1:])]
        out.append(Claim("ordering: finetune < no expand < expand@1 < no expand + LR trick (square)",
                         " < ".join(f"{SEED_SCORES[n]:.2f}" for n in chain),
                         " , ".join(pm(*sq[n]) for n in chain),
                         "yes" if all(ok) else f"no ({sum(ok)} of {len(ok)} steps in order)"))

    def better(a: str, b: str, text: str) -> None:
        if a in sq and b in sq:
            out.append(Claim(text, f"{SEED_SCORES[a]:.2f} vs {SEED_SCORES[b]:.2f}", f"{pm(*sq[a])} vs {pm(*sq[b])}",
                             "yes" if sq[a][0] > sq[b][0] else "no"))

    better("DynamicNN (expand@1)", "DynamicNN (no expand)", "expanding at task 1 helps (square, expand@1 vs no expand)")
    better("DynamicNN (expand@1) + LR trick", "DynamicNN (expand@1)", "the LR trick helps with expansion (square)")
    better("DynamicNN (no expand) + LR trick", "DynamicNN (no expand)", "the LR trick helps without expansion (square)")
    better("DynamicNN (no expand)", "finetune", "DynamicNN (KD) beats finetune (square)")

    ft = summaries.get("finetune")
    if ft is not None:
        n = len(ft.results[0].matrix)
        if n == 9:
            ours = [worst_tasks(r.matrix) for r in ft.results]
            mean_drops = np.mean([drops(r.matrix) for r in ft.results], 0)
            worst = worst_tasks(ft.agg["matrix_mean"])
            overlap = len(set(worst) & set(DISSIMILAR))
            out.append(Claim("finetune forgets most right after the dissimilar tasks 1, 3, 5 (3 largest drops)",
                             f"tasks {worst_tasks(SEED_FINETUNE[0])}",
                             f"tasks {worst} (per seed {ours}; "
                             f"drops {', '.join(f'{d * 100:.1f}' for d in mean_drops[1:])})",
                             {3: "yes", 2: "partly"}.get(overlap, "no")))
        else:
            out.append(Claim("finetune forgets most right after tasks 1, 3, 5", "", f"needs the 9-task stream (have {n})", "n/a"))
        f_b, v_b = stat_over_seeds(ft.results, bwt_final), stat_over_seeds(v2.results, bwt_final)
        out.append(Claim("DynamicNN V2' forgets less than finetune (BWT, final row)",
                         f"{bwt_final(SEED_DYNAMICNN[0]) * 100:+.2f} vs {bwt_final(SEED_FINETUNE[0]) * 100:+.2f}",
                         f"{pm(*v_b)} vs {pm(*f_b)}", "yes" if v_b[0] > f_b[0] else "no"))
        f_d, v_d = stat_over_seeds(ft.results, diagonal), stat_over_seeds(v2.results, diagonal)
        out.append(Claim("the frozen trunk costs plasticity (diagonal: V2' below finetune)",
                         f"{diagonal(SEED_DYNAMICNN[0]) * 100:.2f} vs {diagonal(SEED_FINETUNE[0]) * 100:.2f}",
                         f"{pm(*v_d)} vs {pm(*f_d)}", "yes" if v_d[0] < f_d[0] else "no"))
        f_l, v_l = stat_over_seeds(ft.results, average_accuracy), stat_over_seeds(v2.results, average_accuracy)
        out.append(Claim("DynamicNN V2' beats finetune on the published (lower-triangle) entries",
                         f"{average_accuracy(SEED_DYNAMICNN[0]) * 100:.2f} vs {average_accuracy(SEED_FINETUNE[0]) * 100:.2f}",
                         f"{pm(*v_l)} vs {pm(*f_l)}", "yes" if v_l[0] > f_l[0] else "no"))
    return out


# ------------------------------------------------------------------ report
def _md_matrix(mean: np.ndarray, std: np.ndarray, lower_only: bool = True) -> str:
    n = len(mean)
    lines = ["| | " + " | ".join(str(j) for j in range(n)) + " |", "|---" * (n + 1) + "|"]
    for i in range(n):
        cells = ["" if (lower_only and j > i) or not np.isfinite(mean[i, j]) else f"{mean[i, j] * 100:.2f}±{std[i, j] * 100:.2f}"
                 for j in range(n)]
        lines.append(f"| T{i} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(summaries: Sequence[VariantSummary], v2: VariantSummary, out_dir: str | Path) -> Path:
    import plotly.io as pio

    from . import viz

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in summaries}
    ft = by_name["finetune"]
    n_seeds = ft.agg["n_seeds"]
    seeds = sorted({r.config.seed for s in (*summaries, v2) for r in s.results})
    cl = claims(by_name, v2)
    md = ["# Fidelity: the seed's tables beside ours", "",
          f"Embedded benchmark, {len(ft.results[0].matrix)} tasks, seeds {seeds} ({n_seeds} per configuration); "
          "percent, mean ± std over seeds. The seed's numbers are from the poster/slide 8 (lower triangle only) and "
          "its headline table; ours use the same statistics. Regenerate: `python -m dynnn_lib.fidelity`.", "",
          "## Claims", "", "| claim | seed | ours | held |", "|---|---|---|---|"]
    md += [f"| {c.claim} | {c.seed} | {c.ours} | **{c.held}** |" for c in cl]
    md += ["", "## Lower-triangle statistics (same definitions on both sides)", "",
           "| statistic | seed finetune | ours finetune | seed V2' | ours V2' |", "|---|---|---|---|---|"]
    for label, fn in STATS.items():
        md.append(f"| {label} | {fn(SEED_FINETUNE[0]) * 100:.2f} | {pm(*stat_over_seeds(ft.results, fn))} | "
                  f"{fn(SEED_DYNAMICNN[0]) * 100:.2f} | {pm(*stat_over_seeds(v2.results, fn))} |")
    md += ["", "V2' = the seed's DynamicNN table: KD from the worst-scoring head, expansion at tasks 1 and 3.", ""]
    for title, (sm, ss), ours in (("Finetune", SEED_FINETUNE, ft), ("DynamicNN V2'", SEED_DYNAMICNN, v2)):
        md += [f"## {title}: seed", "", _md_matrix(sm, ss), "", f"## {title}: ours (lower triangle; full matrix in fidelity.html)",
               "", _md_matrix(ours.agg["matrix_mean"], ours.agg["matrix_std"]), ""]
    atomic_text(out_dir / "fidelity.md", "\n".join(md) + "\n")

    names = ft.results[0].task_names
    figs = [viz.heatmap(*SEED_FINETUNE, None, title="seed: finetune (lower triangle published)", zmin=50),
            viz.heatmap(ft.agg["matrix_mean"], ft.agg["matrix_std"], names, title=f"ours: finetune ({n_seeds} seeds)", zmin=50),
            viz.heatmap(*SEED_DYNAMICNN, None, title="seed: DynamicNN V2' (worst head, expand@[1,3])", zmin=50),
            viz.heatmap(v2.agg["matrix_mean"], v2.agg["matrix_std"], names, title=f"ours: DynamicNN V2' ({n_seeds} seeds)", zmin=50)]
    divs = [pio.to_html(f, full_html=False, include_plotlyjs=i == 0, div_id=f"fidelity-{i}") for i, f in enumerate(figs)]
    rows = "".join(f"<tr><td>{html.escape(c.claim)}</td><td>{html.escape(c.seed)}</td><td>{html.escape(c.ours)}</td>"
                   f"<td><b>{c.held}</b></td></tr>" for c in cl)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>dynnn fidelity</title>"
            "<style>td,th{border:1px solid #ccc;padding:4px} table{border-collapse:collapse} .pair{display:flex}</style>"
            "</head><body><h1>Fidelity: the seed's tables beside ours</h1>"
            f"<p>Embedded benchmark, seeds {seeds}; colour scale from 50 %.</p>"
            f"<table><tr><th>claim</th><th>seed</th><th>ours</th><th>held</th></tr>{rows}</table>"
            f"<div class='pair'>{divs[0]}{divs[1]}</div><div class='pair'>{divs[2]}{divs[3]}</div></body></html>")
    atomic_text(out_dir / "fidelity.html", page)
    return out_dir / "fidelity.md"


def build(base: Mapping[str, Any] | None = None, seeds: int = 3, jobs: int = 2, runs_dir: str | Path | None = None,
          out_dir: str | Path = "reports", progress: bool = True) -> Path:
    """Run (or read from the cache) the five poster variants and V2', then write the fidelity report."""
    # one pool for all six configurations, so V2's runs share the workers with the poster variants
    *summaries, v2 = reproduce(base, seeds=range(seeds), jobs=jobs, runs_dir=runs_dir, progress=progress,
                               variants={**VARIANTS, V2_NAME: V2_OVERRIDES})
    return report(summaries, v2, out_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dynnn_lib.fidelity", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs-dir", default=None, help="run cache (default ./runs or $DYNNN_RUNS)")
    ap.add_argument("--out", default="reports")
    args = ap.parse_args(argv)
    try:
        if args.seeds < 1:
            raise DynnnError(f"--seeds {args.seeds}: need at least 1 seed")
        path = build(seeds=args.seeds, jobs=args.jobs, runs_dir=args.runs_dir, out_dir=args.out)
    except DynnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
