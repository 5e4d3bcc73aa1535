"""Mixtures: the study's compositions, scaling, ranges per part, and the deterministic draw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionfno.data.mixtures import list_mixtures, load_mixture, sample_parameters, scale_counts

# The reference study's table (Pellegrini et al. 2025, arXiv:2505.14039): part -> (A range, T range,
# train, test)
STUDY = {
    "fhn": {
        "t0": ((0.1, 2), (0, 0), 20, 10),
        "general": ((0.1, 2), (1, 100), 2300, 285),
        "nap": ((1e-4, 0.01), (10, 100), 650, 30),
        "t_fin": ((0.3, 2), (100, 100), 30, 50),
    },
    "hh": {
        "t0": ((2, 10), (0, 0), 20, 10),
        "general": ((2, 10), (1, 100), 2380, 275),
        "nap": ((1e-4, 2), (10, 100), 100, 30),
        "i_high": ((50, 200), (10, 100), 300, 30),
        "t_fin": ((2, 30), (100, 100), 200, 30),
    },
}


def test_presets_exist_for_every_model_family():
    assert {"fhn", "hh", "ord"} <= set(list_mixtures())
    assert load_mixture("ord-epi").model == "ord"  # variants share the family preset
    with pytest.raises(ValueError, match="expected one of"):
        load_mixture("nonexistent")


@pytest.mark.parametrize("model", ["fhn", "hh"])
def test_study_composition_and_ranges_per_part(model):
    mix = load_mixture(model)
    table = STUDY[model]
    assert mix.part_names == list(table)
    for split, col in (("train", 2), ("val", 3), ("test", 3)):  # validation follows the test composition
        assert mix.composition(split) == {p: v[col] for p, v in table.items()}
    for split in ("train", "test"):
        p = sample_parameters(mix, seed=7, split=split, t_end=100.0)
        for name, (a_rng, t_rng, n_train, n_test) in table.items():
            sel = p["part"] == name
            assert sel.sum() == (n_train if split == "train" else n_test)
            a, d = p["amplitude"][sel], p["duration"][sel]
            assert a.min() >= a_rng[0] and a.max() <= a_rng[1]
            assert d.min() >= t_rng[0] and d.max() <= t_rng[1]
            if a_rng[1] > a_rng[0] and sel.sum() >= 100:  # really spread over the range
                assert a.max() - a.min() > 0.9 * (a_rng[1] - a_rng[0])
            np.testing.assert_array_equal(p["onset"][sel], 0.0)


def test_t_end_token_follows_the_window():
    mix = load_mixture("hh")
    p = sample_parameters(mix, seed=0, split="val", t_end=40.0)
    np.testing.assert_array_equal(p["duration"][p["part"] == "t_fin"], 40.0)


@pytest.mark.parametrize("n", [0, 1, 7, 100, 999, 3000, 4321])
def test_scaled_counts_keep_proportions(n):
    base = [20, 2380, 100, 300, 200]
    got = scale_counts(base, n)
    assert sum(got) == n
    exact = np.array(base) * n / sum(base)
    assert np.all(np.abs(np.array(got) - exact) < 1.0)


def test_draw_is_a_function_of_seed_split_and_index():
    mix = load_mixture("hh")
    full = sample_parameters(mix, seed=3, split="train", t_end=100.0)
    idx = np.array([2999, 0, 1234, 17])
    sub = sample_parameters(mix, seed=3, split="train", t_end=100.0, indices=idx)
    for k in ("amplitude", "duration", "part"):
        np.testing.assert_array_equal(sub[k], full[k][idx])
    other = sample_parameters(mix, seed=4, split="train", t_end=100.0)
    assert np.mean(other["amplitude"] == full["amplitude"]) < 0.01
    val = sample_parameters(mix, seed=3, split="val", t_end=100.0)
    assert not np.array_equal(val["amplitude"][:50], full["amplitude"][:50])
    # parts are interleaved, not in runs: every block of 100 holds general samples and others
    for b in range(0, 3000, 100):
        assert 0 < np.sum(full["part"][b : b + 100] == "general") < 100


def test_invalid_mixtures_are_named(tmp_path):
    good = load_mixture("fhn").to_dict()
    bad = json.loads(json.dumps(good))
    bad["parts"][0]["amplitude"] = [2.0, 1.0]
    with pytest.raises(ValueError, match="lo > hi"):
        load_mixture(bad)
    bad = json.loads(json.dumps(good))
    bad["parts"][1]["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        load_mixture(bad)
    bad = json.loads(json.dumps(good))
    bad["parts"][1]["counts"]["training"] = 3
    with pytest.raises(ValueError, match="training"):
        load_mixture(bad)
    f = tmp_path / "m.json"
    f.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_mixture(f)
    with pytest.raises(ValueError, match="designed for model 'fhn'"):
        load_mixture(good).check_model("hh")
