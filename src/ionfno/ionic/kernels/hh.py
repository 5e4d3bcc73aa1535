"""Hodgkin–Huxley 1952 for one cell, compiled: the scalar twin of ``HodgkinHuxley.rhs_linear``.

Same equations, rates and conventions as :mod:`ionfno.ionic.hodgkin_huxley` (rest near
0 mV); ``a = -(alpha_x + beta_x)`` for the gates m, h, n. Parameters packed by :func:`pack`
in :data:`PARAM_ORDER`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numba import njit

from . import JIT_OPTIONS, RHS_SIGNATURE

__all__ = ["PARAM_ORDER", "pack", "rhs"]

PARAM_ORDER = ("C_m", "g_Na", "g_K", "g_L", "V_Na", "V_K", "V_L")


def pack(params) -> np.ndarray:
    """``HodgkinHuxleyParams`` -> float64 array in :data:`PARAM_ORDER`, shape (7,)."""
    d = dataclasses.asdict(params)
    return np.array([d[k] for k in PARAM_ORDER], dtype=np.float64)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _x_over_expm1(x):
    # x / (exp(x) - 1), continuous at 0: the series below 1e-6, as the NumPy model does.
    if abs(x) < 1e-6:
        return 1.0 - x / 2.0 + x * x / 12.0
    return x / math.expm1(x)


@njit(RHS_SIGNATURE, **JIT_OPTIONS)
def rhs(t, y, p, i_app, f, a):
    V, m, h, n = y[0], y[1], y[2], y[3]
    am = _x_over_expm1((25.0 - V) / 10.0)
    bm = 4.0 * math.exp(-V / 18.0)
    ah = 0.07 * math.exp(-V / 20.0)
    bh = 1.0 / (math.exp((30.0 - V) / 10.0) + 1.0)
    an = 0.1 * _x_over_expm1((10.0 - V) / 10.0)
    bn = 0.125 * math.exp(-V / 80.0)
    i_na = p[1] * m**3 * h * (V - p[4])
    i_k = p[2] * n**4 * (V - p[5])
    i_l = p[3] * (V - p[6])
    f[0] = (i_app - i_na - i_k - i_l) / p[0]
    f[1] = am * (1.0 - m) - bm * m
    f[2] = ah * (1.0 - h) - bh * h
    f[3] = an * (1.0 - n) - bn * n
    a[0] = 0.0
    a[1] = -(am + bm)
    a[2] = -(ah + bh)
    a[3] = -(an + bn)
