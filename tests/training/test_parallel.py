"""Data-parallel training (torch DDP): same updates as one process, any launch, resumable, checked.

Ranks started by ``train.workers`` (this process is rank 0), by ``torchrun`` on one machine, and
by two torchrun launchers meeting through the c10d rendezvous on localhost (two "nodes").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest
import torch

from ionfno.training import apply_overrides, build_model, load_checkpoint, load_preset, train

from ._helpers import StopTraining, stop_at

pytestmark = [
    # A few seconds each on an idle 2-core machine; the margin is for a loaded one.
    pytest.mark.timeout(600),
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPU cores for 2 ranks x 1 thread"),
]


def tiny(*overrides):
    # batch 7 over 48 samples: uneven shares (4 + 3) and a short last batch (6 -> 3 + 3).
    return apply_overrides(
        load_preset("tiny"), ["threads=1", "checkpoint_every=1", "batch_size=7", *overrides]
    )


def _assert_same_run(a, b, rtol=1e-4):
    for key in ("train_loss", "val_loss"):
        torch.testing.assert_close(
            torch.tensor([r[key] for r in a.history]),
            torch.tensor([r[key] for r in b.history]),
            rtol=rtol,
            atol=0,
        )


def _assert_same_weights(a_dir, b_dir):
    a = load_checkpoint(a_dir / "last.pt")["model"]
    b = load_checkpoint(b_dir / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-5)


def test_two_ranks_train_as_one_process_does(synthetic_h5, tmp_path):
    # Splitting each batch and summing the shares' weighted gradients is the batch gradient:
    # only the float summation order differs, so the runs agree to float32 rounding.
    cfg = tiny("epochs=3", "coarse_epochs=1", "coarse_factor=2")
    one = train(cfg, synthetic_h5, tmp_path / "one", device="cpu", progress=False)
    two = train(
        apply_overrides(cfg, ["workers=2"]), synthetic_h5, tmp_path / "two", device="cpu", progress=False
    )
    assert [r["train_points"] for r in two.history] == [r["train_points"] for r in one.history]
    _assert_same_run(two, one)
    _assert_same_weights(tmp_path / "one", tmp_path / "two")
    # Test errors are split over the ranks too, and agree.
    torch.testing.assert_close(
        two.test_metrics["best"]["rel_l2"], one.test_metrics["best"]["rel_l2"], rtol=1e-4, atol=0
    )
    # The run is not a single process that silently ignored the workers: the config says 2.
    assert load_checkpoint(tmp_path / "two" / "last.pt")["config"]["train"]["workers"] == 2


def test_two_ranks_teacher_force_as_one_process_does(synthetic_h5, tmp_path):
    # A chunked rollout's teacher-forced epoch passes the targets and a chunk offset through DDP.
    cfg = tiny("epochs=2", "input_normalization=channel", "chunk=16", "teacher_forcing_epochs=1")
    one = train(cfg, synthetic_h5, tmp_path / "one", device="cpu", progress=False)
    two = train(
        apply_overrides(cfg, ["workers=2"]), synthetic_h5, tmp_path / "two", device="cpu", progress=False
    )
    assert [r["teacher_forced"] for r in two.history] == [1, 0]
    _assert_same_run(two, one)
    _assert_same_weights(tmp_path / "one", tmp_path / "two")


def test_a_run_resumes_with_another_worker_count(synthetic_h5, tmp_path):
    cfg = tiny("epochs=3", "workers=2")
    # The callback raising on rank 0 stops every rank (no rank is left waiting).
    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(1))
    resumed = train(
        apply_overrides(cfg, ["workers=1"]), synthetic_h5, tmp_path / "cut", device="cpu", progress=False
    )
    full = train(cfg, synthetic_h5, tmp_path / "full", device="cpu", progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    _assert_same_run(resumed, full)


def test_bad_worker_settings_are_refused_with_the_reason(synthetic_h5, tmp_path):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with pytest.raises(ValueError, match="exceeds the .* CPU cores"):
        train(
            tiny(f"workers={cores}", "threads=2"),
            synthetic_h5,
            tmp_path / "over",
            device="cpu",
            progress=False,
        )
    with pytest.raises(ValueError, match="train.workers must be"):
        tiny("workers=0")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(ValueError, match="one CUDA device per rank"):
            train(tiny(f"workers={n + 1}"), synthetic_h5, tmp_path / "gpu", device="cuda", progress=False)


# ---------------------------------------------------------------------------- the step strategy
def _shares_rank(device, cfg, x, y):
    """Rank 1 of test_shares_..._equal_one_process (spawned by LocalRanks)."""
    _shares(device, cfg, x, y)


def _shares(device, cfg, x, y):
    from ionfno.training.losses import get_loss
    from ionfno.training.steps import DataParallel

    out = {}
    for n in (1, 2, 5):  # fewer samples than ranks, as many, more (uneven)
        torch.manual_seed(0)
        step = DataParallel(build_model(cfg, 2, 2), device)
        out[f"val{n}"] = step.evaluate(x[:n], y[:n], batch_size=2)
    # 5 samples in batches of 2: the last batch of 1 leaves rank 1 an empty share.
    opt = torch.optim.AdamW(step.model.parameters(), lr=1e-2)
    loss = step.train_epoch(
        x[:5],
        y[:5],
        optimizer=opt,
        loss_fn=get_loss("l2"),
        batch_size=2,
        generator=torch.Generator().manual_seed(0),
    )
    out["loss"], out["model"] = loss, step.model.state_dict()
    return out


def test_shares_of_batches_and_samples_equal_one_process():
    from ionfno.training.distributed import LocalRanks
    from ionfno.training.losses import get_loss
    from ionfno.training.steps import SingleProcess

    cfg = tiny()
    x, y = torch.randn(5, 2, 64), torch.randn(5, 2, 64)
    cpu = torch.device("cpu")
    with LocalRanks(2, cpu, 1, _shares_rank, (cfg, x, y)) as dev:
        got = _shares(dev, cfg, x, y)
    for n in (1, 2, 5):
        torch.manual_seed(0)
        one = SingleProcess(build_model(cfg, 2, 2), cpu)
        torch.testing.assert_close(
            got[f"val{n}"], one.evaluate(x[:n], y[:n], batch_size=2), rtol=1e-5, atol=0
        )
    opt = torch.optim.AdamW(one.model.parameters(), lr=1e-2)
    loss = one.train_epoch(
        x[:5],
        y[:5],
        optimizer=opt,
        loss_fn=get_loss("l2"),
        batch_size=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert loss == pytest.approx(got["loss"], rel=1e-5)
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(got["model"][k], v, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- processes
def _train_cmd(data, out, *sets, module=True):
    args = ["train", str(data), "--preset", "tiny", "--out", str(out), "--device", "cpu", "--no-progress"]
    for s in ("threads=1", "checkpoint_every=1", "batch_size=7", *sets):
        args += ["--set", s]
    return [sys.executable, "-m", "ionfno.cli", *args] if module else args


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _wait_for(path, proc, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline and not path.exists():
        assert proc.poll() is None, f"the run ended early: {proc.communicate()[1][-3000:]}"
        time.sleep(0.1)
    assert path.exists(), "the run did not start"


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _all_gone(pids, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return not any(_alive(p) for p in pids)


@contextlib.contextmanager
def _two_rank_run(data, out):
    """An `ionfno train` process with 2 ranks, running past its first checkpoint; yields the
    process and the pids of its spawned ranks."""
    proc = subprocess.Popen(
        _train_cmd(data, out, "workers=2", "epochs=500"), env=_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(out / "last.pt", proc)
        below = _descendants(proc.pid)
        ranks = [p for p in below if "spawn_main" in _cmdline(p) and "resource_tracker" not in _cmdline(p)]
        assert ranks, "no spawned rank found"
        yield proc, below, ranks
    finally:
        if proc.poll() is None:
            proc.kill()


def test_spawned_ranks_exit_when_the_training_process_is_killed(synthetic_h5, tmp_path):
    # A SIGKILL of rank 0 closes its connections and re-parents the other ranks: they must exit
    # rather than linger as orphans holding a core.
    with _two_rank_run(synthetic_h5, tmp_path / "killed") as (proc, below, _):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _all_gone(below), "ranks outlived the killed run"


def test_a_killed_rank_ends_the_run_with_a_clear_error(synthetic_h5, tmp_path):
    out = tmp_path / "rank-killed"
    with _two_rank_run(synthetic_h5, out) as (proc, below, ranks):
        os.kill(ranks[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "training rank 1 of 2 died (killed by SIGKILL" in err, err[-3000:]
        assert "the same command resumes it" in err
        assert _all_gone(below), "processes outlived the run"
    assert load_checkpoint(out / "last.pt")["epoch"] >= 1  # the last checkpoint is intact


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_launchers(data, run, *sets, timeout=150):
    """Two torchrun launchers (one rank each) meeting through a c10d rendezvous on localhost.

    Returns ``[(stdout, stderr)]`` per launcher after asserting both exit with 0, or None when
    they did not finish in ``timeout`` seconds (both killed; their stderr in a warning).
    """
    port = _free_port()
    launch = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-nodes",
        "--max-restarts", "0", "-m", "ionfno.cli", *_train_cmd(data, run, *sets, module=False),
    ]
    nodes = [
        subprocess.Popen(
            [*launch[:3], "--rdzv-conf", f"is_host={i == 0}", *launch[3:]],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [n.communicate(timeout=timeout) for n in nodes]
    except subprocess.TimeoutExpired:
        for pid in [q for n in nodes for q in (*_descendants(n.pid), n.pid)]:  # ranks hold the pipes
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        errs = [n.communicate()[1] for n in nodes]
        warnings.warn(
            f"the two launchers did not finish in {timeout} s:\n"
            + "\n".join(f"--- launcher {i} stderr:\n{e[-4000:]}" for i, e in enumerate(errs)),
            stacklevel=2,
        )
        return None
    finally:
        for n in nodes:
            if n.poll() is None:
                n.kill()
    for i, (n, (_, e)) in enumerate(zip(nodes, outs, strict=True)):
        assert n.returncode == 0, f"launcher {i} (exit code {n.returncode}):\n{e[-3000:]}"
    return outs


def test_two_nodes_on_localhost_resume_a_run_as_one_process_would(synthetic_h5, tmp_path):
    # Two torchrun launchers (one rank each) meet through the c10d rendezvous: two "nodes".
    # They resume a run that one process started and end where one process would have.
    cfg = tiny("epochs=3")
    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "started", device="cpu", progress=False, on_epoch=stop_at(1))
    full = train(cfg, synthetic_h5, tmp_path / "full", device="cpu", progress=False)

    # On the 2-core CI machine a launch takes 7-15 s, but it hung (150 s) in 1 of 98 runs of this
    # test alone and once in 6 full CI runs; its cause is not known yet (the kept stderr should
    # tell). One more try, from the same started run on a fresh port; the hang's stderr is kept
    # as a warning, and a second hang fails the test.
    for _ in range(2):
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        shutil.copytree(tmp_path / "started", tmp_path / "run")
        outs = _two_launchers(synthetic_h5, tmp_path / "run", "epochs=3")
        if outs is not None:
            break
    else:
        pytest.fail("the two launchers hung twice (their stderr is in the warnings)")
    assert sum("ionfno train: 3 epochs" in o for o, _ in outs) == 1  # rank 0 alone reports
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["finished"] and ck["epoch"] == 3
    torch.testing.assert_close(
        torch.tensor([r["val_loss"] for r in ck["history"]]),
        torch.tensor([r["val_loss"] for r in full.history]),
        rtol=1e-4,
        atol=0,
    )
    _assert_same_weights(tmp_path / "full", tmp_path / "run")
    assert (tmp_path / "run" / "test_metrics.json").exists()
