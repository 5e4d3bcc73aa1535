"""The dataset file: round trip, the one cast, selection, and damaged files."""

from __future__ import annotations

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from ionfno.data.storage import DatasetError, dataset_info, read_split, write_arrays  # noqa: E402


@pytest.fixture
def small_file(tmp_path, rng):
    t = np.linspace(0.0, 100.0, 64)
    train = {
        "states": rng.normal(size=(9, 2, 64)) * 50.0,
        "i_app": rng.normal(size=(9, 64)),
        "amplitude": rng.uniform(0, 2, 9),
        "duration": rng.uniform(0, 100, 9),
        "part": ["t0", "general", "nap"] * 3,
        "status": np.array([0, 0, 1, 0, 0, 3, 0, 0, 0], dtype=np.int8),
        "fires": np.arange(9) % 2 == 0,
    }
    test = {"states": rng.normal(size=(2, 2, 64)), "i_app": np.zeros((2, 64))}
    path = write_arrays(
        tmp_path / "d.h5",
        t,
        {"train": train, "test": test},
        {"model": "fhn", "state_names": ["V", "w"], "state_units": ["", ""], "seed": 3},
    )
    return path, t, train


def test_round_trip_casts_once_and_drops_failed(small_file):
    path, t, train = small_file
    a = read_split(path, "train")
    ok = np.flatnonzero(train["status"] == 0)
    np.testing.assert_array_equal(a["index"], ok)
    assert a["states"].dtype == np.float32 and a["i_app"].dtype == np.float32
    # float32 storage: relative rounding <= 2**-24
    np.testing.assert_allclose(a["states"], train["states"][ok], rtol=2**-23, atol=0)
    np.testing.assert_array_equal(a["part"], np.array(train["part"])[ok])
    np.testing.assert_array_equal(a["fires"], train["fires"][ok])
    np.testing.assert_array_equal(a["amplitude"], train["amplitude"][ok])  # float64 kept exactly
    np.testing.assert_allclose(a["t"], t.astype(np.float32))
    b = read_split(path, "train", dtype=np.float64, only_ok=False)
    assert b["states"].dtype == np.float64 and b["states"].shape == (9, 2, 64)


def test_select_indices_and_states(small_file):
    path, _, train = small_file
    a = read_split(path, "train", only_ok=False, indices=[8, 0, 4], states=["w"])
    np.testing.assert_array_equal(a["index"], [8, 0, 4])
    np.testing.assert_allclose(a["states"][:, 0], train["states"][[8, 0, 4], 1], rtol=2**-23)
    b = read_split(path, "train", only_ok=False, time_stride=4)
    np.testing.assert_array_equal(b["states"], read_split(path, "train", only_ok=False)["states"][..., ::4])
    assert b["t"].shape == b["i_app"].shape[1:] == (16,)
    with pytest.raises(ValueError, match="time_stride"):
        read_split(path, "train", time_stride=0)
    with pytest.raises(ValueError, match="Unknown state"):
        read_split(path, "train", states=["Q"])
    with pytest.raises(ValueError, match="Unknown split"):
        read_split(path, "training")


def test_info_and_empty_split(small_file):
    path, _, _ = small_file
    info = dataset_info(path)
    assert info["state_names"] == ["V", "w"] and info["model"] == "fhn" and info["seed"] == 3
    assert info["sizes"] == {"train": 9, "val": 0, "test": 2}
    assert read_split(path, "val")["states"].shape == (0, 2, 64)


def test_truncated_and_foreign_files_give_clear_errors(small_file, tmp_path):
    path, _, _ = small_file
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated"):
        read_split(cut, "train")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(DatasetError, match="not an ionfno dataset"):
        dataset_info(tmp_path / "other.h5")
    with pytest.raises(DatasetError, match="does not exist"):
        dataset_info(tmp_path / "missing.h5")


def test_flipped_bit_in_a_chunk_fails_the_checksum(small_file, tmp_path):
    path, _, _ = small_file
    with h5py.File(path, "r") as f:
        offset = f["train"]["states"].id.get_chunk_info(4).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset + 10] ^= 0xFF
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(raw))
    read_split(bad, "train", indices=[0, 1], only_ok=False)  # untouched chunks still read
    with pytest.raises(DatasetError, match="corrupted"):
        read_split(bad, "train", only_ok=False)
