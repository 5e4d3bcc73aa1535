"""Solver behaviour with known answers: closed forms, edges, status, batch independence, inputs."""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.solvers import SOLVERS, Status, phi1, simulate
from ionfno.solvers.exponential import phi12
from ionfno.stimulus import SampledWaveform, pulse

from ._models import ClampedGate, Fragile

BATCHED = ["fast", "rush_larsen"]


def test_phi_functions_match_their_definitions_across_the_series_switch():
    z = np.array([-50.0, -1.0, -0.011, -0.0099, -1e-6, 0.0, 1e-6, 0.0099, 0.011, 0.5])
    with np.errstate(divide="ignore", invalid="ignore"):
        p1_ref = np.where(z == 0, 1.0, np.expm1(z) / z)
    # phi2 from a long-double-free route: its own Taylor series is exact enough near 0,
    # and (expm1(z) - z)/z^2 loses < 1e-12 relative for |z| >= 1e-2.
    with np.errstate(divide="ignore", invalid="ignore"):
        p2_ref = np.where(np.abs(z) < 1e-3, 0.5 + z / 6 + z**2 / 24, (np.expm1(z) - z) / z**2)
    p1, p2 = phi12(z)
    np.testing.assert_allclose(p1, p1_ref, rtol=1e-13)
    np.testing.assert_allclose(phi1(z), p1_ref, rtol=1e-13)
    np.testing.assert_allclose(p2, p2_ref, rtol=1e-11)


@pytest.mark.parametrize("method,dt", [("fast", None), ("fast", 0.37), ("rush_larsen", 0.37)])
def test_gate_under_voltage_clamp_relaxes_exactly(method, dt):
    # Constant rates: every Rush-Larsen variant is exact whatever the step (|a dt| = 16 here).
    model = ClampedGate()
    traj = simulate(model, pulse(0.0, 0.0), t_end=10.0, n_points=101, method=method, dt=dt)
    assert traj.status[0] == Status.OK
    np.testing.assert_allclose(traj.states[0, 1], model.exact(traj.t), rtol=0, atol=1e-14)


@pytest.mark.parametrize("method,dt", [("fast", None), ("fast", 0.1), ("rush_larsen", 0.1)])
def test_pulse_delivers_exactly_its_charge(method, dt):
    # Pulse edges at 0.123 and 0.123 + 0.4567: not multiples of dt. Stepping onto them, the
    # integrator sees a constant current on each piece, so q(t_end) = A * T_stim to rounding;
    # a step straddling an edge would be off by up to A * dt.
    A, T = np.array([2.5, 7.0]), np.array([0.4567, 1.0])
    traj = simulate(ClampedGate(), pulse(A, T, 0.123), t_end=3.0, n_points=31, method=method, dt=dt)
    np.testing.assert_allclose(traj.states[:, 0, -1], A * T, rtol=1e-13)
    # and the charge is accumulated linearly inside the pulse (dense output is exact there)
    t = traj.t
    q_exact = A[:, None] * np.clip(t[None, :] - 0.123, 0.0, T[:, None])
    np.testing.assert_allclose(traj.states[:, 0, :], q_exact, rtol=0, atol=1e-12)


def test_pulse_train_with_touching_pulses_is_one_long_pulse():
    # duration == period: edges coincide; the charge is n_beats * A * period.
    traj = simulate(ClampedGate(), pulse(1.5, 0.25, 0.1, period=0.25, n_beats=4), t_end=2.0, n_points=21)
    assert traj.status[0] == Status.OK
    np.testing.assert_allclose(traj.states[0, 0, -1], 1.5, rtol=1e-13)


def test_one_failing_sample_leaves_the_others_untouched():
    model = Fragile()
    stim = pulse([0.0, 5.0, 0.5], 10.0)  # sample 1 blows up (5 * y > 1 at once)
    kw = dict(t_end=5.0, n_points=51, method="fast", rtol=1e-3, atol=1e-6)
    traj = simulate(model, stim, **kw)
    # y -> inf in finite time: the step size collapses (SOLVER_ERROR) or y overflows (NONFINITE)
    assert traj.status[0] == traj.status[2] == Status.OK
    assert traj.status[1] in (Status.NONFINITE, Status.SOLVER_ERROR)
    bad = traj.states[1, 0]
    first_nan = int(np.argmax(np.isnan(bad)))
    assert first_nan > 0 and np.all(np.isfinite(bad[:first_nan])) and np.all(np.isnan(bad[first_nan:]))
    for i in (0, 2):
        alone = simulate(model, stim.select(np.array([i])), **kw)
        np.testing.assert_array_equal(traj.states[i], alone.states[0])
    np.testing.assert_allclose(traj.states[0, 0], np.exp(-traj.t), rtol=0, atol=1e-3)


def test_max_steps_is_a_status_not_an_exception():
    stim = pulse([1.0, 1.0], 1.0)
    traj = simulate("hh", stim, t_end=20.0, n_points=11, method="fast", max_steps=5)
    assert np.all(traj.status == Status.MAX_STEPS)
    assert np.all(np.isfinite(traj.states[:, :, 0])) and np.all(np.isnan(traj.states[:, :, -1]))
    ref = simulate("hh", stim.select(np.array([0])), t_end=20.0, n_points=11, method="reference",
                   max_steps=20)
    assert ref.status[0] == Status.MAX_STEPS


@pytest.mark.parametrize("method", BATCHED)
def test_trajectory_does_not_depend_on_the_rest_of_the_batch(method, rng):
    B = 5
    stim = pulse(rng.uniform(2, 30, B), rng.uniform(0, 40, B), rng.uniform(0, 5, B))
    kw = dict(t_end=12.0, n_points=121, method=method, rtol=1e-4,
              dt=0.02 if method == "rush_larsen" else None)
    full = simulate("hh", stim, **kw)
    for chunk in (1, 3):
        np.testing.assert_array_equal(simulate("hh", stim, chunk_size=chunk, **kw).states, full.states)
    perm = rng.permutation(B)
    np.testing.assert_array_equal(simulate("hh", stim.select(perm), **kw).states, full.states[perm])


