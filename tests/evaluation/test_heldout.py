"""The held-out out-of-distribution benchmark and the S1-S2 restitution curve (ionfno.evaluation.heldout)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionfno.cli import main
from ionfno.data.mixtures import sample_parameters
from ionfno.evaluation import heldout as H
from ionfno.stimulus import Pulses, pulse


@pytest.mark.parametrize("model", ["fhn", "hh", "ord"])
def test_heldout_mixture_has_every_kind_with_its_own_protocol(model):
    mix = H.heldout_mixture(model, n_per_kind=5)
    assert mix.part_names == list(H.HELDOUT_KINDS)
    assert all(p.counts == {"train": 0, "val": 0, "test": 5} for p in mix.parts)
    p = sample_parameters(mix, seed=H.HELDOUT_SEED, split="test", t_end=mix.t_end)
    by = {k: p["part"] == k for k in H.HELDOUT_KINDS}
    assert all(m.sum() == 5 for m in by.values())
    assert np.all(p["n_pulses"][by["two_pulses"]] == 2)
    assert np.all(p["protocol"][by["noise"]] == "waveform")
    assert np.all(p["onset"][by["onset_shift"]] > 0)  # every shifted pulse starts after t = 0
    # the pacing halves split the train part's periods: slow beats are further apart
    gap = lambda m: np.diff(p["pulse_onset"][m][:, :2], axis=1).ravel()  # noqa: E731
    assert gap(by["pacing_slow"]).min() >= gap(by["pacing_fast"]).max() - 1e-9
    # fixed seed: the same draws every time, others with another seed
    again = sample_parameters(mix, seed=H.HELDOUT_SEED, split="test", t_end=mix.t_end)
    np.testing.assert_array_equal(again["pulse_onset"], p["pulse_onset"])
    other = sample_parameters(mix, seed=1, split="test", t_end=mix.t_end)
    assert not np.array_equal(other["pulse_amplitude"], p["pulse_amplitude"])


def test_unknown_model_and_kind_are_refused():
    with pytest.raises(ValueError, match="models with one"):
        H.heldout_mixture("nosuch")
    with pytest.raises(ValueError, match="n_per_kind"):
        H.heldout_mixture("hh", 0)


def test_beats_are_cut_at_the_pulse_onsets():
    t = np.linspace(0.0, 100.0, 2001)
    v = np.full_like(t, -80.0)
    v[(t >= 10) & (t < 40)] = 20.0  # beat 1: an AP of 30 ms
    v[(t >= 60) & (t < 75)] = 20.0  # beat 2: 15 ms
    bm = H.beat_biomarkers(v, t, np.array([8.0, 55.0]), threshold=0.0)
    assert bm.fires.tolist() == [True, True]
    np.testing.assert_allclose(bm.apd90, [30.0, 15.0], atol=0.1)
    # an onset between grid points with an upstroke within one step: the beat's rest is the
    # point before the onset, not the first point after it (already depolarised)
    t1 = np.arange(0.0, 101.0)
    v1 = np.full_like(t1, -80.0)
    v1[51:71] = 20.0
    bm = H.beat_biomarkers(v1, t1, np.array([0.0, 50.5]), threshold=0.0)
    assert bm.v_rest.tolist() == [-80.0, -80.0]
    assert bm.apd90[1] == pytest.approx(20.0, abs=1.0)
    # onsets of a train and of padded Pulses
    st = Pulses(np.array([[1.0, 2.0, 0.0]]), np.array([[1.0, 1.0, 0.0]]), np.array([[50.0, 5.0, 0.0]]))
    assert H.beat_onsets(st, 100.0)[0].tolist() == [5.0, 50.0]
    train = pulse(1.0, 1.0, 2.0, period=30.0, n_beats=5)
    assert H.beat_onsets(train, 100.0)[0].tolist() == [2.0, 32.0, 62.0, 92.0]


@pytest.fixture(scope="module")
def ord_surrogate():
    from ionfno.surrogate import Surrogate

    return Surrogate.load("ord")


def test_a_perfect_surrogate_scores_zero_and_an_offset_one_its_size(ord_surrogate, monkeypatch):
    truth = {}

    def fake_predict(sur, st):  # the solver's own trajectories, on the surrogate's grid
        y, _ = H._truth(sur, st, {"method": "fast", "rtol": 5e-5})
        return y + truth.get("offset", 0.0) * (np.arange(y.shape[1]) == 0)[None, :, None]

    monkeypatch.setattr(H, "_predict", fake_predict)
    kinds = ["onset_shift", "pacing_fast"]
    r = H.evaluate_heldout(ord_surrogate, n_per_kind=2, kinds=kinds)
    for k in kinds:
        c = r["cases"][k]
        assert c["n"] == 2 and c["rel_l2"] < 1e-9 and c["rmse_V"] < 1e-9
        assert c["beat_fire_agreement"] == 1.0 and c["apd90_mae"] < 1e-9
    assert r["cases"]["pacing_fast"]["n_beats"] >= 4
    truth["offset"] = 5.0  # 5 mV on V only
    r = H.evaluate_heldout(ord_surrogate, n_per_kind=2, kinds=["onset_shift"])
    assert r["cases"]["onset_shift"]["rmse_V"] == pytest.approx(5.0, rel=1e-6)
    c = r["cases"]["onset_shift"]  # two samples: their median is their mean, the worst above it
    assert c["rel_l2_median"] == pytest.approx(c["rel_l2"], rel=1e-12) and c["rel_l2_max"] >= c["rel_l2"] > 0
    # given statistics (what `ionfno evaluate` recomputes from the data) replace the surrogate's:
    # its own give the same score, a shifted mean another one (the metric is relative to it)
    mean, std = ord_surrogate.output_statistics()
    same = H.evaluate_heldout(ord_surrogate, n_per_kind=2, kinds=["onset_shift"], statistics=(mean, std))
    assert same["cases"]["onset_shift"]["rel_l2"] == r["cases"]["onset_shift"]["rel_l2"]
    moved = H.evaluate_heldout(ord_surrogate, n_per_kind=2, kinds=["onset_shift"],
                               statistics=(mean + 3.0 * std, std))
    assert moved["cases"]["onset_shift"]["rel_l2"] < r["cases"]["onset_shift"]["rel_l2"]
    with pytest.raises(ValueError, match="Unknown held-out kind"):
        H.evaluate_heldout(ord_surrogate, kinds=["bogus"])

    rc = H.restitution_curve(ord_surrogate, n=9)
    assert rc["apd90_mae"] < 1e-9 and rc["fire_agreement"] == 1.0
    # ORd restitution (physiology): the S2 action potential lengthens with the coupling interval
    apd = rc["apd90_true"]
    assert np.all(np.isfinite(apd)) and np.all(np.diff(apd) > 0)
    assert apd[0] < 0.6 * apd[-1] and rc["coupling"][-1] + apd[-1] < 1000.0


def test_cli_heldout_writes_tables_and_figures(tmp_path, capsys):
    out = tmp_path / "ho"
    assert main(["heldout", "ord", "study=ord", "--out", str(out), "--n-per-kind", "1",
                 "--restitution-points", "3"]) == 0
    printed = capsys.readouterr().out
    assert "| study |" in printed and "restitution" in printed
    res = json.loads((out / "heldout.json").read_text())
    assert set(res["surrogates"]) == {"ord", "study"}
    assert set(res["surrogates"]["ord"]["cases"]) == set(H.HELDOUT_KINDS)
    # the same fixed-seed inputs for both: identical scores for the same weights
    assert res["surrogates"]["ord"]["cases"] == res["surrogates"]["study"]["cases"]
    for f in ("heldout.csv", "heldout-ord.png", "heldout-study.png", "restitution.png"):
        assert (out / f).stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ord", "--n-per-kind", "0"], "--n-per-kind must be >= 1"),
        (["a=ord", "a=ord"], "share a label"),
    ],
)
def test_cli_heldout_bad_input(tmp_path, capsys, argv, message):
    assert main(["heldout", *argv, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_heldout_refuses_a_surrogate_without_pointwise_statistics(tmp_path, capsys, monkeypatch):
    from ionfno.surrogate import Surrogate

    monkeypatch.setattr(Surrogate, "output_statistics", lambda self: None)
    assert main(["heldout", "study=ord", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "'study'" in err and "point-wise normaliser" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="point-wise normaliser"):
        H.study_statistics(Surrogate.load("ord"))
