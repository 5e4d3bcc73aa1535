"""``fast`` at its default tolerances agrees with the tight ``reference`` on random stimuli.

Metric: max over time of |fast - reference| per sample and variable, divided by that
variable's range over the run in the reference trajectory, guarded from below by the
per-unit floor of :func:`ionfno.solvers.state_floor` (1 mV, 1e-2 for gates and
dimensionless states, 1e-5 mM, 1e-6 mM/ms) so that a state that barely moves is judged on an
absolute scale. Bound: 1e-3 (issue 3). Stimuli are drawn like the study's dataset parts.
"""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.ionic import get_model
from ionfno.solvers import Status, simulate, state_floor
from ionfno.stimulus import pulse


def range_relative_error(fast, ref, model):
    """Max over time of |fast - ref| / max(range of ref, floor); shape (B, n_states)."""
    rng = ref.states.max(axis=-1) - ref.states.min(axis=-1)
    scale = np.maximum(rng, state_floor(model)[None, :])
    return np.max(np.abs(fast.states - ref.states), axis=-1) / scale


def _check(model_name, amplitude, duration, t_end, n_points, bound=1e-3):
    model = get_model(model_name)
    stim = pulse(amplitude, duration)
    fast = simulate(model, stim, t_end=t_end, n_points=n_points, method="fast")
    ref = simulate(model, stim, t_end=t_end, n_points=n_points, method="reference")
    assert np.all(fast.status == Status.OK) and np.all(ref.status == Status.OK)
    err = range_relative_error(fast, ref, model)
    worst = np.unravel_index(np.argmax(err), err.shape)
    assert err.max() <= bound, (
        f"{model_name}: max range-relative error {err.max():.2e} in {model.state_names[worst[1]]} "
        f"of sample {worst[0]} (A={stim.amplitude[worst[0]]:.3g}, T={stim.duration[worst[0]]:.3g})")
    return err


def test_fhn_random_pulses():
    rng = np.random.default_rng(1)
    A = np.concatenate([rng.uniform(0.1, 2, 6), rng.uniform(1e-4, 0.01, 2)])
    T = np.concatenate([rng.uniform(1, 100, 5), [0.0], rng.uniform(10, 100, 2)])
    _check("fhn", A, T, 100.0, 5040)


def test_hh_random_pulses():
    # Kept short for the default run: 'general' and sub-threshold pulses over 40 ms.
    rng = np.random.default_rng(2)
    A = np.array([rng.uniform(2, 10), rng.uniform(2, 10), rng.uniform(1e-4, 2)])
    T = np.array([rng.uniform(1, 30), 0.0, rng.uniform(10, 40)])
    _check("hh", A, T, 40.0, 2017)


@pytest.mark.slow
def test_hh_random_pulses_spike_trains():
    # The hardest case for the bound: sustained and high-current pulses fire trains of
    # spikes whose timing errors add up (the i_high and t_fin parts of the study).
    rng = np.random.default_rng(5)
    A = np.array([rng.uniform(2, 10), rng.uniform(50, 200), rng.uniform(2, 30), rng.uniform(2, 10)])
    T = np.array([rng.uniform(30, 100), rng.uniform(10, 100), 100.0, rng.uniform(1, 100)])
    _check("hh", A, T, 100.0, 5040)


def test_ord_random_pulses_short():
    # Around the excitation threshold (80 µA/µF for 1 ms fires, 40 for 0.5 ms does not);
    # upstroke, Ca release and early plateau within 400 ms.
    _check("ord", np.array([80.0, 45.0]), np.array([0.5, 1.2]), 400.0, 4033)


@pytest.mark.slow
def test_ord_random_pulses_full_beat():
    rng = np.random.default_rng(4)
    A = np.concatenate([[80.0, 40.0], rng.uniform(30, 100, 4)])
    T = np.concatenate([[1.0, 0.5], rng.uniform(0.3, 1.5, 4)])
    _check("ord", A, T, 1000.0, 10080)
