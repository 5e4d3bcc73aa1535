"""`ionfno predict NAME_OR_RUN` (pulse, train, waveform) and `ionfno compare`: exit codes and outputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ionfno.cli import main
from ionfno.evaluation.compare import biomarkers_of, compare_with_solver
from ionfno.evaluation.metrics import normalise, relative_lp
from ionfno.stimulus import pulse
from ionfno.surrogate import Surrogate

from .conftest import NAME

pytestmark = pytest.mark.timeout(300)


def _npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_predict_by_name_equals_the_library(pretrained_root, tmp_path):
    out = tmp_path / "p.npz"
    assert main(["predict", NAME, "--amplitude", "1.2", "--duration", "10", "--out", str(out)]) == 0
    sur = Surrogate.load(NAME)
    expected = sur.predict_array(sur.encode(pulse(1.2, 10.0)))[0].T
    d = _npz(out)
    np.testing.assert_array_equal(d["states"], expected)
    assert str(d["model"]) == "fhn" and d["i_app"][0] == 1.2


def test_predict_a_waveform_file(pretrained_root, tmp_path):
    t = np.linspace(0.0, 100.0, 41)
    i = 0.8 * np.exp(-t / 15.0)
    np.savetxt(tmp_path / "w.csv", np.c_[t, i], delimiter=",", header="t,i_app", comments="")
    out = tmp_path / "p.npz"
    assert main(["predict", NAME, "--waveform", str(tmp_path / "w.csv"), "--out", str(out)]) == 0
    sur = Surrogate.load(NAME)
    from ionfno.waveform import read_waveform

    expected = sur.predict_array(sur.encode(read_waveform(tmp_path / "w.csv")))[0].T
    d = _npz(out)
    np.testing.assert_array_equal(d["states"], expected)
    np.testing.assert_allclose(d["i_app"], np.interp(sur.t, t, i))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--waveform", "SHORT"], "covers"),
        (["--waveform", "SHORT", "--amplitude", "1"], "--waveform replaces the pulse; drop --amplitude"),
        ([], "give a pulse"),
        (["--amplitude", "1", "--duration", "2", "--beats", "3"], "--beats > 1 needs --period"),
        (["--amplitude", "1", "--duration", "2", "--period", "1", "--beats", "3"], "must not exceed"),
    ],
    ids=["window", "both", "neither", "train-without-period", "bad-train"],
)
def test_predict_bad_inputs_exit_2_with_a_message(pretrained_root, tmp_path, capsys, args, message):
    (tmp_path / "short.csv").write_text("t,i_app\n0,1\n40,0\n")
    args = [str(tmp_path / "short.csv") if a == "SHORT" else a for a in args]
    assert main(["predict", NAME, *args, "--out", str(tmp_path / "p.npz")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.npz").exists()


def test_predict_unknown_name_lists_the_pretrained(pretrained_root, tmp_path, capsys):
    out = str(tmp_path / "p.npz")
    assert main(["predict", "nope", "--amplitude", "1", "--duration", "2", "--out", out]) == 2
    assert re.search(rf"pretrained: \[.*'{NAME}'", capsys.readouterr().err)


def test_predict_a_pulse_train(run_dir, tmp_path):
    out = tmp_path / "p.npz"
    args = ["predict", str(run_dir), "--amplitude", "1", "--duration", "5", "--period", "40", "--beats", "2"]
    assert main([*args, "--out", str(out)]) == 0
    i = _npz(out)["i_app"]
    t = Surrogate.load(run_dir).t
    assert i[np.searchsorted(t, 42.0)] == 1.0 and i[np.searchsorted(t, 20.0)] == 0.0


def test_compare_writes_figure_errors_and_trajectories(pretrained_root, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", NAME, "--amplitude", "1.0", "--duration", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "study metric" in printed and "apd90" in printed
    assert (out / "comparison.png").stat().st_size > 10_000
    summary = json.loads((out / "comparison.json").read_text())
    d = _npz(out / "comparison.npz")
    sur = Surrogate.load(NAME)
    np.testing.assert_array_equal(d["surrogate"], sur.predict_array(sur.encode(pulse(1.0, 20.0)))[0])
    # The numbers are those of the saved trajectories: RMSE per state and the study's metric.
    rmse = np.sqrt(np.mean((d["surrogate"] - d["solver"]) ** 2, axis=-1))
    mean, std = sur.output_statistics()
    rel = relative_lp(normalise(d["surrogate"][None], mean, std), normalise(d["solver"][None], mean, std))[0]
    for c, s in enumerate(["V", "w"]):
        assert summary["errors"][s]["rmse"] == pytest.approx(rmse[c], rel=1e-12)
        assert summary["errors"][s]["rel_l2"] == pytest.approx(rel[c], rel=1e-12)
    assert summary["rel_l2"] == pytest.approx(rel.mean(), rel=1e-12)
    assert summary["biomarkers"]["surrogate"] == biomarkers_of(d["surrogate"][0], d["t"], "fhn")
    assert summary["biomarkers"]["solver"] == biomarkers_of(d["solver"][0], d["t"], "fhn")
    assert set(summary["seconds"]) == {"solver", "surrogate"} and summary["solver_status"] == 0
    assert summary["states_drawn"] == ["V", "w"] and summary["stimulus"]["amplitude"] == [1.0]


def test_compare_a_waveform_and_bad_states(run_dir, tmp_path, capsys):
    (tmp_path / "w.csv").write_text("t,i_app\n0,0.5\n100,0\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(run_dir), "--waveform", str(tmp_path / "w.csv"), "--states", "w",
                 "--out", str(out)]) == 0
    assert json.loads((out / "comparison.json").read_text())["states_drawn"] == ["w"]
    assert main(["compare", str(run_dir), "--amplitude", "1", "--duration", "2", "--states", "V,Ca_i",
                 "--out", str(out)]) == 2
    assert "Unknown state(s) ['Ca_i']" in capsys.readouterr().err


def test_compare_with_solver_needs_one_protocol(run_dir):
    with pytest.raises(ValueError, match="one protocol"):
        compare_with_solver(Surrogate.load(run_dir), pulse([1.0, 2.0], 5.0))


def test_compare_outside_the_trained_range_warns_or_refuses(pretrained_root, tmp_path, capsys):
    args = ["compare", NAME, "--amplitude", "50", "--duration", "5", "--out", str(tmp_path / "cmp")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "ionfno compare: warning: Input outside the range" in err and "amplitude" in err
    assert main([*args, "--strict"]) == 2
    assert "outside the range" in capsys.readouterr().err
