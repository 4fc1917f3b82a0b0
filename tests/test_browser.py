"""The explorer in a real JupyterLab, driven in headless Chromium by Playwright.

Starts `jupyter lab` on a free localhost port in a temporary folder holding notebooks/06_explorer.py (as
.ipynb, small parameters injected), runs all cells, selects another expansion task in the widget, presses
Train, and checks that the live plotly heatmap (a FigureWidget) was redrawn: new title, new values. Then a
scripted sequence of clicks (select a schedule, press Train) measures the latency of a click, from the press to
the redrawn heatmap, with task 0 warm: median and worst go to $DYNNN_LATENCY_OUT (JSON) when set.
$DYNNN_EXPLORER (JSON: n_tasks, base, clicks, cache) replaces the small default by another setting, e.g. the
embedded stream's nine tasks (benchmarks/explorer_latency.py).

Needs Debian's chromium (`make test` installs it when it can: root + apt-get); skipped with the reason
otherwise.  Screenshots go to $DYNNN_SCREENSHOTS when set (evidence for humans).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dynnn_lib.workbench.nbval_refs import parameterized

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")]

BASE = {"base_epochs": 3, "inc_epochs": 2, "base_milestones": [3], "inc_milestones": [2], "pretrained": False,
        "data": {"n_tasks": 3, "n_classes": 4, "train_per_class": 16, "test_per_class": 8}}
SETTING = {"n_tasks": 3, "base": BASE, "clicks": [[1, 2], []], "timeout_s": 180,
           **json.loads(os.environ.get("DYNNN_EXPLORER", "{}"))}
WAIT_MS = int(SETTING["timeout_s"] * 1000)  # the longest a training may take (9 tasks on a slow CPU: raise it)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path, monkeypatch):
    import nbformat

    if SETTING.get("cache"):  # a warm data and pretraining cache (the latency benchmark)
        monkeypatch.setenv("DYNNN_CACHE", SETTING["cache"])

    work = tmp_path / "lab"
    work.mkdir()
    nb = parameterized(ROOT / "notebooks" / "06_explorer.py",
                       {"n_tasks": SETTING["n_tasks"], "base": SETTING["base"],
                        "runs_dir": SETTING.get("runs_dir") or str(tmp_path / "runs"), "interactive": True})
    nbformat.write(nb, work / "explorer.ipynb")
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.root_dir={work}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--ServerApp.disable_check_xsrf=True"]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime")}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"jupyter lab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _heatmap(page) -> dict:
    return page.evaluate("""() => {
        const gd = document.querySelector('.jp-OutputArea .js-plotly-plot');
        return gd && gd.data ? {title: gd.layout.title.text, z: gd.data[0].z} : null;
    }""")


def _shoot(page, path: str) -> None:
    """Screenshot of the explorer's output (controls, summary, heatmap)."""
    out = page.locator(".jp-Cell", has=page.locator(".widget-select-multiple")).locator(".jp-OutputArea")
    out.scroll_into_view_if_needed()
    out.screenshot(path=path)


def test_explorer_heatmap_follows_the_selected_expansion_task(lab):
    from playwright.sync_api import expect, sync_playwright

    shots = os.environ.get("DYNNN_SCREENSHOTS")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab}/lab/tree/explorer.ipynb")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=90_000)
            page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                                   timeout=90_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            news = page.get_by_role("button", name="No")  # "get notified about Jupyter news?" toast
            try:
                news.click(timeout=3_000)
            except Exception:  # noqa: BLE001 - the toast is optional; nothing to dismiss
                pass

            status = page.locator(".widget-label", has_text="expanded:")
            # the notebook's last cell selects task 1 and trains it: the heatmap shows expand@1
            expect(status).to_have_text("expanded: 1", timeout=WAIT_MS)
            page.wait_for_function("() => { const gd = document.querySelector('.jp-OutputArea .js-plotly-plot');"
                                   " return gd && gd.layout.title.text.startsWith('expanded: 1 |'); }", timeout=60_000)
            before = _heatmap(page)
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                _shoot(page, f"{shots}/explorer_expand1.png")

            # the user picks task 2 instead: not in the cache yet, so the Train button lights up
            page.locator(".widget-select-multiple select").select_option(["task 2"])
            expect(status).to_contain_text("expanded: 2 | 1 run(s) not trained yet", timeout=30_000)
            train = page.locator("button.jupyter-button", has_text="Train")
            expect(train).to_be_enabled()
            train.click()
            expect(status).to_have_text("expanded: 2", timeout=WAIT_MS)
            page.wait_for_function("() => { const gd = document.querySelector('.jp-OutputArea .js-plotly-plot');"
                                   " return gd && gd.layout.title.text.startsWith('expanded: 2 |'); }", timeout=60_000)
            after = _heatmap(page)
            if shots:
                _shoot(page, f"{shots}/explorer_expand2.png")
            expect(train).to_be_disabled()
            latencies = [_click(page, status, train, clicks) for clicks in SETTING["clicks"]]
            # nothing went wrong on the way: no error output, no stderr (the kernel warns there when a widget
            # message cannot be serialized, as happened once with NaN in the empty heatmap)
            problems = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
                                    " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
            assert problems.count() == 0, problems.all_inner_texts()
        finally:
            browser.close()

    assert before["title"].startswith("expanded: 1 | square") and after["title"].startswith("expanded: 2 | square")
    n = SETTING["n_tasks"]
    assert len(after["z"]) == n and all(len(row) == n for row in after["z"])
    assert after["z"][0] == before["z"][0], "task 0 is trained the same way whatever expands later"
    assert after["z"] != before["z"], "a different expansion task must change the matrix"
    report = {"clicks": SETTING["clicks"], "latency_s": latencies, "median_s": statistics.median(latencies),
              "worst_s": max(latencies), "n_tasks": n}
    if os.environ.get("DYNNN_LATENCY_OUT"):
        Path(os.environ["DYNNN_LATENCY_OUT"]).write_text(json.dumps(report, indent=1))


def _click(page, status, train, tasks) -> float:
    """Select the schedule `tasks`, press Train, and time it until the heatmap's title names the schedule."""
    from playwright.sync_api import expect

    label = "expanded: " + (",".join(map(str, tasks)) or "none")
    page.locator(".widget-select-multiple select").select_option([f"task {t}" for t in tasks])
    expect(status).to_contain_text(f"{label} | 1 run(s) not trained yet", timeout=30_000)
    start = time.perf_counter()
    train.click()
    page.wait_for_function(f"() => {{ const gd = document.querySelector('.jp-OutputArea .js-plotly-plot');"
                           f" return gd && gd.layout.title.text.startsWith('{label} | square'); }}", timeout=WAIT_MS)
    return time.perf_counter() - start
