"""Every HTML report renders its tables and figures: the calibration report's tables, error heatmaps and search
history (offline, plotly.js embedded once), and reports/index.html without the same runs listed twice. The same
pages are opened in headless Chromium when it is on PATH."""
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dynnn_lib.experiments import paper

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def _calibration_data() -> dict:
    rng = np.random.default_rng(0)
    side = lambda shift: {"rmse_calibration": 10.0 + shift, "rmse_finetune_45": 11.0 + shift,  # noqa: E731
                          "rmse_v2_diagonal_9": 7.0 + shift, "held_out_rmse_v2_offdiagonal_36": 5.0 + shift,
                          "values": {"weak_gain": 0.3 + shift / 100}, "finetune": rng.uniform(50, 100, (9, 9)).tolist(),
                          "v2": rng.uniform(50, 100, (9, 9)).tolist(), "trial": 2, "skill": -0.5 - shift / 10}
    from dynnn_lib.experiments.objective import null_models

    return {"before": side(10), "after": side(0), "knobs": ["weak_gain"], "reads": ["the 54 entries"],
            "null_models": null_models(),
            "trials": 3, "seeds": 1, "base": {}, "variants": {n: {"paper": s, "before": [80.0, 1.0], "after": [85.0, 1.0]}
                                                           for n, s in paper.PAPER_SCORES.items()},
            "history": [{"trial": 0, "state": "complete", "value": 20.0}, {"trial": 1, "state": "pruned", "value": 25.0},
                        {"trial": 2, "state": "complete", "value": 10.0}]}


@pytest.fixture
def calibration_html(tmp_path) -> Path:
    from dynnn_lib.experiments.calibrate import write_report

    write_report(_calibration_data(), tmp_path)
    return tmp_path / "calibration.html"


def test_the_calibration_page_has_tables_heatmaps_and_the_search_history(calibration_html):
    page = calibration_html.read_text()
    markup = re.sub(r"<script.*?</script>", "", page, flags=re.S)   # the page without plotly.js and the figures' data
    assert "<pre>" not in markup and not re.search(r"<script[^>]+src=", page)   # nothing loaded from elsewhere
    assert markup.count("<table>") == 5   # RMSE before/after, null models, knobs, the five variants, the search history
    assert "skill -0.50 at an objective of 10.00 points" in markup and "<td>row means</td>" in markup
    assert [f"calibration-{i}" for i in range(5)] == re.findall(r'<div id="(calibration-\d)"', page)
    assert page.count("Plotly.newPlot") == 5 and len(page) > 1_000_000   # plotly.js inline once: offline
    assert "Search history" in page and "best so far" in page


def _record(folder: Path, notebook: str, variants: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{notebook}.json").write_text(json.dumps({"variants": variants}))


def _variant(keys, square):
    m = {"overall": [square, 0.01], "average_accuracy": [0.5, 0.01], "final": [0.6, 0.0], "bwt": [-0.1, 0.0],
         "fwt": [0.1, 0.0], "diagonal": [0.9, 0.0]}
    return {"keys": keys, "metrics": m, "n_seeds": 1, "matrix_mean": [[0.9, 0.1], [0.8, 0.9]],
            "matrix_std": [[0, 0], [0, 0]], "task_names": ["a", "b"], "expanded_at": [[1]]}


@pytest.fixture
def index_html(tmp_path) -> Path:
    from dynnn_lib.workbench.batch import build_report

    ex = tmp_path / "executed"
    _record(ex, "04_combined", {"DynamicNN (expand@[1])": _variant(["k1"], 0.8), "DynamicNN (no expand)": _variant(["k2"], 0.7)})
    _record(ex, "05_lr_trick", {"DynamicNN (expand@1)": _variant(["k1"], 0.8), "DynamicNN (no expand)": _variant(["k2"], 0.7),
                                "finetune": _variant(["k3"], 0.6)})
    _record(ex, "01_finetune", {"finetune": _variant(["k4"], 0.65)})   # the same name, other runs: both kept
    return build_report(tmp_path)


def test_the_index_lists_each_run_once_and_puts_the_paper_beside_square(index_html):
    page = index_html.read_text()
    heads = re.findall(r"<h2>(.*?) <small>\((.*?)\)</small></h2>", page)
    names = [h for h, _ in heads]
    assert names.count("DynamicNN (expand@[1]) = DynamicNN (expand@1)") == 1
    assert names.count("DynamicNN (no expand)") == 1 and len(names) == 4
    assert dict(heads)["DynamicNN (no expand)"] == "04_combined, 05_lr_trick"
    summary = (index_html.parent / "summary.md").read_text()
    header = summary.splitlines()[2]
    assert header.index("| square |") < header.index("the paper (square)") < header.index("average acc.")
    row = next(l for l in summary.splitlines() if l.startswith("| DynamicNN (expand@[1]) = DynamicNN (expand@1)"))
    assert f"| {paper.PAPER_SCORES['DynamicNN (expand@1)']:.2f} |" in row
    from dynnn_lib.reports.figures import metrics_table

    fig = metrics_table({"finetune": {m: (0.5, 0.0) for m in ("average_accuracy", "bwt", "fwt", "overall", "final",
                                                                "diagonal")}}, paper.PAPER_SCORES)
    head = list(fig.data[0].header.values)
    assert head.index("the paper (square)") == head.index("square (all N²)") + 1


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_the_reports_render_in_chromium(calibration_html, index_html):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:")
                       else route.continue_())   # offline: nothing may come from the network
            for path, figures, tables in ((calibration_html, 5, 5), (index_html, 4, 0)):
                page.goto(path.as_uri())
                page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {figures}",
                                       timeout=30_000)
                assert page.locator(".js-plotly-plot").count() >= figures
                assert page.locator("table").count() >= tables
                assert page.locator(".js-plotly-plot .main-svg").count() >= figures
        finally:
            browser.close()
