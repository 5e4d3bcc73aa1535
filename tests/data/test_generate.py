"""Generation: determinism across batch sizes/workers/shards, resume after SIGKILL, merge,
refusals, agreement of stored samples with the reference solver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from ionfno.cli import main  # noqa: E402
from ionfno.data.generate import (  # noqa: E402
    generate_dataset,
    make_config,
    merge_shards,
    parse_shard,
    partial_dir,
    shard_range,
)
from ionfno.data.storage import dataset_info, read_split  # noqa: E402


def dump(path) -> dict:
    """Every array and attribute of an HDF5 file, by name."""
    out = {}
    with h5py.File(path, "r") as f:
        out["/attrs"] = {k: f.attrs[k] for k in f.attrs}
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def assert_same_file(a, b):
    A, B = dump(a), dump(b)
    assert sorted(A) == sorted(B)
    assert sorted(A["/attrs"]) == sorted(B["/attrs"])
    for k, v in A["/attrs"].items():
        assert np.array_equal(v, B["/attrs"][k]), k
    for k in A:
        if k != "/attrs":
            nan_ok = A[k].dtype.kind == "f"
            assert A[k].dtype == B[k].dtype and np.array_equal(A[k], B[k], equal_nan=nan_ok), k


def small_fhn(**kw):
    # Loose tolerance and a short window: these tests are about files, not accuracy.
    return make_config("fhn", n_train=14, n_val=5, n_test=5, n_points=300, t_end=50.0, rtol=1e-3, **kw)


@pytest.fixture(scope="module")
def fhn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fhn") / "fhn.h5"
    generate_dataset(small_fhn(), path, batch_size=4, progress=False)
    return path


def test_file_is_self_describing_and_matches_config(fhn_file):
    info = dataset_info(fhn_file)
    cfg = info["config"]
    assert info["model"] == "fhn" and info["state_names"] == ["V", "w"] and info["seed"] == 0
    assert info["sizes"] == cfg["counts"] == {"train": 14, "val": 5, "test": 5}
    assert cfg["solver"]["method"] == "fast" and cfg["solver"]["rtol"] > 0 and len(cfg["solver"]["atol"]) == 2
    assert cfg["mixture"]["name"] == "fhn-study" and cfg["t_end"] == 50.0 and cfg["n_points"] == 300
    assert cfg["solver"]["rtol"] == 1e-3
    a = read_split(fhn_file, "train", dtype=np.float64)
    np.testing.assert_allclose(a["t"], np.linspace(0, 50, 300))
    # study convention: I_app(t) = A on the closed interval [0, T_stim]
    for k in range(14):
        on = a["t"] <= a["duration"][k]
        np.testing.assert_array_equal(a["i_app"][k], np.where(on, np.float32(a["amplitude"][k]), 0))
    comp = {p: int(np.sum(a["part"] == p)) for p in set(a["part"])}
    assert comp == {k: v for k, v in cfg["composition"]["train"].items() if v}


def test_same_data_for_any_batch_size_workers_and_shards(fhn_file, tmp_path):
    cfg = small_fhn()
    generate_dataset(cfg, tmp_path / "b.h5", batch_size=3, workers=2, progress=False)
    assert_same_file(fhn_file, tmp_path / "b.h5")
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"s{i}.h5")
        generate_dataset(cfg, shards[-1], batch_size=2, shard=(i, 3), progress=False)
        assert dataset_info(shards[-1])["sizes"]["train"] == np.diff(shard_range(14, (i, 3)))[0]
    assert main(["merge", *map(str, shards[::-1]), "--out", str(tmp_path / "m.h5")]) == 0
    assert_same_file(fhn_file, tmp_path / "m.h5")
    # a missing shard or a duplicate is refused
    with pytest.raises(ValueError, match="Missing shard"):
        merge_shards(shards[:2], tmp_path / "x.h5")
    with pytest.raises(ValueError, match="given twice"):
        merge_shards([shards[0], *shards], tmp_path / "x.h5")


def test_shard_parsing():
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "1", "-1/3", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    n = 375
    spans = [shard_range(n, (i, 7)) for i in range(7)]
    assert spans[0][0] == 0 and spans[-1][1] == n and all(spans[i][1] == spans[i + 1][0] for i in range(6))


def test_existing_output_needs_overwrite(fhn_file, tmp_path):
    target = tmp_path / "f.h5"
    target.write_bytes(fhn_file.read_bytes())
    with pytest.raises(FileExistsError, match="same configuration.*--overwrite"):
        generate_dataset(small_fhn(), target, progress=False)
    rc = main(
        [
            "generate",
            "fhn",
            "--out",
            str(target),
            "--n-train",
            "14",
            "--n-val",
            "5",
            "--n-test",
            "5",
            "--n-points",
            "300",
            "--t-end",
            "50",
            "--rtol",
            "1e-3",
            "--no-progress",
        ]
    )
    assert rc == 2
    assert_same_file(fhn_file, target)  # untouched
    generate_dataset(small_fhn(seed=1), target, overwrite=True, batch_size=8, progress=False)
    assert dataset_info(target)["seed"] == 1


def _cli(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return [sys.executable, "-m", "ionfno.cli", *args], env


def test_kill_then_resume_gives_the_uninterrupted_file(tmp_path):
    out = tmp_path / "hh.h5"
    args = [
        "generate",
        "hh",
        "--out",
        str(out),
        "--n-train",
        "16",
        "--n-val",
        "4",
        "--n-test",
        "4",
        "--n-points",
        "200",
        "--rtol",
        "1e-3",
        "--batch-size",
        "1",
        "--no-progress",
    ]
    cmd, env = _cli(*args)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    work = partial_dir(out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if work.exists() and len(list(work.glob("*.h5"))) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # mid-run, possibly while a block file is being written
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists()
    n_blocks = len(list(work.glob("*.h5")))
    assert 3 <= n_blocks < 24

    # resuming with another configuration is refused, naming what differs
    cmd2, _ = _cli(*args, "--t-end", "50", "--seed", "3")
    r = subprocess.run(cmd2, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "t_end" in r.stderr and "seed" in r.stderr and "--restart" in r.stderr
    assert len(list(work.glob("*.h5"))) == n_blocks  # nothing lost

    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    n_now = int(r.stdout.split("(")[1].split()[0])
    assert n_now == 24 - n_blocks  # only the missing blocks were simulated
    assert not work.exists()
    cfg = make_config("hh", n_train=16, n_val=4, n_test=4, n_points=200, rtol=1e-3)
    generate_dataset(cfg, tmp_path / "ref.h5", batch_size=24, progress=False)
    assert_same_file(tmp_path / "ref.h5", out)


@pytest.mark.parametrize("model", ["fhn", "hh"])
def test_stored_samples_agree_with_the_reference_solver(model, tmp_path, rng):
    from ionfno.solvers import simulate
    from ionfno.stimulus import pulse

    path = tmp_path / f"{model}.h5"
    # the dataset's own solver settings (fast, default tolerances); a short window keeps it quick
    cfg = make_config(model, n_train=3, n_val=0, n_test=0, n_points=400, t_end=25.0, seed=11)
    generate_dataset(cfg, path, batch_size=16, progress=False)
    a = read_split(path, "train", dtype=np.float64)
    pick = rng.choice(np.flatnonzero(a["part"] != "t0"), size=2, replace=False)
    ref = simulate(
        model,
        pulse(a["amplitude"][pick], a["duration"][pick], a["onset"][pick]),
        t_end=cfg.t_end,
        n_points=cfg.n_points,
        method="reference",
    )
    assert np.all(ref.status == 0)
    got = a["states"][pick]
    span = np.maximum(ref.states.max(axis=2) - ref.states.min(axis=2), 1e-2)  # (2, n_states)
    err = np.abs(got - ref.states).max(axis=2) / span
    # float32 storage alone gives ~1e-7 of the range; the rest is the preset's solver error,
    # within 1e-3 of range by design (tests/data/test_preset_accuracy.py).
    assert err.max() < 1e-3, err


def test_inspect_passes_good_files_and_catches_damage(fhn_file, tmp_path, capsys):
    assert main(["inspect", str(fhn_file)]) == 0
    assert "integrity: OK" in capsys.readouterr().out
    assert main(["inspect", str(fhn_file), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and set(rep["ranges"]) == {"V", "w"}
    assert rep["splits"]["train"]["parts"]["general"]["fraction_firing"] == 1.0
    assert rep["splits"]["train"]["parts"]["nap"]["fraction_firing"] == 0.0

    def damaged(name, edit):
        p = tmp_path / name
        p.write_bytes(fhn_file.read_bytes())
        with h5py.File(p, "r+") as f:
            edit(f)
        return p

    cases = {
        "amp": (lambda f: f["train"]["amplitude"].__setitem__(3, 1.2345), "amplitude differs"),
        "nan": (lambda f: f["val"]["states"].__setitem__((1, 0, 5), np.nan), "non-finite"),
        "iapp": (lambda f: f["test"]["i_app"].__setitem__((0, 0), 9.0), "i_app disagrees"),
        "status": (lambda f: f["train"]["status"].__setitem__(0, 7), "unknown codes"),
        "fires": (lambda f: f["train"]["fires"].__setitem__(slice(None), True), "fires disagrees"),
    }
    for name, (edit, msg) in cases.items():
        p = damaged(f"{name}.h5", edit)
        assert main(["inspect", str(p)]) == 1, name
        assert msg in capsys.readouterr().out, name

    data = bytearray(fhn_file.read_bytes())
    with h5py.File(fhn_file, "r") as f:
        off = f["train"]["states"].id.get_chunk_info(2).byte_offset
    data[off + 40] ^= 0x5A
    (tmp_path / "flip.h5").write_bytes(bytes(data))
    assert main(["inspect", str(tmp_path / "flip.h5")]) == 1
    assert "corrupted" in capsys.readouterr().out
    (tmp_path / "cut.h5").write_bytes(fhn_file.read_bytes()[:5000])
    assert main(["inspect", str(tmp_path / "cut.h5")]) == 1
    assert "truncated" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "missing.h5")]) == 2


def test_bad_arguments_are_named(tmp_path, capsys):
    base = ["generate", "fhn", "--out", str(tmp_path / "x.h5"), "--no-progress"]
    for extra, msg in (
        (["--workers", "0"], "--workers"),
        (["--shard", "3/3"], "shard"),
        (["--n-train", "-1"], "--n-train"),
        (["--solver", "euler"], "Unknown solver"),
        (["--mixture", str(tmp_path / "none.json")], "Cannot read mixture"),
        (["--workers", "999"], "CPU cores"),
    ):
        assert main(base + extra) == 2, extra
        assert msg in capsys.readouterr().err, extra
    assert main(["generate", "ord", "--mixture", "hh", "--out", str(tmp_path / "y.h5")]) == 2
    assert "designed for model 'hh'" in capsys.readouterr().err
    assert not list(Path(tmp_path).iterdir())


def test_success_with_unstorable_values_is_flagged_not_stored_silently(monkeypatch):
    import ionfno.solvers as solvers
    from ionfno.data.generate import simulate_block

    real = solvers.simulate

    def broken(*args, **kw):  # a solver that reports success on a blown-up sample
        traj = real(*args, **kw)
        traj.states[1, 0, -5:] = 1e300  # finite in float64, inf in float32
        traj.states[2, 1, 7] = np.nan
        return traj

    monkeypatch.setattr(solvers, "simulate", broken)
    with pytest.warns(UserWarning, match="2 sample"):
        d = simulate_block(small_fhn(), "train", 0, 4)
    np.testing.assert_array_equal(d["status"], [0, 1, 1, 0])
    assert not d["fires"][1:3].any()


def test_interrupted_assembly_resumes_and_a_changed_config_needs_restart(tmp_path, monkeypatch):
    import ionfno.data.generate as gen

    out = tmp_path / "f.h5"
    cfg = small_fhn()

    def crash(*a, **k):
        raise RuntimeError("killed during assembly")

    with monkeypatch.context() as m:
        m.setattr(gen, "_assemble", crash)
        with pytest.raises(RuntimeError, match="assembly"):
            generate_dataset(cfg, out, batch_size=6, progress=False)
    assert not out.exists() and len(list(partial_dir(out).glob("*.h5"))) == 3 + 1 + 1  # 14, 5, 5 in 6s
    with pytest.raises(ValueError, match=r"seed: 0 -> 5"):
        generate_dataset(small_fhn(seed=5), out, progress=False)
    res = generate_dataset(cfg, out, batch_size=4, progress=False)  # any block size resumes
    assert res.n_simulated == 0 and res.n_samples == 24
    generate_dataset(cfg, tmp_path / "clean.h5", progress=False)
    assert_same_file(tmp_path / "clean.h5", out)
    # --restart discards an unfinished run of another config
    with monkeypatch.context() as m:
        m.setattr(gen, "_assemble", crash)
        with pytest.raises(RuntimeError):
            generate_dataset(small_fhn(seed=5), tmp_path / "g.h5", progress=False)
    res = generate_dataset(cfg, tmp_path / "g.h5", restart=True, progress=False)
    assert res.n_simulated == 24
    assert_same_file(tmp_path / "clean.h5", tmp_path / "g.h5")
