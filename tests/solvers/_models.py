"""Tiny test models with known solutions, for the solver tests.

Each has a NumPy ``rhs_linear`` and a compiled one-cell ``kernel`` (numba, the signature of
:data:`ionfno.ionic.kernels.RHS_SIGNATURE`), so that both ``fast`` and ``fast_numpy`` run them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit

from ionfno.ionic.base import IonicModel
from ionfno.ionic.kernels import JIT_OPTIONS, RHS_SIGNATURE


@njit(RHS_SIGNATURE, **JIT_OPTIONS)
def _clamped_gate_rhs(t, y, p, i_app, f, a):
    # p = (alpha, beta)
    f[0] = i_app
    f[1] = p[0] * (1.0 - y[1]) - p[1] * y[1]
    a[0] = 0.0
    a[1] = -(p[0] + p[1])


@njit(RHS_SIGNATURE, **JIT_OPTIONS)
def _fragile_rhs(t, y, p, i_app, f, a):
    f[0] = -y[0] + i_app * y[0] * y[0]
    a[0] = 0.0


@dataclass(frozen=True)
class _NoParams:
    pass


class ClampedGate(IonicModel):
    """A charge integrator and an HH-like gate under a voltage clamp V = const.

    ``dq/dt = i_app`` (q integrates the applied current: its exact value is the charge
    delivered) and ``dx/dt = alpha (1 - x) - beta x`` with voltage-dependent rates at the
    clamped V, whose exact solution is ``x_inf + (x0 - x_inf) exp(-(alpha + beta) t)``.
    """

    name: ClassVar[str] = "clamped_gate"
    description: ClassVar[str] = "test: charge integrator + gate under voltage clamp"
    state_names: ClassVar[tuple[str, ...]] = ("q", "x")
    state_units: ClassVar[tuple[str, ...]] = ("1", "1")
    gate_names: ClassVar[tuple[str, ...]] = ("x",)
    t_end_default: ClassVar[float] = 10.0
    n_points_default: ClassVar[int] = 101
    Params: ClassVar[type] = _NoParams
    alpha: ClassVar[float] = 3.7  # 1/ms
    beta: ClassVar[float] = 41.0  # 1/ms: tau ~ 0.02 ms, stiff for the steps used

    def default_state(self):
        return np.array([0.0, 0.9])

    def exact(self, t, x0=0.9):
        k = self.alpha + self.beta
        x_inf = self.alpha / k
        return x_inf + (x0 - x_inf) * np.exp(-k * t)

    def kernel(self, params, tables=False):
        return _clamped_gate_rhs, np.array([self.alpha, self.beta])

    def rhs_linear(self, t, y, params, i_app):
        dy = np.empty_like(y)
        a = np.zeros_like(y)
        dy[..., 0] = i_app
        dy[..., 1] = self.alpha * (1.0 - y[..., 1]) - self.beta * y[..., 1]
        a[..., 1] = -(self.alpha + self.beta)
        return dy, a


class Fragile(IonicModel):
    """``dy/dt = -y + i_app * y^2``: decays for small ``i_app * y0``, blows up in finite time
    (``y -> inf``) when the current is large."""

    name: ClassVar[str] = "fragile"
    description: ClassVar[str] = "test: finite-time blow-up above a current"
    state_names: ClassVar[tuple[str, ...]] = ("y",)
    state_units: ClassVar[tuple[str, ...]] = ("1",)
    t_end_default: ClassVar[float] = 10.0
    n_points_default: ClassVar[int] = 101
    Params: ClassVar[type] = _NoParams

    def default_state(self):
        return np.array([1.0])

    def kernel(self, params, tables=False):
        return _fragile_rhs, np.zeros(1)

    def rhs_linear(self, t, y, params, i_app):
        i_app = np.asarray(i_app)[..., None] if np.ndim(i_app) else i_app
        return -y + i_app * y * y, np.zeros_like(y)
