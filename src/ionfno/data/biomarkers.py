"""The one definition of "the cell fired an action potential", used by datasets and reports.

A sample *fires* when its membrane potential exceeds a model-specific threshold at some
stored time point:

=========  =============  ====================================================================
model      threshold      why
=========  =============  ====================================================================
fhn        V > 0.5        halfway between rest (0) and the excited branch (V near 1)
hh         V > 50 mV      1952 convention (rest 0 mV, peak near 100 mV); sub-threshold
                          responses stay below 20 mV
ord*       V > 0 mV       overshoot: rest -88 mV, a regenerative upstroke peaks at +30..+45 mV
=========  =============  ====================================================================

This is a threshold crossing, not a proof of a regenerative upstroke: a strong, long current
(HH ``i_high``) that holds V above the threshold also counts. The crossing is evaluated on
the stored grid, which resolves every action potential of these models (the shortest, HH,
stays above 50 mV for about 1 ms, i.e. 50 points of the default 5040-point grid).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FIRING_THRESHOLDS", "firing_threshold", "fires"]

FIRING_THRESHOLDS: dict[str, float] = {
    "fhn": 0.5,
    "hh": 50.0,
    "ord": 0.0,
    "ord-epi": 0.0,
    "ord-m": 0.0,
}


def firing_threshold(model: str) -> float:
    """Firing threshold of ``model`` (registry name) in the unit of V.

    Raises
    ------
    ValueError
        If no threshold is defined; the message lists the models that have one.
    """
    name = str(getattr(model, "name", model))
    if name in FIRING_THRESHOLDS:
        return FIRING_THRESHOLDS[name]
    family = name.split("-")[0]
    if family in FIRING_THRESHOLDS:
        return FIRING_THRESHOLDS[family]
    raise ValueError(f"No firing threshold for model {name!r}; expected one of {sorted(FIRING_THRESHOLDS)}")


def fires(model: str, V: np.ndarray) -> np.ndarray:
    """Whether each trajectory crosses the model's firing threshold.

    Parameters
    ----------
    model : str
        Registry name (``"fhn"``, ``"hh"``, ``"ord"``, ...).
    V : ndarray, shape (B, N) or (N,)
        Membrane potential on the stored grid [model unit].

    Returns
    -------
    ndarray of bool, shape (B,) (or a scalar bool for 1-D input)
        NaN values never count as firing.
    """
    V = np.asarray(V)
    thr = firing_threshold(model)
    with np.errstate(invalid="ignore"):
        return np.any(V > thr, axis=-1)
