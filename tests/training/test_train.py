"""train(): learning, run-folder artefacts, early stopping, callbacks, bad inputs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from ionfno.training import CheckpointError, apply_overrides, load_checkpoint, load_preset, train

pytestmark = pytest.mark.timeout(120)


def tiny(*overrides):
    return apply_overrides(load_preset("tiny"), ["threads=1", *overrides])


def test_a_tiny_model_overfits_a_few_samples(synthetic_h5, tmp_path):
    # 4 samples, full batch: the training error must fall far below that of the untrained model
    # (~1.0 in normalised space) and far below the validation error (memorisation).
    cfg = tiny(
        "n_train=4",
        "n_val=4",
        "batch_size=4",
        "epochs=150",
        "lr=1e-2",
        "scheduler=onecycle",
        "weight_decay=0",
        "hidden_channels=16",
        "lifting_channels=32",
        "projection_channels=32",
        "checkpoint_every=1000",
    )
    res = train(cfg, synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    first, last = res.history[0]["train_loss"], res.history[-1]["train_loss"]
    assert first > 0.5
    assert last < 0.1, f"train loss {last:.4f} after {res.epochs_run} epochs"
    assert last < first / 10
    assert res.history[-1]["val_loss"] > 3 * last


def test_run_folder_holds_checkpoints_metrics_and_test_errors(synthetic_h5, tmp_path):
    out = tmp_path / "run"
    cfg = tiny("epochs=6")
    res = train(cfg, synthetic_h5, out, device="cpu", progress=False)
    assert res.epochs_run == 6 and len(res.history) == 6
    vals = [r["val_loss"] for r in res.history]
    assert res.final_val == vals[-1]
    assert res.best_val == min(vals) and res.best_epoch == 1 + int(np.argmin(vals))
    assert res.n_parameters == sum(t.numel() for k, t in load_checkpoint(out / "last.pt")["model"].items())

    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    for col in ("train_loss", "val_loss", "val_V", "val_w", "lr", "epoch_time_s"):
        assert col in rows[0]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], vals, rtol=1e-8)
    # The scalar metric is the mean over variables of the per-variable errors.
    for r in res.history:
        assert r["val_loss"] == pytest.approx((r["val_V"] + r["val_w"]) / 2, rel=1e-9)

    best = torch.load(out / "best.pt", weights_only=True)  # no pickle needed
    last = load_checkpoint(out / "last.pt")
    assert best["format"] == "ionfno-checkpoint" and best["epoch"] == res.best_epoch
    assert last["epoch"] == 6 and last["finished"] is True
    assert last["data_info"]["state_names"] == ["V", "w"]
    assert last["data_info"]["n_points"] == 128 and last["data_info"]["t_end"] == 100.0
    assert set(last["normalizers"]) == {"kind", "input_kind", "input", "output"}
    assert last["config"]["train"]["epochs"] == 6

    tm = res.test_metrics
    assert tm["best"]["epoch"] == res.best_epoch and tm["last"]["epoch"] == 6
    assert tm["best"]["n_samples"] == 16
    parts = tm["best"]["parts"]
    assert set(parts) == {"t0", "general"}
    # The per-part means recombine into the overall mean.
    overall = sum(p["n"] * p["rel_l2"] for p in parts.values()) / 16
    assert overall == pytest.approx(tm["best"]["rel_l2"], rel=1e-9)
    assert (out / "test_metrics.json").exists() and (out / "config.json").exists()


def test_rerunning_a_finished_run_does_not_train_again(synthetic_h5, tmp_path):
    cfg = tiny("epochs=3")
    first = train(cfg, synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    calls = []
    again = train(
        cfg,
        synthetic_h5,
        tmp_path / "run",
        device="cpu",
        progress=False,
        on_epoch=lambda e, m: calls.append(e),
    )
    assert calls == [] and again.history == first.history and again.best_val == first.best_val


def test_no_resume_starts_over(synthetic_h5, tmp_path):
    cfg = tiny("epochs=3")
    train(cfg, synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    calls = []
    res = train(
        cfg,
        synthetic_h5,
        tmp_path / "run",
        device="cpu",
        progress=False,
        resume=False,
        on_epoch=lambda e, m: calls.append(e),
    )
    assert calls == [1, 2, 3] and res.epochs_run == 3


class Stop(Exception):
    pass


def test_on_epoch_may_stop_the_run_and_the_run_resumes_after(synthetic_h5, tmp_path):
    out = tmp_path / "run"
    cfg = tiny("epochs=5")
    seen = []

    def prune(epoch, metrics):
        seen.append((epoch, metrics["val_loss"]))
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, synthetic_h5, out, device="cpu", progress=False, on_epoch=prune)
    assert [e for e, _ in seen] == [1, 2]
    assert load_checkpoint(out / "last.pt")["epoch"] == 2  # written before the callback
    res = train(cfg, synthetic_h5, out, device="cpu", progress=False)
    assert res.epochs_run == 5
    assert res.history[1]["val_loss"] == seen[1][1]


def test_early_stopping(synthetic_h5, tmp_path):
    # A learning rate this small cannot improve the validation error for long.
    cfg = tiny("epochs=60", "patience=2", "lr=1e-12", "scheduler=constant")
    res = train(cfg, synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    assert res.stopped_early and res.epochs_run < 60
    assert res.epochs_run - res.best_epoch == 2


def test_resuming_with_another_config_is_refused(synthetic_h5, tmp_path):
    train(tiny("epochs=2"), synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"config differs.*train.lr"):
        train(tiny("epochs=2", "lr=0.5"), synthetic_h5, tmp_path / "run", device="cpu", progress=False)


def test_too_many_modes_for_the_grid_is_a_config_error(synthetic_h5, tmp_path):
    with pytest.raises(ValueError, match=r"model.n_modes=100 exceeds 65.*data.subsample=2"):
        train(tiny("n_modes=100"), synthetic_h5, tmp_path / "run", device="cpu", progress=False)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(CheckpointError, match="not a readable ionfno checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="not an ionfno checkpoint"):
        load_checkpoint(other)
    newer = tmp_path / "newer.pt"
    torch.save({"format": "ionfno-checkpoint", "version": 99}, newer)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(newer)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_damaged_last_checkpoint_is_reported_not_overwritten(synthetic_h5, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        train(tiny("epochs=2"), synthetic_h5, out, device="cpu", progress=False)
    assert (out / "last.pt").read_bytes() == b"garbage"


def test_cuda_without_a_gpu_is_a_clear_error(synthetic_h5, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        train(tiny("epochs=1"), synthetic_h5, tmp_path / "run", device="cuda", progress=False)


def test_schedules_follow_their_definition(synthetic_h5, tmp_path):
    # StepLR: lr_e = lr * gamma ** floor((e - 1) / step_size), logged at the start of epoch e.
    cfg = tiny("epochs=5", "scheduler=step", "step_size=2", "gamma=0.5", "lr=0.01")
    res = train(cfg, synthetic_h5, tmp_path / "step", device="cpu", progress=False)
    np.testing.assert_allclose([r["lr"] for r in res.history], [0.01, 0.01, 0.005, 0.005, 0.0025])
    # One-cycle sized to the run: starts at lr/25, peaks at lr, ends near lr * final_lr_ratio.
    cfg = tiny("epochs=6", "scheduler=onecycle", "lr=0.01", "warmup_fraction=0.3")
    res = train(cfg, synthetic_h5, tmp_path / "one", device="cpu", progress=False)
    lrs = [r["lr"] for r in res.history]
    assert lrs[0] == pytest.approx(0.01 / 25)
    assert max(lrs) <= 0.01 + 1e-12 and lrs[-1] < lrs[2]
    assert not any(math.isnan(v) for v in lrs)


class _RecordingWriter:
    """Stands in for ``torch.utils.tensorboard.SummaryWriter`` (the optional extra)."""

    def __init__(self, log_dir, purge_step):
        self.log_dir, self.purge_step = log_dir, purge_step
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, float(value), int(step)))

    def close(self):
        self.closed = True


def test_tensorboard_gets_every_logged_metric_and_resumes_without_duplicates(
    synthetic_h5, tmp_path, monkeypatch
):
    # The real SummaryWriter is the `tensorboard` extra (not installed in CI); the contract
    # with it is what train() passes: every CSV column per epoch, and on resume a purge_step
    # that drops events written after the checkpoint.
    from ionfno.training import logger

    writers: list[_RecordingWriter] = []

    def fake(log_dir, purge_step):
        writers.append(_RecordingWriter(log_dir, purge_step))
        return writers[-1]

    monkeypatch.setattr(logger, "open_tensorboard", fake)
    out = tmp_path / "run"
    stop_at = 2

    def stop(epoch, row):
        if epoch == stop_at:
            raise Stop

    with pytest.raises(Stop):
        train(tiny("epochs=4"), synthetic_h5, out, device="cpu", progress=False, on_epoch=stop)
    train(tiny("epochs=4"), synthetic_h5, out, device="cpu", progress=False)
    assert [w.purge_step for w in writers] == [None, stop_at + 1]
    assert all(w.closed for w in writers)
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = {(tag, step): value for w in writers for tag, value, step in w.scalars}
    for r in rows:
        for col, value in r.items():
            if col != "epoch":
                assert logged[(col, int(r["epoch"]))] == pytest.approx(float(value), rel=1e-6)
    steps = [step for w in writers for tag, _, step in w.scalars if tag == "val_loss"]
    assert steps == [1, 2, 3, 4]


def test_val_every_validates_every_kth_and_the_last_epoch(synthetic_h5, tmp_path):
    from ionfno.evaluation.plots import plot_loss_curves

    res = train(tiny("epochs=5", "val_every=2"), synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    validated = [r["epoch"] for r in res.history if math.isfinite(r["val_loss"])]
    assert validated == [2, 4, 5]
    assert all(math.isnan(r["val_V"]) for r in res.history if r["epoch"] not in validated)
    assert res.best_epoch in validated and math.isfinite(res.final_val)
    assert load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == res.best_epoch
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [math.isnan(float(r["val_loss"])) for r in rows] == [True, False, True, False, False]
    # the loss-curve figure skips the gaps instead of losing the validation line
    fig = plot_loss_curves({"run": rows})
    val_line = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "run validation"][0]
    assert list(val_line.get_xdata()) == [2.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="train.val_every must be > 0"):
        tiny("val_every=0")


def test_resume_refuses_other_data_of_the_same_model_and_grid(synthetic_h5, tmp_path):
    # Issue 20 (3): another seed has the same states and grid; training on with the old run's
    # normalisers would silently give nonsense, so the run names both files and refuses.
    import shutil

    from ionfno.data.storage import dataset_fingerprint

    from .conftest import write_synthetic

    cfg = tiny("epochs=4")
    out = tmp_path / "run"
    with pytest.raises(Stop):
        train(cfg, synthetic_h5, out, device="cpu", progress=False, on_epoch=_stop_after(2))
    other = write_synthetic(tmp_path / "other.h5", seed=1)
    before = (out / "last.pt").read_bytes()
    with pytest.raises(ValueError, match=r"other data .*fingerprint .*--no-resume"):
        train(cfg, other, out, device="cpu", progress=False)
    assert (out / "last.pt").read_bytes() == before  # nothing written by the refused run
    # A copy of the same data elsewhere is the same data: the run resumes.
    copy = shutil.copy(synthetic_h5, tmp_path / "copy.h5")
    res = train(cfg, copy, out, device="cpu", progress=False)
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4]
    assert load_checkpoint(out / "last.pt")["data_info"]["fingerprint"] == dataset_fingerprint(synthetic_h5)
    # Starting over on the other data is the user's explicit choice.
    again = train(cfg, other, out, device="cpu", progress=False, resume=False)
    assert again.epochs_run == 4


def _stop_after(n):
    def stop(epoch, metrics):
        if epoch == n:
            raise Stop

    return stop


def test_a_full_disk_while_checkpointing_is_a_clean_error_and_the_run_resumes(
    synthetic_h5, tmp_path, monkeypatch, capsys
):
    # Issue 20 (6): torch's writer failed with "enforce fail at inline_container.cc"; the
    # checkpoint now reaches the disk through Python, so the error names the file (exit 2) and
    # the previous checkpoint stays whole.
    import errno
    import os
    from pathlib import Path

    from ionfno.cli import main

    out = tmp_path / "run"
    args = ["train", str(synthetic_h5), "--preset", "tiny", "--out", str(out), "--device", "cpu",
            "--no-progress", "--set", "threads=1", "--set", "epochs=3", "--set", "checkpoint_every=1"]
    real, writes = Path.write_bytes, []

    def write_bytes(self, data):
        if self.name.startswith(".last.pt."):
            writes.append(self)
            if len(writes) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    with monkeypatch.context() as m:
        m.setattr(Path, "write_bytes", write_bytes)
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"No space left on device writing {str(out / 'last.pt')!r}" in err and "Traceback" not in err
    assert load_checkpoint(out / "last.pt")["epoch"] == 1  # the last good checkpoint, intact
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    assert main(args) == 0  # space is back: the same command resumes
    assert load_checkpoint(out / "last.pt")["epoch"] == 3


def test_a_channel_input_normaliser_keeps_the_pointwise_outputs_and_their_metric(synthetic_h5, tmp_path):
    # data.input_normalization=channel: one mean/std for the current, the study's point-wise
    # statistics for the states (so the study's metric is unchanged); saved, reloaded, and a
    # current where every training current was zero is no longer blown up by a tiny std.
    from ionfno.data.normalize import ChannelNormalizer, PointwiseNormalizer
    from ionfno.surrogate import Surrogate

    cfg = tiny("n_train=8", "n_val=4", "epochs=1", "data.input_normalization=channel")
    train(cfg, synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["normalizers"]["kind"] == "pointwise" and ck["normalizers"]["input_kind"] == "channel"
    sur = Surrogate.load(tmp_path / "run", which="last")
    assert isinstance(sur._in_norm, ChannelNormalizer) and isinstance(sur._out_norm, PointwiseNormalizer)
    assert sur.output_statistics() is not None
    late = np.zeros((1, sur.t.shape[0]), dtype=np.float32)
    late[0, -5:] = 2.0  # the synthetic training pulses all start at t = 0
    enc = sur._in_norm.encode(torch.from_numpy(late)[:, None, :])
    assert float(enc.abs().max()) < 10.0
    # the default follows data.normalization, and older checkpoints without input_kind load
    cfg = tiny("n_train=8", "n_val=4", "epochs=1")
    train(cfg, synthetic_h5, tmp_path / "run2", device="cpu", progress=False)
    ck = load_checkpoint(tmp_path / "run2" / "last.pt")
    assert ck["normalizers"]["input_kind"] == "pointwise"
    del ck["normalizers"]["input_kind"]
    torch.save(ck, tmp_path / "old.pt")
    assert isinstance(Surrogate.load(tmp_path / "old.pt")._in_norm, PointwiseNormalizer)
    with pytest.raises(ValueError, match="input_normalization"):
        tiny("data.input_normalization=global")
