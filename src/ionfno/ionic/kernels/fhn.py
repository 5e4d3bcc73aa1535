"""FitzHugh–Nagumo for one cell, compiled: the scalar twin of ``FitzHughNagumo.rhs_linear``.

.. math::

    \\frac{dV}{dt} = b V (V - \\beta)(\\delta - V) - c w + I_{app}, \\qquad
    \\frac{dw}{dt} = e (V - \\gamma w)

No gates: ``a = 0``. Parameters packed by :func:`pack` in :data:`PARAM_ORDER`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

from . import JIT_OPTIONS, RHS_SIGNATURE

__all__ = ["PARAM_ORDER", "pack", "rhs"]

PARAM_ORDER = ("b", "beta", "c", "delta", "gamma", "e")


def pack(params) -> np.ndarray:
    """``FitzHughNagumoParams`` -> float64 array in :data:`PARAM_ORDER`, shape (6,)."""
    d = dataclasses.asdict(params)
    return np.array([d[k] for k in PARAM_ORDER], dtype=np.float64)


@njit(RHS_SIGNATURE, **JIT_OPTIONS)
def rhs(t, y, p, i_app, f, a):
    V, w = y[0], y[1]
    f[0] = p[0] * V * (V - p[1]) * (p[3] - V) - p[2] * w + i_app
    f[1] = p[5] * (V - p[4] * w)
    a[0] = 0.0
    a[1] = 0.0
