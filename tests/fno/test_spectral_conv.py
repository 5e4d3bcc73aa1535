"""SpectralConv1d: both implementations against a direct numpy DFT, against each other, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ionfno.fno import SpectralConv1d
from ionfno.fno.spectral_conv import _BASIS_CACHE, choose_implementation, dft_bases

IMPLS = ["fft", "dft"]


def reference_spectral_conv(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The truncated spectral convolution by direct O(N^2) sums, written from the definition.

    X_k = sum_n x_n e^{-2 pi i k n / N};  Y_ok = sum_i R_iok X_ik (k < K);
    y_n = (1/N) sum_{k=-(N-1)//2..N//2} Y_k e^{+2 pi i k n / N}, with Y_{-k} = conj(Y_k) and
    the imaginary part of Y_0 (and of Y_{N/2}) discarded, as irfft does.
    """
    batch, n_in, n = x.shape
    r = weight[..., 0] + 1j * weight[..., 1]  # (I, O, K)
    k_modes = r.shape[-1]
    k = np.arange(k_modes)
    t = np.arange(n)
    e = np.exp(-2j * np.pi * np.outer(k, t) / n)  # (K, N)
    xk = np.einsum("bin,kn->bik", x, e)  # (B, I, K)
    yk = np.einsum("bik,iok->bok", xk, r)  # (B, O, K)
    y = np.zeros((batch, r.shape[1], n))
    for kk in range(k_modes):
        coef = yk[..., kk]
        if kk == 0 or (n % 2 == 0 and kk == n // 2):
            y += coef.real[..., None] * np.cos(2 * np.pi * kk * t / n)
        else:
            # Y_k e^{i w n} + conj(Y_k) e^{-i w n} = 2 Re(Y_k e^{i w n})
            y += 2 * (coef[..., None] * np.exp(2j * np.pi * kk * t / n)).real
    return y / n


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n_time", "n_modes"), [(16, 3), (17, 9), (16, 9), (33, 1), (40, 12)], ids=str)
def test_matches_direct_dft(impl, n_time, n_modes):
    torch.manual_seed(1)
    conv = SpectralConv1d(3, 2, n_modes, implementation=impl).double()
    with torch.no_grad():
        conv.weight.normal_()
    x = torch.randn(4, 3, n_time, dtype=torch.float64)
    expected = reference_spectral_conv(x.numpy(), conv.weight.detach().numpy())
    np.testing.assert_allclose(conv(x).detach().numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("n_time", "n_modes"), [(1260, 16), (1275, 16), (64, 33), (101, 51), (50, 1)], ids=str
)
def test_fft_and_dft_agree_float32(n_time, n_modes):
    torch.manual_seed(2)
    conv = SpectralConv1d(8, 5, n_modes, implementation="fft")
    x = torch.randn(3, 8, n_time)
    y_fft = conv(x)
    conv.implementation = "dft"
    y_dft = conv(x)
    scale = y_fft.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(y_dft, y_fft, rtol=0, atol=2e-6 * max(scale, 1.0))


@pytest.mark.parametrize("impl", IMPLS)
def test_gradcheck_float64(impl):
    torch.manual_seed(3)
    conv = SpectralConv1d(3, 2, 5, implementation=impl).double()
    x = torch.randn(2, 3, 12, dtype=torch.float64, requires_grad=True)
    add = torch.randn(2, 2, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: _call_with_weight(conv, x, w), (x, conv.weight))
    assert torch.autograd.gradcheck(lambda x, a: conv(x, add=a), (x, add))


def _call_with_weight(conv: SpectralConv1d, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.func.functional_call(conv, {"weight": w}, (x,))


def test_fused_add_equals_sum():
    torch.manual_seed(4)
    conv = SpectralConv1d(4, 4, 6, implementation="dft")
    x, add = torch.randn(2, 4, 30), torch.randn(2, 4, 30)
    torch.testing.assert_close(conv(x, add=add), conv(x) + add)


@pytest.mark.parametrize("impl", IMPLS)
def test_resolution_consistent_for_band_limited_input(impl):
    # A band-limited input sampled on N and 2N points is the same function; the operator must
    # return the same function (the 1/N of the inverse transform makes it resolution-free).
    torch.manual_seed(5)
    conv = SpectralConv1d(2, 3, 6, implementation=impl).double()

    def signal(n: int) -> torch.Tensor:
        t = torch.arange(n, dtype=torch.float64) / n
        return torch.stack([torch.sin(2 * torch.pi * 3 * t) + 0.5, torch.cos(2 * torch.pi * 7 * t)])[None]

    coarse, fine = conv(signal(64)), conv(signal(128))
    torch.testing.assert_close(fine[..., ::2], coarse, rtol=0, atol=1e-12)


def test_too_many_modes_is_a_clear_error():
    conv = SpectralConv1d(2, 2, 11)
    conv(torch.randn(1, 2, 20))  # 20 // 2 + 1 = 11 modes: allowed
    with pytest.raises(ValueError, match=r"n_modes=11 .* 19 time points.* <= 10"):
        conv(torch.randn(1, 2, 19))


def test_bad_arguments():
    with pytest.raises(ValueError, match="expected one of"):
        SpectralConv1d(2, 2, 4, implementation="cuFFT")
    with pytest.raises(ValueError, match="n_modes must be a positive int"):
        SpectralConv1d(2, 2, 0)
    with pytest.raises(ValueError, match=r"shape \(batch, 2, n_time\)"):
        SpectralConv1d(2, 2, 4)(torch.randn(1, 3, 20))


def test_bases_are_cached_per_dtype():
    a = dft_bases(48, 5, "cpu", torch.float32)
    assert dft_bases(48, 5, "cpu", torch.float32)[0] is a[0]
    b = dft_bases(48, 5, "cpu", torch.float64)
    assert b[0].dtype == torch.float64 and (48, 5, "cpu", torch.float64) in _BASIS_CACHE
    assert a[0].shape == (48, 10) and a[1].shape == (10, 48)


def test_double_converts_weights():
    # Real storage of the complex weights: .double() must reach them (it skips complex tensors).
    conv = SpectralConv1d(2, 2, 3).double()
    assert conv.weight.dtype == torch.float64


def test_auto_prefers_dft_for_few_modes_on_long_grids():
    cpu = torch.device("cpu")
    assert choose_implementation(16, 1260, cpu) == "dft"
    assert choose_implementation(64, 1260, cpu) == "fft"
    assert choose_implementation(16, 256, cpu) == "fft"
    # The fhn-quick model's coarse grid (every 2nd of 1260 points): dft measured 1.16x faster.
    assert choose_implementation(24, 630, cpu) == "dft"
    assert choose_implementation(32, 630, cpu) == "fft"
    conv = SpectralConv1d(2, 2, 16)
    assert conv.resolve(1260, cpu) == "dft" and conv.resolve(100, cpu) == "fft"