@pytest.mark.parametrize("model,fire,quiet,threshold", [
    ("hh", (10.0, 1.0), (1.0, 1.0), 50.0),  # V [mV] above rest
    ("fhn", (1.0, 1.0), (0.05, 1.0), 0.5),
])
@pytest.mark.parametrize("method", ["fast", "reference"])
def test_fires_above_and_stays_quiet_below_threshold(model, fire, quiet, threshold, method):
    stim = pulse([fire[0], quiet[0]], [fire[1], quiet[1]])
    traj = simulate(model, stim, t_end=50.0, n_points=501, method=method,
                    rtol=1e-4 if method == "fast" else None)
    peak = traj.states[:, 0].max(axis=1)
    assert peak[0] > threshold > 3 * peak[1]


def test_output_contract():
    stim = pulse([5.0, 0.0], 2.0)
    y0 = np.zeros((2, 4)) + [0.0, 0.05, 0.6, 0.3]
    traj = simulate("hh", stim, t_end=10.0, n_points=11, y0=y0, rtol=1e-4)
    assert traj.t.dtype == np.float64 and traj.t.shape == (11,)
    assert traj.states.shape == (2, 4, 11) and traj.states.dtype == np.float64
    assert traj.status.dtype == np.int8 and traj.status.shape == (2,)
    np.testing.assert_array_equal(traj.i_app, stim.sample(traj.t))
    assert traj.state_names == ("V", "m", "h", "n") and traj.model_name == "hh"
    np.testing.assert_array_equal(traj.states[:, :, 0], [[0.0, 0.05, 0.6, 0.3]] * 2)
    assert traj.stats["steps"].shape == (2,) and traj.stats["wall_time"] > 0
    t_eval = np.array([0.5, 1.0, 9.0])
    assert simulate("hh", stim, t_end=10.0, t_eval=t_eval, rtol=1e-4).states.shape == (2, 4, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(t_end=0.0), "t_end must be a finite number > 0"),
    (dict(t_end=float("nan")), "t_end must be a finite number > 0"),
    (dict(n_points=1), "n_points must be a whole number >= 2"),
    (dict(rtol=0.0), "rtol must be a finite number > 0"),
    (dict(atol=-1.0), "atol must be a finite number > 0"),
    (dict(atol=np.ones(3)), r"atol must be a scalar or have shape \(4,\)"),
    (dict(dt=0.0), "dt must be a finite number > 0"),
    (dict(y0=np.zeros(3)), r"y0 must have shape \(4,\) or \(2, 4\)"),
    (dict(y0=np.array([0.0, np.nan, 0.5, 0.3])), "y0 must be finite"),
    (dict(t_eval=np.array([0.0, 20.0])), r"t_eval must lie in \[0, t_end\]"),
    (dict(t_eval=np.array([1.0, 0.5])), "strictly increasing"),
    (dict(method="rk4"), r"Unknown solver 'rk4'; expected one of \['dopri5', 'fast', 'fast_exact'"),
    (dict(max_steps=0), "max_steps must be a whole number >= 1"),
])
def test_bad_inputs_are_refused_with_a_clear_message(kwargs, match):
    args = dict(t_end=10.0, n_points=11) | kwargs
    if "t_eval" in kwargs:
        args.pop("n_points")
    with pytest.raises(ValueError, match=match):
        simulate("hh", pulse([1.0, 2.0], 1.0), **args)


def test_unknown_model_lists_models():
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        simulate("nope", pulse(1.0, 1.0), t_end=1.0)


def test_registry_is_a_plain_dict_with_declared_orders():
    assert isinstance(SOLVERS, dict)
    assert SOLVERS["fast"].order == 2 and SOLVERS["rush_larsen"].order == 1
    assert SOLVERS["fast"].adaptive and not SOLVERS["rush_larsen"].adaptive


def test_sampled_waveform_breakpoints_are_stepped_onto():
    # A 'hold' waveform jumps at its sample times; the charge is the exact Riemann sum.
    t = np.linspace(0.0, 2.0, 9)
    values = np.array([[0.0, 1.0, -2.0, 3.0, 0.5, 0.0, 4.0, 1.0, 0.0]])
    stim = SampledWaveform(t, values, kind="hold")
    traj = simulate(ClampedGate(), stim, t_end=2.0, n_points=5)
    np.testing.assert_allclose(traj.states[0, 0, -1], np.sum(values[0, :-1] * np.diff(t)), rtol=1e-13)


def test_ord_column_layout_rhs_is_the_transposed_rhs_bit_for_bit():
    # The batched solvers call ORd in its native (41, batch) layout; it must be the same
    # vector field, not an approximation of it.
    from ionfno.ionic import get_model

    model = get_model("ord")
    p = model.default_params()
    rng = np.random.default_rng(3)
    y = model.default_state()[None, :] * rng.uniform(0.9, 1.1, (7, 41))
    y[:, 0] = rng.uniform(-90.0, 40.0, 7)  # V across rest, upstroke and plateau
    i_app = rng.uniform(-80.0, 80.0, 7)
    f, a = model.rhs_linear(0.0, y, p, i_app)
    fc, ac = model.rhs_linear_columns(0.0, np.ascontiguousarray(y.T), p, i_app)
    assert fc.shape == ac.shape == (41, 7)
    assert np.array_equal(fc, f.T) and np.array_equal(ac, a.T)
    assert np.any(ac != 0.0) and np.all(np.isfinite(fc))
