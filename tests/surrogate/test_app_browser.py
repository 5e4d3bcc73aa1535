"""`ionfno app` in a real browser: headless Chromium (Debian package) driven by Playwright.

The page loads from a server started as a user starts it (`ionfno app --port 0`), draws a first
prediction, draws a new one when an input changes and when a waveform file is uploaded, and
the trajectories and numbers it shows equal :meth:`Surrogate.predict` and the biomarkers of its
output on the same input. Every request the browser makes goes to that server (no CDN).
Skipped when Chromium or Playwright is absent; Playwright drives the installed Chromium
(``executable_path``) and never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")
pytest.importorskip("playwright.sync_api")

from ionfno.evaluation.compare import biomarkers_of, compare_with_solver  # noqa: E402
from ionfno.stimulus import pulse  # noqa: E402
from ionfno.surrogate import Surrogate  # noqa: E402
from ionfno.waveform import read_waveform  # noqa: E402

from .conftest import NAME  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The network is closed: no background traffic, no updates, a fresh profile (user data dir).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 240_000  # a first prediction loads torch and the solver's kernels: slow on a busy 2-core machine

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package 'chromium') is missing"),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def app_url(built_root, tmp_path_factory):
    """`ionfno app --port 0` in a subprocess, offering the test's pretrained surrogate."""
    log = tmp_path_factory.mktemp("app") / "server.log"
    env = {**os.environ, "IONFNO_PRETRAINED_PATH": str(built_root), "OMP_NUM_THREADS": "1"}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ionfno.cli", "app", "--port", "0"],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ionfno app: serving on http://127.0.0.1:"), line + log.read_text()
        yield line.split()[4]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _after(page, action) -> None:
    """Do ``action()`` and wait until the page has drawn the next result."""
    n = int(page.get_attribute("#status", "data-run"))
    action()
    page.wait_for_selector(f'#status[data-run="{n + 1}"]', timeout=WAIT_MS)


def _shown(page, state: str) -> dict:
    """The trajectories drawn in a state's figure (solver, surrogate) and the grid."""
    return page.evaluate(
        """(s) => { const d = document.getElementById('plot-' + s).data;
                    return {t: Array.from(d[1].x), solver: Array.from(d[0].y),
                            surrogate: Array.from(d[1].y)}; }""",
        state,
    )


def _check_page(page, sur, stimulus) -> None:
    """Drawn trajectories and shown numbers equal the library's on ``stimulus``."""
    pred = sur.predict(sur.encode(stimulus))
    cmp = compare_with_solver(sur, stimulus)
    for s in ("V", "w"):
        shown = _shown(page, s)
        np.testing.assert_allclose(shown["t"], sur.t, rtol=1e-12)
        np.testing.assert_allclose(shown["surrogate"], pred[s][0], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(shown["solver"], cmp.solver[cmp.index(s)], rtol=1e-6, atol=1e-9)
        cell = page.locator(f"#err-rmse-{s}")
        assert float(cell.get_attribute("data-value")) == pytest.approx(cmp.errors[s]["rmse"], rel=1e-5)
    bm = biomarkers_of(pred["V"][0], sur.t, sur.model_name)
    for key in ("v_peak", "t_upstroke", "apd90"):
        cell = page.locator(f"#bm-surrogate-{key}")
        value, text = cell.get_attribute("data-value"), cell.inner_text()
        if bm[key] is None:
            assert value == "" and text == "\u2013"
        else:
            assert float(value) == pytest.approx(bm[key], rel=1e-9)
            assert float(text) == pytest.approx(bm[key], rel=1e-4)  # shown with 5 significant digits
    assert float(page.locator("#time-surrogate").get_attribute("data-value")) > 0
    assert float(page.locator("#time-solver").get_attribute("data-value")) > 0


def test_the_page_predicts_and_shows_the_library_numbers(app_url, built_root, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("IONFNO_PRETRAINED_PATH", str(built_root))
    sur = Surrogate.load(NAME)
    (tmp_path / "w.csv").write_text("t,i_app\n0,0.9\n30,0.9\n30.5,0\n100,0\n")
    requested: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                   headless=True, args=FLAGS)
        try:
            page = ctx.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.goto(app_url)
            page.wait_for_selector('#status[data-run="1"]', timeout=WAIT_MS)  # the first result
            if page.locator("#surrogate").input_value() != NAME:  # shipped surrogates are listed too
                _after(page, lambda: page.select_option("#surrogate", NAME))
            # The model's example pulse (FHN: A = 1, T_stim = 5).
            assert (float(page.input_value("#amplitude")), float(page.input_value("#duration"))) == (1.0, 5.0)
            _check_page(page, sur, pulse(1.0, 5.0))
            first = _shown(page, "V")["surrogate"]

            # Changing an input draws a new prediction.
            _after(page, lambda: page.fill("#amplitude", "0.6"))
            _check_page(page, sur, pulse(0.6, 5.0))
            assert _shown(page, "V")["surrogate"] != first

            # An uploaded waveform file.
            page.check("#kind-waveform")  # no file yet: the page asks for one
            _after(page, lambda: page.set_input_files("#waveform", str(tmp_path / "w.csv")))
            _check_page(page, sur, read_waveform(tmp_path / "w.csv"))
            assert page.locator("#error").is_hidden()
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        finally:
            ctx.close()
    assert requested and all(u.startswith(app_url) for u in requested), sorted(set(requested))
