"""Surrogate round trip, grid rules, and the `ionfno train` / `ionfno predict` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ionfno.cli import main
from ionfno.data.dataset import read_split_tensors
from ionfno.surrogate import GridError, Surrogate
from ionfno.training import CheckpointError, apply_overrides, load_preset, train
from ionfno.training.losses import relative_lp

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def run_dir(synthetic_h5, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pointwise"
    cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=8"])
    train(cfg, synthetic_h5, out, device="cpu", progress=False)
    return out


def test_surrogate_reproduces_the_training_metric_in_physical_units(run_dir, synthetic_h5):
    sur = Surrogate.load(run_dir)
    assert sur.state_names == ["V", "w"] and sur.units == {"V": "1", "w": "1"}
    assert sur.model_name == "fhn" and sur.t_end == 100.0
    test = read_split_tensors(synthetic_h5, "test", subsample=2)
    np.testing.assert_allclose(sur.t, test.t.numpy(), rtol=0, atol=1e-12)

    y = sur.predict_array(test.i_app.numpy())  # (n, 2, N) physical
    assert y.shape == tuple(test.states.shape) and y.dtype == np.float64
    named = sur.predict(test.i_app.numpy())
    np.testing.assert_array_equal(named["V"], y[:, 0])
    np.testing.assert_array_equal(named["w"], y[:, 1])

    # Re-encoding the physical prediction gives back the test error recorded at training time.
    norm = sur._out_norm
    err = relative_lp(norm.encode(torch.as_tensor(y, dtype=torch.float32)), norm.encode(test.states), 2)
    recorded = json.loads((run_dir / "test_metrics.json").read_text())["best"]["rel_l2"]
    assert float(err) == pytest.approx(recorded, rel=1e-4)

    # Batches are independent: one sample alone gives the same answer.
    np.testing.assert_allclose(sur.predict_array(test.i_app.numpy()[3])[0], y[3], rtol=1e-5, atol=1e-6)


def test_surrogate_pulse_input_follows_the_study_convention(run_dir):
    sur = Surrogate.load(run_dir)
    i_app = sur.pulse_input([0.5, 1.5], [0.0, 10.0])
    assert i_app.shape == (2, sur.t.shape[0])
    assert i_app[0, 0] == 0.5 and np.all(i_app[0, 1:] == 0)  # T_stim = 0 still samples I(0) = A
    on = sur.t <= 10.0
    assert np.all(i_app[1, on] == 1.5) and np.all(i_app[1, ~on] == 0)


def test_pointwise_surrogate_refuses_another_grid(run_dir):
    sur = Surrogate.load(run_dir)
    N = sur.t.shape[0]
    with pytest.raises(GridError, match=f"training grid of {N} points"):
        sur.predict(np.zeros((1, 2 * N)))
    with pytest.raises(GridError, match="window"):
        sur.grid(t_end=50.0)
    assert sur.grid(t_end=100.0).shape == (N,)


def test_channel_normalised_surrogate_predicts_on_a_finer_grid(synthetic_h5, tmp_path):
    cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=4", "normalization=channel"])
    train(cfg, synthetic_h5, tmp_path / "run", device="cpu", progress=False)
    sur = Surrogate.load(tmp_path / "run", which="last")
    fine = sur.grid(n_points=256)
    y = sur.predict_array(sur.pulse_input(1.0, 20.0, n_points=256))
    assert y.shape == (1, 2, 256) and np.all(np.isfinite(y))
    np.testing.assert_allclose(fine, np.linspace(0, 100, 256))


def test_surrogate_load_errors(tmp_path, run_dir):
    with pytest.raises(FileNotFoundError, match="No run folder"):
        Surrogate.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no best.pt"):
        Surrogate.load(tmp_path / "empty")
    (tmp_path / "x.pt").write_bytes(b"12345")
    with pytest.raises(CheckpointError):
        Surrogate.load(tmp_path / "x.pt")
    assert Surrogate.load(run_dir / "last.pt").epoch == 8


def test_predict_cli_writes_the_simulate_layout(run_dir, tmp_path):
    out = tmp_path / "pred.npz"
    rc = main(["predict", str(run_dir), "--amplitude", "1.2", "--duration", "10", "--out", str(out)])
    assert rc == 0
    with np.load(out) as f:
        d = {k: f[k] for k in f.files}
    N = Surrogate.load(run_dir).t.shape[0]
    assert d["t"].shape == (N,) and d["states"].shape == (N, 2) and d["i_app"].shape == (N,)
    assert list(d["state_names"]) == ["V", "w"] and str(d["model"]) == "fhn"
    assert d["i_app"][0] == 1.2 and np.all(d["i_app"][d["t"] > 10] == 0)
    expected = Surrogate.load(run_dir).predict_array(d["i_app"])[0].T
    np.testing.assert_allclose(d["states"], expected, rtol=1e-6)


def test_predict_cli_errors_exit_2(run_dir, tmp_path, capsys):
    rc = main(
        [
            "predict",
            str(run_dir),
            "--amplitude",
            "1",
            "--duration",
            "5",
            "--n-points",
            "999",
            "--out",
            str(tmp_path / "p.npz"),
        ]
    )
    assert rc == 2 and "point-wise normaliser" in capsys.readouterr().err
    assert not (tmp_path / "p.npz").exists()
    rc = main(
        [
            "predict",
            str(tmp_path / "nope"),
            "--amplitude",
            "1",
            "--duration",
            "5",
            "--out",
            str(tmp_path / "p.npz"),
        ]
    )
    assert rc == 2


def test_train_cli(synthetic_h5, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(
        [
            "train",
            str(synthetic_h5),
            "--preset",
            "tiny",
            "--set",
            "epochs=2",
            "--threads",
            "1",
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "2 epochs" in text and "test (best" in text
    assert (out / "best.pt").exists() and (out / "metrics.csv").exists()

    rc = main(["train", str(synthetic_h5), "--preset", "tiny", "--set", "epoks=2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "Unknown config key 'epoks'" in err and "train.epochs" in err
    rc = main(["train", str(tmp_path / "missing.h5"), "--preset", "tiny", "--out", str(out)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = main(["train", str(synthetic_h5), "--preset", "nope", "--out", str(out)])
    assert rc == 2 and "fhn-quick" in capsys.readouterr().err
    assert main(["train", str(synthetic_h5), "--list-presets"]) == 0
    assert "fhn-constrained" in capsys.readouterr().out


def test_cell_average_input_runs_end_to_end(synthetic_h5, tmp_path):
    # A run trained on cell-averaged currents: the surrogate encodes protocols the same way,
    # reproduces the training loop's test metric, and `evaluate` feeds it the same inputs.
    from ionfno.data.encoding import cell_averages, stimulus_from_arrays
    from ionfno.data.storage import read_split
    from ionfno.evaluation.pipeline import EvaluateOptions, evaluate_run
    from ionfno.stimulus import pulse

    out = tmp_path / "cell"
    cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=3", "data.input_encoding=cell_average"])
    train(cfg, synthetic_h5, out, device="cpu", progress=False)
    sur = Surrogate.load(out)
    assert sur.input_encoding == "cell_average"
    np.testing.assert_allclose(sur.pulse_input([0.7], [0.0]), 0.0)  # no charge, no input
    np.testing.assert_array_equal(sur.pulse_input([0.7], [12.3]), cell_averages(pulse(0.7, 12.3), sur.t, sur.t_end))

    test = read_split_tensors(synthetic_h5, "test", subsample=2, input_encoding="cell_average")
    arrays = read_split(synthetic_h5, "test")
    enc = sur.encode(stimulus_from_arrays(arrays["amplitude"], arrays["duration"], arrays["onset"]))
    np.testing.assert_allclose(enc, test.i_app.numpy(), rtol=1e-6, atol=1e-6)
    y = sur.predict_array(enc)
    norm = sur._out_norm
    err = relative_lp(norm.encode(torch.as_tensor(y, dtype=torch.float32)), norm.encode(test.states), 2)
    recorded = json.loads((out / "test_metrics.json").read_text())["best"]["rel_l2"]
    assert float(err) == pytest.approx(recorded, rel=1e-4)

    opts = EvaluateOptions(speed_samples=2, reference_samples=0, ood_per_kind=1, n_worst=2)
    res = evaluate_run(out, synthetic_h5, None, opts)
    assert res.rel_l2 == pytest.approx(recorded, rel=1e-4)


def test_evaluate_feeds_the_stored_protocols_of_a_general_dataset(tmp_path):
    # A general mixture's test split holds pulse trains, S1-S2 pairs and random currents: the
    # evaluation must feed the surrogate those protocols (it once rebuilt single pulses from the
    # first pulse's amplitude, duration and onset), so its metric is the training loop's.
    from ionfno.cli import main
    from ionfno.evaluation.pipeline import EvaluateOptions, evaluate_run

    data = tmp_path / "gen.h5"
    assert main(["generate", "fhn", "--mixture", "fhn-general", "--n-train", "48", "--n-val", "12", "--n-test", "24",
                 "--n-points", "256", "--out", str(data), "--no-progress"]) == 0
    out = tmp_path / "run"
    cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=3", "data.input_encoding=cell_average",
                                                "data.input_normalization=channel"])
    train(cfg, data, out, device="cpu", progress=False)
    recorded = json.loads((out / "test_metrics.json").read_text())["best"]["rel_l2"]
    res = evaluate_run(out, data, None, EvaluateOptions(speed_samples=0, reference_samples=0, ood_per_kind=0))
    parts = set(res.metrics) - {"all"}
    assert {"train", "s1s2", "noise"} <= parts
    assert res.rel_l2 == pytest.approx(recorded, rel=1e-4)


def test_without_the_time_channel_a_surrogate_is_shift_equivariant(synthetic_h5, tmp_path):
    # model.time_channel = False with channel normalisers and no padding: a current shifted
    # (circularly) in time gives the same states shifted; the study's grid channel breaks this.
    def run(name, *sets):
        cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=2", "normalization=channel", *sets])
        train(cfg, synthetic_h5, tmp_path / name, device="cpu", progress=False)
        return Surrogate.load(tmp_path / name, which="last")

    free, timed = run("free", "time_channel=false"), run("timed")
    # One input weight fewer in the lifting layer (the t / T column), nothing else.
    n = {k: sum(p.numel() for p in s._model.parameters()) for k, s in (("free", free), ("timed", timed))}
    assert n["timed"] - n["free"] == load_preset("tiny").model.lifting_channels
    i_app = read_split_tensors(synthetic_h5, "test", subsample=2).i_app.numpy()[:4]
    for sur, equivariant in ((free, True), (timed, False)):
        y, y_shifted = sur.predict_array(i_app), sur.predict_array(np.roll(i_app, 17, axis=-1))
        gap = np.max(np.abs(np.roll(y, 17, axis=-1) - y_shifted)) / np.max(np.abs(y))
        assert (gap < 1e-5) if equivariant else (gap > 1e-3), (equivariant, gap)
    # The run folder round-trips through the safe loader with the flag.
    assert Surrogate.load(tmp_path / "free").config.model.time_channel is False
    # Held-out scores need point-wise statistics: a channel-normalised surrogate is scored in
    # those of a dataset's training split (--statistics), and refused without them.
    out = tmp_path / "ho"
    argv = ["heldout", f"free={tmp_path / 'free'}", "--out", str(out), "--n-per-kind", "1",
            "--restitution-points", "0", "--checkpoint", "last"]
    assert main(argv) == 2 and not out.exists()
    assert main([*argv, "--statistics", str(tmp_path / "none.h5")]) == 2 and not out.exists()
    assert main([*argv, "--statistics", str(synthetic_h5)]) == 0
    res = json.loads((out / "heldout.json").read_text())["surrogates"]["free"]
    assert res["statistics"] == str(synthetic_h5) and all(np.isfinite(c["rel_l2"]) for c in res["cases"].values())


def test_a_chunked_rollout_surrogate_trains_starts_at_rest_and_is_causal(synthetic_h5, tmp_path):
    # model.chunk > 0: one FNO stepped through the window (ionfno.fno.ChunkedRollout), trained
    # through the rollout with the study's loss; scored by the held-out benchmark in its own
    # point-wise statistics (its start is exact, so the study metric is defined at t = 0).
    cfg = apply_overrides(load_preset("tiny"),
                          ["threads=1", "epochs=3", "input_normalization=channel", "chunk=16"])
    res = train(cfg, synthetic_h5, tmp_path / "roll", device="cpu", progress=False)
    assert np.isfinite(res.history[-1]["train_loss"])
    sur = Surrogate.load(tmp_path / "roll", which="last")
    assert sur.config.model.chunk == 16
    i_app = read_split_tensors(synthetic_h5, "test", subsample=2).i_app.numpy()[:3]
    y = sur.predict_array(i_app)
    assert y.shape == (3, 2, 128) and np.all(y[:, :, 0] == 0.0)  # every synthetic sample starts at 0
    late = i_app.copy()
    late[:, 33:] = 0.5  # changes the current from the third step on: two steps (32 intervals) stay
    y2 = sur.predict_array(late)
    assert np.array_equal(y[:, :, :33], y2[:, :, :33]) and not np.allclose(y[:, :, 33:], y2[:, :, 33:])
    out = tmp_path / "ho"
    assert main(["heldout", f"roll={tmp_path / 'roll'}", "--out", str(out), "--n-per-kind", "1",
                 "--restitution-points", "0", "--checkpoint", "last"]) == 0
    cases = json.loads((out / "heldout.json").read_text())["surrogates"]["roll"]["cases"]
    assert all(np.isfinite(c["rel_l2"]) for c in cases.values())


def test_init_starts_a_run_from_another_runs_weights(run_dir, synthetic_h5, tmp_path, capsys):
    # --init: the weights of a finished run (its last.pt) instead of a random start, recorded in
    # the new run's checkpoints; an architecture that does not fit or a missing source is refused
    # before anything is written.
    from ionfno.training.checkpoint import load_checkpoint

    base = ["train", str(synthetic_h5), "--preset", "tiny", "--set", "threads=1", "--no-progress"]
    assert main([*base, "--set", "epochs=1", "--set", "lr=1e-9", "--init", str(run_dir),
                 "--out", str(tmp_path / "warm")]) == 0
    assert main([*base, "--set", "epochs=1", "--set", "lr=1e-9", "--out", str(tmp_path / "cold")]) == 0
    ck = load_checkpoint(tmp_path / "warm" / "last.pt", map_location="cpu")
    assert ck["data_info"]["init"] == {"source": str(run_dir / "last.pt"), "epoch": 8}
    start = load_checkpoint(run_dir / "last.pt", map_location="cpu")["model"]
    cold = load_checkpoint(tmp_path / "cold" / "last.pt", map_location="cpu")["model"]
    # At a learning rate of 1e-9 the weights stay where they started: the init run's, not the seed's.
    assert all(torch.allclose(ck["model"][k], start[k], atol=1e-6) for k in start)
    assert not all(torch.allclose(cold[k], start[k], atol=1e-6) for k in start)
    capsys.readouterr()
    assert main([*base, "--set", "hidden_channels=16", "--init", str(run_dir), "--out", str(tmp_path / "bad")]) == 2
    assert "its model does not fit this config" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*base, "--init", str(tmp_path / "nothing"), "--out", str(tmp_path / "none")]) == 2
    assert "init: No run folder, checkpoint or pretrained surrogate" in capsys.readouterr().err and not (tmp_path / "none").exists()
