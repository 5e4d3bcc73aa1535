"""Relative errors over time: the reference study's loss and metric, plus L1 and H1 variants.

In which space: these functions compute the error of whatever tensors they are given. The
study's numbers (and our training loss, for comparability) are computed in the **normalised**
space of :class:`ionfno.data.normalize.PointwiseNormalizer`: ``relative_lp(norm.encode(pred_phys),
norm.encode(true_phys))``, or directly on the model's normalised output and the normalised target.
There the targets are never all zero (a sample equal to the training mean at every point would
be; it does not occur in practice). In **physical** units a relative error can be ill-defined:
FHN starts from V = w = 0, so a t0 sample (a pulse of zero duration) stays close to zero and
its relative error is dominated by noise, and HH's V rests near 0 mV. Report
physical errors as RMSE per variable or relative to each variable's range
(``ionfno.evaluation``), not with these functions.

The norm is taken over the time axis per sample and per variable; the grid-spacing quadrature
weight of a uniform grid cancels in the ratio. Zero-norm targets: the denominator is
``max(||true||, eps)``, so a zero target gives a large but finite error, never NaN.

Shapes: ``pred`` and ``true`` are ``(batch, n_channels, n_time)``; ``reduction="none"`` returns
``(batch, n_channels)``, ``"mean"`` a scalar (mean over variables, then over samples), ``"sum"``
the sum over samples of the per-sample mean over variables (for accumulating over batches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS = ("mean", "sum", "none")
DEFAULT_EPS = 1e-8


def _check(pred: Tensor, true: Tensor, reduction: str) -> None:
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(
            f"pred and true must have the same shape (batch, n_channels, n_time), "
            f"got {tuple(pred.shape)} and {tuple(true.shape)}"
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"Unknown reduction {reduction!r}; expected one of {list(REDUCTIONS)}")


def _reduce(err: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return err  # (B, C)
    per_sample = err.mean(dim=1)  # (B,)
    return per_sample.mean() if reduction == "mean" else per_sample.sum()


def relative_lp(
    pred: Tensor, true: Tensor, p: float = 2, *, reduction: Reduction = "mean", eps: float = DEFAULT_EPS
) -> Tensor:
    """Relative Lp error over time, per sample and variable, then reduced.

    .. math::

        e_{b,c} = \\frac{\\lVert \\hat y_{b,c,\\cdot} - y_{b,c,\\cdot} \\rVert_p}
                       {\\max(\\lVert y_{b,c,\\cdot} \\rVert_p, \\varepsilon)}, \\qquad
        E = \\frac{1}{B} \\sum_b \\frac{1}{C} \\sum_c e_{b,c}.

    With ``p = 2`` in the point-wise normalised space this is the reference study's loss and
    metric (its "relative L2 error").

    Parameters
    ----------
    pred, true : Tensor, shape (batch, n_channels, n_time)
        Prediction and target, in the same space (see module docstring).
    p : float
        Order of the norm (``p >= 1``).
    reduction : {"mean", "sum", "none"}
        See module docstring; ``"none"`` returns ``(batch, n_channels)``.
    eps : float
        Floor of the target norm.

    Returns
    -------
    Tensor
        Scalar, or ``(batch, n_channels)`` for ``reduction="none"``.
    """
    _check(pred, true, reduction)
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    num = torch.linalg.vector_norm(pred - true, ord=p, dim=-1)  # (B, C)
    den = torch.linalg.vector_norm(true, ord=p, dim=-1).clamp_min(eps)  # (B, C)
    return _reduce(num / den, reduction)


def relative_l2(
    pred: Tensor, true: Tensor, *, reduction: Reduction = "mean", eps: float = DEFAULT_EPS
) -> Tensor:
    """:func:`relative_lp` with ``p = 2`` (the study's loss and metric)."""
    return relative_lp(pred, true, 2, reduction=reduction, eps=eps)


def relative_l1(
    pred: Tensor, true: Tensor, *, reduction: Reduction = "mean", eps: float = DEFAULT_EPS
) -> Tensor:
    """:func:`relative_lp` with ``p = 1``."""
    return relative_lp(pred, true, 1, reduction=reduction, eps=eps)


def time_derivative(y: Tensor, dt: float | None = None) -> Tensor:
    """Finite-difference derivative along the last axis (time).

    Second-order central differences inside, first-order one-sided differences at the two ends
    (``torch.gradient`` with ``edge_order=1``).

    Parameters
    ----------
    y : Tensor, shape (..., n_time)
    dt : float, optional
        Grid spacing, in the time unit the derivative should be expressed in. Default
        ``1 / (n_time - 1)``: time rescaled to ``t / T`` in ``[0, 1]``, as the FNO's grid channel,
        which makes the result independent of the resolution.
    """
    n_time = y.shape[-1]
    if n_time < 2:
        raise ValueError(f"a time derivative needs at least 2 time points, got {n_time}")
    if dt is None:
        dt = 1.0 / (n_time - 1)
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    return torch.gradient(y, spacing=float(dt), dim=-1, edge_order=1)[0]


def relative_h1(
    pred: Tensor,
    true: Tensor,
    *,
    dt: float | None = None,
    reduction: Reduction = "mean",
    eps: float = DEFAULT_EPS,
) -> Tensor:
    """Relative H1 error over time (value plus finite-difference derivative).

    .. math::

        e_{b,c} = \\sqrt{\\frac{\\lVert \\hat y - y \\rVert^2 + \\lVert \\partial_t(\\hat y - y) \\rVert^2}
                              {\\max(\\lVert y \\rVert^2 + \\lVert \\partial_t y \\rVert^2, \\varepsilon^2)}},

    discrete L2 norms over time (the uniform quadrature weight cancels), ``\\partial_t`` from
    :func:`time_derivative` with spacing ``dt``. The weight of the derivative term relative to
    the value term scales with ``1/dt^2``, so ``dt`` fixes the time unit: the default
    ``1 / (n_time - 1)`` measures time in units of the window ``T``.

    Parameters
    ----------
    pred, true : Tensor, shape (batch, n_channels, n_time)
    dt : float, optional
        Grid spacing (see :func:`time_derivative`).
    reduction : {"mean", "sum", "none"}
    eps : float
        Floor of the target H1 norm.
    """
    _check(pred, true, reduction)
    err = pred - true
    num = err.square().sum(-1) + time_derivative(err, dt).square().sum(-1)  # (B, C)
    den = true.square().sum(-1) + time_derivative(true, dt).square().sum(-1)  # (B, C)
    return _reduce(torch.sqrt(num / den.clamp_min(eps * eps)), reduction)


def per_variable_relative_lp(pred: Tensor, true: Tensor, p: float = 2, *, eps: float = DEFAULT_EPS) -> Tensor:
    """Relative Lp error of each variable, averaged over samples: shape ``(n_channels,)``.

    The mean of the result over variables equals ``relative_lp(pred, true, p)``.
    """
    return relative_lp(pred, true, p, reduction="none", eps=eps).mean(dim=0)


LossFn = Callable[..., Tensor]

# Training losses by name; each is called as ``fn(pred, true, reduction=...)``.
LOSSES: dict[str, LossFn] = {
    "l2": relative_l2,
    "l1": relative_l1,
    "h1": relative_h1,
}


def get_loss(name: str) -> LossFn:
    """The loss registered as ``name`` (see ``LOSSES``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None
