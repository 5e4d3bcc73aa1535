"""Spectral convolution in time: the Fourier layer's global kernel ``K``.

Two interchangeable implementations compute the same operator:

* ``"fft"``: ``torch.fft.rfft`` -> keep the ``n_modes`` lowest modes -> multiply by complex
  weights -> ``torch.fft.irfft`` (Li et al. 2021).
* ``"dft"``: the same truncated transform written as two dense real matrix products with
  precomputed cosine/sine bases, ``(B*C, N) @ (N, 2K)`` and ``(B*O, 2K) @ (2K, N)``. With few
  modes this is cheaper than a full FFT plus a mostly-zero spectrum, it is one large GEMM
  each way, and it lets the 1x1 skip path be added inside the inverse GEMM (``addmm``).

Both agree to float32 rounding (tests: ``tests/fno/test_spectral_conv.py``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

Implementation = Literal["auto", "fft", "dft"]
IMPLEMENTATIONS = ("auto", "fft", "dft")

# (n_time, n_modes, device, dtype) -> (forward basis (N, 2K), inverse basis (2K, N)).
# A handful of resolutions is used in one process; bound the cache so that evaluating at many
# resolutions cannot grow memory without limit.
_BASIS_CACHE: dict[tuple[int, int, str, torch.dtype], tuple[Tensor, Tensor]] = {}
_BASIS_CACHE_SIZE = 16


def check_n_modes(n_modes: int, n_time: int) -> None:
    """Raise if ``n_modes`` real-FFT modes do not exist on a grid of ``n_time`` points.

    Raises
    ------
    ValueError
        If ``n_modes > n_time // 2 + 1`` (the number of ``rfft`` coefficients).
    """
    n_max = n_time // 2 + 1
    if n_modes > n_max:
        raise ValueError(
            f"n_modes={n_modes} is too large for {n_time} time points (after padding): "
            f"an rfft of length {n_time} has only n_time // 2 + 1 = {n_max} modes; "
            f"use n_modes <= {n_max} or more time points"
        )


def dft_bases(
    n_time: int, n_modes: int, device: torch.device | str, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Truncated real DFT bases, cached per ``(n_time, n_modes, device, dtype)``.

    Parameters
    ----------
    n_time : int
        Number of (padded) time points ``N``.
    n_modes : int
        Number of kept modes ``K`` (``K <= N // 2 + 1``).
    device, dtype
        Where and in which real dtype the bases live.

    Returns
    -------
    forward : Tensor, shape (N, 2K)
        ``x @ forward = [Re X_k, Im X_k]`` with ``X_k = sum_n x_n exp(-2 pi i k n / N)``, the
        first ``K`` columns of ``torch.fft.rfft`` (unnormalised, "backward" convention).
    inverse : Tensor, shape (2K, N)
        ``[Re Y_k, Im Y_k] @ inverse`` equals ``torch.fft.irfft(Y, n=N)`` for a spectrum that is
        zero beyond mode ``K``:

        .. math::

            y_n = \\frac{1}{N} \\sum_{k<K} c_k \\left(\\operatorname{Re} Y_k \\cos\\frac{2\\pi kn}{N}
                  - \\operatorname{Im} Y_k \\sin\\frac{2\\pi kn}{N}\\right),

        with ``c_0 = 1``, ``c_{N/2} = 1`` (even ``N``) and ``c_k = 2`` otherwise. The imaginary
        parts of the zero and Nyquist modes drop out (their sines vanish), as in ``irfft``.
    """
    device = torch.device(device)
    key = (n_time, n_modes, str(device), dtype)
    hit = _BASIS_CACHE.get(key)
    if hit is not None:
        return hit
    check_n_modes(n_modes, n_time)
    # Build in float64 and reduce k*n modulo N in integers so that the phases are exact for
    # long grids; cast once at the end.
    k = torch.arange(n_modes, dtype=torch.int64)
    n = torch.arange(n_time, dtype=torch.int64)
    phase = (torch.outer(n, k) % n_time).to(torch.float64) * (2.0 * math.pi / n_time)  # (N, K)
    cos, sin = torch.cos(phase), torch.sin(phase)
    forward = torch.cat([cos, -sin], dim=1)  # (N, 2K)
    c = torch.full((n_modes,), 2.0, dtype=torch.float64)
    c[0] = 1.0
    if n_time % 2 == 0 and n_modes == n_time // 2 + 1:
        c[-1] = 1.0
    inverse = torch.cat([(c * cos).T, -(c * sin).T], dim=0) / n_time  # (2K, N)
    bases = (
        forward.to(device=device, dtype=dtype).contiguous(),
        inverse.to(device=device, dtype=dtype).contiguous(),
    )
    if len(_BASIS_CACHE) >= _BASIS_CACHE_SIZE:
        _BASIS_CACHE.pop(next(iter(_BASIS_CACHE)))
    _BASIS_CACHE[key] = bases
    return bases


def choose_implementation(n_modes: int, n_time: int, device: torch.device) -> Literal["fft", "dft"]:
    """The faster implementation for a layer: ``"dft"`` if ``20 * n_modes <= n_time``.

    The DFT costs ``~4 K`` multiply-adds per point and channel (forward and inverse), the FFT
    path ``~c log2 N`` plus complex buffers and a zero-filled spectrum, so the DFT wins for few
    modes on long grids. The rule comes from whole training steps (FNO1d, Classic, 4 layers,
    batch 16, 1 thread, CPU time; ``benchmarks/bench_fno_step.py --model-sweep``), ratio
    fft / dft: width 32: 1.16 at N/K = 26 (N = 630, K = 24), 1.17 at N/K = 20, 0.95 at 8;
    width 64: 1.20 at N/K = 26, 0.98 at N/K = 20, 0.87 at 11. The layer alone
    (``--spectral-sweep``) crosses over later (near N/K = 32) because it misses the FFT path's
    extra memory traffic in a full step. Not measured on CUDA; the same rule is used there.
    """
    del device  # one rule for now (see above)
    return "dft" if 20 * n_modes <= n_time else "fft"


