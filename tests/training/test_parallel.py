"""Data-parallel CPU training (train.workers): same updates as one process, resumable, checked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ionfno.training import apply_overrides, load_checkpoint, load_preset, train

from ._helpers import StopTraining, stop_at

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPU cores for 2 workers x 1 thread"),
]


def tiny(*overrides):
    # batch 7 over 48 samples: uneven shards (4 + 3) and a short last batch (6 -> 3 + 3).
    return apply_overrides(
        load_preset("tiny"), ["threads=1", "checkpoint_every=1", "batch_size=7", *overrides]
    )


def test_two_workers_train_as_one_process_does(synthetic_h5, tmp_path):
    # Splitting each batch and summing the shards' weighted gradients is the batch gradient:
    # only the float summation order differs, so the runs agree to float32 rounding.
    cfg = tiny("epochs=3", "coarse_epochs=1", "coarse_factor=2")
    one = train(cfg, synthetic_h5, tmp_path / "one", device="cpu", progress=False)
    two = train(apply_overrides(cfg, ["workers=2"]), synthetic_h5, tmp_path / "two", device="cpu", progress=False)
    assert [r["train_points"] for r in two.history] == [r["train_points"] for r in one.history]
    for key in ("train_loss", "val_loss"):
        torch.testing.assert_close(
            torch.tensor([r[key] for r in two.history]),
            torch.tensor([r[key] for r in one.history]),
            rtol=1e-4, atol=0,
        )
    a = load_checkpoint(tmp_path / "one" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "two" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-5)
    # and the run is not the same as a single process that silently ignored the workers:
    # the saved config says 2 workers
    assert load_checkpoint(tmp_path / "two" / "last.pt")["config"]["train"]["workers"] == 2


def test_a_run_resumes_with_another_worker_count(synthetic_h5, tmp_path):
    cfg = tiny("epochs=3", "workers=2")

    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(1))
    resumed = train(apply_overrides(cfg, ["workers=1"]), synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    full = train(cfg, synthetic_h5, tmp_path / "full", device="cpu", progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    torch.testing.assert_close(
        torch.tensor([r["val_loss"] for r in resumed.history]),
        torch.tensor([r["val_loss"] for r in full.history]),
        rtol=1e-4, atol=0,
    )


def test_bad_worker_settings_are_refused_with_the_reason(synthetic_h5, tmp_path):
    cores = os.cpu_count() or 1
    with pytest.raises(ValueError, match="exceeds the .* CPU cores"):
        train(tiny(f"workers={cores}", "threads=2"), synthetic_h5, tmp_path / "over", device="cpu", progress=False)
    with pytest.raises(ValueError, match="train.workers must be"):
        tiny("workers=0")
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="data-parallel CPU"):
            train(tiny("workers=2"), synthetic_h5, tmp_path / "gpu", device="cuda", progress=False)


def test_workers_exit_when_the_training_process_is_killed(synthetic_h5, tmp_path):
    # Helpers block on a pipe from rank 0: a SIGKILL of rank 0 closes it, and they must exit
    # rather than linger as orphans holding a core.
    out = tmp_path / "killed"
    code = (
        "import sys; from ionfno.training import apply_overrides, load_preset, train\n"
        "cfg = apply_overrides(load_preset('tiny'), ['threads=1', 'workers=2', 'epochs=500'])\n"
        f"train(cfg, {str(synthetic_h5)!r}, {str(out)!r}, device='cpu', progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (out / "last.pt").exists():
            time.sleep(0.2)
        assert (out / "last.pt").exists(), "the run did not start"
        helpers = _children(proc.pid)
        assert helpers, "no helper process found"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(p) for p in helpers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in helpers), "helper processes outlived the killed run"
    finally:
        if proc.poll() is None:
            proc.kill()


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc), i.e. the spawned helpers."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("n", [1, 2, 5])
def test_split_validation_equals_one_process(n):
    from ionfno.training.loop import build_model, evaluate
    from ionfno.training.parallel import DataParallelPool

    cfg = tiny()
    torch.manual_seed(0)
    model = build_model(cfg, 2, 2)
    x, y = torch.randn(n, 2, 64), torch.randn(n, 2, 64)
    with DataParallelPool(2, 1, cfg, 2, 2, model, {"v_x": x, "v_y": y}) as pool:
        split = pool.evaluate("v", x, y, batch_size=2)
    torch.testing.assert_close(split, evaluate(model, x, y, batch_size=2, device=torch.device("cpu")), rtol=1e-5, atol=0)
