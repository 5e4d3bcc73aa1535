"""General stimuli as data: the part kinds (train, s1s2, noise) and their deterministic draws, the
general presets, and datasets of them: generation, storage, merge, inspect, and the exact
cell-average input rebuilt from the stored protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from ionfno.data.dataset import read_split_tensors  # noqa: E402
from ionfno.data.encoding import cell_averages, stored_stimulus  # noqa: E402
from ionfno.data.generate import generate_dataset, make_config, merge_shards, simulate_block  # noqa: E402
from ionfno.data.inspect import inspect_dataset  # noqa: E402
from ionfno.data.mixtures import SPLIT_KEYS, load_mixture, sample_parameters, sample_stimuli  # noqa: E402
from ionfno.data.storage import dataset_fingerprint, read_split, write_arrays  # noqa: E402
from ionfno.stimulus import Mixed, PulseTrain  # noqa: E402

NEW_PARTS = ("shifted", "train", "s1s2", "noise")


def _small(mixture, n=(3, 2, 2)):
    """A copy of ``mixture`` with a few samples of every part per split (tests are about files)."""
    d = load_mixture(mixture).to_dict()
    for p in d["parts"]:
        p["counts"] = dict(zip(("train", "val", "test"), n, strict=True))
    return d


@pytest.mark.parametrize("model", ["fhn", "hh", "ord"])
def test_general_presets_keep_the_study_parts_and_add_the_new_kinds(model):
    study, general = load_mixture(model), load_mixture(f"{model}-general")
    assert general.model == study.model and (general.t_end, general.n_points) == (study.t_end, study.n_points)
    assert general.solver == study.solver
    assert general.part_names[: len(study.parts)] == study.part_names
    for a, b in zip(study.parts, general.parts, strict=False):
        assert a == b  # the study's parts, unchanged
    assert general.part_names[len(study.parts):] == list(NEW_PARTS)
    assert general.kinds == ["pulse", "train", "s1s2", "noise"]
    for split in ("train", "val", "test"):  # half of the samples are the study's
        n_new = sum(general.composition(split)[p] for p in NEW_PARTS)
        assert n_new <= general.default_count(split) - study.default_count(split) + 1
    assert general.default_count("train") == 2 * study.default_count("train")


@pytest.mark.parametrize("model", ["fhn", "hh", "ord"])
def test_new_parts_draw_inside_their_ranges(model):
    mix = load_mixture(f"{model}-general")
    t_end = mix.t_end
    p = sample_parameters(mix, seed=5, split="train", t_end=t_end)
    K = mix.max_pulses
    assert p["pulse_amplitude"].shape == (6000, K)
    for part in mix.parts:
        sel = p["part"] == part.name
        n = p["n_pulses"][sel]
        amp, dur, ons = (p[f"pulse_{k}"][sel] for k in ("amplitude", "duration", "onset"))
        real = np.arange(K)[None, :] < n[:, None]
        assert np.all(amp[~real] == 0) and np.all(dur[~real] == 0) and np.all(ons[~real] == 0)
        if part.kind == "noise":
            assert np.all(p["protocol"][sel] == "waveform") and np.all(n == 0)
            lo, hi = part.bounds("offset", t_end)
            assert np.all((p["noise_offset"][sel] >= lo) & (p["noise_offset"][sel] <= hi))
            lo, hi = part.bounds("cutoff", t_end)
            assert np.all((p["noise_cutoff"][sel] >= lo) & (p["noise_cutoff"][sel] <= hi))
            np.testing.assert_array_equal(p["duration"][sel], t_end)
            continue
        assert np.all(p["protocol"][sel] == "pulses")
        # the first pulse is the stored amplitude/duration/onset
        np.testing.assert_array_equal(amp[:, 0], p["amplitude"][sel])
        np.testing.assert_array_equal(dur[:, 0], p["duration"][sel])
        np.testing.assert_array_equal(ons[:, 0], p["onset"][sel])
        assert np.all(ons[real] < t_end) and np.all((ons[:, 1:] - ons[:, :-1])[real[:, 1:]] > 0)
        if part.kind == "pulse":
            assert np.all(n == 1)
            continue
        n_lo, n_hi = part.bounds("n_pulses", t_end)
        s2 = part.kind == "s1s2"
        assert n.max() <= n_hi + s2
        # pulses never overlap
        ends = np.where(real, ons + dur, -np.inf)
        assert np.all(ons[:, 1:][real[:, 1:]] >= ends[:, :-1][real[:, 1:]])
        if part.kind == "train":
            lo, hi = part.bounds("amplitude", t_end)
            assert np.all((amp[real] >= lo) & (amp[real] <= hi))
            second = real[:, 1]
            gaps = ons[second, 1] - ons[second, 0]
            lo, hi = part.bounds("period", t_end)
            assert np.all((gaps >= lo - 1e-9) & (gaps <= hi + 1e-9))
            if sel.sum() > 100:  # every pulse draws its own amplitude
                assert np.mean(amp[second, 1] != amp[second, 0]) > 0.99
        else:  # S2 after the S1 pulses, with its own ranges
            last = n - 1
            rows = np.arange(n.size)
            coupling = ons[rows, last] - ons[rows, np.maximum(last - 1, 0)]
            has_s2 = n >= 2
            lo, hi = part.bounds("coupling", t_end)
            c = coupling[has_s2 & (ons[rows, last] > ons[rows, 0])]
            assert c.size and np.all(c >= lo - 1e-9)


def test_the_study_kind_draws_what_it_always_drew():
    # The pulse of sample i is three uniforms of SeedSequence(seed, (split, 1, i)): the general
    # kinds did not move a single study sample.
    mix = load_mixture("hh")
    p = sample_parameters(mix, seed=11, split="val", t_end=100.0, indices=np.arange(40))
    for j in range(40):
        u = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(SPLIT_KEYS["val"], 1, j))).random(3)
        part = mix.part(p["part"][j])
        for k, (what, uk) in enumerate(zip(("amplitude", "duration", "onset"), u, strict=True)):
            lo, hi = part.bounds(what, 100.0)
            assert p[what][j] == (lo if lo == hi else lo + (hi - lo) * uk), (j, what)
    _, stim = sample_stimuli(mix, seed=11, split="val", t=np.linspace(0, 100, 11), indices=np.arange(40))
    assert isinstance(stim, PulseTrain)


def test_general_draws_are_a_function_of_seed_split_and_index():
    mix = load_mixture("ord-general")
    t = np.linspace(0.0, 1000.0, 2520)
    full, stim = sample_stimuli(mix, seed=2, split="test", t=t)
    assert isinstance(stim, Mixed) and stim.batch_size == 675
    idx = np.array([600, 3, 77, 512, 640, 0])
    sub, sub_stim = sample_stimuli(mix, seed=2, split="test", t=t, indices=idx)
    for k in ("amplitude", "duration", "onset", "part", "protocol", "n_pulses", "pulse_amplitude", "pulse_onset"):
        np.testing.assert_array_equal(sub[k], full[k][idx])
    np.testing.assert_array_equal(sub_stim.sample(t), stim.sample(t)[idx])  # noise waveforms too
    other = sample_parameters(mix, seed=3, split="test", t_end=1000.0)
    assert np.mean(other["pulse_amplitude"] == full["pulse_amplitude"]) < 0.7  # the zero padding agrees


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "burst"}, "unknown kind"),
        ({"kind": "train", "duration": [1, 5], "n_pulses": [2, 3], "period": [3, 9]}, "pulses overlap"),
        ({"kind": "train", "duration": [1, 2], "n_pulses": [1.5, 3], "period": [3, 9]}, "whole numbers"),
        ({"kind": "train", "duration": [1, 2]}, "lacks 'n_pulses'"),
        ({"kind": "s1s2", "duration": [1, 2], "coupling": [0.5, 9]}, "S2 starts before S1 ends"),
        ({"kind": "s1s2", "duration": [1, 2], "coupling": [3, 9], "n_pulses": [1, 2]}, "needs a period"),
        ({"kind": "noise", "cutoff": [0, 1]}, "cutoff must be > 0"),
        ({"kind": "noise", "cutoff": [0.1, 1], "duration": 3}, "Unknown key"),
        ({"kind": "pulse", "offset": [0, 1]}, "Unknown key"),
    ],
)
def test_invalid_general_parts_are_named(change, message):
    d = load_mixture("fhn").to_dict()
    part = {k: v for k, v in d["parts"][1].items() if k not in ("duration",)} | {"duration": [1.0, 2.0]}
    if change.get("kind") == "noise":
        part.pop("duration"), part.pop("onset")
    d["parts"][1] = part | change
    with pytest.raises(ValueError, match=message):
        load_mixture(d)


def test_noise_offset_may_be_negative_but_amplitudes_may_not():
    d = load_mixture("fhn").to_dict()
    d["parts"].append({"name": "n", "kind": "noise", "amplitude": [0.1, 0.2], "offset": [-0.5, 0.1],
                       "cutoff": [0.1, 0.2], "counts": {"train": 1}})
    assert load_mixture(d).part("n").bounds("offset", 100.0) == (-0.5, 0.1)
    d["parts"][-1]["amplitude"] = [-0.1, 0.2]
    with pytest.raises(ValueError, match=">= 0"):
        load_mixture(d)


@pytest.mark.parametrize("model", ["hh", "ord"])
def test_every_new_part_simulates_with_the_compiled_solver(model):
    # Two samples of each new part, on the preset grid and tolerance: all succeed.
    mix = load_mixture(f"{model}-general")
    small = _small(mix.to_dict(), (0, 0, 2))
    small["parts"] = [p for p in small["parts"] if p["name"] in NEW_PARTS]
    cfg = make_config(model, mixture=small, n_train=0, n_val=0)
    out = simulate_block(cfg, "test", 0, cfg.counts["test"])
    assert np.all(out["status"] == 0)
    assert set(out["part"]) == set(NEW_PARTS)
    assert set(out["protocol"]) == {"pulses", "waveform"}
    assert out["fires"].any()


@pytest.fixture(scope="module")
def general_file(tmp_path_factory):
    cfg = make_config("fhn", mixture=_small("fhn-general"), n_points=400, t_end=100.0, rtol=1e-4)
    path = tmp_path_factory.mktemp("general") / "fhn-general.h5"
    generate_dataset(cfg, path, batch_size=5, progress=False)
    return cfg, path


def test_a_general_dataset_round_trips_its_protocol(general_file):
    cfg, path = general_file
    for split in ("train", "test"):
        a = read_split(path, split, dtype=np.float64)
        p, stim = sample_stimuli(cfg.mixture, seed=0, split=split, t=cfg.grid, n=cfg.counts[split])
        for k in ("amplitude", "duration", "onset", "protocol", "n_pulses", "pulse_amplitude",
                  "pulse_duration", "pulse_onset"):
            np.testing.assert_array_equal(a[k], p[k], err_msg=k)
        # the stored current is the drawn protocol on the grid; a waveform's knots exactly
        np.testing.assert_array_equal(a["i_app"], stim.sample(cfg.grid).astype(np.float32))
        np.testing.assert_array_equal(a["waveform_rows"], np.flatnonzero(p["protocol"] == "waveform"))
        rebuilt = stored_stimulus(a)
        np.testing.assert_array_equal(rebuilt.sample(cfg.grid), stim.sample(cfg.grid))
        np.testing.assert_allclose(rebuilt.integral(cfg.grid), stim.integral(cfg.grid), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("subsample", [1, 4])
def test_cell_average_input_is_that_of_the_rebuilt_protocol(general_file, subsample):
    cfg, path = general_file
    d = read_split_tensors(path, "train", subsample=subsample, input_encoding="cell_average")
    _, stim = sample_stimuli(cfg.mixture, seed=0, split="train", t=cfg.grid, n=cfg.counts["train"])
    t = cfg.grid[::subsample]
    expect = cell_averages(stim, t, cfg.t_end).astype(np.float32)
    np.testing.assert_allclose(d.i_app.numpy(), expect, rtol=1e-6, atol=1e-7)
    # a train's charge reaches the input: the cell means integrate to the pulses' charge
    a = read_split(path, "train", dtype=np.float64)
    widths = np.diff(np.concatenate([[0.0], 0.5 * (t[:-1] + t[1:]), [cfg.t_end]]))
    trains = np.flatnonzero(a["protocol"] == "pulses")
    charge = (a["pulse_amplitude"] * np.clip(cfg.t_end - a["pulse_onset"], 0, a["pulse_duration"])).sum(axis=1)
    np.testing.assert_allclose(d.i_app.numpy()[trains].astype(np.float64) @ widths, charge[trains], rtol=1e-5)


def test_general_dataset_shards_merge_and_inspect_clean(general_file, tmp_path):
    from tests.data.test_generate import assert_same_file

    cfg, path = general_file
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"s{i}.h5")
        generate_dataset(cfg, shards[-1], batch_size=3, shard=(i, 2), progress=False)
    merged = merge_shards(shards, tmp_path / "merged.h5")
    assert_same_file(merged, path)
    rep = inspect_dataset(path)
    assert rep.ok, rep.problems
    assert dataset_fingerprint(merged) == dataset_fingerprint(path)
    # a damaged protocol array is caught against the config's draw
    bad = tmp_path / "bad.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "r+") as f:
        f["train"]["pulse_onset"][1, 0] += 1.0
    rep = inspect_dataset(bad)
    assert not rep.ok and any("pulse_onset" in p for p in rep.problems)


def test_files_of_format_2_read_as_single_pulses(tmp_path):
    # A format 2 file (no protocol arrays) reads with one pulse per sample and encodes as before.
    t = np.linspace(0.0, 10.0, 21)
    amp, dur, ons = np.array([1.0, 2.0]), np.array([0.3, 4.0]), np.array([0.0, 2.0])
    from ionfno.stimulus import pulse

    path = write_arrays(
        tmp_path / "v2.h5",
        t,
        {s: {"states": np.zeros((2, 1, 21)), "i_app": pulse(amp, dur, ons).sample(t), "amplitude": amp,
             "duration": dur, "onset": ons} for s in ("train", "val")},
        {"model": "fhn", "state_names": ["V"]},
    )
    with h5py.File(path, "r+") as f:
        for s in ("train", "val", "test"):
            for k in ("protocol", "n_pulses", "pulse_amplitude", "pulse_duration", "pulse_onset"):
                del f[s][k]
        f.attrs["format_version"] = 2
    a = read_split(path, "train")
    np.testing.assert_array_equal(a["n_pulses"], [1, 1])
    np.testing.assert_array_equal(a["pulse_duration"][:, 0], dur)
    assert list(a["protocol"]) == ["pulses", "pulses"] and a["waveform"].shape == (0, 21)
    d = read_split_tensors(path, "train", input_encoding="cell_average")
    np.testing.assert_allclose(d.i_app.numpy(), cell_averages(pulse(amp, dur, ons), t, 10.0), rtol=1e-6)
    # and a format 3 file without its protocol arrays is refused by name
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 3
    from ionfno.data.storage import DatasetError

    with pytest.raises(DatasetError, match="pulse_onset"):
        read_split(path, "train")


def test_config_of_a_study_mixture_is_unchanged_by_the_kinds():
    # Part.to_dict of the study's kind keeps its old keys: resumes and fingerprints stay valid.
    d = load_mixture("hh").to_dict()
    assert all(set(p) == {"name", "amplitude", "duration", "onset", "counts", "description"} for p in d["parts"])
    g = load_mixture("hh-general").to_dict()
    assert json.loads(json.dumps(g)) == g and load_mixture(g) == load_mixture("hh-general")
