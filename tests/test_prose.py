"""Prose follows the numbers: a notebook's Markdown never asserts a result (which tasks forget most, where a rule
expands, whether a trick helps, a rank); the notebook prints it from its own runs, and what it prints is right."""
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))

# a sentence that names a task (1..8) together with what happened there is a result, typed by hand
TASK = re.compile(r"\btasks? \[?[1-9]|\bweak light\b|\bocclusion\b.{0,20}\btask", flags=re.I)
HAPPENED = re.compile(r"drops?\b|forg[eo]t|overwrit|pattern|far from|expands? there|never expand|"
                      r"hurts?\b|helps?\b|most\b", flags=re.I)
# sentences that state an outcome whatever the tasks
OUTCOMES = re.compile(r"watch for the same pattern|our best|means less forgetting|\branks? \d|\bit never expands|"
                      r"the trick (?:hurts|helps)|beats? (?:the|every)|\bours (?:forgot|forgets|beats|wins)|"
                      r"\btrades plasticity\b.*\bfor stability", flags=re.I)


def result_sentences(markdown: str) -> list[str]:
    """The sentences of `markdown` that state a result instead of leaving it to the notebook's output."""
    text = " ".join(l.lstrip("# ").strip() for l in markdown.splitlines())
    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        if OUTCOMES.search(s) or (TASK.search(s) and HAPPENED.search(s)):
            out.append(s)
    return out


def _markdown(path: Path) -> list[str]:
    import jupytext

    return [c.source for c in jupytext.read(path).cells if c.cell_type == "markdown"]


# notebook 07's cell "Where did each rule expand?" is edited separately; until it prints its finding instead of
# naming tasks, this case is expected to fail (strict: the marker must go once it is fixed)
KNOWN: dict[str, str] = {}  # notebook stem -> why its prose still states a result (none today)


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=KNOWN[p.stem]))
                                  if p.stem in KNOWN else p for p in NOTEBOOKS], ids=lambda p: p.stem)
def test_notebook_markdown_states_no_result(path):
    found = [s for cell in _markdown(path) for s in result_sentences(cell)]
    assert not found, f"{path.name}: results typed into the prose; print them from the runs instead: {found}"


def test_the_check_catches_the_sentences_it_is_for():
    for s in ("In the paper's finetune table the big drops come right after task 3 (weak light) and task 5 "
              "(50 % occlusion). Watch for the same pattern here.",
              "With a fixed schedule, a very dissimilar task (weak light, task 3) is distilled into an existing head "
              "and overwrites that head's own domain; the threshold rule expands there instead.",
              "Less movement per task means less forgetting.",
              "DynamicNN here is our best variant.",
              "Before the calibration ours forgot far more.",
              "Freezing the trunk and adding heads trades plasticity (the diagonal) for stability (BWT closer to zero)."):
        assert result_sentences(s), s
    for s in ("Row *i* is the network after task *i*, column *j* is the test set of task *j*.",
              "Task 0 trains everything, then the trunk is frozen.",
              "The idea: less movement per task should mean less forgetting; whether it does is printed below.",
              "The paper expanded by hand, at task 1 (expand@[1]) or at tasks 1 and 3 (expand@[1, 3])."):
        assert not result_sentences(s), s


# ------------------------------------------------------------------ what the notebooks print


def _matrix(n, drop_after: dict[int, float]):
    """An accuracy matrix (fractions) whose earlier tasks lose drop_after[i] while task i is trained."""
    m = np.full((n, n), 0.9)
    for i in range(1, n):
        m[i, :i] = m[i - 1, :i] - drop_after.get(i, 0.0)
    return m


def test_the_forgetting_statement_names_the_tasks_the_matrices_show():
    from dynnn_lib.workbench.study import forgetting_statement

    a, b = _matrix(9, {2: 0.10, 6: 0.20, 7: 0.05}), _matrix(9, {2: 0.12, 6: 0.18, 7: 0.04, 8: 0.06})
    text = forgetting_statement("finetune", [a, b])
    first = text.splitlines()[0]
    assert "after tasks 2, 6, 7 (" in first and "task 6: +19.0" in first and "task 2: +11.0" in first
    assert "Per seed: 2, 6, 7; 2, 6, 8." in text and "task 7: +4.5" in first
    from dynnn_lib.experiments.fidelity import worst_tasks
    from dynnn_lib.experiments.paper import PAPER_FINETUNE

    paper = worst_tasks(PAPER_FINETUNE[0])
    assert f"The paper's finetune table: after tasks {', '.join(map(str, paper))}" in text
    assert "3 tasks and" not in text
    short = forgetting_statement("finetune", [_matrix(3, {1: 0.3})])
    assert "largest mean drop (" in short and "comes after task 1 (task 1: +30.0)" in short and "not compared" in short
    assert "no task lowered" in forgetting_statement("finetune", [_matrix(4, {})])


def test_the_expansion_statement_counts_seeds_and_says_never():
    from dynnn_lib.workbench.study import expansion_statement

    assert expansion_statement("auto", {0: [1, 3], 1: [1], 2: [1]}) == \
        "auto expanded at task 1 in 3 of 3 seed(s); task 3 in 1 of 3 seed(s)."
    assert "no new head in any of the 2 seed(s)" in expansion_statement("auto", {0: [], 1: []})


def test_the_difference_statement_follows_the_paired_interval():
    from dynnn_lib.evaluation.stats import paired
    from dynnn_lib.workbench.study import difference_statement

    worse = difference_statement("trick", "no trick", "BWT", paired([0.10, 0.11, 0.12], [0.20, 0.22, 0.21]))
    assert worse.startswith("trick − no trick, BWT, paired over 3 seed(s): -10.00 [") and "not held" in worse
    one = difference_statement("trick", "no trick", "BWT", paired([0.3], [0.1]))
    assert "inconclusive" in one and "1 seed(s)" in one
