"""The README's measured blocks are filled from the reports, never typed."""
from pathlib import Path

import pytest

from dynnn_lib.core.errors import DynnnError
from dynnn_lib.reports.readme import fill

ROOT = Path(__file__).resolve().parents[1]


def test_fill_replaces_only_the_named_block():
    text = "a\n<!-- BEGIN speed -->\nold\n<!-- END speed -->\nb\n"
    assert fill(text, {"speed": "new"}) == "a\n<!-- BEGIN speed -->\nnew\n<!-- END speed -->\nb\n"
    with pytest.raises(DynnnError, match="no block"):
        fill(text, {"fidelity": "x"})


def test_the_readme_has_every_generated_block():
    text = (ROOT / "README.md").read_text()
    for name in ("fidelity", "reproduction", "speed", "baselines", "benchmarks", "sweep-scaling"):
        assert f"<!-- BEGIN {name} -->" in text and f"<!-- END {name} -->" in text
