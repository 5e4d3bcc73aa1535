"""The compiled ``fast`` solver: the NumPy scheme it replaces, bit-for-bit batch independence,
failures as status values, and tolerance sweeps that never fail.

Its agreement with the SciPy reference is in ``test_agreement.py`` (default tolerances) and
``tests/data/test_preset_accuracy.py`` (the dataset presets); its order in ``test_order.py``;
closed forms, stimulus edges and the status of a blow-up in ``test_solvers.py``.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from ionfno.ionic import get_model
from ionfno.solvers import CompiledSolver, Status, simulate, state_floor
from ionfno.stimulus import SampledWaveform, pulse

from .test_agreement import range_relative_error


@pytest.mark.parametrize("name,A,T,t_end,n_points", [
    ("fhn", [1.0, 0.05, 1.5], [1.0, 50.0, 100.0], 100.0, 1001),
    ("hh", [10.0, 1.0, 60.0], [1.0, 10.0, 15.0], 20.0, 401),
    ("ord", [80.0, 30.0], [0.5, 1.0], 40.0, 401),  # upstroke, Ca release: the stiff part
], ids=["fhn", "hh", "ord"])
def test_compiled_is_the_numpy_scheme(name, A, T, t_end, n_points):
    # Same scheme, same error control, same arithmetic order: the same steps, and states equal
    # up to the rounding of exp/expm1 (libm vs NumPy's SIMD) amplified along the run.
    # (RL2 without lookup tables; "rl2" is the same for models without them.)
    model = get_model(name)
    stim = pulse(A, T)
    kw = dict(t_end=t_end, n_points=n_points, rtol=1e-4)
    fast = simulate(model, stim, method=CompiledSolver(scheme="rl2", tables=False), **kw)
    ref = simulate(model, stim, method="fast_numpy", **kw)
    assert np.all(fast.status == 0) and np.all(ref.status == 0)
    np.testing.assert_allclose(fast.stats["steps"], ref.stats["steps"], rtol=0.01)
    assert range_relative_error(fast, ref, model).max() < 1e-7
    if name != "ord":
        assert np.array_equal(simulate(model, stim, method="rl2", **kw).states, fast.states)


def test_ord_lookup_tables_change_a_beat_far_less_than_the_tolerance():
    # The default "fast" interpolates ORd's voltage terms from a 0.05 mV table; against every
    # exponential evaluated ("fast_exact"), whole beats (upstroke, plateau, repolarisation,
    # a subthreshold pulse, a late pulse, a pacing pair) move by 1e-6 to 1.2e-5 of each state's
    # range (measured), an order below the default tolerance's own error (~1e-4, BENCHMARKS.md).
    model = get_model("ord")
    kw = dict(t_end=1000.0, n_points=2001)
    stims = (
        pulse([80.0, 20.0, 60.0], [0.5, 0.5, 1.0]),  # fires, subthreshold, fires
        pulse([60.0], [1.0], onset=300.0),  # late
        pulse([80.0], [0.5], period=400.0, n_beats=2),  # a premature second beat
    )
    for stim in stims:
        tab = simulate(model, stim, method="fast", **kw)
        exact = simulate(model, stim, method="fast_exact", **kw)
        assert np.all(tab.status == 0) and np.all(exact.status == 0)
        err = range_relative_error(tab, exact, model)
        assert 0.0 < err.max() < 5e-5, err.max()


def test_hh_fast_is_dormand_prince_and_beats_rl2_where_hh_is_hardest():
    # 100 ms at A = 6.22 µA/cm²: repetitive firing where a fourth spike just enters the window,
    # the sample whose late spike times amplify errors most (BENCHMARKS.md). At HH's default
    # tolerance "fast" is DOPRI5: within 1e-5 of range of Radau at 1e-10 (measured 1e-6; RL2
    # at the same tolerance 1.1e-4) in a small fraction of RL2's steps.
    from ionfno.solvers import ReferenceSolver

    model = get_model("hh")
    stim = pulse([6.22], [100.0])
    kw = dict(t_end=100.0, n_points=1001)
    fast = simulate(model, stim, **kw)
    assert np.array_equal(fast.states, simulate(model, stim, method="dopri5", **kw).states)
    rl2 = simulate(model, stim, method="rl2", **kw)
    ref = simulate(model, stim, method=ReferenceSolver("Radau", tol=1e-10), **kw)
    assert np.all(fast.status == 0) and np.all(rl2.status == 0)
    assert range_relative_error(fast, ref, model).max() < 1e-5
    assert range_relative_error(fast, ref, model).max() < range_relative_error(rl2, ref, model).max()
    assert 50 * fast.stats["steps"][0] < rl2.stats["steps"][0]


def test_tables_step_aside_below_their_error():
    # Below TABLES_MIN_RTOL the default "fast" is the exact vector field (bit for bit), so a
    # tighter tolerance keeps converging to the model rather than to its table.
    from ionfno.solvers.compiled import TABLES_MIN_RTOL

    stim = pulse([80.0], [0.5])
    kw = dict(t_end=60.0, n_points=121)
    for rtol, same in ((0.5 * TABLES_MIN_RTOL, True), (TABLES_MIN_RTOL, False)):
        fast = simulate("ord", stim, method="fast", rtol=rtol, **kw)
        exact = simulate("ord", stim, method="fast_exact", rtol=rtol, **kw)
        assert np.array_equal(fast.states, exact.states) == same


def test_compiled_follows_linear_waveforms_like_the_numpy_scheme():
    t = np.linspace(0.0, 12.0, 25)
    values = np.stack([8.0 * np.sin(np.pi * t / 6.0) ** 2, np.where(t > 4, 12.0, 0.0)])
    for kind in ("linear", "hold"):
        stim = SampledWaveform(t, values, kind=kind)
        fast = simulate("hh", stim, t_end=12.0, n_points=121, method="rl2", rtol=1e-4)
        ref = simulate("hh", stim, t_end=12.0, n_points=121, method="fast_numpy", rtol=1e-4)
        assert range_relative_error(fast, ref, get_model("hh")).max() < 1e-7


def test_a_sample_does_not_depend_on_its_batch_bit_for_bit():
    rng = np.random.default_rng(11)
    B = 9
    stim = pulse(rng.uniform(2, 80, B), rng.uniform(0, 40, B), rng.uniform(0, 5, B))
    kw = dict(t_end=40.0, n_points=401, rtol=1e-6)
    full = simulate("hh", stim, **kw)
    assert np.all(full.status == 0)
    for i in (0, 4, 8):
        alone = simulate("hh", stim.select(np.array([i])), **kw)
        assert np.array_equal(alone.states[0], full.states[i])
        assert alone.stats["steps"][0] == full.stats["steps"][i]
    perm = rng.permutation(B)
    assert np.array_equal(simulate("hh", stim.select(perm), **kw).states, full.states[perm])
    # progress-bar chunks and thread counts split the batch differently: same bits
    assert np.array_equal(simulate("hh", stim, progress=True, chunk_size=2, **kw).states, full.states)
    for threads in {1, min(2, numba.config.NUMBA_NUM_THREADS)}:
        assert np.array_equal(simulate("hh", stim, threads=threads, **kw).states, full.states)


def test_a_thousand_cells_and_one_take_one_code_path():
    # Batch 1 and batch 1000 (the same cell repeated) give the same bits.
    one = simulate("fhn", pulse(1.0, 2.0), t_end=100.0, n_points=501)
    many = simulate("fhn", pulse(np.full(1000, 1.0), 2.0), t_end=100.0, n_points=501)
    assert np.array_equal(np.broadcast_to(one.states, many.states.shape), many.states)


def test_nan_parameter_is_a_status_not_an_exception():
    model = get_model("ord")
    traj = simulate(model, pulse([80.0, 0.0], 0.5), t_end=50.0, n_points=51,
                    params=model.default_params(GNa=np.nan))
    assert np.all(traj.status == Status.NONFINITE)
    assert np.all(np.isfinite(traj.states[:, :, 0])) and np.all(np.isnan(traj.states[:, :, 1:]))


def test_overflowing_stimulus_fails_one_sample_and_spares_the_others():
    # A current of 1e300 drives V past the float range within the pulse; its neighbours in the
    # batch must be bit-for-bit what they are alone.
    stim = pulse([10.0, 1e300, 0.5], [1.0, 1.0, 5.0])
    kw = dict(t_end=20.0, n_points=201)
    traj = simulate("hh", stim, **kw)
    assert traj.status[1] in (Status.NONFINITE, Status.SOLVER_ERROR)
    assert traj.status[0] == traj.status[2] == Status.OK
    assert np.isnan(traj.states[1, :, -1]).all()
    for i in (0, 2):
        assert np.array_equal(simulate("hh", stim.select(np.array([i])), **kw).states[0], traj.states[i])


# HH samples that used to fail with status MAX_STEPS (100 000 steps) at tight tolerances:
# strong sustained currents (i_high, A 60-72 for 94-100 ms) and repetitive firing (t_fin,
# general). A tighter tolerance must only cost steps, never fail.
HH_HARD = pulse([66.0, 71.6, 60.3, 25.0, 7.04], [97.0, 94.0, 100.0, 100.0, 71.4])


@pytest.mark.parametrize("rtol", [1e-5, 1e-6, 1e-7])
def test_tighter_tolerance_never_fails_hh(rtol):
    traj = simulate("hh", HH_HARD, t_end=100.0, n_points=1001, rtol=rtol)
    assert np.all(traj.status == Status.OK), traj.status


@pytest.mark.slow
@pytest.mark.parametrize("name,stim,t_end", [
    ("hh", HH_HARD, 100.0),
    ("fhn", pulse([0.5, 1.9, 0.005], [100.0, 50.0, 80.0]), 100.0),
    ("ord", pulse([80.0, 30.0, 1.5, 150.0], [0.5, 1.0, 800.0, 0.2]), 1000.0),
], ids=["hh", "fhn", "ord"])
def test_tolerance_sweep_down_to_1e8_never_fails_and_converges(name, stim, t_end):
    model = get_model(name)
    n_points = 2001
    errs, steps = [], []
    tight = simulate(model, stim, t_end=t_end, n_points=n_points, rtol=1e-10,
                     atol=1e-10 * state_floor(model))
    assert np.all(tight.status == Status.OK)
    for rtol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
        traj = simulate(model, stim, t_end=t_end, n_points=n_points, rtol=rtol,
                        atol=rtol * state_floor(model))
        assert np.all(traj.status == Status.OK), (rtol, traj.status)
        errs.append(range_relative_error(traj, tight, model).max())
        steps.append(traj.stats["steps"].sum())
    # error about proportional to the tolerance; steps grow about as tol^(-1/2) (order 2)
    slope = np.polyfit(np.log10([1e-4, 1e-5, 1e-6, 1e-7, 1e-8]), np.log10(errs), 1)[0]
    assert 0.7 < slope < 1.3, errs
    assert np.all(np.diff(steps) > 0)


def test_large_outputs_are_prefaulted_mappings_and_give_the_same_bits(monkeypatch):
    from ionfno.solvers import base, compiled

    big = base.output_array((3, 41, 10080))  # 9.9 MB: mapped (on Linux)
    small = base.output_array((2, 4, 10))
    for a, shape in ((big, (3, 41, 10080)), (small, (2, 4, 10))):
        assert a.shape == shape and a.dtype == np.float64
        assert a.flags.c_contiguous and a.flags.writeable
    if hasattr(base.mmap, "MAP_POPULATE"):
        root = big
        while isinstance(root, np.ndarray):
            root = root.base
        assert isinstance(root.obj, base.mmap.mmap)
        assert small.base is None  # a plain np.empty
    big[...] = 1.5
    assert float(big.sum()) == 1.5 * big.size
    # The solver's output in a mapping (8 MB here) and in np.empty: the same bits.
    stim = pulse(np.linspace(0.3, 1.5, 1000), 2.0)
    mapped = simulate("fhn", stim, t_end=100.0, n_points=501)
    monkeypatch.setattr(compiled, "output_array", lambda shape: np.empty(shape))
    plain = simulate("fhn", stim, t_end=100.0, n_points=501)
    assert mapped.states.nbytes >= base.PREFAULT_FROM
    if hasattr(base.mmap, "MAP_POPULATE"):  # the solver's output is the mapping itself
        root = mapped.states
        while isinstance(root, np.ndarray):
            root = root.base
        assert isinstance(root.obj, base.mmap.mmap)
    assert np.array_equal(mapped.states, plain.states)
