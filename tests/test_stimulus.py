import numpy as np
import pytest

from ionfno.stimulus import PulseTrain, SampledWaveform, pulse


def test_pulse_current_uses_the_piece_named_by_within():
    s = pulse([2.0, 3.0], [1.5, 0.0])
    t = np.array([1.5, 1.5])
    # At the edge t = 1.5 the value depends on the step it belongs to.
    np.testing.assert_array_equal(s.current(t, within=np.array([1.4, 1.4])), [2.0, 0.0])
    np.testing.assert_array_equal(s.current(t, within=np.array([1.6, 1.6])), [0.0, 0.0])
    # Right-continuous by default.
    np.testing.assert_array_equal(s.current(np.array([0.0, 0.0])), [2.0, 0.0])


def test_jump_times_padded_sorted_and_inside_window():
    s = pulse([1.0, 1.0, 1.0], [2.0, 0.0, 50.0], onset=[0.0, 5.0, 3.0])
    e = s.jump_times(t_end=40.0)
    assert e.shape == (3, 2)
    np.testing.assert_array_equal(e[0], [2.0, np.inf])  # onset 0 is not inside (0, T)
    np.testing.assert_array_equal(e[1], [np.inf, np.inf])  # zero duration: no current at all
    np.testing.assert_array_equal(e[2], [3.0, np.inf])  # end 53 is past T


def test_train_edges_and_current():
    s = pulse(1.0, 2.0, onset=10.0, period=100.0, n_beats=3)
    np.testing.assert_array_equal(s.jump_times(1000.0)[0], [10, 12, 110, 112, 210, 212])
    t = np.array([5.0, 11.0, 50.0, 111.0, 211.9, 311.0])
    got = [s.current(np.array([ti]))[0] for ti in t]
    np.testing.assert_array_equal(got, [0, 1, 0, 1, 1, 0])


def test_sample_follows_study_convention_closed_interval():
    t = np.linspace(0.0, 10.0, 11)
    x = pulse([5.0, 5.0], [0.0, 3.0]).sample(t)
    np.testing.assert_array_equal(x[0], [5] + [0] * 10)  # I_app(0) = A even for T_stim = 0
    np.testing.assert_array_equal(x[1], [5, 5, 5, 5] + [0] * 7)  # t <= T_stim is on


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(amplitude=-1.0, duration=1.0), "amplitude must be >= 0"),
        (dict(amplitude=np.nan, duration=1.0), "amplitude must be finite"),
        (dict(amplitude=1.0, duration=-2.0), "duration must be >= 0"),
        (dict(amplitude=1.0, duration=np.inf), "duration must be finite"),
        (dict(amplitude=1.0, duration=1.0, n_beats=0), "n_beats must be >= 1"),
        (dict(amplitude=1.0, duration=5.0, period=2.0, n_beats=2), "duration must not exceed period"),
        (dict(amplitude=1.0, duration=1.0, n_beats=2), "period must be finite"),
    ],
    ids=["negative-A", "nan-A", "negative-T", "inf-T", "zero-beats", "T>period", "no-period"],
)
def test_invalid_pulses_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pulse(**kwargs)


def test_select_keeps_rows():
    s = pulse([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    sub = s.select(np.array([2, 0]))
    assert isinstance(sub, PulseTrain)
    np.testing.assert_array_equal(sub.amplitude, [3.0, 1.0])
    np.testing.assert_array_equal(sub.duration, [3.0, 1.0])


def test_sampled_waveform_linear_matches_interp_and_declares_kinks():
    tg = np.array([0.0, 1.0, 3.0, 4.0])
    vals = np.array([[0.0, 2.0, -2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    w = SampledWaveform(tg, vals)
    tq = np.array([0.5, 2.0, 3.5])
    for ti in tq:
        np.testing.assert_allclose(w.current(np.array([ti, ti])), [np.interp(ti, tg, vals[0]), 1.0])
    np.testing.assert_array_equal(w.jump_times(3.5)[0], [1.0, 3.0])
    np.testing.assert_allclose(w.sample(tq)[0], np.interp(tq, tg, vals[0]))


def test_sampled_waveform_hold_jumps_at_samples():
    w = SampledWaveform(np.array([0.0, 1.0, 2.0]), np.array([[1.0, 5.0, 7.0]]), kind="hold")
    np.testing.assert_array_equal(w.current(np.array([1.0]), within=np.array([0.9])), [1.0])
    np.testing.assert_array_equal(w.current(np.array([1.0]), within=np.array([1.1])), [5.0])
    np.testing.assert_array_equal(w.sample(np.array([0.5, 1.0, 2.5])), [[1.0, 5.0, 7.0]])


def test_sampled_waveform_rejects_bad_input():
    with pytest.raises(ValueError, match="strictly increasing"):
        SampledWaveform(np.array([0.0, 0.0, 1.0]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="Unknown waveform kind"):
        SampledWaveform(np.array([0.0, 1.0]), np.zeros((1, 2)), kind="cubic")
