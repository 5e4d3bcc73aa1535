"""Hodgkin–Huxley 1952 squid-axon model in the original convention (rest near 0 mV).

.. math::

    C_m \\frac{dV}{dt} = -g_{Na} m^3 h (V - V_{Na}) - g_K n^4 (V - V_K) - g_L (V - V_L)
                        + I_{app}(t), \\qquad
    \\frac{dx}{dt} = \\alpha_x(V)(1 - x) - \\beta_x(V) x, \\quad x \\in \\{m, h, n\\}

    \\alpha_m = \\frac{0.1 (25 - V)}{e^{(25 - V)/10} - 1}, \\; \\beta_m = 4 e^{-V/18}, \\;
    \\alpha_h = 0.07 e^{-V/20}, \\; \\beta_h = \\frac{1}{e^{(30 - V)/10} + 1}, \\;
    \\alpha_n = \\frac{0.01 (10 - V)}{e^{(10 - V)/10} - 1}, \\; \\beta_n = 0.125 e^{-V/80}

Units: V in mV (depolarisation positive, as in the reference study, rather than the 1952
paper's sign), t in ms, currents in µA/cm² with C_m = 1 µF/cm², conductances in mS/cm².
The removable singularities of alpha_m at V = 25 and alpha_n at V = 10 are evaluated
through x / expm1(x) with its series near 0.

References
----------
Hodgkin A.L., Huxley A.F. (1952) A quantitative description of membrane current and its
application to conduction and excitation in nerve. J Physiol 117(4):500-544.
doi:10.1113/jphysiol.1952.sp004764.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import IonicModel

__all__ = ["HodgkinHuxley", "HodgkinHuxleyParams", "x_over_expm1"]


def x_over_expm1(x: np.ndarray) -> np.ndarray:
    """``x / (exp(x) - 1)``, continuous at ``x = 0`` (value 1).

    Below ``|x| < 1e-6`` the series ``1 - x/2 + x^2/12`` is exact to rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-6
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - x / 2.0 + x * x / 12.0, safe / np.expm1(safe))


@dataclass(frozen=True)
class HodgkinHuxleyParams:
    """HH 1952 parameters (Hodgkin & Huxley 1952, Table 3; reference-study convention)."""

    C_m: float = 1.0  # membrane capacitance [µF/cm²]
    g_Na: float = 120.0  # max sodium conductance [mS/cm²]
    g_K: float = 36.0  # max potassium conductance [mS/cm²]
    g_L: float = 0.3  # leak conductance [mS/cm²]
    V_Na: float = 115.0  # sodium reversal [mV]
    V_K: float = -12.0  # potassium reversal [mV]
    V_L: float = 10.6  # leak reversal [mV]


class HodgkinHuxley(IonicModel):
    """Hodgkin–Huxley 1952: states ``V`` [mV], gates ``m``, ``h``, ``n``."""

    name: ClassVar[str] = "hh"
    description: ClassVar[str] = "Hodgkin-Huxley 1952 squid axon (rest near 0 mV, 4 states)"
    state_names: ClassVar[tuple[str, ...]] = ("V", "m", "h", "n")
    state_units: ClassVar[tuple[str, ...]] = ("mV", "1", "1", "1")
    gate_names: ClassVar[tuple[str, ...]] = ("m", "h", "n")
    current_unit: ClassVar[str] = "µA/cm²"
    t_end_default: ClassVar[float] = 100.0
    n_points_default: ClassVar[int] = 5040
    Params: ClassVar[type] = HodgkinHuxleyParams

    def default_state(self) -> np.ndarray:
        # The study's initial state: the model's rest with these parameters.
        return np.array([2.7570e-4, 5.2934e-2, 5.9611e-1, 3.1768e-1])

    @staticmethod
    def rates(V: np.ndarray) -> tuple[np.ndarray, ...]:
        """Opening/closing rates ``(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)`` [1/ms]."""
        am = x_over_expm1((25.0 - V) / 10.0)  # = 0.1 (25 - V) / (exp((25 - V)/10) - 1)
        bm = 4.0 * np.exp(-V / 18.0)
        ah = 0.07 * np.exp(-V / 20.0)
        bh = 1.0 / (np.exp((30.0 - V) / 10.0) + 1.0)
        an = 0.1 * x_over_expm1((10.0 - V) / 10.0)  # = 0.01 (10 - V) / (exp((10 - V)/10) - 1)
        bn = 0.125 * np.exp(-V / 80.0)
        return am, bm, ah, bh, an, bn

    def currents(self, y, params):
        p = params
        V, m, h, n = (y[..., i] for i in range(4))
        return {
            "INa": p.g_Na * m**3 * h * (V - p.V_Na),
            "IK": p.g_K * n**4 * (V - p.V_K),
            "IL": p.g_L * (V - p.V_L),
        }

    def kernel(self, params, tables=False):  # HH's rates cost ~40 ns: no table
        from .kernels import hh

        return hh.rhs, hh.pack(params)

    def rhs_linear(self, t, y, params, i_app):
        p = params
        V, m, h, n = (y[..., i] for i in range(4))
        am, bm, ah, bh, an, bn = self.rates(V)
        c = self.currents(y, p)
        dy = np.empty_like(y)
        a = np.zeros_like(y)
        dy[..., 0] = (i_app - c["INa"] - c["IK"] - c["IL"]) / p.C_m
        dy[..., 1] = am * (1.0 - m) - bm * m
        dy[..., 2] = ah * (1.0 - h) - bh * h
        dy[..., 3] = an * (1.0 - n) - bn * n
        a[..., 1] = -(am + bm)
        a[..., 2] = -(ah + bh)
        a[..., 3] = -(an + bn)
        return dy, a
