"""Sizes that cannot fit, full disks, damaged shards, and files other tools read.

Each case checks the exit code and message, that no partial or temporary file is left where
it would block or mislead, and that finished work is kept for the resume.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from ionfno.cli import main  # noqa: E402
from ionfno.data.generate import (  # noqa: E402
    finished_blocks,
    generate_dataset,
    make_config,
    merge_shards,
    partial_dir,
)
from ionfno.data.storage import (  # noqa: E402
    FORMAT_VERSION,
    SPLITS,
    STATUS_FLAGS,
    DatasetError,
    StorageOptions,
    dataset_fingerprint,
    dataset_info,
    read_split,
)

SMALL = ["--n-train", "6", "--n-val", "2", "--n-test", "2", "--n-points", "200", "--t-end", "50",
         "--rtol", "1e-3", "--no-progress"]


FHN_24 = ["--n-train", "14", "--n-val", "5", "--n-test", "5", "--n-points", "300", "--t-end", "50",
          "--rtol", "1e-3"]  # = small_fhn()


def small_fhn(**kw):
    kw = {"n_train": 14, "n_val": 5, "n_test": 5, "n_points": 300, "t_end": 50.0, "rtol": 1e-3} | kw
    return make_config("fhn", **kw)


def same_arrays(a: Path, b: Path) -> None:
    for s in SPLITS:
        x, y = read_split(a, s, only_ok=False), read_split(b, s, only_ok=False)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{s}/{k}")


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic writes (``.<name>.*.tmp``) anywhere under ``folder``."""
    return [str(p) for p in folder.rglob("*.tmp*")]


@pytest.fixture(scope="module")
def fhn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fhn") / "fhn.h5"
    generate_dataset(small_fhn(), path, batch_size=4, progress=False)
    return path