class SpectralConv1d(nn.Module):
    """Fourier-space linear map in time, truncated to the lowest ``n_modes`` modes.

    .. math::

        (\\mathcal{K} v)(t_n) = \\mathcal{F}^{-1}\\left[ R_k \\cdot (\\mathcal{F} v)_k \\right]_n,
        \\qquad R_k \\in \\mathbb{C}^{\\text{out} \\times \\text{in}},\\; k < K,

    with ``(F v)_k`` the rfft of each channel and modes ``k >= K`` set to zero. The weights are
    complex; they are stored as real pairs, ``weight[..., 0] = Re R``, ``weight[..., 1] = Im R``
    (shape ``(in_channels, out_channels, n_modes, 2)``), so that ``.double()``, optimisers and
    checkpoints treat them as ordinary real parameters. No bias (the 1x1 skip carries it).

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    n_modes : int
        Number of kept rfft modes ``K`` (mode 0 is the mean). Must satisfy
        ``n_modes <= n_time // 2 + 1`` for every input (checked in ``forward``).
    implementation : {"auto", "fft", "dft"}
        ``"fft"``: rfft/irfft; ``"dft"``: dense truncated DFT; ``"auto"``: pick the faster per
        input length (:func:`choose_implementation`). Same operator, same parameters.

    Notes
    -----
    Input ``(batch, in_channels, n_time)`` -> output ``(batch, out_channels, n_time)``. The
    transform uses the "backward" normalisation (1/N on the inverse), so the operator is
    resolution-consistent: a band-limited input sampled on 2N points gives the same output
    function as on N points.

    Initialisation follows the reference study (HyperNOs): real and imaginary parts uniform in
    ``[0, 1 / (in * out))``.

    References
    ----------
    Li, Kovachki, Azizzadenesheli, Liu, Bhattacharya, Stuart, Anandkumar, "Fourier Neural Operator
    for Parametric Partial Differential Equations", ICLR 2021. arXiv:2010.08895.
    """

    def __init__(
        self, in_channels: int, out_channels: int, n_modes: int, implementation: Implementation = "auto"
    ):
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"Unknown spectral implementation {implementation!r}; expected one of {list(IMPLEMENTATIONS)}"
            )
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("n_modes", n_modes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_modes = n_modes
        self.implementation = implementation
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(in_channels, out_channels, n_modes, 2))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}, "
            f"implementation={self.implementation!r}"
        )

    def resolve(self, n_time: int, device: torch.device) -> Literal["fft", "dft"]:
        """The implementation used for inputs of ``n_time`` points on ``device``."""
        if self.implementation == "auto":
            return choose_implementation(self.n_modes, n_time, device)
        return self.implementation  # type: ignore[return-value]

    def forward(self, x: Tensor, add: Tensor | None = None) -> Tensor:
        """Apply the spectral convolution.

        Parameters
        ----------
        x : Tensor, shape (batch, in_channels, n_time)
        add : Tensor, shape (batch, out_channels, n_time), optional
            Added to the result; with the DFT path inside the inverse GEMM, which saves one pass
            over the output (used to fuse the block's 1x1 skip ``W x + b``).

        Returns
        -------
        Tensor, shape (batch, out_channels, n_time)
        """
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input of shape (batch, {self.in_channels}, n_time), got {tuple(x.shape)}"
            )
        n_time = x.shape[-1]
        check_n_modes(self.n_modes, n_time)
        if self.resolve(n_time, x.device) == "dft":
            return self._forward_dft(x, add)
        y = self._forward_fft(x)
        return y if add is None else y + add

    def _forward_fft(self, x: Tensor) -> Tensor:
        batch, _, n_time = x.shape
        w = torch.view_as_complex(self.weight)  # (I, O, K)
        x_ft = torch.fft.rfft(x)[..., : self.n_modes]  # (B, I, K)
        out_ft = torch.einsum("bik,iok->bok", x_ft, w)  # (B, O, K)
        # irfft zero-fills the missing high modes itself when given n.
        return torch.fft.irfft(out_ft, n=n_time)

    def _forward_dft(self, x: Tensor, add: Tensor | None) -> Tensor:
        batch, n_in, n_time = x.shape
        k, n_out = self.n_modes, self.out_channels
        forward, inverse = dft_bases(n_time, k, x.device, x.dtype)
        spec = (x.reshape(batch * n_in, n_time) @ forward).view(batch, n_in, 2, k)  # (B, I, 2, K)
        # Complex product per mode as one real block matrix [[Wr, Wi], [-Wi, Wr]], so that the
        # mode mixing is a single batched GEMM over modes: (K, B, 2I) @ (K, 2I, 2O).
        wr, wi = self.weight[..., 0], self.weight[..., 1]  # (I, O, K)
        block = torch.cat([torch.cat([wr, wi], dim=1), torch.cat([-wi, wr], dim=1)], dim=0)  # (2I, 2O, K)
        spec = spec.permute(3, 0, 2, 1).reshape(k, batch, 2 * n_in)  # (K, B, 2I)
        out = torch.bmm(spec, block.permute(2, 0, 1))  # (K, B, 2O)
        out = out.view(k, batch, 2, n_out).permute(1, 3, 2, 0).reshape(batch * n_out, 2 * k)  # (B*O, 2K)
        if add is None:
            y = out @ inverse
        else:
            y = torch.addmm(add.reshape(batch * n_out, n_time), out, inverse)
        return y.view(batch, n_out, n_time)
