"""The glossary: every metric and term a table shows, defined once, from the code that computes it.

The metrics' names and definitions are read from the metric registry (each ``@metric``'s label and docstring,
evaluation/metrics.py: :func:`metric_terms`, :func:`metric_definitions`), so a page can never say one thing about
BWT while the code computes another, and no second list of names is kept here; ``dynnn readme`` writes them into
the ``glossary`` block of docs/glossary.md, and every generated table header links to its entry there
(:func:`term`).

Two backward transfers are kept, under two names, because the literature has both: **BWT (all pairs)**, the mean of
R[i, j] - R[j, j] over every j < i (Díaz-Rodríguez et al. 2018; ``metrics.bwt``, what ``dynnn run`` and the
reproduction and baselines tables show), and **BWT (final row)**, the same over the last row only (Lopez-Paz and
Ranzato 2017's BWT; ``fidelity.bwt_final``, what the claims judge). ``metrics.fwt`` is not the literature's forward
transfer (accuracy before training a task minus a reference): it is shown as **upper triangle**.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

GLOSSARY = "docs/glossary.md"
PACKAGE = Path(__file__).resolve().parents[1]


def metric_terms() -> dict[str, str]:
    """Each built-in metric's name in every table and on every page, from the metric registry (its ``@metric``
    label, evaluation/metrics.py); the code's keys stay: stored results use them."""
    from dynnn_lib.evaluation.metrics import builtin_metrics, metric_label

    return {name: metric_label(name) for name in builtin_metrics()}


def metric_definitions() -> list[tuple[str, str, str]]:
    """(term, where in the code, definition) for every metric a table shows. The one place that knows where the
    definitions live: the built-in metrics from the registry (each one's label and docstring, evaluation/metrics.py),
    the others from their functions' docstrings, read from the source (reports/ sits below experiments/ and does not
    import it). Repoint here when the metrics move."""
    from dynnn_lib.evaluation.metrics import get_metric

    out = []
    for name, label in metric_terms().items():
        out.append((label, f"evaluation/metrics.py `{name}`", _one_line(get_metric(name).definition)))
    for term_, path, fn in (("BWT (final row)", "experiments/fidelity.py", "bwt_final"),
                            ("skill", "experiments/objective.py", "skill")):
        out.append((term_, f"{path} `{fn}`", _one_line(_docstring(PACKAGE / path, fn))))
    return out


def _docstring(path: Path, function: str) -> str:
    """A module-level function's docstring, from its file's syntax tree."""
    tree = ast.parse(path.read_text())
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function), None)
    if node is None:
        raise ValueError(f"{path} defines no function {function}; repoint reports/glossary.py")
    return ast.get_docstring(node) or ""


def _one_line(text: str) -> str:
    """A docstring's text as one Markdown table cell: one line, Sphinx roles and double backticks made plain."""
    text = re.sub(r":\w+:`", "`", " ".join(text.split())).replace("``", "`")
    return text.rstrip(";").rstrip(".")


# the words of the claims tables, which are defined by evaluation/stats.py's verdict rules
VERDICTS = ("held", "not held", "equivalent", "inconclusive")


def verdict_definitions() -> list[tuple[str, str, str]]:
    """The four verdicts, from evaluation/stats.py's module docstring (its ``* ``name`` - ...`` bullets)."""
    from dynnn_lib.evaluation import stats

    out = [("verdict", "evaluation/stats.py `Paired.verdict`", _one_line(stats.Paired.verdict.__doc__ or ""))]
    for v in VERDICTS:
        m = re.search(rf"^\* ``{v}``\s*- (.*?)(?=^\* |^\S|\Z)", stats.__doc__ or "", flags=re.S | re.M)
        if m:
            out.append((v, "evaluation/stats.py", _one_line(m.group(1))))
    return out


def anchor(term: str) -> str:
    """GitHub's heading-style anchor of a term: lower case, spaces to hyphens, other punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", term.lower()).strip().replace(" ", "-")


def term(label: str, base: str = "") -> str:
    """A table header cell that links to the label's glossary entry (`base`: the folder of the page the table sits
    in, relative to docs/, e.g. "docs/" for the README); a label the glossary does not define stays as it is. The
    terms are the names alone (a test checks each link's anchor is in the generated glossary)."""
    terms = [*metric_terms().values(), "BWT (final row)", "skill", "verdict", *VERDICTS]
    key = next((t for t in sorted(terms, key=len, reverse=True) if label.lower().startswith(t.lower())), None)
    if key is None:
        return label
    return f"[{label}]({base}glossary.md#{anchor(key)})"


def glossary_block() -> str:
    """The glossary block: one table row per term, with an anchor a header can link to."""
    rows = ["| term | definition | computed by |", "|---|---|---|"]
    for t, where, text in metric_definitions() + verdict_definitions():
        rows.append(f"| <a id=\"{anchor(t)}\"></a>**{t}** | {text} | {where} |")
    return ("Generated by `dynnn readme` from the code that computes each term (`dynnn_lib/reports/glossary.py`). "
            "R[i, j] is the accuracy on task j's test set after training task i.\n\n" + "\n".join(rows))
