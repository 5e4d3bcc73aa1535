"""The surrogate says when it extrapolates: a warning naming the trained range, or an error."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")

from ionfno.cli import main  # noqa: E402
from ionfno.stimulus import pulse  # noqa: E402
from ionfno.surrogate import ExtrapolationError, ExtrapolationWarning, Surrogate  # noqa: E402
from tests.training.conftest import write_synthetic  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run on synthetic pulses: amplitude in [0.1, 2], duration in [0, 100], onset 0."""
    from ionfno.training import apply_overrides, load_preset, train

    d = tmp_path_factory.mktemp("range")
    data = write_synthetic(d / "data.h5")
    cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=1"])
    train(cfg, data, d / "run", device="cpu", progress=False)
    return d / "run", data


def test_the_range_comes_from_the_training_split(run):
    from ionfno.data.storage import read_split

    sur = Surrogate.load(run[0])
    a = read_split(run[1], "train")
    rng = sur.training_range
    assert rng["amplitude"] == [a["amplitude"].min(), a["amplitude"].max()]
    assert rng["duration"] == [0.0, a["duration"].max()] and rng["onset"] == [0.0, 0.0]
    assert rng["n_pulses"] == [1, 1] and rng["source"] == str(run[1])


def test_inside_the_range_is_silent(run):
    sur = Surrogate.load(run[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        sur.predict(sur.pulse_input([0.2, 1.9], [0.0, 99.0]))
        sur.predict(sur.pulse_input(2.0, 100.0))  # the edges of the draws, within the margin


@pytest.mark.parametrize(
    "amplitude, duration, onset, beats, message",
    [
        (1e30, 5.0, 0.0, 1, r"applied current up to 1e\+30 \(trained \[0, 1\.9"),
        (1.0, 5.0, 20.0, 1, r"onset up to 20 ms \(trained \[0, 0 ms\]|onset up to 20 ms \(trained 0 ms\)"),
        (1.0, 5.0, 0.0, 3, r"n pulses up to 3 \(trained 1\)"),
    ],
    ids=["huge", "onset", "train"],
)
def test_outside_warns_with_the_trained_range_and_strict_refuses(
    run, amplitude, duration, onset, beats, message
):
    sur = Surrogate.load(run[0])
    stim = pulse(amplitude, duration, onset, period=30.0 if beats > 1 else np.inf, n_beats=beats)
    with pytest.warns(ExtrapolationWarning, match=message) as rec:
        y = sur.predict_array(sur.encode(stim))
    assert "Trained on amplitude [0.1" in str(rec[0].message) and "extrapolation" in str(rec[0].message)
    assert y.shape[0] == 1
    with pytest.raises(ExtrapolationError, match=message):
        sur.predict_array(sur.encode(stim, strict=True), strict=True)
    sur.strict = True
    with pytest.raises(ExtrapolationError, match=message):
        sur.predict_array(sur.encode(stim))


def test_a_raw_current_array_is_checked_too(run):
    sur = Surrogate.load(run[0])
    with pytest.warns(ExtrapolationWarning, match=r"applied current down to -1"):
        sur.predict_array(-np.ones(sur.t.shape[0]))


def test_predict_cli_warns_or_refuses(run, tmp_path, capsys):
    out = tmp_path / "p.npz"
    base = ["predict", str(run[0]), "--amplitude", "1e30", "--duration", "5", "--out", str(out)]
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "ionfno predict: warning: Input outside the range" in err and "--strict refuses it" in err
    assert out.exists()
    out.unlink()
    assert main([*base, "--strict"]) == 2
    err = capsys.readouterr().err
    assert "error: Input outside the range" in err and "Trained on amplitude" in err and not out.exists()


def test_range_recorded_in_the_checkpoint_wins_and_an_unknown_range_only_fails_strict(run, tmp_path):
    from ionfno.training.checkpoint import load_checkpoint

    ck = load_checkpoint(run[0] / "best.pt")
    recorded = {"amplitude": [0, 50], "duration": [0, 100], "onset": [0, 0], "n_pulses": [1, 1]}
    ck["data_info"] = dict(ck["data_info"], trained_range=recorded)
    sur = Surrogate(ck)
    assert sur.training_range["source"] == "the checkpoint"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        sur.predict(sur.pulse_input(40.0, 5.0))
    # the dataset is gone and nothing records the range: no warning possible; strict says why
    moved = tmp_path / "run"
    shutil.copytree(run[0], moved)
    ck = load_checkpoint(moved / "best.pt")
    ck["data_info"] = dict(ck["data_info"], dataset=str(tmp_path / "gone.h5"))
    sur = Surrogate(ck)
    assert sur.training_range is None
    sur.predict(sur.pulse_input(1e30, 5.0))
    with pytest.raises(ExtrapolationError, match="unknown"):
        sur.predict(sur.pulse_input(1.0, 5.0), strict=True)
