"""FitzHugh–Nagumo model in the reference study's (dimensionless) form.

.. math::

    \\frac{dV}{dt} = b V (V - \\beta)(\\delta - V) - c w + I_{app}(t), \\qquad
    \\frac{dw}{dt} = e (V - \\gamma w)

with b = 5, beta = 0.1, c = 1, delta = 1, gamma = 0.25, e = 0.1, V(0) = w(0) = 0 and
T = 100 (Pellegrini et al. 2025, arXiv:2505.14039). Everything is dimensionless; ``V = w = 0`` is the
stable rest state, and a pulse large enough to push V past ``beta`` fires a spike.

References
----------
FitzHugh R. (1961) Impulses and physiological states in theoretical models of nerve
membrane. Biophys J 1(6):445-466. doi:10.1016/S0006-3495(61)86902-6.
Pellegrini et al. (2025) arXiv:2505.14039 (this parametrisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import IonicModel

__all__ = ["FitzHughNagumo", "FitzHughNagumoParams"]


@dataclass(frozen=True)
class FitzHughNagumoParams:
    """FHN parameters (all dimensionless), as in Pellegrini et al. 2025."""

    b: float = 5.0  # cubic gain
    beta: float = 0.1  # excitation threshold
    c: float = 1.0  # recovery coupling
    delta: float = 1.0  # excited-branch fixed point
    gamma: float = 0.25  # recovery self-decay
    e: float = 0.1  # recovery time-scale ratio


class FitzHughNagumo(IonicModel):
    """FitzHugh–Nagumo: states ``V`` and ``w``, dimensionless."""

    name: ClassVar[str] = "fhn"
    description: ClassVar[str] = "FitzHugh-Nagumo (dimensionless, 2 states)"
    state_names: ClassVar[tuple[str, ...]] = ("V", "w")
    state_units: ClassVar[tuple[str, ...]] = ("1", "1")
    time_unit: ClassVar[str] = "1"
    current_unit: ClassVar[str] = "1"
    t_end_default: ClassVar[float] = 100.0
    n_points_default: ClassVar[int] = 5040
    Params: ClassVar[type] = FitzHughNagumoParams

    def default_state(self) -> np.ndarray:
        return np.zeros(2)

    def kernel(self, params, tables=False):  # polynomial: nothing to tabulate
        from .kernels import fhn

        return fhn.rhs, fhn.pack(params)

    def rhs_linear(self, t, y, params, i_app):
        p = params
        V, w = y[..., 0], y[..., 1]
        dy = np.empty_like(y)
        dy[..., 0] = p.b * V * (V - p.beta) * (p.delta - V) - p.c * w + i_app
        dy[..., 1] = p.e * (V - p.gamma * w)
        return dy, np.zeros_like(y)
