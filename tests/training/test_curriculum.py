"""Coarse-to-fine curriculum (train.coarse_epochs / train.coarse_factor)."""

from __future__ import annotations

import csv

import pytest
import torch

from ionfno.training import apply_overrides, load_checkpoint, load_preset, train
from ionfno.training.logger import csv_text

from ._helpers import StopTraining, stop_at, strip_times

pytestmark = pytest.mark.timeout(120)


def tiny(*overrides):
    return apply_overrides(load_preset("tiny"), ["threads=1", "checkpoint_every=1", *overrides])


def test_a_coarse_epoch_is_an_epoch_on_the_coarser_stored_grid(synthetic_h5, tmp_path):
    # Every 2nd point of the subsample-2 grid is the subsample-4 grid, and the point-wise
    # normaliser of a subset of time indices is the subset of the normaliser: the coarse epochs
    # must train exactly as a run on the subsample-4 grid does (same init, order and schedule).
    coarse = train(
        tiny("epochs=3", "subsample=2", "coarse_epochs=3", "coarse_factor=2"),
        synthetic_h5, tmp_path / "coarse", device="cpu", progress=False,
    )
    plain = train(tiny("epochs=3", "subsample=4"), synthetic_h5, tmp_path / "plain", device="cpu", progress=False)
    assert [r["train_points"] for r in coarse.history] == [64, 64, 64]
    assert [r["train_points"] for r in plain.history] == [64, 64, 64]
    torch.testing.assert_close(
        torch.tensor([r["train_loss"] for r in coarse.history]),
        torch.tensor([r["train_loss"] for r in plain.history]),
        rtol=1e-6, atol=0,
    )
    a = load_checkpoint(tmp_path / "coarse" / "last.pt")
    b = load_checkpoint(tmp_path / "plain" / "last.pt")
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-7)
    # ... but validation, checkpoints and test stay on the run's own (full) grid.
    assert a["data_info"]["n_points"] == 128 and b["data_info"]["n_points"] == 64
    assert coarse.test_metrics["best"]["n_samples"] == 16


def test_the_run_switches_to_the_full_grid_and_resumes_across_the_switch(synthetic_h5, tmp_path):
    cfg = tiny("epochs=4", "coarse_epochs=2", "coarse_factor=2")
    full = train(cfg, synthetic_h5, tmp_path / "full", device="cpu", progress=False)
    assert [r["train_points"] for r in full.history] == [64, 64, 128, 128]

    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(2))
    resumed = train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    assert strip_times(resumed.history) == strip_times(full.history)
    with open(tmp_path / "cut" / "metrics.csv") as f:
        assert [r["train_points"] for r in csv.DictReader(f)] == ["64", "64", "128", "128"]


def test_curriculum_settings_are_checked(synthetic_h5, tmp_path):
    with pytest.raises(ValueError, match=r"coarse_epochs must be in \[0, train.epochs=3\]"):
        tiny("epochs=3", "coarse_epochs=4")
    with pytest.raises(ValueError, match="coarse_factor"):
        tiny("coarse_factor=0")
    # 128 points hold 65 modes, the 16-point coarse grid (factor 8) only 9.
    cfg = tiny("epochs=2", "coarse_epochs=1", "coarse_factor=8", "n_modes=12")
    with pytest.raises(ValueError, match=r"n_modes=12 exceeds 9.*coarse_factor=8"):
        train(cfg, synthetic_h5, tmp_path / "run", device="cpu", progress=False)


def test_metrics_csv_keeps_columns_a_resumed_older_run_gains():
    text = csv_text([{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.25, "train_points": 64}])
    rows = list(csv.DictReader(text.splitlines()))
    assert rows == [
        {"epoch": "1", "val_loss": "0.5", "train_points": ""},
        {"epoch": "2", "val_loss": "0.25", "train_points": "64"},
    ]
