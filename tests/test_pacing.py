"""``ionfno.pacing.pace``: beats one window at a time, the same as one long window."""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.pacing import pace
from ionfno.solvers import simulate
from ionfno.stimulus import pulse


def test_ord_beats_have_the_published_apd_and_chain_their_states():
    res = pace("ord", amplitude=80.0, duration=0.5, period=1000.0, n_beats=2, n_points=2001)
    assert res.beats["status"].tolist() == [0, 0] and res.beats["fires"].all()
    assert 265.0 < res.beats["apd90"][0] < 272.0  # 268.2 ms from the published state (ohara_rudy.py)
    one = simulate("ord", pulse(80.0, 0.5), t_end=1000.0, n_points=2001)
    np.testing.assert_array_equal(res.end_states[0], one.states[0, :, -1])
    np.testing.assert_array_equal(res.last.states[0, :, 0], res.end_states[0])
    assert res.last.t[-1] == 1000.0


def test_beat_by_beat_is_one_long_window():
    # The solver steps onto every stimulus edge; restarting at the beat boundary (not an edge)
    # changes the step sequence only within the tolerance.
    res = pace("hh", amplitude=10.0, duration=1.0, period=25.0, n_beats=4, n_points=251, rtol=1e-8)
    long = simulate("hh", pulse(10.0, 1.0, period=25.0, n_beats=4), t_end=100.0, n_points=1001, rtol=1e-8)
    np.testing.assert_allclose(res.final_state, long.states[0, :, -1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(period=0.0), "period must be a finite number > 0"),
    (dict(n_beats=0), "n_beats must be a whole number >= 1"),
    (dict(duration=30.0), "must fit in the period"),
])
def test_bad_pacing_is_refused(kwargs, match):
    args = dict(amplitude=10.0, duration=1.0, period=25.0, n_beats=2) | kwargs
    with pytest.raises(ValueError, match=match):
        pace("hh", **args)
