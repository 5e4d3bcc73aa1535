"""The report page: every table and figure is there, the study's numbers sit beside ours, it renders."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from ionfno.evaluation import plots
from ionfno.evaluation.biomarkers import compare_biomarkers, compute_biomarkers
from ionfno.evaluation.metrics import compute_errors
from ionfno.evaluation.report import REPORT_FILES, render_html, study_comparison_rows, write_report

N = 200
T = np.linspace(0.0, 100.0, N)
NAMES = ["V", "w"]


def _synthetic_results():
    rng = np.random.default_rng(0)
    true = np.stack(
        [np.stack([np.exp(-(((T - 20 - 5 * b) / 8.0) ** 2)), 0.3 * np.sin(T / 30.0 + b)]) for b in range(6)]
    )
    pred = true + 0.01 * rng.standard_normal(true.shape)
    mean, std = true.mean(axis=0), true.std(axis=0, ddof=1)
    parts = ["general"] * 4 + ["t0", "nap"]
    table = compute_errors(
        pred, true, mean=mean, std=std, state_names=NAMES, state_units=["1", "1"], parts=parts
    )
    bt = compute_biomarkers(true[:, 0], T, threshold=0.5)
    bp = compute_biomarkers(pred[:, 0], T, threshold=0.5)
    results = {
        "model": "fhn",
        "state_names": NAMES,
        "state_units": ["1", "1"],
        "split": "test",
        "metrics": table.summary(),
        "ranges": dict(zip(NAMES, table.ranges.tolist(), strict=True)),
        "biomarkers": {"threshold": 0.5, "comparison": compare_biomarkers(bt, bp), "definitions": "defs"},
        "worst_samples": [
            {
                "rank": 1,
                "index": 3,
                "part": "general",
                "amplitude": 1.0,
                "duration": 5.0,
                "onset": 0.0,
                "rel_l2": 0.1,
                "worst_variable": "V",
            }
        ],
        "speed": {
            "methods": {
                "surrogate (FNO)": {
                    "n_samples": 6,
                    "seconds_total": 0.01,
                    "seconds_per_sample": 0.002,
                    "speedup_of_surrogate": 1.0,
                }
            },
            "note": "n",
        },
        "ood": {
            "cases": {
                "two_pulses": {
                    "n": 2,
                    "description": "d",
                    "rel_l2": 0.2,
                    "rel_l2_V": 0.3,
                    "rmse_V": 0.1,
                    "fire_agreement": 1.0,
                }
            },
            "note": "n",
        },
        "config": {"model": {"hidden_channels": 8}},
        "data_provenance": {"seed": 0},
        "run_label": "constrained",
    }
    figures = {
        "trajectories_0": (
            plots.plot_trajectories(T, true[0], pred[0], NAMES, ["1", "1"], i_app=np.ones(N)),
            "traj",
        ),
        "error_per_variable": (
            plots.plot_error_per_variable(
                table.summary()["all"]["rel_l2"]["per_variable"], study={"V": 0.0121}
            ),
            "per var",
        ),
        "error_distribution": (
            plots.plot_error_distributions({"general": table.sample_overall()[:4]}),
            "dist",
        ),
        "loss_curves": (
            plots.plot_loss_curves(
                {
                    "constrained": [
                        {"epoch": 1, "train_loss": 1, "val_loss": 2},
                        {"epoch": 2, "train_loss": 0.5, "val_loss": 1},
                    ],
                    "unconstrained": [{"epoch": 1, "train_loss": 2, "val_loss": 3}],
                }
            ),
            "loss",
        ),
        "tuning_history": (
            plots.plot_tuning_history({"constrained": [(0, 0.5), (1, None), (2, 0.2)]}),
            "tuning",
        ),
        "biomarkers": (plots.plot_biomarker_scatter(bt, bp), "bm"),
    }
    return results, figures, table


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    results, figures, table = _synthetic_results()
    out = tmp_path_factory.mktemp("report")
    write_report(out, results, figures, metric_rows=table.rows(), dpi=40)
    return out, results, figures


def test_report_has_every_file_table_and_figure(report_dir):
    out, results, figures = report_dir
    for f in REPORT_FILES:
        assert (out / f).stat().st_size > 0, f
    page = (out / "report.html").read_text()
    for ident in (
        "study-table",
        "per-variable",
        "per-part",
        "biomarkers",
        "worst",
        "speed",
        "ood",
        "provenance",
    ):
        assert f'id="{ident}"' in page, ident
    imgs = re.findall(r'<figure id="fig-([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in imgs] == list(figures)
    for _, data in imgs:  # every embedded figure is a real PNG
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 1000
    assert "http://" not in page and "https://" not in page  # self-contained
    saved = json.loads((out / "results.json").read_text())
    assert saved["figures"] == list(figures)
    assert (out / "figures" / "loss_curves.png").exists()


def test_study_numbers_side_by_side(report_dir):
    out, results, _ = report_dir
    page = (out / "report.html").read_text()
    ours = results["metrics"]["all"]["rel_l2"]["overall"]
    headers, rows = study_comparison_rows(
        "fhn", results["metrics"]["all"]["rel_l2"]["per_variable"], ours, NAMES, label="constrained"
    )
    assert headers == ["variable", "constrained", "study default", "study unconstrained", "study constrained"]
    assert rows[0][2:] == ["0.89 %", "0.88 %", "0.82 %"]
    assert rows[1][0] == "V" and rows[1][4] == "1.21 %" and rows[2][4] == "0.42 %"
    assert f"{100 * ours:.3g} %" in page
    h, rows = study_comparison_rows("hh", {}, 0.03, ["V", "m", "h", "n"])
    assert rows[1][3] == "3.34 %" and rows[0][1:] == ["3 %", "3.3 %", "2.35 %", "2.67 %"]
    h, rows = study_comparison_rows("ord", {}, 0.03, ["V"] + [f"s{i}" for i in range(40)])
    assert rows[0][-1] == "≈ 2 %" and len(rows) == 2


def test_metrics_csv_matches_summary(report_dir):
    out, results, _ = report_dir
    import csv

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    v = [r for r in rows if r["part"] == "all" and r["metric"] == "rel_l2" and r["variable"] == "overall"]
    np.testing.assert_allclose(float(v[0]["value"]), results["metrics"]["all"]["rel_l2"]["overall"])


def test_render_html_escapes_text():
    page = render_html({"model": "fhn", "title": "<script>x</script>", "state_names": [], "metrics": {}}, {})
    assert "<script>" not in page and "&lt;script&gt;" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package 'chromium') is not installed")
def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    out, _, figures = report_dir
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (out / "report.html").resolve().as_uri()
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'id="study-table"' in dom and dom.count("<img") == len(figures)
    shot = tmp_path / "shot.png"
    subprocess.run(
        flags + ["--window-size=1200,1600", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    import matplotlib.image

    img = matplotlib.image.imread(shot)
    assert img.shape[0] == 1600 and img.shape[1] == 1200
    assert img[..., :3].std() > 0.05  # not a blank page: text, tables and figures were drawn
