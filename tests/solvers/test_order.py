"""Convergence order of the fixed-step schemes matches their declared ``order``.

Halve dt, regress log(max error) on log(dt) and compare the slope with ``solver.order``
(margin 0.3: diffrax's test_ode_order allows 0.9; ours are asymptotic for these dt). The
error is measured on the output grid, so the dense output is checked too, against the tight
SciPy reference. HH fires a spike under a pulse whose edges (0.3 ms, 1.3 ms) are not
multiples of the steps: the schemes must step onto them to keep their order.
"""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.solvers import SOLVERS, simulate
from ionfno.stimulus import SampledWaveform, pulse

DTS = np.array([0.04, 0.02, 0.01, 0.005])


def _slope(method, model, stim, t_end, n_points):
    ref = simulate(model, stim, t_end=t_end, n_points=n_points, method="reference", rtol=1e-11,
                   atol=1e-11)
    errs = []
    for dt in DTS:
        traj = simulate(model, stim, t_end=t_end, n_points=n_points, method=method, dt=dt)
        errs.append(np.max(np.abs(traj.states - ref.states)[:, 0]))
    errs = np.array(errs)
    return np.polyfit(np.log(DTS), np.log(errs), 1)[0], errs


@pytest.mark.parametrize("method", ["rl2", "dopri5", "rush_larsen"])
def test_order_hh_pulse(method):
    slope, errs = _slope(method, "hh", pulse(12.0, 1.0, 0.3), 12.0, 97)
    assert abs(slope - SOLVERS[method].order) < 0.3, (slope, errs)


@pytest.mark.parametrize("method", ["rl2", "dopri5", "rush_larsen"])
def test_order_hh_smooth_waveform(method):
    # A smooth current sampled on a coarse grid (linear pieces, breakpoints every 0.5 ms).
    t = np.linspace(0.0, 12.0, 25)
    stim = SampledWaveform(t, 8.0 * np.sin(np.pi * t / 6.0) ** 2)
    slope, errs = _slope(method, "hh", stim, 12.0, 97)
    assert abs(slope - SOLVERS[method].order) < 0.3, (slope, errs)
