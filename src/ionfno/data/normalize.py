"""Normalisers for FNO inputs and outputs: modules with buffers, fitted on the training split.

Two choices, both ``nn.Module`` so that they travel in a checkpoint's ``state_dict``:

* :class:`PointwiseNormalizer`: the reference study's point-wise-in-time Gaussian normaliser,
  ``(y - mean[c, n]) / (std[c, n] + eps)``. Use it to report numbers comparable with the study
  (its metric is computed in this space). It ties the model to one grid: a different number of
  time points is refused.
* :class:`ChannelNormalizer`: one mean and std per variable over samples and time, so it does not
  depend on the grid (train at 1260 points, evaluate at 5040). Optionally log-transforms chosen
  positive channels first.

When to use the log transform: for a positive concentration whose training values span decades
(max/min over the training set above ~100, e.g. ORd Ca_i from ~1e-4 mM at rest to ~1e-3 mM at the
transient peak, or the Ca-release fluxes and CaMK). On a linear scale such a channel's resting
values all collapse to about ``-mean/std`` and relative errors at rest are invisible; in log space
a 1 % error is a 1 % error at any level. Do not use it for V (not positive), for gates whose range
is [0, 1] with meaningful zeros, or for channels that can reach 0 exactly (``fit`` refuses
non-positive values).

All statistics use the unbiased standard deviation (``torch.std``'s default), as the study's
``UnitGaussianNormalizer``; ``eps = 1e-5`` is added to the std, not to the variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

DEFAULT_EPS = 1e-5


def _check_data(y: Tensor, what: str) -> None:
    if not isinstance(y, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim != 3:
        raise ValueError(f"{what} must have shape (n_samples, n_channels, n_time), got {tuple(y.shape)}")
    if y.shape[0] < 2:
        raise ValueError(f"{what} needs at least 2 samples to estimate a std, got {y.shape[0]}")
    if not torch.isfinite(y).all():
        raise ValueError(f"{what} contains non-finite values; drop failed samples before fitting")


class PointwiseNormalizer(nn.Module):
    """Point-wise-in-time Gaussian normaliser of the reference study.

    .. math::

        z_{c,n} = \\frac{y_{c,n} - \\mu_{c,n}}{\\sigma_{c,n} + \\varepsilon},

    with ``mu`` and ``sigma`` the mean and (unbiased) std over the training samples, separately
    for every channel ``c`` and time index ``n``.

    Parameters
    ----------
    mean, std : Tensor, shape (n_channels, n_time)
        Statistics (buffers ``mean``, ``std``).
    eps : float
        Added to ``std`` (buffer ``eps``; the study: 1e-5).

    Notes
    -----
    ``encode``/``decode`` take ``(..., n_channels, n_time)`` and return the same shape. A
    constant-in-the-training-set point (e.g. the fixed initial state at ``t = 0``) has
    ``sigma = 0`` and is mapped to ``(y - mu) / eps``: exactly 0 on data, large for a prediction
    that deviates there; decoding maps it back exactly.
    """

    def __init__(self, mean: Tensor, std: Tensor, eps: float = DEFAULT_EPS):
        super().__init__()
        if mean.shape != std.shape or mean.ndim != 2:
            raise ValueError(
                f"mean and std must both have shape (n_channels, n_time), "
                f"got {tuple(mean.shape)} and {tuple(std.shape)}"
            )
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())
        self.register_buffer("eps", torch.tensor(float(eps), dtype=mean.dtype))

    @classmethod
    def fit(cls, y_train: Tensor, eps: float = DEFAULT_EPS) -> PointwiseNormalizer:
        """Fit on the training split only.

        Parameters
        ----------
        y_train : Tensor, shape (n_samples, n_channels, n_time)
            Training samples (never validation/test: that would leak their statistics).
        eps : float
            Added to the std.
        """
        _check_data(y_train, "y_train")
        return cls(y_train.mean(dim=0), y_train.std(dim=0), eps)

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> PointwiseNormalizer:
        """Rebuild from ``normalizer.state_dict()`` (shapes are read from the buffers)."""
        norm = cls(state["mean"], state["std"], float(state["eps"]))
        norm.load_state_dict(state)
        return norm

    @property
    def n_channels(self) -> int:
        return self.mean.shape[0]

    @property
    def n_time(self) -> int:
        return self.mean.shape[1]

    def _check(self, y: Tensor) -> None:
        if y.ndim < 2 or tuple(y.shape[-2:]) != tuple(self.mean.shape):
            n_time = y.shape[-1] if y.ndim >= 1 else None
            hint = (
                f" The point-wise normaliser was fitted on {self.n_time} time points and cannot be used on "
                f"{n_time}; use the grid-free ChannelNormalizer ('channel') to change resolution."
                if y.ndim >= 2 and y.shape[-2] == self.n_channels
                else ""
            )
            raise ValueError(
                f"expected shape (..., {self.n_channels}, {self.n_time}), got {tuple(y.shape)}.{hint}"
            )

    def encode(self, y: Tensor) -> Tensor:
        """Physical -> normalised, ``(..., n_channels, n_time)``."""
        self._check(y)
        return (y - self.mean) / (self.std + self.eps)

    def decode(self, z: Tensor) -> Tensor:
        """Normalised -> physical, ``(..., n_channels, n_time)``."""
        self._check(z)
        return z * (self.std + self.eps) + self.mean

    def forward(self, y: Tensor) -> Tensor:
        return self.encode(y)


class ChannelNormalizer(nn.Module):
    """Per-variable Gaussian normaliser that does not depend on the time grid.

    .. math::

        z_{c,n} = \\frac{g_c(y_{c,n}) - \\mu_c}{\\sigma_c + \\varepsilon},
        \\qquad g_c = \\log \\text{ if } c \\in \\text{log\\_channels else identity},

    with ``mu_c``, ``sigma_c`` the mean and (unbiased) std of ``g_c(y)`` over all training samples
    and time points.

    Parameters
    ----------
    mean, std : Tensor, shape (n_channels,)
        Statistics of the (possibly log-transformed) channels.
    log_mask : Tensor of bool, shape (n_channels,)
        Which channels are log-transformed (buffer ``log_mask``).
    eps : float
        Added to ``std``.

    Notes
    -----
    ``encode``/``decode`` take ``(..., n_channels, n_time)`` for any ``n_time``.
    ``decode`` of a log channel is ``exp(.)``, always positive.
    """

    def __init__(self, mean: Tensor, std: Tensor, log_mask: Tensor | None = None, eps: float = DEFAULT_EPS):
        super().__init__()
        if mean.shape != std.shape or mean.ndim != 1:
            raise ValueError(
                f"mean and std must both have shape (n_channels,), "
                f"got {tuple(mean.shape)} and {tuple(std.shape)}"
            )
        if log_mask is None:
            log_mask = torch.zeros(mean.shape, dtype=torch.bool)
        if log_mask.shape != mean.shape:
            raise ValueError(f"log_mask must have shape {tuple(mean.shape)}, got {tuple(log_mask.shape)}")
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())
        self.register_buffer("log_mask", log_mask.detach().clone().to(torch.bool))
        self.register_buffer("eps", torch.tensor(float(eps), dtype=mean.dtype))
        # Decided once, in Python: a branch on the mask's values would be data-dependent control
        # flow, which torch.export refuses (`ionfno export --format pt2` of any channel-normalised
        # run failed on it).
        self._has_log = bool(self.log_mask.any())

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._has_log = bool(self.log_mask.any())

    @classmethod
    def fit(
        cls, y_train: Tensor, log_channels: Sequence[int] | None = None, eps: float = DEFAULT_EPS
    ) -> ChannelNormalizer:
        """Fit on the training split only.

        Parameters
        ----------
        y_train : Tensor, shape (n_samples, n_channels, n_time)
            Training samples.
        log_channels : sequence of int, optional
            Indices of positive channels to log-transform (see the module docstring for when).
        eps : float
            Added to the std.

        Raises
        ------
        ValueError
            A log channel index out of range or a log channel with values ``<= 0``.
        """
        _check_data(y_train, "y_train")
        n_channels = y_train.shape[1]
        log_mask = torch.zeros(n_channels, dtype=torch.bool)
        for c in log_channels or ():
            if not isinstance(c, int) or isinstance(c, bool) or not -n_channels <= c < n_channels:
                raise ValueError(f"log channel {c!r} is not a channel index in [0, {n_channels})")
            log_mask[c] = True
        g = _log_where(y_train, log_mask.to(y_train.device), "y_train")
        flat = g.transpose(0, 1).reshape(n_channels, -1)  # (C, n_samples * N)
        return cls(flat.mean(dim=1), flat.std(dim=1), log_mask, eps)

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> ChannelNormalizer:
        """Rebuild from ``normalizer.state_dict()``."""
        norm = cls(state["mean"], state["std"], state["log_mask"], float(state["eps"]))
        norm.load_state_dict(state)
        return norm

    @property
    def n_channels(self) -> int:
        return self.mean.shape[0]

    def _check(self, y: Tensor) -> None:
        if y.ndim < 2 or y.shape[-2] != self.n_channels:
            raise ValueError(f"expected shape (..., {self.n_channels}, n_time), got {tuple(y.shape)}")

    def encode(self, y: Tensor) -> Tensor:
        """Physical -> normalised, ``(..., n_channels, n_time)``; log channels must be > 0."""
        self._check(y)
        g = _log_where(y, self.log_mask, "y") if self._has_log else y
        return (g - self.mean[:, None]) / (self.std[:, None] + self.eps)

    def decode(self, z: Tensor) -> Tensor:
        """Normalised -> physical, ``(..., n_channels, n_time)``."""
        self._check(z)
        g = z * (self.std[:, None] + self.eps) + self.mean[:, None]
        if self._has_log:
            mask = self.log_mask[:, None]
            # Double where: exp only sees the log channels, so a large value in another channel
            # cannot overflow and turn the gradient into NaN (0 * inf).
            g = torch.where(mask, torch.exp(torch.where(mask, g, torch.zeros_like(g))), g)
        return g

    def forward(self, y: Tensor) -> Tensor:
        return self.encode(y)


def _log_where(y: Tensor, log_mask: Tensor, what: str) -> Tensor:
    if not log_mask.any():
        return y
    logged = y[..., log_mask, :]
    if (logged <= 0).any():
        bad = torch.nonzero(log_mask).flatten().tolist()
        raise ValueError(f"{what}: log-transformed channels {bad} must be > 0 (found values <= 0)")
    mask = log_mask[:, None]
    # Double where: log only sees the (positive) log channels, so other channels cannot
    # produce NaN/inf in the value or the gradient.
    return torch.where(mask, torch.log(torch.where(mask, y, torch.ones_like(y))), y)


NORMALIZERS: dict[str, type[nn.Module]] = {
    "pointwise": PointwiseNormalizer,
    "channel": ChannelNormalizer,
}


def get_normalizer(name: str) -> type[nn.Module]:
    """The normaliser class registered as ``name`` (see ``NORMALIZERS``)."""
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(f"Unknown normalizer {name!r}; expected one of {sorted(NORMALIZERS)}") from None
