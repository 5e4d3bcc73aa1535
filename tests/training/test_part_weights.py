"""``train.part_weights``: drawing a mixture's parts more or less often than the others.

The draws are checked against the weights they come from, the setting through the config's
parsers, and a weighted run through the loop: it changes the run, resumes exactly and runs on two
ranks as in one process.
"""

from __future__ import annotations

import os

import pytest
import torch

from ionfno.training import (
    apply_overrides,
    config_diff,
    config_from_dict,
    load_config,
    load_preset,
    save_config,
    train,
)
from ionfno.training.data import part_sampling_weights, prepare
from ionfno.training.steps import _shares

from ._helpers import StopTraining, stop_at, strip_times

pytestmark = pytest.mark.timeout(300)


def tiny(*overrides):
    return apply_overrides(load_preset("tiny"), ["threads=1", "checkpoint_every=1", *overrides])


# ---------------------------------------------------------------------------- the setting
def test_part_weights_parse_from_the_command_line_and_json():
    cfg = tiny("train.part_weights=t0=3,general=0.5")
    assert cfg.train.part_weights == {"t0": 3.0, "general": 0.5}
    assert tiny("part_weights=t0=3", "part_weights=").train.part_weights == {}  # the last wins
    assert load_preset("tiny").train.part_weights == {}  # the default: every sample once
    d = {"train": {"part_weights": {"t0": 2}}}  # JSON writes 2 for 2.0
    got = config_from_dict(d).train.part_weights
    assert got == {"t0": 2.0} and isinstance(got["t0"], float)
    # The setting changes results: a resumed run or a tuning study tells it apart.
    assert config_diff(tiny(), cfg) == ["train.part_weights: {} -> {'t0': 3.0, 'general': 0.5}"]


def test_part_weights_survive_a_config_file(tmp_path):
    cfg = tiny("part_weights=t0=4")
    save_config(cfg, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == cfg


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("t0", "name=number"),
        ("=3", "name=number"),
        ("t0=x", "must be a number"),
        ("t0=-1", "finite number >= 0"),
        ("t0=inf", "finite number >= 0"),
        ("t0=nan", "finite number >= 0"),
    ],
)
def test_malformed_part_weights_are_refused_with_the_form(text, match):
    with pytest.raises(ValueError, match=match):
        tiny(f"part_weights={text}")


def test_part_weights_of_the_wrong_type_in_json_are_refused():
    with pytest.raises(ValueError, match="mapping of names to numbers"):
        config_from_dict({"train": {"part_weights": [1, 2]}})
    with pytest.raises(ValueError, match="map names to numbers"):
        config_from_dict({"train": {"part_weights": {"t0": "3"}}})


# ---------------------------------------------------------------------------- the draws
def test_sample_weights_follow_the_parts_and_refuse_unknown_ones():
    w = part_sampling_weights(["a", "b", "a", "c"], {"a": 3.0, "c": 0.0})
    torch.testing.assert_close(w, torch.tensor([3.0, 1.0, 3.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\['z'\].*lacks; its parts: \['a', 'b'\]"):
        part_sampling_weights(["a", "b"], {"z": 2.0})
    with pytest.raises(ValueError, match="no training sample"):
        part_sampling_weights(["a", "a"], {"a": 0.0})


def test_an_epoch_draws_each_part_in_proportion_to_its_weight():
    # 60 samples of part "a" (weight 3), 60 of "b" (weight 1), 30 of "c" (weight 0): over many
    # epochs "a" takes 3/4 of the draws, "c" none, and an epoch is still one draw per sample.
    parts = ["a"] * 60 + ["b"] * 60 + ["c"] * 30
    weights = part_sampling_weights(parts, {"a": 3.0, "c": 0.0})
    n = len(parts)
    x = torch.arange(n, dtype=torch.float32)[:, None, None]  # sample i holds i
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(n)
    for _ in range(200):
        drawn = torch.cat([xb.flatten() for xb, _, _ in _shares(x, x, 16, gen, 0, 1, weights)]).long()
        assert drawn.numel() == n
        counts += torch.bincount(drawn, minlength=n)
    share_a = counts[:60].sum() / counts.sum()
    assert share_a == pytest.approx(0.75, abs=0.01)  # binomial sd over 30000 draws: 0.0025
    assert counts[120:].sum() == 0
    # Without weights: a permutation, every sample exactly once per epoch.
    drawn = torch.cat([xb.flatten() for xb, _, _ in _shares(x, x, 16, gen, 0, 1)]).long()
    assert sorted(drawn.tolist()) == list(range(n))


def test_two_ranks_split_the_same_weighted_draws():
    parts = ["a"] * 10 + ["b"] * 10
    weights = part_sampling_weights(parts, {"a": 5.0})
    x = torch.arange(20, dtype=torch.float32)[:, None, None]

    def draws(rank, world_size):
        gen = torch.Generator().manual_seed(1)
        return [b.flatten() for b, _, _ in _shares(x, x, 6, gen, rank, world_size, weights)]

    one = torch.cat(draws(0, 1))
    two = [draws(r, 2) for r in (0, 1)]
    joined = torch.cat([torch.cat(pair) for pair in zip(*two, strict=True)])
    torch.testing.assert_close(joined, one)


# ---------------------------------------------------------------------------- a weighted run
def test_weights_naming_a_missing_part_stop_the_run_before_training(synthetic_h5, tmp_path):
    with pytest.raises(ValueError, match=r"lacks; its parts: \['general', 't0'\]"):
        cfg = tiny("epochs=1", "part_weights=s1s2=2")
        train(cfg, synthetic_h5, tmp_path / "r", device="cpu", progress=False)
    assert not (tmp_path / "r" / "last.pt").exists()


def test_a_streamed_split_refuses_part_weights(synthetic_h5):
    with pytest.raises(ValueError, match="data.loading=memory"):
        prepare(tiny("data.loading=stream", "part_weights=t0=2"), synthetic_h5)


def test_a_weighted_run_differs_and_resumes_exactly(synthetic_h5, tmp_path):
    cfg = tiny("epochs=3", "part_weights=t0=8")
    data = prepare(cfg, synthetic_h5)
    n_t0 = sum(p == "t0" for p in data.train.part)
    assert 0 < n_t0 < len(data.train.part)
    assert data.sample_weights is not None and int((data.sample_weights == 8).sum()) == n_t0

    plain = train(tiny("epochs=3"), synthetic_h5, tmp_path / "plain", device="cpu", progress=False)
    full = train(cfg, synthetic_h5, tmp_path / "full", device="cpu", progress=False)
    assert [r["train_loss"] for r in full.history] != [r["train_loss"] for r in plain.history]
    with pytest.raises(StopTraining):
        train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False, on_epoch=stop_at(1))
    resumed = train(cfg, synthetic_h5, tmp_path / "cut", device="cpu", progress=False)
    assert strip_times(resumed.history) == strip_times(full.history)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPU cores for 2 ranks x 1 thread")
def test_a_weighted_run_on_two_ranks_equals_one_process(synthetic_h5, tmp_path):
    cfg = tiny("epochs=2", "batch_size=7", "part_weights=t0=8")
    one = train(cfg, synthetic_h5, tmp_path / "one", device="cpu", progress=False)
    cfg2 = apply_overrides(cfg, ["workers=2"])
    two = train(cfg2, synthetic_h5, tmp_path / "two", device="cpu", progress=False)
    torch.testing.assert_close(
        torch.tensor([r["train_loss"] for r in two.history]),
        torch.tensor([r["train_loss"] for r in one.history]),
        rtol=1e-4,
        atol=0,
    )
