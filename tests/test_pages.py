"""The experiments' pages are rendered from their JSON documents alone: a page rendered from the document read back
from disk is the page the experiment wrote, a missing matrix entry is null in the document (never NaN), and a
document of an older schema is refused in one line."""
import json

import numpy as np
import pytest

from dynnn_lib.core.errors import DynnnError
from dynnn_lib.experiments import calibrate, fidelity
from dynnn_lib.reports import pages
from test_fidelity import _bad, _six
from test_reports_html import _calibration_data

MACHINE = {"line": "CPU X (CPU family 6), 2 cores", "date": "2026-12-03"}


def _read(path):
    return json.loads(path.read_text())


def test_the_fidelity_pages_are_rendered_from_the_document_read_back(tmp_path):
    six = _six()
    fidelity.report(six, tmp_path, machine_info=MACHINE)
    doc = _read(tmp_path / "fidelity.json")
    assert pages.fidelity_md(doc) == (tmp_path / "fidelity.md").read_text()
    assert pages.fidelity_claims_md(doc) == (tmp_path / "fidelity_claims.md").read_text()
    assert pages.fidelity_html(doc) == (tmp_path / "fidelity.html").read_text()
    # the matrices the pages show: the paper's upper triangle is null, ours full, both read back with NaN there
    ft = doc["matrices"]["finetune"]
    assert ft["paper"]["mean"][0][1] is None and ft["paper"]["mean"][8][0] == pytest.approx(0.9854)
    mean, sd = fidelity.over_the_instances(six, fidelity.FT)
    assert np.array_equal(pages.matrix_of(ft["ours"]["mean"]), mean)
    assert np.array_equal(pages.matrix_of(ft["ours"]["sd"]), sd)
    assert np.isnan(pages.matrix_of(ft["paper"]["sd"])[0, 1])
    assert doc["matrices"]["v2"]["variant"] == fidelity.V2_NAME and doc["task_names"] == [f"task {j}" for j in range(9)]

    fidelity.standins_report({"round1-calibrated": fidelity.claims(six), "round1": fidelity.claims(_bad())}, list(six),
                             tmp_path)
    assert pages.standins_md(_read(tmp_path / "standins.json")) == (tmp_path / "standins.md").read_text()


def test_the_calibration_pages_are_rendered_from_the_document_read_back(tmp_path):
    calibrate.write_report(_calibration_data(), tmp_path)
    doc = _read(tmp_path / "calibration.json")
    assert pages.calibration_md(doc) == (tmp_path / "calibration.md").read_text()
    assert pages.calibration_html(doc) == (tmp_path / "calibration.html").read_text()
    paper = pages.matrix_of(doc["paper"]["finetune"])  # the paper's matrices travel in the document, unpublished null
    assert doc["paper"]["v2"][0][8] is None and np.array_equal(paper, calibrate.PAPER_FINETUNE[0], equal_nan=True)


def test_a_side_whose_variants_were_never_trained_has_no_column():
    """make all runs only finetune and V2' on round1 (the smaller side-by-side): its squares are None, and the
    block and the page show the paper beside the default stand-in only, not a column of dashes."""
    from dynnn_lib.reports import blocks

    both = {"finetune": {"paper": 93.84, "before": [70.0, 1.0], "after": [85.7, 3.4]}}
    after_only = {"finetune": {"paper": 93.84, "before": None, "after": [85.7, 3.4]}}
    assert blocks.prediction_rows(both, "square", {"before": "before", "after": "after"}) == [
        ["square", "the paper", "before", "after"], ["finetune", "93.84", "70.00 ± 1.00", "85.70 ± 3.40"]]
    assert blocks.prediction_rows(after_only, "square", {"before": "before", "after": "after"}) == [
        ["square", "the paper", "after"], ["finetune", "93.84", "85.70 ± 3.40"]]


def test_nan_never_reaches_a_document(tmp_path):
    m = np.array([[0.5, np.nan], [np.inf, 0.25]])
    assert pages.matrix_json(m) == [[0.5, None], [None, 0.25]]
    with pytest.raises(ValueError):
        pages.publish({"x": float("nan")}, tmp_path / "x.json", {})
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("render, old", [(pages.fidelity_md, "dynnn.fidelity/2"),
                                         (pages.fidelity_claims_md, "dynnn.fidelity/2"),
                                         (pages.fidelity_html, "dynnn.fidelity/2"),
                                         (pages.standins_md, "dynnn.standins/3"),
                                         (pages.calibration_md, "dynnn.calibration/2"),
                                         (pages.calibration_html, "dynnn.calibration/2"),
                                         (pages.calibration_md, "dynnn.calibration/3"),  # before skill: regenerate
                                         (pages.fidelity_md, "dynnn.fidelity/3"),
                                         (pages.calibration_md, None)])
def test_a_page_refuses_a_document_of_another_schema_in_one_line(render, old):
    new = old.rsplit("/", 1)[0] + "/" if old else "dynnn.calibration/"
    with pytest.raises(DynnnError) as e:
        render({"schema": old, "claims": []} if old else {"claims": []})
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"the document is {old or 'unversioned'}, this code reads {new}")
    assert msg.endswith("; regenerate it (make all)")


def test_a_colour_triple_reads_the_same_from_the_yaml_and_from_the_dataclass():
    """The knob table shows round1's casts (tuples in Knobs) and the fit's (lists from YAML) in one format."""
    assert pages.knob_value((1.1, 1.0, 0.8)) == pages.knob_value([1.1, 1, 0.8]) == "(1.100, 1.000, 0.800)"
    assert pages.knob_value(0.5) == "0.500" and pages.knob_value(3) == "3" and pages.knob_value(True) == "True"


def test_a_search_reports_page_names_the_stream_it_fitted(tmp_path):
    data = _calibration_data()
    calibrate.write_report(data, tmp_path / "round1")
    assert "before (round1 at trial 0's knobs" in (tmp_path / "round1" / "calibration.md").read_text()
    data["base"] = {"data": {"stream": "round1-mixture"}}
    calibrate.write_report(data, tmp_path / "mixture")
    page, doc = (tmp_path / "mixture" / "calibration.md").read_text(), _read(tmp_path / "mixture" / "calibration.json")
    assert "before (round1-mixture at trial 0's knobs" in page and "before (round1 " not in page
    titles = [a.text for a in pages.calibration_matrices(doc)[0].layout.annotations]
    assert "ours before (round1-mixture)" in titles and "ours after (round1-mixture at the best trial's knobs)" in titles
