"""CUDA path: the same code on the GPU gives the CPU's answers. Run with ``pytest -m gpu``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ionfno.fno import FNO1d
from ionfno.surrogate import Surrogate
from ionfno.training import apply_overrides, load_preset, train
from tests.training.conftest import write_synthetic

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("spectral", ["fft", "dft"])
@pytest.mark.parametrize("block", ["classic", "zongyi", "residual"])
def test_fno_forward_backward_match_cpu(spectral, block):
    torch.manual_seed(0)
    model = FNO1d(n_modes=12, in_channels=2, out_channels=41, hidden_channels=32, n_layers=3,
                  block=block, padding=5, spectral=spectral).double()
    x = torch.randn(4, 2, 300, dtype=torch.float64)
    y_cpu = model(x)
    y_cpu.square().mean().backward()
    g_cpu = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model_gpu = model.to("cuda")
    y_gpu = model_gpu(x.to("cuda"))
    y_gpu.square().mean().backward()
    np.testing.assert_allclose(y_gpu.cpu().detach().numpy(), y_cpu.detach().numpy(), rtol=1e-9, atol=1e-11)
    for gc, p in zip(g_cpu, model_gpu.parameters()):
        np.testing.assert_allclose(p.grad.cpu().numpy(), gc.numpy(), rtol=1e-7, atol=1e-10)


def test_train_on_cuda_resumes_and_serves_on_cpu(tmp_path):
    data = write_synthetic(tmp_path / "synthetic.h5")
    cfg = apply_overrides(load_preset("tiny"), ["epochs=4"])
    run = tmp_path / "run"
    res = train(cfg, data, run, device="cuda", progress=False)
    assert res.epochs_run == 4 and np.isfinite(res.best_val)
    # Resuming a finished run trains nothing more and keeps the result.
    again = train(cfg, data, run, device="cuda", progress=False)
    assert again.epochs_run == 4 and again.best_val == res.best_val
    # The checkpoint written on the GPU serves on either device with the same answers.
    sur_cpu = Surrogate.load(run, device="cpu")
    n = sur_cpu.grid().shape[0]  # the training grid (the tiny preset subsamples the file's)
    x = np.random.default_rng(0).uniform(0.0, 2.0, size=(3, n))
    on_cpu = sur_cpu.predict_array(x)
    on_gpu = Surrogate.load(run, device="cuda").predict_array(x)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- NCCL (torch DDP)
_NCCL_RANK = """
import datetime, sys, torch, torch.distributed as dist
from ionfno.training import apply_overrides, load_preset, train
store = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, wait_for_workers=False)
dist.init_process_group("nccl", store=store, rank=0, world_size=1, device_id=torch.device("cuda", 0))
cfg = apply_overrides(load_preset("tiny"), ["epochs=3", "batch_size=7"])
res = train(cfg, sys.argv[1], sys.argv[2], device="cuda", progress=False)
print("VAL", *[r["val_loss"] for r in res.history])
dist.destroy_process_group()
"""


def test_nccl_data_parallel_path_equals_one_process(tmp_path):
    # One rank in an NCCL group runs the whole DDP path (comm hook, shares, gathers on the GPU).
    import subprocess
    import sys

    import torch.distributed as dist

    if not dist.is_nccl_available():
        pytest.skip("torch built without NCCL")
    data = write_synthetic(tmp_path / "synthetic.h5")
    cfg = apply_overrides(load_preset("tiny"), ["epochs=3", "batch_size=7"])
    ref = train(cfg, data, tmp_path / "ref", device="cuda", progress=False)
    out = subprocess.run([sys.executable, "-c", _NCCL_RANK, str(data), str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    vals = [float(v) for v in out.stdout.split("VAL", 1)[1].split()]
    np.testing.assert_allclose(vals, [r["val_loss"] for r in ref.history], rtol=1e-4)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices (one per rank)")
def test_two_gpu_ranks_train_as_one_gpu_does(tmp_path):
    data = write_synthetic(tmp_path / "synthetic.h5")
    cfg = apply_overrides(load_preset("tiny"), ["epochs=3", "batch_size=7"])
    one = train(cfg, data, tmp_path / "one", device="cuda", progress=False)
    two = train(apply_overrides(cfg, ["workers=2"]), data, tmp_path / "two", device="cuda", progress=False)
    np.testing.assert_allclose([r["val_loss"] for r in two.history], [r["val_loss"] for r in one.history],
                               rtol=1e-4)
