"""Action-potential biomarkers from membrane-potential traces, batched.

Definitions (all per trace, on the first action potential; every crossing time is
linearly interpolated between the two samples that bracket it):

* **Resting level** ``V_rest``: the first sample ``V(t_0)``. Every dataset starts from the
  model's fixed resting state, so this is the rest the cell leaves, and it is exact for
  stimuli whose onset is later than ``t_0`` too.
* **Fires**: ``V`` exceeds the model's firing threshold (an absolute level,
  :func:`ionfno.data.biomarkers.firing_threshold`: FHN 0.5, HH 50 mV, ORd 0 mV) at some
  sample: the same definition as the datasets' ``fires`` flag.
* **First action potential**: from the first sample above the threshold to the next sample
  at or below it (or the end of the window).
* **Peak** ``V_peak``: the largest ``V`` of the first action potential (for a trace that
  does not fire: the largest ``V`` of the trace). **Amplitude** ``= V_peak - V_rest``.
* **Upstroke time** ``t_up``: the last upward crossing, before the peak, of the 50 % level
  ``V_rest + 0.5 (V_peak - V_rest)`` (a threshold crossing, not the time of the largest
  ``dV/dt``: the crossing is interpolated, so it has sub-sample resolution and is robust to
  noise in a prediction). ``dvdt_max`` is also reported.
* **APD_x** (``x`` = 50, 90): from ``t_up`` to the first downward crossing, after the peak,
  of ``V_rest + (1 - x/100) (V_peak - V_rest)``; NaN when ``V`` has not come back down to
  that level by the end of the window.

Quantities that do not exist for a trace (upstroke and APDs of a trace that does not fire)
are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "Biomarkers",
    "compute_biomarkers",
    "compare_biomarkers",
]


@dataclass
class Biomarkers:
    """Biomarkers of a batch of traces, each an array of shape ``(batch,)``.

    Attributes
    ----------
    fires : bool
    v_rest, v_peak, amplitude : float [V unit]
    t_upstroke : float [time unit], NaN if the trace does not fire
    dvdt_max : float [V unit / time unit], largest forward-difference slope up to the peak
    apd50, apd90 : float [time unit], NaN if the trace does not fire or does not repolarise
    """

    fires: np.ndarray
    v_rest: np.ndarray
    v_peak: np.ndarray
    amplitude: np.ndarray
    t_upstroke: np.ndarray
    dvdt_max: np.ndarray
    apd50: np.ndarray
    apd90: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def select(self, index: Any) -> Biomarkers:
        return Biomarkers(**{k: v[index] for k, v in self.as_dict().items()})


def _interval_mask(v: np.ndarray, level: np.ndarray, up: bool) -> np.ndarray:
    # (B, N-1): interval [i, i+1] crosses `level` in the given direction.
    lo, hi = v[:, :-1], v[:, 1:]
    lv = level[:, None]
    return (lo < lv) & (hi >= lv) if up else (lo > lv) & (hi <= lv)


def _first(mask: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # First True at index >= start, per row; (index, found).
    idx = np.arange(mask.shape[1])[None, :]
    m = mask & (idx >= start[:, None])
    return np.argmax(m, axis=1), m.any(axis=1)


def _last(mask: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Last True at index < stop, per row; (index, found).
    idx = np.arange(mask.shape[1])[None, :]
    m = mask & (idx < stop[:, None])
    rev = np.argmax(m[:, ::-1], axis=1)
    return mask.shape[1] - 1 - rev, m.any(axis=1)


def _cross_time(t: np.ndarray, v: np.ndarray, i: np.ndarray, level: np.ndarray) -> np.ndarray:
    rows = np.arange(v.shape[0])
    v0, v1 = v[rows, i], v[rows, i + 1]
    dv = v1 - v0
    frac = np.divide(level - v0, dv, out=np.zeros_like(dv), where=dv != 0)
    return t[i] + np.clip(frac, 0.0, 1.0) * (t[i + 1] - t[i])


def compute_biomarkers(v: np.ndarray, t: np.ndarray, *, threshold: float) -> Biomarkers:
    """Biomarkers of membrane-potential traces (definitions in the module docstring).

    Parameters
    ----------
    v : ndarray, shape (batch, N) or (N,)
        Membrane potential [model V unit] on the grid ``t``.
    t : ndarray, shape (N,)
        Strictly increasing times [model time unit].
    threshold : float
        Firing level of V [model V unit]; a trace fires when some sample exceeds it
        (:func:`ionfno.data.biomarkers.firing_threshold` gives each model's).

    Returns
    -------
    Biomarkers
        Arrays of shape ``(batch,)``.
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    t = np.asarray(t, dtype=np.float64)
    if v.ndim != 2 or t.ndim != 1 or v.shape[1] != t.shape[0]:
        raise ValueError(f"expected v (batch, N) and t (N,), got {v.shape} and {t.shape}")
    if t.shape[0] < 3 or not np.all(np.diff(t) > 0):
        raise ValueError("t must be strictly increasing with at least 3 points")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    B, N = v.shape
    rows = np.arange(B)
    nan = np.full(B, np.nan)
    # A trace with a non-finite value gets NaN biomarkers and does not fire; compute on zeros.
    bad = ~np.all(np.isfinite(v), axis=1)
    v = np.where(bad[:, None], 0.0, v)
    v_rest = v[:, 0]
    above = v > threshold  # (B, N)
    fires = above.any(axis=1)
    start = np.argmax(above, axis=1)  # first sample above the threshold (0 if none)
    idx = np.arange(N)[None, :]
    after = ~above & (idx > start[:, None])
    stop = np.where(after.any(axis=1), np.argmax(after, axis=1), N)  # exclusive end of the first AP
    in_ap = (idx >= start[:, None]) & (idx < stop[:, None])
    i_peak = np.where(fires, np.argmax(np.where(in_ap, v, -np.inf), axis=1), np.argmax(v, axis=1))
    v_peak = v[rows, i_peak]
    amplitude = v_peak - v_rest

    level50 = v_rest + 0.5 * amplitude
    i_up, has_up = _last(_interval_mask(v, level50, up=True), i_peak)
    ok_up = fires & has_up
    t_up = np.where(ok_up, _cross_time(t, v, i_up, level50), nan)

    slope = np.diff(v, axis=1) / np.diff(t)[None, :]
    slope = np.where(idx[:, :-1] < i_peak[:, None], slope, -np.inf)
    dvdt_max = np.where(i_peak > 0, slope.max(axis=1), nan)

    apd = {}
    for x in (50, 90):
        level = v_rest + (1.0 - x / 100.0) * amplitude
        i_down, has_down = _first(_interval_mask(v, level, up=False), i_peak)
        t_down = _cross_time(t, v, i_down, level)
        apd[x] = np.where(ok_up & has_down, t_down - t_up, nan)

    def clean(x: np.ndarray) -> np.ndarray:
        return np.where(bad | ~np.isfinite(x), np.nan, x)

    return Biomarkers(
        fires=fires & ~bad,
        v_rest=clean(v_rest),
        v_peak=clean(v_peak),
        amplitude=clean(amplitude),
        t_upstroke=clean(t_up),
        dvdt_max=clean(dvdt_max),
        apd50=clean(apd[50]),
        apd90=clean(apd[90]),
    )


def compare_biomarkers(true: Biomarkers, pred: Biomarkers) -> dict[str, Any]:
    """Firing agreement and biomarker errors of predictions against the truth.

    Parameters
    ----------
    true, pred : Biomarkers
        Of the same batch, in the same order.

    Returns
    -------
    dict
        ``n``; ``fire_agreement`` (fraction of samples where both agree), the confusion
        counts ``both_fire``, ``neither_fires``, ``false_fire`` (predicted only),
        ``missed_fire`` (true only); ``peak_abs_error`` over all samples; and for the samples
        where both fire, per biomarker (``v_peak``, ``t_upstroke``, ``apd50``, ``apd90``,
        ``dvdt_max``): ``mean_abs``, ``median_abs``, ``max_abs``, ``mean_signed`` (pred -
        true, i.e. bias) and ``n`` (samples where both values exist), plus ``mean_rel``
        (|error| / |true|) for the APDs.
    """
    tf, pf = np.asarray(true.fires, bool), np.asarray(pred.fires, bool)
    if tf.shape != pf.shape:
        raise ValueError(f"true and pred biomarkers have different batch sizes: {tf.shape}, {pf.shape}")
    n = int(tf.shape[0])
    both = tf & pf
    out: dict[str, Any] = {
        "n": n,
        "fire_agreement": float(np.mean(tf == pf)) if n else float("nan"),
        "both_fire": int(both.sum()),
        "neither_fires": int((~tf & ~pf).sum()),
        "false_fire": int((~tf & pf).sum()),
        "missed_fire": int((tf & ~pf).sum()),
        "true_fire_fraction": float(tf.mean()) if n else float("nan"),
    }
    pk = np.abs(pred.v_peak - true.v_peak)
    pk = pk[np.isfinite(pk)]
    out["peak_abs_error"] = _stats(pk, None, None)
    for name in ("v_peak", "t_upstroke", "apd50", "apd90", "dvdt_max"):
        a, b = getattr(true, name)[both], getattr(pred, name)[both]
        ok = np.isfinite(a) & np.isfinite(b)
        out[name] = _stats(np.abs(b[ok] - a[ok]), b[ok] - a[ok], a[ok] if name.startswith("apd") else None)
        out[name]["n_missing"] = int((~ok).sum())
    return out


def _stats(abs_err: np.ndarray, signed: np.ndarray | None, ref: np.ndarray | None) -> dict[str, Any]:
    if abs_err.size == 0:
        d: dict[str, Any] = {"n": 0, "mean_abs": None, "median_abs": None, "max_abs": None}
        if signed is not None:
            d["mean_signed"] = None
        if ref is not None:
            d["mean_rel"] = None
        return d
    d = {
        "n": int(abs_err.size),
        "mean_abs": float(abs_err.mean()),
        "median_abs": float(np.median(abs_err)),
        "max_abs": float(abs_err.max()),
    }
    if signed is not None:
        d["mean_signed"] = float(signed.mean())
    if ref is not None:
        okr = np.abs(ref) > 0
        d["mean_rel"] = float(np.mean(abs_err[okr] / np.abs(ref[okr]))) if okr.any() else None
    return d
