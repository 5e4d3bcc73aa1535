"""The whole pipeline at smoke size: generate -> train -> evaluate -> report, resume, export."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from ionfno.cli import main
from ionfno.reproduce import reproduce


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    t0 = time.perf_counter()
    summary = reproduce("fhn", "smoke", out, device="cpu", progress=False)
    return out, summary, time.perf_counter() - t0


def test_reproduce_smoke_writes_every_stage(smoke):
    out, summary, _ = smoke
    for rel in (
        "data.h5",
        "runs/default/best.pt",
        "runs/default/metrics.csv",
        "reports/default/report.html",
        "reports/default/results.json",
        "reports/default/metrics.csv",
        "summary.json",
        "summary.md",
    ):
        assert (out / rel).exists(), rel
    res = json.loads((out / "reports/default/results.json").read_text())
    assert set(res["figures"]) >= {
        "trajectories_0",
        "error_per_variable",
        "error_distribution",
        "loss_curves",
        "ood",
        "restitution",
    }
    # the out-of-distribution section is the held-out benchmark, with its fixed seed
    from ionfno.evaluation.heldout import HELDOUT_KINDS, HELDOUT_SEED

    assert list(res["ood"]["cases"]) == list(HELDOUT_KINDS) and res["ood"]["seed"] == HELDOUT_SEED
    assert all(c["n"] + c["n_failed"] >= 1 and np.isfinite(c["rel_l2"]) for c in res["ood"]["cases"].values())
    assert len(res["ood"]["restitution"]["coupling"]) == res["options"]["restitution_points"]
    methods = res["speed"]["methods"]
    assert {"surrogate (FNO)", "SciPy reference (BDF)"} <= set(methods)
    assert all(m["seconds_per_sample"] > 0 for m in methods.values())
    assert summary["runs"]["default"]["rel_l2"] == res["metrics"]["all"]["rel_l2"]["overall"]


def test_study_metric_agrees_with_the_training_loop(smoke):
    # Two independent implementations of the study's metric on the test split: the training
    # loop's (float32, its own normaliser) and ours (float64, statistics recomputed from the file).
    out, _, _ = smoke
    res = json.loads((out / "reports/default/results.json").read_text())
    train_side = json.loads((out / "runs/default/test_metrics.json").read_text())["best"]
    np.testing.assert_allclose(res["metrics"]["all"]["rel_l2"]["overall"], train_side["rel_l2"], rtol=1e-4)
    for name in ("V", "w"):
        np.testing.assert_allclose(
            res["metrics"]["all"]["rel_l2"]["per_variable"][name], train_side[f"rel_l2_{name}"], rtol=1e-4
        )


def test_reproduce_resumes_by_skipping_finished_stages(smoke, capsys):
    out, summary, first = smoke
    mtime = (out / "reports/default/results.json").stat().st_mtime
    t0 = time.perf_counter()
    again = reproduce("fhn", "smoke", out, device="cpu", progress=False)
    assert time.perf_counter() - t0 < max(10.0, 0.5 * first)
    assert again["runs"] == summary["runs"]
    assert (out / "reports/default/results.json").stat().st_mtime == mtime
    assert capsys.readouterr().err.count("skipped") == 3


def test_cli_evaluate_and_torchscript_export(smoke, tmp_path, capsys):
    import torch

    from ionfno.surrogate import Surrogate

    out, _, _ = smoke
    run = out / "runs/default"
    rc = main(
        [
            "evaluate",
            str(run),
            "--data",
            str(out / "data.h5"),
            "--out",
            str(tmp_path / "rep"),
            "--speed-samples",
            "0",
            "--reference-samples",
            "0",
            "--ood-per-kind",
            "0",
            "--which",
            "last",
        ]
    )
    assert rc == 0 and "study metric" in capsys.readouterr().out
    assert (tmp_path / "rep/report.html").exists()
    assert main(["export", str(run), "--out", str(tmp_path / "sur.pt")]) == 0
    net = torch.jit.load(str(tmp_path / "sur.pt"))
    sur = Surrogate.load(run)
    meta = json.loads((tmp_path / "sur.pt.json").read_text())
    assert meta["state_names"] == ["V", "w"] and meta["n_points"] == sur.t.shape[0]
    for batch in (1, 3):  # the batch size is free
        i_app = sur.pulse_input(np.linspace(0.2, 1.8, batch), np.linspace(1.0, 80.0, batch))
        with torch.no_grad():
            got = net(torch.as_tensor(i_app, dtype=torch.float32)).double().numpy()
        np.testing.assert_allclose(got, sur.predict_array(i_app), rtol=1e-5, atol=1e-6)


def test_onnx_export_matches(smoke, tmp_path):
    pytest.importorskip("onnxscript")  # the dynamo exporter's own dependency (the export extra)
    ort = pytest.importorskip("onnxruntime")
    from ionfno.evaluation.export import export_onnx
    from ionfno.surrogate import Surrogate

    out, _, _ = smoke
    path = export_onnx(out / "runs/default", tmp_path / "sur.onnx")
    sess = ort.InferenceSession(str(path))
    sur = Surrogate.load(out / "runs/default")
    i_app = sur.pulse_input([0.3, 1.0, 1.9], [2.0, 50.0, 100.0])
    got = sess.run(None, {"i_app": i_app.astype(np.float32)})[0]
    ref = sur.predict_array(i_app)
    # The export uses the real DFT form of the spectral layers, the surrogate may use rfft: the
    # same operator, summed in another order in float32 (differences ~1e-6 of the output scale).
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["reproduce", "fhn", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "x.pt")]) == 2


@pytest.mark.slow
def test_reproduce_with_tuning_trains_both_spaces_and_overlays_them(tmp_path):
    plan = {
        "data": {"n_train": 16, "n_val": 4, "n_test": 4, "seed": 0, "n_points": 504, "workers": 1},
        "tune": {
            "spaces": {"constrained": "constrained", "unconstrained": "study-unconstrained"},
            "trials": 2,
            "threads": 1,
            "grace": 1,
            "base_first": True,
            "overrides": ["train.epochs=1", "train.threads=1"],
        },
        "train": {"preset": "tiny", "overrides": ["train.threads=1"]},
        "default_run": True,
        "final_overrides": ["train.epochs=2"],
        "evaluate": {
            "speed_samples": 2,
            "reference_samples": 0,
            "ood_per_kind": 0,
            "speed_repeats": 1,
            "dpi": 40,
        },
    }
    summary = reproduce("fhn", plan, tmp_path, device="cpu", progress=False)
    assert list(summary["runs"]) == ["default", "constrained", "unconstrained"]
    assert (tmp_path / "tune-study-unconstrained").is_dir()
    assert "| default |" in (tmp_path / "summary.md").read_text()
    res = json.loads((tmp_path / "reports/constrained/results.json").read_text())
    assert {"tuning_history", "loss_curves"} <= set(res["figures"])
    assert res["epoch"] == 2 and res["run_label"] == "constrained"
