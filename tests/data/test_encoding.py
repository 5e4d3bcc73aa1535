"""Input encodings of the applied current: point samples vs exact cell averages."""

import numpy as np
import pytest

from ionfno.data.encoding import cell_averages, encode_current
from ionfno.stimulus import SampledWaveform, pulse


def _cell_widths(t, t_end):
    b = np.concatenate([[0.0], 0.5 * (t[:-1] + t[1:]), [t_end]])
    return np.diff(b)


def test_cell_averages_conserve_charge_on_any_grid():
    amp = np.array([0.0, 100.0, 50.0, 80.0, 3.0])
    dur = np.array([0.0, 0.5, 1.0, 1.5, 900.0])
    onset = np.array([0.0, 0.0, 10.3, 0.0, 50.0])
    stim = pulse(amp, dur, onset)
    for n in (1260, 2520, 37):
        t = np.linspace(0.0, 1000.0, n)
        x = cell_averages(stim, t, 1000.0)
        charge = (x * _cell_widths(t, 1000.0)).sum(axis=1)
        np.testing.assert_allclose(charge, amp * dur, rtol=1e-12, atol=1e-12)


def test_cell_averages_resolve_pulses_shorter_than_the_grid():
    # On a 0.79 ms grid, point samples cannot tell a zero-length pulse from a firing 0.5 ms one.
    t = np.linspace(0.0, 1000.0, 1260)
    stim = pulse([100.0, 100.0, 100.0], [0.0, 0.3, 0.6])
    point = stim.sample(t)
    np.testing.assert_array_equal(point[0], point[1])
    np.testing.assert_array_equal(point[1], point[2])
    x = cell_averages(stim, t, 1000.0)
    assert np.all(x[0] == 0.0)  # no charge, no input
    dt = t[1] - t[0]
    # The first cell is [0, dt/2]: a 0.3 ms pulse fills 0.3 / (dt/2) of it, a 0.6 ms one all
    # of it and the next cell in part.
    assert x[1, 0] == pytest.approx(100.0 * 0.3 / (dt / 2))
    assert x[1, 1] == 0.0
    assert x[2, 0] == pytest.approx(100.0)
    assert x[2, 1] == pytest.approx(100.0 * (0.6 - dt / 2) / dt)


def test_cell_averages_of_a_long_pulse_equal_its_samples_away_from_the_edges():
    t = np.linspace(0.0, 100.0, 1001)
    stim = pulse([7.0], [50.05])
    x = cell_averages(stim, t, 100.0)[0]
    p = stim.sample(t)[0]
    inner = (t > 0.2) & (np.abs(t - 50.05) > 0.2)
    np.testing.assert_allclose(x[inner], p[inner], rtol=1e-12)


def test_cell_averages_of_a_linear_waveform_are_exact():
    # A ramp I(t) = t sampled as a piecewise-linear waveform: cell means are the midpoints
    # of the cells.
    tw = np.linspace(0.0, 10.0, 11)
    stim = SampledWaveform(tw, tw[None, :] * 2.0, kind="linear")
    t = np.linspace(0.0, 10.0, 7)
    x = cell_averages(stim, t, 10.0)[0]
    b = np.concatenate([[0.0], 0.5 * (t[:-1] + t[1:]), [10.0]])
    np.testing.assert_allclose(x, (b[:-1] + b[1:]), rtol=1e-12)


def test_encode_current_checks_its_arguments():
    t = np.linspace(0.0, 1.0, 5)
    i = np.zeros((1, 5))
    assert encode_current("point", i_app=i, stimulus=None, t=t, t_end=1.0) is i
    with pytest.raises(ValueError, match="expected one of"):
        encode_current("average", i_app=i, stimulus=None, t=t, t_end=1.0)
    with pytest.raises(ValueError, match="needs the stimulus"):
        encode_current("cell_average", i_app=i, stimulus=None, t=t, t_end=1.0)
    with pytest.raises(ValueError, match="increasing"):
        cell_averages(pulse(1.0, 0.5), np.array([0.0, 0.0, 1.0]), 1.0)
