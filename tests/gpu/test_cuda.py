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
