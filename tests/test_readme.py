"""The README's measured blocks are filled from the reports, never typed."""
from pathlib import Path

import pytest

from dynnn_lib.errors import DynnnError
from dynnn_lib.readme import fill

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


def test_a_report_alone_refreshes_its_block_and_leaves_the_others(tmp_path, capsys):
    """After `make bench` alone: the benchmarks block changes, every other block stays and is named."""
    from dynnn_lib.readme import main

    readme = tmp_path / "README.md"
    readme.write_text("<!-- BEGIN benchmarks -->\nold\n<!-- END benchmarks -->\n"
                      "<!-- BEGIN speed -->\nkept\n<!-- END speed -->\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "benchmarks.md").write_text("# dynnn benchmarks\n\nMeasured on CPU X (CPU family 6).\n\n"
                                           "## In-workbench baselines beside Avalanche's (paired)\n\n| a | b |\n")
    assert main(["--readme", str(readme), "--reports", str(reports)]) == 0
    text = readme.read_text()
    assert "Measured on CPU X (CPU family 6).\n\n| a | b |" in text and "old" not in text and "kept" in text
    out = capsys.readouterr().out
    assert "updated" in out and "benchmarks" in out and "speed.md" in out
    (reports / "benchmarks.md").unlink()
    assert main(["--readme", str(readme), "--reports", str(reports)]) == 2
    assert "no report" in capsys.readouterr().err
