"""General protocols: per-pulse trains (Pulses), mixed batches, smooth random currents, and the
exact charge integral every protocol gives the FNO's cell-average input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from ionfno.stimulus import Mixed, Pulses, SampledWaveform, Stimulus, band_limited_noise, pulse


def _numeric_integral(stim: Stimulus, t: np.ndarray) -> np.ndarray:
    """int_0^t I by adaptive quadrature between the breakpoints (an independent reference)."""
    t_end = float(t[-1])
    edges = stim.jump_times(t_end)
    out = np.zeros((stim.batch_size, t.shape[0]))
    for b in range(stim.batch_size):
        single = stim.select(np.array([b]))
        cuts = np.unique(np.concatenate([[0.0], edges[b][np.isfinite(edges[b])], t]))
        acc, F = 0.0, {0.0: 0.0}
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            mid = 0.5 * (lo + hi)
            acc += quad(lambda s, m=mid: float(single.current(np.array([s]), np.array([m]))[0]), lo, hi)[0]
            F[hi] = acc
        out[b] = [F[x] for x in t]
    return out


def test_pulses_equal_the_pulse_train_they_come_from():
    train = pulse([5.0, 2.0, 7.0], [1.0, 0.0, 3.0], [2.0, 0.0, 10.0], period=[10.0, 5.0, 30.0], n_beats=[3, 1, 2])
    pulses = train.to_pulses()
    np.testing.assert_array_equal(pulses.n_pulses, [3, 1, 2])
    t = np.linspace(0.0, 60.0, 601)
    np.testing.assert_array_equal(pulses.sample(t), train.sample(t))
    np.testing.assert_array_equal(pulses.jump_times(60.0)[:, :6], train.jump_times(60.0)[:, :6])
    for a, b in zip(pulses.pieces(60.0), train.pieces(60.0), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(pulses.integral(t), train.integral(t), rtol=0, atol=1e-12)
    # charge: A * T per pulse that ends inside the window
    np.testing.assert_allclose(pulses.integral(np.array([60.0]))[:, 0], [15.0, 0.0, 42.0])


def test_pulses_each_with_their_own_amplitude_add_up_and_share_edges():
    # Two touching pulses (one ends where the next starts) and two overlapping ones.
    p = Pulses([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]], [[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]], [[1.0, 2.0, 0.0], [0.0, 1.0, 0.0]])
    e = p.jump_times(10.0)
    np.testing.assert_array_equal(e[0][np.isfinite(e[0])], [1.0, 2.0, 3.0])  # 2.0 once
    np.testing.assert_array_equal(e[1][np.isfinite(e[1])], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(p.current(np.array([2.5, 1.5])), [2.0, 7.0])
    np.testing.assert_allclose(p.integral(np.array([10.0]))[:, 0], [3.0, 14.0])
    t = np.linspace(0.0, 10.0, 41)
    np.testing.assert_allclose(p.integral(t), _numeric_integral(p, t), atol=1e-9)
    with pytest.raises(ValueError, match="duration must be >= 0"):
        Pulses([[1.0]], [[-1.0]], [[0.0]])
    with pytest.raises(ValueError, match="one shape"):
        Pulses([[1.0, 2.0]], [[1.0]], [[0.0]])


@pytest.mark.parametrize("kind", ["linear", "hold"])
def test_waveform_integral_is_exact_inside_and_outside_its_knots(kind, rng):
    tk = np.sort(rng.uniform(0.5, 9.0, 12))
    w = SampledWaveform(tk, rng.normal(size=(3, 12)), kind)
    t = np.concatenate([[0.0, 0.2], np.linspace(0.3, 10.0, 40)])
    np.testing.assert_allclose(w.integral(t), _numeric_integral(w, t), atol=1e-9)
    # the vectorised pieces are the generic ones
    for a, b in zip(w.pieces(7.0), Stimulus.pieces(w, 7.0), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


def test_a_mixed_batch_behaves_like_its_members_row_by_row():
    t = np.linspace(0.0, 20.0, 81)
    wave = SampledWaveform(t, np.sin(t)[None, :] * np.array([[1.0], [2.0]]), "linear")
    pulses = Pulses([[3.0, 1.0], [2.0, 0.0]], [[1.0, 2.0], [0.5, 0.0]], [[1.0, 8.0], [5.0, 0.0]])
    rows = (np.array([3, 0]), np.array([1, 2]))
    mixed = Mixed.of([wave, pulses], rows)
    assert isinstance(mixed, Mixed) and mixed.batch_size == 4
    for member, r in zip((wave, pulses), rows, strict=True):
        np.testing.assert_array_equal(mixed.sample(t)[r], member.sample(t))
        np.testing.assert_allclose(mixed.integral(t)[r], member.integral(t), rtol=0, atol=0)
        stops, v0, v1 = mixed.pieces(20.0)
        s, a, b = member.pieces(20.0)
        np.testing.assert_array_equal(stops[r, : s.shape[1]], s)
        assert np.all(stops[r, s.shape[1]:] == 20.0)  # empty padding pieces at the end
        np.testing.assert_array_equal(v0[r, : s.shape[1]], a)
    # select: back to a lone member when only one kind remains, in the order asked
    only = mixed.select(np.array([2, 1]))
    assert isinstance(only, Pulses)
    np.testing.assert_array_equal(only.amplitude, pulses.amplitude[::-1])
    both = mixed.select(slice(0, 2))
    np.testing.assert_array_equal(both.sample(t), mixed.sample(t)[:2])
    assert Mixed.of([pulses], [np.arange(2)]) is pulses
    with pytest.raises(ValueError, match="each once"):
        Mixed((wave, pulses), (np.array([0, 1]), np.array([1, 2])))


def test_mixed_batches_solve_like_their_members():
    from ionfno.solvers import simulate

    t = np.linspace(0.0, 50.0, 301)
    wave = band_limited_noise(t, amplitude=[0.5], offset=[0.1], cutoff=[0.2], rngs=[np.random.default_rng(3)])
    pulses = pulse([1.0, 0.8], [3.0, 2.0], [5.0, 20.0]).to_pulses()
    mixed = Mixed.of([pulses, wave], [np.array([0, 2]), np.array([1])])
    kw = {"t_end": 50.0, "t_eval": t, "method": "fast", "rtol": 1e-6}
    together = simulate("fhn", mixed, **kw)
    np.testing.assert_array_equal(together.states[[0, 2]], simulate("fhn", pulses, **kw).states)
    np.testing.assert_array_equal(together.states[[1]], simulate("fhn", wave, **kw).states)


def test_band_limited_noise_is_bounded_smooth_float32_exact_and_seeded():
    t = np.linspace(0.0, 1000.0, 2520)
    amp, off, cut = np.array([3.0, 0.5]), np.array([0.8, -0.3]), np.array([0.05, 0.005])
    w = band_limited_noise(t, amplitude=amp, offset=off, cutoff=cut, rngs=[np.random.default_rng(s) for s in (1, 2)])
    assert w.kind == "linear" and w.values.shape == (2, 2520)
    dev = np.abs(w.values - off[:, None]).max(axis=1)
    np.testing.assert_allclose(dev, amp, rtol=1e-6)  # the peak is the amplitude
    np.testing.assert_array_equal(w.values, w.values.astype(np.float32))  # storable exactly
    again = band_limited_noise(t, amplitude=amp[:1], offset=off[:1], cutoff=cut[:1], rngs=[np.random.default_rng(1)])
    np.testing.assert_array_equal(again.values[0], w.values[0])
    # band-limited: a sum of the modes k / P up to the cutoff (P twice the window), to float32
    period = 2 * 1000.0
    k = np.arange(int(cut[1] * period) + 1)[:, None]
    basis = np.concatenate([np.cos(2 * np.pi * k * t / period), np.sin(2 * np.pi * k[1:] * t / period)]).T
    coef = np.linalg.lstsq(basis, w.values[1], rcond=None)[0]
    assert np.abs(basis @ coef - w.values[1]).max() < 1e-6 * amp[1]
    with pytest.raises(ValueError, match="cutoff > 0"):
        band_limited_noise(t, amplitude=[1.0], offset=[0.0], cutoff=[0.0], rngs=[np.random.default_rng(0)])
