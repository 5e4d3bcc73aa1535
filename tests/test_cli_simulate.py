"""``ionfno models`` and ``ionfno simulate``: the stable file layout and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ionfno._cli.simulate import load_initial_state
from ionfno.cli import main
from ionfno.ionic import get_model


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_models_json_lists_every_model_state_unit_and_matlab_alias(capsys):
    rc, out, _ = run(capsys, "models", "--json")
    assert rc == 0
    models = {m["name"]: m for m in json.loads(out)}
    assert set(models) == {"fhn", "hh", "ord", "ord-epi", "ord-m"}
    assert [s["name"] for s in models["hh"]["states"]] == ["V", "m", "h", "n"]
    ord_states = models["ord"]["states"]
    assert len(ord_states) == 41 and ord_states[0]["unit"] == "mV"
    aliases = {a for s in ord_states for a in s["aliases"]}
    matlab = ("v nai nass ki kss cai cass cansr cajsr m hf hs j hsp jp mL hL hLp a iF iS ap iFp iSp d ff "
              "fs fcaf fcas jca nca ffp fcafp xrf xrs xs1 xs2 xk1 Jrelnp Jrelp CaMKt").split()
    names = {s["name"] for s in ord_states}
    assert all(n in aliases or n in names for n in matlab)


def test_simulate_writes_the_documented_layout(tmp_path, capsys):
    out = tmp_path / "hh.npz"
    rc, _, err = run(capsys, "simulate", "hh", "--amplitude", "10", "--duration", "1",
                     "--n-points", "501", "--out", str(out))
    assert rc == 0, err
    with np.load(out) as f:
        assert f["t"].shape == (501,) and f["t"][-1] == 100.0
        assert f["states"].shape == (501, 4)
        assert list(f["state_names"]) == ["V", "m", "h", "n"]
        assert f["i_app"][0] == 10.0 and f["i_app"][-1] == 0.0
        assert int(f["status"]) == 0
        assert f["states"][:, 0].max() > 80.0  # a 10 µA/cm² pulse for 1 ms fires HH


def test_initial_state_from_a_previous_run_continues_it(tmp_path, capsys):
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    assert run(capsys, "simulate", "fhn", "--amplitude", "1", "--duration", "2", "--t-end", "50",
               "--n-points", "101", "--out", str(first))[0] == 0
    assert run(capsys, "simulate", "fhn", "--amplitude", "0", "--duration", "0", "--t-end", "10",
               "--n-points", "11", "--initial-state", str(first), "--out", str(second))[0] == 0
    with np.load(first) as a, np.load(second) as b:
        np.testing.assert_array_equal(b["y0"], a["states"][-1])
        np.testing.assert_array_equal(b["states"][0], a["states"][-1])


def test_initial_state_file_by_matlab_names_is_accepted(tmp_path, capsys):
    m = get_model("ord")
    # Each state by its MATLAB name (where it differs from ours), in reverse order.
    names = [next((a for a, c in m.state_aliases.items() if c == s and a != s), s) for s in m.state_names]
    assert sum(n not in m.state_names for n in names) > 30
    y0 = m.default_state().copy()
    y0[0] = -85.0
    np.savez(tmp_path / "s.npz", state_names=np.array(names[::-1]), y0=y0[::-1])
    np.testing.assert_array_equal(load_initial_state(m, tmp_path / "s.npz"), y0)


def test_initial_state_with_unknown_and_missing_states_is_refused(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", state_names=np.array(["V", "m", "zz"]), y0=np.zeros(3))
    out = tmp_path / "out.npz"
    rc, _, err = run(capsys, "simulate", "hh", "--amplitude", "1", "--duration", "1",
                     "--initial-state", str(tmp_path / "bad.npz"), "--out", str(out))
    assert rc == 2
    assert "unknown state(s) ['zz']" in err and "missing state(s) ['h', 'n']" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["foo", "--amplitude", "1", "--duration", "1"],
         "Unknown model 'foo'; expected one of ['fhn', 'hh'"),
        (["hh", "--amplitude", "-1", "--duration", "1"], "amplitude must be >= 0"),
        (["hh", "--amplitude", "nan", "--duration", "1"], "amplitude must be finite"),
        (["hh", "--amplitude", "1", "--duration", "-2"], "duration must be >= 0"),
        (["hh", "--amplitude", "1", "--duration", "nan"], "duration must be finite"),
        (["hh", "--amplitude", "1", "--duration", "1", "--t-end", "0"],
         "--t-end must be a finite number > 0"),
        (["hh", "--amplitude", "1", "--duration", "1", "--n-points", "1"], "--n-points must be >= 2"),
        (["hh", "--amplitude", "1", "--duration", "1", "--beats", "3"], "--beats > 1 needs --period"),
        (["hh", "--amplitude", "1", "--duration", "1", "--solver", "rk45"], "Unknown solver 'rk45'"),
    ],
    ids=["model", "neg-A", "nan-A", "neg-T", "nan-T", "t-end", "n-points", "beats", "solver"],
)
def test_bad_input_is_a_clear_error_and_leaves_no_file(tmp_path, capsys, args, message):
    out = tmp_path / "out.npz"
    rc, _, err = run(capsys, "simulate", *args, "--out", str(out))
    assert rc == 2
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_path_fails_before_simulating(tmp_path, capsys):
    rc, _, err = run(capsys, "simulate", "hh", "--amplitude", "1", "--duration", "1",
                     "--out", str(tmp_path / "missing" / "out.npz"))
    assert rc == 2 and "does not exist" in err
    rc, _, err = run(capsys, "simulate", "hh", "--amplitude", "1", "--duration", "1", "--out", str(tmp_path))
    assert rc == 2 and "is a directory" in err


def test_an_existing_output_survives_a_failed_run(tmp_path, capsys):
    out = tmp_path / "keep.npz"
    out.write_bytes(b"previous result")
    rc, _, _ = run(capsys, "simulate", "hh", "--amplitude", "-5", "--duration", "1", "--out", str(out))
    assert rc == 2 and out.read_bytes() == b"previous result"


def test_console_script_exit_code_and_message():
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, "-m", "ionfno.cli", "simulate", "nope", "--amplitude", "1",
                        "--duration", "1", "--out", "x.npz"], capture_output=True, text=True, env=env)
    assert p.returncode == 2
    assert "ionfno simulate: error: Unknown model 'nope'" in p.stderr


def test_models_and_simulate_do_not_import_torch(tmp_path):
    # Start-up time: torch costs seconds to import; the simulation commands never need it.
    code = (
        "import sys\n"
        "from ionfno.cli import main\n"
        "assert main(['models']) == 0\n"
        f"assert main(['simulate', 'hh', '--amplitude', '10', '--duration', '1', '--n-points', '101', "
        f"'--out', {str(tmp_path / 'a.npz')!r}]) == 0\n"
        f"assert main(['simulate', 'fhn', '--amplitude', '1', '--duration', '1', '--period', '50', "
        f"'--beats', '2', '--save-every-beat', {str(tmp_path / 'b.csv')!r}, "
        f"'--out', {str(tmp_path / 'b.npz')!r}]) == 0\n"
        "heavy = sorted(m for m in ('torch', 'h5py', 'optuna', 'matplotlib') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert p.returncode == 0, p.stderr[-2000:]


def read_beats(path):
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_pacing_writes_one_row_per_beat_and_continues_from_its_last_state(tmp_path, capsys):
    args = ["simulate", "hh", "--amplitude", "10", "--duration", "1", "--period", "20", "--n-points", "201"]
    rc, out, err = run(capsys, *args, "--beats", "3", "--save-every-beat", str(tmp_path / "three.csv"),
                       "--out", str(tmp_path / "three.npz"))
    assert rc == 0, err
    rows = read_beats(tmp_path / "three.csv")
    m = get_model("hh")
    assert len(rows) == 3 and [r["beat"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) >= {"status", "fires", "v_rest", "v_peak", "t_upstroke", "dvdt_max", "apd50", "apd90",
                            "steps", *(f"end_{s}" for s in m.state_names)}
    assert all(r["status"] == "0" and r["fires"] == "1" and float(r["apd90"]) > 0 for r in rows)
    with np.load(tmp_path / "three.npz") as f:
        assert f["t"][-1] == 20.0 and f["states"].shape == (201, 4)
        final = f["states"][-1]
    np.testing.assert_array_equal(final, [float(rows[2][f"end_{s}"]) for s in m.state_names])
    # two beats, then one more from the file: the third beat again, bit for bit
    assert run(capsys, *args, "--beats", "2", "--save-every-beat", str(tmp_path / "two.csv"),
               "--out", str(tmp_path / "two.npz"))[0] == 0
    assert run(capsys, *args, "--beats", "1", "--save-every-beat", str(tmp_path / "one.csv"),
               "--initial-state", str(tmp_path / "two.npz"), "--out", str(tmp_path / "one.npz"))[0] == 0
    assert read_beats(tmp_path / "one.csv")[0] | {"beat": "3"} == rows[2]


@pytest.mark.parametrize("extra, message", [
    ([], "--save-every-beat needs --period"),
    (["--period", "20", "--t-end", "40"], "--t-end does not apply with --save-every-beat"),
])
def test_pacing_needs_a_period_and_no_window(tmp_path, capsys, extra, message):
    rc, _, err = run(capsys, "simulate", "hh", "--amplitude", "10", "--duration", "1", *extra,
                     "--save-every-beat", str(tmp_path / "b.csv"), "--out", str(tmp_path / "o.npz"))
    assert rc == 2 and message in err


def test_a_train_without_t_end_covers_every_beat(tmp_path, capsys):
    out = tmp_path / "train.npz"
    assert run(capsys, "simulate", "hh", "--amplitude", "10", "--duration", "1", "--period", "30",
               "--beats", "3", "--out", str(out))[0] == 0
    with np.load(out) as f:
        assert f["t"][-1] == 90.0
        v = f["states"][:, 0]
        assert np.sum((v[1:] > 50) & (v[:-1] <= 50)) == 3  # three action potentials
