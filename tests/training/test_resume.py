"""Kill a real `ionfno train` process mid-run, resume the run, and get the uninterrupted result.

On CPU with one thread the resumed run must be *bitwise* equal to the uninterrupted one:
model weights, optimiser state, the metric history (apart from timings) and the test errors.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ionfno.training import apply_overrides, load_checkpoint, load_preset, train

pytestmark = pytest.mark.timeout(180)

EPOCHS = 24
SETS = [f"epochs={EPOCHS}", "threads=1", "checkpoint_every=2", "scheduler=onecycle"]
TIMING = {"epoch_time_s", "wall_time_s", "cpu_time_s"}


def _cli(data, out, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "ionfno.cli",
        "train",
        str(data),
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--no-progress",
        *[a for s in SETS for a in ("--set", s)],
        *extra,
    ]
    return cmd, env


def _rows(path):
    try:
        with open(path) as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _strip(history):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def test_killed_and_resumed_run_equals_uninterrupted_run(synthetic_h5, tmp_path):
    # Reference: uninterrupted, in this process (one thread, as the subprocess).
    ref_out = tmp_path / "ref"
    cfg = apply_overrides(load_preset("tiny"), SETS)
    ref = train(cfg, synthetic_h5, ref_out, device="cpu", progress=False)

    # A real CLI process, SIGKILLed once a few epochs (and at least one checkpoint) are done.
    out = tmp_path / "killed"
    cmd, env = _cli(synthetic_h5, out)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(_rows(out / "metrics.csv")) < 4:
        assert proc.poll() is None, f"run ended before the kill: {proc.communicate()[1].decode()[-2000:]}"
        assert time.monotonic() < deadline, "no progress from the training subprocess"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(out / "last.pt")["epoch"]
    assert 2 <= killed_at < EPOCHS, killed_at  # it really was mid-run

    # Resume (in this process, to spare a second interpreter start-up; the CLI calls the same
    # train(..., resume=True)).
    resumed = train(cfg, synthetic_h5, out, device="cpu", progress=False)
    assert resumed.epochs_run == EPOCHS

    a, b = load_checkpoint(ref_out / "last.pt"), load_checkpoint(out / "last.pt")
    assert a["epoch"] == b["epoch"] == EPOCHS
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    assert a["scheduler"] == b["scheduler"]
    assert _strip(a["history"]) == _strip(b["history"])
    assert _strip(ref.history) == _strip(b["history"])
    assert a["best_epoch"] == b["best_epoch"] and a["best_val"] == b["best_val"]
    best_a, best_b = load_checkpoint(ref_out / "best.pt"), load_checkpoint(out / "best.pt")
    for k in best_a["model"]:
        assert torch.equal(best_a["model"][k], best_b["model"][k]), k
    # The CSV of the resumed run has each epoch exactly once.
    assert [int(r["epoch"]) for r in _rows(out / "metrics.csv")] == list(range(1, EPOCHS + 1))
