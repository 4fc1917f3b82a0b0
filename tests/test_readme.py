"""The generated blocks of the README and docs/ are filled from the reports and the code, never typed."""
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


def test_each_block_is_filled_in_the_one_document_that_holds_it(tmp_path):
    from dynnn_lib.reports.readme import fill_files

    a, b = tmp_path / "README.md", tmp_path / "speed.md"
    a.write_text("front door\n")
    b.write_text("x\n<!-- BEGIN speed -->\nold\n<!-- END speed -->\n")
    assert fill_files([a, b], {"speed": "new"}) == [b] and "new" in b.read_text() and a.read_text() == "front door\n"
    with pytest.raises(DynnnError, match="exactly one file"):
        fill_files([a, b], {"fidelity": "x"})


def test_a_report_alone_refreshes_its_block_and_leaves_the_others(tmp_path):
    """After `make bench` alone: the benchmarks block is filled, every other block is left and named."""
    from dynnn_lib.reports.readme import blocks

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "benchmarks.md").write_text("# dynnn benchmarks\n\nMeasured on CPU X (CPU family 6).\n\n"
                                           "## In-workbench baselines beside Avalanche's (paired)\n\n| a | b |\n")
    missing: list[str] = []
    values = blocks(reports, missing)
    assert list(values) == ["benchmarks"] and "speed.md" in missing and "fidelity.json" in missing
    text = fill("<!-- BEGIN benchmarks -->\nold\n<!-- END benchmarks -->\n<!-- BEGIN speed -->\nkept\n<!-- END speed -->\n",
                values)
    assert "Measured on CPU X (CPU family 6).\n\n| a | b |" in text and "old" not in text and "kept" in text


def test_the_readmes_result_blocks_name_their_source_runs_machine_and_date(tmp_path):
    """The stand-ins block is rendered from its document alone: it names the document, the instances, the seeds and
    the machine of the runs behind it; a document of another schema version is refused in one line."""
    import json

    from dynnn_lib.experiments.fidelity import STANDINS_SCHEMA
    from dynnn_lib.reports.readme import blocks

    doc = {"schema": STANDINS_SCHEMA, "streams": ["round1-calibrated", "round1"], "instances": [1, 2], "seeds": [0],
           "machine": {"line": "CPU X (CPU family 6), 2 cores", "date": "2026-12-03"}, "claims": []}
    (tmp_path / "standins.json").write_text(json.dumps(doc))
    text = blocks(tmp_path)["standins"]
    assert "instances [1, 2], seeds [0]" in text and "`reports/standins.json`" in text
    assert "Machine: CPU X (CPU family 6), 2 cores; generated 2026-12-03." in text
    (tmp_path / "standins.json").write_text(json.dumps({**doc, "schema": "dynnn.standins/2"}))
    with pytest.raises(DynnnError, match=r"standins.json is dynnn.standins/2, this code reads dynnn.standins/4; "
                                         r"regenerate it \(make all\)"):
        blocks(tmp_path)