# ------------------------------------------------------------------ sizes that cannot fit
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--n-points", "1000000000"], "4 GiB chunk limit"),
        (["--n-train", "10000000000"], "of memory"),
    ],
    ids=["points", "samples"],
)
def test_impossible_sizes_fail_before_allocating_and_leave_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "g.h5"
    assert main(["generate", "fhn", "--out", str(out), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not partial_dir(out).exists()
    # the corrected command needs no --restart
    assert main(["generate", "fhn", "--out", str(out), *SMALL]) == 0
    assert dataset_info(out)["sizes"] == {"train": 6, "val": 2, "test": 2}


def test_memory_and_disk_checks_name_sizes(tmp_path, monkeypatch):
    import shutil

    import ionfno._io as io

    monkeypatch.setattr(io, "available_memory", lambda: 10**6)
    with pytest.raises(MemoryError, match=r"needs about .* of memory but 1 MB is available.*--batch-size"):
        generate_dataset(small_fhn(), tmp_path / "m.h5", progress=False)
    monkeypatch.undo()

    class Usage:
        free = 1000

    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage)
    with pytest.raises(OSError, match=r"No space left on device for 24 samples .* 1 kB free") as e:
        generate_dataset(small_fhn(), tmp_path / "d.h5", progress=False)
    assert e.value.errno == errno.ENOSPC
    assert not (tmp_path / "d.h5").exists() and not partial_dir(tmp_path / "d.h5").exists()


def test_a_run_that_failed_before_any_block_does_not_block_another_config(tmp_path, monkeypatch):
    import ionfno.data.generate as gen

    out = tmp_path / "f.h5"

    def fail(*a, **k):
        raise RuntimeError("solver crashed")

    with monkeypatch.context() as m:
        m.setattr(gen, "_run_block", fail)
        with pytest.raises(RuntimeError):
            generate_dataset(small_fhn(seed=3), out, progress=False)
    assert not partial_dir(out).exists()  # nothing finished: nothing kept
    # A work folder of another configuration without finished blocks (left by an older
    # ionfno) is discarded; one with blocks is still protected (test_generate.py).
    partial_dir(out).mkdir()
    (partial_dir(out) / "manifest.json").write_text('{"config": {"seed": 99}, "shard": null}')
    res = generate_dataset(small_fhn(), out, batch_size=8, progress=False)
    assert res.n_simulated == 24 and not partial_dir(out).exists()


# ------------------------------------------------------------------ full disk
def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_writing_blocks_keeps_the_finished_ones(tmp_path, monkeypatch, fhn_file):
    out = tmp_path / "f.h5"
    real = Path.write_bytes
    calls = []

    def write_bytes(self, data):
        calls.append(self)
        if len(calls) == 3:  # the third block file finds the disk full
            raise _enospc()
        return real(self, data)

    with monkeypatch.context() as m:
        m.setattr(Path, "write_bytes", write_bytes)
        rc = main(["generate", "fhn", "--out", str(out), *FHN_24, "--batch-size", "4", "--no-progress"])
    assert rc == 2
    assert finished_blocks(out) == 2 and not out.exists() and not leftovers(tmp_path)
    res = generate_dataset(small_fhn(), out, batch_size=4, progress=False)  # space is back: resume
    assert res.n_simulated == 24 - 8
    same_arrays(out, fhn_file)


def test_full_disk_message_names_the_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "f.h5"
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(".val_"):
            raise _enospc()
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    assert main(["generate", "fhn", "--out", str(out), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "No space left on device writing" in err and "val_0000000_0000002.h5" in err
    assert "finished block(s) stay in" in err and "run the same command again" in err


def test_full_disk_while_assembling_keeps_the_blocks_and_writes_nothing(
    tmp_path, monkeypatch, fhn_file, capsys
):
    out = tmp_path / "f.h5"

    def full(fd, offset, length):
        raise _enospc()

    with monkeypatch.context() as m:
        m.setattr(os, "posix_fallocate", full)
        rc = main(["generate", "fhn", "--out", str(out), *FHN_24, "--batch-size", "4", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"No space left on device writing {str(out)!r}" in err and "it needs about" in err
    assert not out.exists() and not leftovers(tmp_path) and finished_blocks(out) == 8
    res = generate_dataset(small_fhn(), out, batch_size=4, progress=False)
    assert res.n_simulated == 0
    same_arrays(out, fhn_file)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (needs root and mount; skipped elsewhere)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_really_full_disk_is_a_clean_error_not_a_crash(tiny_disk):
    # HDF5 crashed the process (SIGSEGV) when a write failed; every write now either goes
    # through Python (block files) or into space reserved beforehand (the assembled file).
    out = tiny_disk / "g.h5"
    args = ["generate", "fhn", "--out", str(out), "--n-train", "150", "--n-val", "10", "--n-test", "10",
            "--n-points", "1500", "--batch-size", "50", "--no-progress"]
    for n_train in ("500", "150"):  # full while writing blocks; full while assembling
        args[5] = n_train
        env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "ionfno.cli", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 2, r.stderr[-2000:]
        assert "No space left on device writing" in r.stderr and "Traceback" not in r.stderr
        assert not out.exists() and not leftovers(tiny_disk) and finished_blocks(out) > 0
        subprocess.run(["rm", "-rf", str(partial_dir(out))], check=True)


# ------------------------------------------------------------------ merge verifies
def test_merge_refuses_a_damaged_chunk_and_writes_nothing(tmp_path, capsys):
    shards = [tmp_path / f"s{i}.h5" for i in range(2)]
    for i, p in enumerate(shards):
        generate_dataset(small_fhn(), p, shard=(i, 2), progress=False)
    with h5py.File(shards[1], "r") as f:
        offset = f["train"]["states"].id.get_chunk_info(3).byte_offset
    raw = bytearray(shards[1].read_bytes())
    raw[offset + 10] ^= 0xFF
    shards[1].write_bytes(bytes(raw))
    out = tmp_path / "merged.h5"
    assert main(["merge", *map(str, shards), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(shards[1]) in err and "/train/states of sample 3 is damaged" in err
    assert not out.exists() and not leftovers(tmp_path)
    with pytest.raises(DatasetError, match="damaged"):
        merge_shards(shards, out)


# ------------------------------------------------------------------ files other tools read
def test_xarray_opens_a_generated_file_without_arguments(fhn_file):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    tree = xr.open_datatree(fhn_file, engine="h5netcdf")
    root = tree.to_dataset()
    assert list(root["state"].values) == ["V", "w"] and root["t"].attrs["units"] == "1"
    assert list(root["state_units"].values) == ["1", "1"] and "state_units" in root.coords
    train = tree["train"].to_dataset(inherit=True)
    assert train["states"].dims == ("sample", "state", "t")
    assert train["i_app"].dims == ("sample", "t") and train["amplitude"].dims == ("sample",)
    for name in ("states", "i_app", "amplitude", "duration", "onset", "part", "status", "fires", "t"):
        assert train[name].attrs["long_name"], name
    assert train["duration"].attrs["units"] == "1"
    assert train["status"].attrs["flag_meanings"].startswith("ok ")
    ref = read_split(fhn_file, "train", only_ok=False, dtype=np.float64)
    np.testing.assert_array_equal(train["states"].values, ref["states"])
    np.testing.assert_array_equal(train["states"].sel(state="w").values, ref["states"][:, 1])
    np.testing.assert_array_equal(train["part"].values, ref["part"])
    np.testing.assert_array_equal(train["t"].values, ref["t"])
    assert tree.attrs["format_version"] == FORMAT_VERSION


def test_status_flags_are_the_solver_codes():
    from ionfno.solvers import Status

    assert STATUS_FLAGS == {int(s): s.name.lower() for s in Status}


def test_version_1_files_still_read(tmp_path, fhn_file):
    """A file in the layout before the dimension scales (format_version 1) reads as before."""
    old = tmp_path / "v1.h5"
    with h5py.File(fhn_file, "r") as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            if k != "coordinates":
                dst.attrs[k] = v
        dst.attrs["format_version"] = 1
        dst.create_dataset("t", data=src["t"][()])
        for s in SPLITS:
            g = dst.create_group(s)
            for name in ("i_app", "states", "amplitude", "duration", "onset", "part", "status", "fires"):
                g.create_dataset(name, data=src[s][name][()], dtype=src[s][name].dtype)
    same_arrays(old, fhn_file)
    assert dataset_info(old)["format_version"] == 1
    assert dataset_fingerprint(old) == dataset_fingerprint(fhn_file)  # the layout does not enter
    assert main(["inspect", str(old)]) == 0


def test_fingerprint_tells_datasets_apart_not_copies(fhn_file, tmp_path):
    fp = dataset_fingerprint(fhn_file)
    assert len(fp) == 16 and int(fp, 16) >= 0
    copy = tmp_path / "copy.h5"
    copy.write_bytes(fhn_file.read_bytes())
    assert dataset_fingerprint(copy) == fp
    lzf = tmp_path / "lzf.h5"  # other block size and compression: the same data
    generate_dataset(small_fhn(storage=StorageOptions(compression="lzf", compression_opts=None)), lzf,
                     batch_size=7, progress=False)
    assert dataset_fingerprint(lzf) == fp
    other = tmp_path / "seed1.h5"
    generate_dataset(small_fhn(seed=1), other, progress=False)
    assert dataset_fingerprint(other) != fp
