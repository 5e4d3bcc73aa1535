"""Error metrics on trajectory arrays: the study's normalised metric and physical ones.

Every function takes plain arrays of shape ``(batch, n_states, N)`` (``C = n_states``
channels on ``N`` time points) and returns one value per sample and per variable, shape
``(batch, C)``; :class:`ErrorTable` groups them per dataset part and summarises them.

The study's metric (Pellegrini et al. 2025, arXiv:2505.14039) is computed in the **point-wise
normalised space**: with the training set's mean and standard deviation per time index,
``z = (x - mean_t) / (std_t + eps)`` and ``eps = 1e-5``, the error of sample ``b`` in
variable ``c`` is the relative L2 norm over time,

.. math::

    e_{bc} = \\frac{\\lVert \\hat z_{bc} - z_{bc} \\rVert_2}{\\lVert z_{bc} \\rVert_2},

averaged over variables, then over samples. Physical metrics (RMSE in the variable's unit,
errors relative to the variable's range over the evaluated set) are computed on the raw
trajectories. Relative errors in physical units are ill-defined for samples whose true
trajectory is zero (FHN ``t0`` samples stay at rest at 0), hence the normalised space.

References
----------
Pellegrini, Ghiotto, Centofanti, Pavarino (2025), Learning high-dimensional ionic model
dynamics using Fourier Neural Operators, arXiv:2505.14039.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "NORMALISER_EPS",
    "normalise",
    "relative_lp",
    "relative_h1",
    "rmse",
    "max_abs_error",
    "variable_range",
    "compute_errors",
    "ErrorTable",
    "RELATIVE_METRICS",
    "PHYSICAL_METRICS",
]

#: ``eps`` of the study's point-wise normaliser, ``(x - mean_t) / (std_t + eps)``.
NORMALISER_EPS = 1e-5

#: Metrics without units (averaged over variables into an "overall" value).
RELATIVE_METRICS = ("rel_l2", "rel_l1", "rel_h1", "rmse_over_range", "max_abs_over_range")
#: Metrics in each variable's unit (no overall value: units differ between variables).
PHYSICAL_METRICS = ("rmse", "max_abs")


def _check_pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape, got {pred.shape} and {true.shape}")
    if pred.ndim != 3:
        raise ValueError(f"expected arrays of shape (batch, n_states, N), got {pred.shape}")
    return pred, true


def normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray, eps: float = NORMALISER_EPS) -> np.ndarray:
    """Point-wise normalisation ``(x - mean) / (std + eps)`` of the study.

    Parameters
    ----------
    x : ndarray, shape (batch, C, N)
        Trajectories in model units.
    mean, std : ndarray, shape (C, N)
        Mean and standard deviation per variable and time index over the training set.
    eps : float
        Added to ``std`` (the study's 1e-5).

    Returns
    -------
    ndarray, shape (batch, C, N), float64
    """
    x = np.asarray(x, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    if mean.shape != x.shape[1:] or std.shape != x.shape[1:]:
        raise ValueError(
            f"mean and std must have shape {x.shape[1:]} (n_states, N), got {mean.shape} and {std.shape}"
        )
    return (x - mean) / (std + eps)


def _nanmean_rows(v: np.ndarray) -> np.ndarray:
    # Mean over axis 1 ignoring NaN, NaN for an all-NaN row, without numpy's warning.
    finite = np.isfinite(v)
    count = finite.sum(axis=1)
    total = np.where(finite, v, 0.0).sum(axis=1)
    return _safe_ratio(total, count.astype(np.float64))


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # A zero reference norm has no relative error: NaN (counted and reported), never inf.
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def relative_lp(pred: np.ndarray, true: np.ndarray, p: float = 2) -> np.ndarray:
    """Relative Lp error over time per sample and variable, ``||pred - true||_p / ||true||_p``.

    The time grid is uniform, so the quadrature weights cancel in the ratio.

    Parameters
    ----------
    pred, true : ndarray, shape (batch, C, N)
    p : float
        Order of the norm (1 or 2 in the reports).

    Returns
    -------
    ndarray, shape (batch, C)
        NaN where ``||true||_p = 0``.
    """
    pred, true = _check_pair(pred, true)
    num = np.linalg.norm(pred - true, ord=p, axis=-1)
    den = np.linalg.norm(true, ord=p, axis=-1)
    return _safe_ratio(num, den)


def relative_h1(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Relative H1 error over time per sample and variable.

    .. math::

        e = \\sqrt{\\frac{\\lVert \\hat u - u \\rVert^2 + \\lVert (\\hat u - u)' \\rVert^2}
                         {\\lVert u \\rVert^2 + \\lVert u' \\rVert^2}}

    with derivatives taken with respect to the normalised time ``s = t / T`` on ``[0, 1]``
    (so the two terms have the same scale whatever the time unit), by second-order central
    differences (``numpy.gradient``), and discrete norms on the uniform grid.

    Parameters
    ----------
    pred, true : ndarray, shape (batch, C, N)

    Returns
    -------
    ndarray, shape (batch, C)
    """
    pred, true = _check_pair(pred, true)
    n = pred.shape[-1]
    if n < 2:
        raise ValueError(f"relative_h1 needs at least 2 time points, got {n}")
    ds = 1.0 / (n - 1)
    err = pred - true
    d_err = np.gradient(err, ds, axis=-1)
    d_true = np.gradient(true, ds, axis=-1)
    # Scale both terms by 1/N so that they compare like the integral norms on [0, 1].
    num = (np.sum(err**2, axis=-1) + np.sum(d_err**2, axis=-1)) / n
    den = (np.sum(true**2, axis=-1) + np.sum(d_true**2, axis=-1)) / n
    return np.sqrt(_safe_ratio(num, den))


def rmse(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Root-mean-square error over time, per sample and variable, in the variable's unit.

    Returns
    -------
    ndarray, shape (batch, C)
    """
    pred, true = _check_pair(pred, true)
    return np.sqrt(np.mean((pred - true) ** 2, axis=-1))


def max_abs_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Largest absolute error over time, per sample and variable, in the variable's unit.

    Returns
    -------
    ndarray, shape (batch, C)
    """
    pred, true = _check_pair(pred, true)
    return np.max(np.abs(pred - true), axis=-1)


def variable_range(true: np.ndarray) -> np.ndarray:
    """Range ``max - min`` of each variable over all samples and times, shape ``(C,)``."""
    true = np.asarray(true, dtype=np.float64)
    if true.ndim != 3:
        raise ValueError(f"expected an array of shape (batch, n_states, N), got {true.shape}")
    return true.max(axis=(0, 2)) - true.min(axis=(0, 2))


@dataclass
class ErrorTable:
    """Per-sample, per-variable errors of one evaluation, with their grouping.

    Attributes
    ----------
    state_names, state_units : tuple of str, length C
    parts : ndarray of str, shape (batch,)
        Dataset part of each sample (``"t0"``, ``"general"``, ...).
    per_sample : dict of str to ndarray, each (batch, C)
        Metric name -> values: ``rel_l2``, ``rel_l1``, ``rel_h1`` (normalised space, fractions),
        ``rmse``, ``max_abs`` (model units), ``rmse_over_range``, ``max_abs_over_range``
        (fractions of the variable's range over the evaluated set).
    ranges : ndarray, shape (C,)
        Range of each true variable over the evaluated set, in model units.
    """

    state_names: tuple[str, ...]
    state_units: tuple[str, ...]
    parts: np.ndarray
    per_sample: dict[str, np.ndarray]
    ranges: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.parts.shape[0])

    def sample_overall(self, metric: str = "rel_l2") -> np.ndarray:
        """Per-sample value averaged over variables, shape ``(batch,)`` (relative metrics only)."""
        if metric not in RELATIVE_METRICS:
            raise ValueError(
                f"No overall value for {metric!r} (units differ); expected one of {RELATIVE_METRICS}"
            )
        return _nanmean_rows(self.per_sample[metric])

    def part_names(self) -> list[str]:
        """Parts in order of first appearance."""
        seen: dict[str, None] = {}
        for p in self.parts.tolist():
            seen.setdefault(str(p), None)
        return list(seen)

    def summary(self) -> dict[str, Any]:
        """Means per part (``"all"`` first), per variable and overall, as plain floats.

        Returns
        -------
        dict
            ``{part: {"n": int, metric: {"per_variable": {name: mean}, "overall": mean or None,
            "median": ..., "p95": ..., "max": ...}}}``; ``overall`` is the mean over variables of
            the per-variable means (the study's order of averaging) for relative metrics. NaN
            entries (zero reference norm) are left out of the means and counted in ``"n_nan"``.
        """
        groups = {"all": np.ones(self.n_samples, dtype=bool)}
        for p in self.part_names():
            groups[p] = self.parts == p
        out: dict[str, Any] = {}
        for g, mask in groups.items():
            entry: dict[str, Any] = {"n": int(mask.sum())}
            for metric, v in self.per_sample.items():
                sub = v[mask]
                finite = np.isfinite(sub)
                per_var = [
                    float(sub[finite[:, c], c].mean()) if finite[:, c].any() else float("nan")
                    for c in range(sub.shape[1])
                ]
                m: dict[str, Any] = {
                    "per_variable": dict(zip(self.state_names, per_var, strict=True)),
                    "n_nan": int((~finite).sum()),
                }
                if metric in RELATIVE_METRICS:
                    so = self.sample_overall(metric)[mask]
                    so = so[np.isfinite(so)]
                    m["overall"] = float(_nanmean_rows(np.asarray([per_var]))[0])
                    m["median"] = float(np.median(so)) if so.size else float("nan")
                    m["p95"] = float(np.percentile(so, 95)) if so.size else float("nan")
                    m["max"] = float(so.max()) if so.size else float("nan")
                else:
                    m["overall"] = None
                entry[metric] = m
            out[g] = entry
        return out

    def worst(self, k: int = 5, metric: str = "rel_l2") -> np.ndarray:
        """Indices of the ``k`` samples with the largest per-sample overall error, worst first."""
        so = self.sample_overall(metric)
        so = np.where(np.isfinite(so), so, -np.inf)
        order = np.argsort(-so, kind="stable")
        return order[: min(k, order.shape[0])]

    def rows(self) -> list[dict[str, Any]]:
        """Long-format rows (part, metric, variable, value) for CSV export."""
        rows = []
        for part, entry in self.summary().items():
            for metric in self.per_sample:
                m = entry[metric]
                for name, unit in zip(self.state_names, self.state_units, strict=True):
                    unit_out = unit if metric in PHYSICAL_METRICS else "fraction"
                    rows.append(
                        {
                            "part": part,
                            "n": entry["n"],
                            "metric": metric,
                            "variable": name,
                            "unit": unit_out,
                            "value": m["per_variable"][name],
                        }
                    )
                if m["overall"] is not None:
                    rows.append(
                        {
                            "part": part,
                            "n": entry["n"],
                            "metric": metric,
                            "variable": "overall",
                            "unit": "fraction",
                            "value": m["overall"],
                        }
                    )
        return rows


def compute_errors(
    pred: np.ndarray,
    true: np.ndarray,
    *,
    mean: np.ndarray,
    std: np.ndarray,
    state_names: Sequence[str],
    state_units: Sequence[str] | None = None,
    parts: Sequence[str] | np.ndarray | None = None,
    eps: float = NORMALISER_EPS,
    ranges: np.ndarray | None = None,
) -> ErrorTable:
    """Every metric of the report, per sample and variable.

    Parameters
    ----------
    pred, true : ndarray, shape (batch, C, N)
        Predicted and true trajectories in model units.
    mean, std : ndarray, shape (C, N)
        The training set's point-wise statistics of the outputs (the surrogate's output
        normaliser); the normalised metrics use ``(x - mean) / (std + eps)``.
    state_names : sequence of str, length C
    state_units : sequence of str, length C, optional
    parts : sequence of str, length batch, optional
        Dataset part per sample (default: every sample labelled ``"test"``).
    eps : float
        The normaliser's ``eps`` (1e-5 in the study).
    ranges : ndarray, shape (C,), optional
        Variable ranges for the range-relative errors (default: from ``true``).

    Returns
    -------
    ErrorTable
    """
    pred, true = _check_pair(pred, true)
    C = pred.shape[1]
    if len(state_names) != C:
        raise ValueError(f"{len(state_names)} state names for {C} variables")
    units = tuple(state_units) if state_units is not None else ("",) * C
    if len(units) != C:
        raise ValueError(f"{len(units)} state units for {C} variables")
    B = pred.shape[0]
    parts_arr = np.asarray(["test"] * B if parts is None else [str(p) for p in parts])
    if parts_arr.shape != (B,):
        raise ValueError(f"parts must have one label per sample ({B}), got shape {parts_arr.shape}")
    zp = normalise(pred, mean, std, eps)
    zt = normalise(true, mean, std, eps)
    rng = variable_range(true) if ranges is None else np.asarray(ranges, dtype=np.float64)
    if rng.shape != (C,):
        raise ValueError(f"ranges must have shape ({C},), got {rng.shape}")
    r = rmse(pred, true)
    mx = max_abs_error(pred, true)
    per_sample = {
        "rel_l2": relative_lp(zp, zt, 2),
        "rel_l1": relative_lp(zp, zt, 1),
        "rel_h1": relative_h1(zp, zt),
        "rmse": r,
        "max_abs": mx,
        "rmse_over_range": _safe_ratio(r, rng[None, :]),
        "max_abs_over_range": _safe_ratio(mx, rng[None, :]),
    }
    return ErrorTable(tuple(state_names), units, parts_arr, per_sample, rng)


def summary_to_jsonable(obj: Mapping | Sequence | float | Any) -> Any:
    """Replace NaN and inf by None, recursively, so that JSON stays standard."""
    if isinstance(obj, Mapping):
        return {str(k): summary_to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [summary_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return summary_to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
