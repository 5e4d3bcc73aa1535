"""Pretrained surrogates: the built files, the model card, float16 weights, lookup by name, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ionfno.cli import main
from ionfno.pretrained import (
    CARD_FILE,
    CARD_MARKDOWN,
    PACKAGE_DIR,
    WEIGHTS_FILE,
    PretrainedError,
    check_name,
    find_pretrained,
    list_pretrained,
    load_card,
)
from ionfno.pretrained.build import build_pretrained
from ionfno.surrogate import Surrogate

from .conftest import NAME

pytestmark = pytest.mark.timeout(300)


def test_card_records_data_config_commands_errors_and_range(card, report_dir, data_h5):
    from ionfno.data.storage import read_split

    results = json.loads((report_dir / "results.json").read_text())
    m = results["metrics"]["all"]
    assert card["name"] == NAME and card["model"] == "fhn"
    assert card["data"]["grid"] == {"t_end": 100.0, "n_points_stored": 256, "subsample": 2, "n_points": 128,
                                    "time_unit": "ms"}
    assert card["data"]["sizes"] == {"train": 48, "val": 16, "test": 16}
    assert card["architecture"]["config"]["data"]["input_encoding"] == "cell_average"
    assert card["architecture"]["n_parameters"] > 0
    # The study's metric per variable and the physical metrics are the report's.
    assert card["test_error"]["overall"] == m["rel_l2"]["overall"]
    assert card["test_error"]["per_variable"] == m["rel_l2"]["per_variable"]
    assert card["physical"]["rmse"] == m["rmse"]["per_variable"]
    assert set(card["test_error"]["per_part"]) == {"general", "t0"}
    # The commands: data, training (not a shipped preset: epochs and encoding were changed), evaluation.
    assert card["commands"]["generate"].startswith("ionfno generate fhn --n-train 48 --n-val 16 --n-test 16")
    assert "--config config.json" in card["commands"]["train"]
    assert card["commands"]["evaluate"] == f"ionfno evaluate tiny-run --data {data_h5.name} --out tiny-eval"
    # The input range is the training split's.
    train = read_split(data_h5, "train", states=["V"], time_stride=256)
    rng = card["input"]["trained_range"]
    assert rng["amplitude"] == [train["amplitude"].min(), train["amplitude"].max()]
    assert rng["duration"] == [train["duration"].min(), train["duration"].max()]
    assert rng["onset"] == [0.0, 0.0] and rng["n_pulses"] == [1, 1]
    assert sum(p["n"] for p in card["input"]["parts"].values()) == 48


def test_float16_weights_cost_little_and_are_stated(card, pretrained_root, run_dir):
    pr = card["precision"]
    assert pr["weights_dtype"] == "float16"
    assert pr["test_error_float32"] == pytest.approx(card["test_error"]["overall"], rel=1e-3)
    assert abs(pr["change"]) < 1e-3
    # The file: parameters float16, normalisers float32, readable without unpickling code.
    ck = torch.load(pretrained_root / NAME / WEIGHTS_FILE, weights_only=True)
    assert {v.dtype for v in ck["model"].values()} == {torch.float16}
    assert {v.dtype for v in ck["normalizers"]["output"].values()} == {torch.float32}
    assert "optimizer" not in ck and "history" not in ck and ck["pretrained"]["name"] == NAME
    assert card["files"]["bytes"] == (pretrained_root / NAME / WEIGHTS_FILE).stat().st_size
    # Its predictions are the float32 run's to float16 rounding.
    sur16, sur32 = Surrogate.load(NAME), Surrogate.load(run_dir)
    x = sur32.pulse_input([0.5, 1.5], [10.0, 40.0])
    y16, y32 = sur16.predict_array(x), sur32.predict_array(x)
    assert not np.array_equal(y16, y32)
    np.testing.assert_allclose(y16, y32, rtol=0, atol=5e-3 * np.abs(y32).max())
    md = (pretrained_root / NAME / CARD_MARKDOWN).read_text()
    assert "## Stored precision" in md and "float16" in md and "| V |" in md and "## Input range" in md


def test_float32_build_is_exact_and_twice_as_large(run_dir, report_dir, tmp_path, card):
    c32 = build_pretrained(run_dir, NAME, report_dir=report_dir, out_dir=tmp_path, weights_dtype="float32")
    assert c32["precision"]["change"] == 0.0
    assert c32["files"]["bytes"] > 1.3 * card["files"]["bytes"]
    x = Surrogate.load(run_dir).pulse_input(1.0, 20.0)
    np.testing.assert_array_equal(Surrogate.load(tmp_path / NAME / WEIGHTS_FILE).predict_array(x),
                                  Surrogate.load(run_dir).predict_array(x))


def test_names_resolve_and_paths_still_win(pretrained_root, run_dir, tmp_path, monkeypatch):
    assert NAME in list_pretrained() and find_pretrained(NAME) == pretrained_root / NAME
    assert Surrogate.load(NAME).model_name == "fhn"
    # A folder of that name in the working directory is a run folder as before.
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).mkdir()
    with pytest.raises(FileNotFoundError, match="no best.pt"):
        Surrogate.load(NAME)
    with pytest.raises(FileNotFoundError, match=rf"pretrained: \[.*'{NAME}'"):
        Surrogate.load("no-such-surrogate")


@pytest.mark.parametrize("bad", ["../x", "/abs", "Ord", "", "a/b", "x" * 65])
def test_bad_names_are_refused(bad):
    with pytest.raises(PretrainedError, match="Invalid pretrained surrogate name"):
        check_name(bad)
    assert find_pretrained(bad) is None


def test_load_card_unknown_name_lists_the_known(pretrained_root):
    with pytest.raises(PretrainedError, match=rf"available: \[.*'{NAME}'"):
        load_card("nope")


def test_build_refuses_mismatches(run_dir, report_dir, data_h5, tmp_path):
    build_pretrained(run_dir, "x", report_dir=report_dir, out_dir=tmp_path)
    with pytest.raises(FileExistsError):
        build_pretrained(run_dir, "x", report_dir=report_dir, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="results.json"):
        build_pretrained(run_dir, "y", report_dir=tmp_path / "none", out_dir=tmp_path)
    other = tmp_path / "report"
    other.mkdir()
    results = json.loads((report_dir / "results.json").read_text())
    (other / "results.json").write_text(json.dumps(results | {"epoch": 1}))
    with pytest.raises(ValueError, match="evaluate this checkpoint again"):
        build_pretrained(run_dir, "y", report_dir=other, out_dir=tmp_path)
    # A report whose numbers are not this run's on this data.
    results["metrics"]["all"]["rel_l2"]["overall"] *= 2
    (other / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="do not belong together"):
        build_pretrained(run_dir, "z", report_dir=other, out_dir=tmp_path, data_path=data_h5)
    with pytest.raises(ValueError, match="weights dtype"):
        build_pretrained(run_dir, "w", report_dir=report_dir, out_dir=tmp_path, weights_dtype="int8")


def test_pretrained_cli(pretrained_root, run_dir, report_dir, tmp_path, capsys):
    assert main(["pretrained", "list"]) == 0
    assert f"{NAME}: fhn, test error" in capsys.readouterr().out
    assert main(["pretrained", "show", NAME]) == 0
    assert f"# Pretrained surrogate `{NAME}`" in capsys.readouterr().out
    assert main(["pretrained", "show", "nope"]) == 2
    rc = main(["pretrained", "build", str(run_dir), "--name", "cli", "--report", str(report_dir), "--out",
               str(tmp_path)])
    assert rc == 0 and (tmp_path / "cli" / CARD_FILE).is_file()
    assert "float16" in capsys.readouterr().out
    assert main(["pretrained", "build", str(run_dir), "--name", "cli", "--report", str(report_dir), "--out",
                 str(tmp_path)]) == 2  # exists
    assert "exists" in capsys.readouterr().err


def test_models_lists_pretrained_without_torch(pretrained_root):
    code = ("import sys; from ionfno.cli import main; rc = main(['models']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    env = {**os.environ, "IONFNO_PRETRAINED_PATH": str(pretrained_root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    listed = [line.split(":", 1)[1].split("(")[0] for line in out.stdout.splitlines()
              if "pretrained surrogates:" in line]
    assert any(NAME in [n.strip() for n in names.split(",")] for names in listed), out.stdout


SHIPPED = sorted(d.name for d in PACKAGE_DIR.iterdir() if (d / CARD_FILE).is_file())


@pytest.mark.parametrize("name", SHIPPED or [pytest.param("none", marks=pytest.mark.skip("nothing shipped"))])
def test_shipped_surrogates_load_and_match_their_cards(name, tmp_path):
    import hashlib

    folder = PACKAGE_DIR / name
    card = json.loads((folder / CARD_FILE).read_text())
    weights = (folder / WEIGHTS_FILE).read_bytes()
    assert hashlib.sha256(weights).hexdigest() == card["files"]["sha256"] and len(weights) < 5_000_000
    sur = Surrogate.load(folder / WEIGHTS_FILE)
    assert sur.model_name == card["model"] and sur.t.shape[0] == card["data"]["grid"]["n_points"]
    assert set(card["test_error"]["per_variable"]) == set(sur.state_names)
    rng = card["input"]["trained_range"]
    amplitude, duration = np.mean(rng["amplitude"]), np.mean(rng["duration"])
    out = tmp_path / "p.npz"
    pulse_args = ["--amplitude", str(amplitude), "--duration", str(duration)]
    assert main(["predict", name, *pulse_args, "--out", str(out)]) == 0
    with np.load(out) as f:
        assert f["states"].shape == (sur.t.shape[0], len(sur.state_names)) and np.isfinite(f["states"]).all()


def test_card_markdown_states_the_kind_of_inputs(card):
    from ionfno.pretrained.build import _protocol_sentence, render_card_markdown

    md = render_card_markdown(card)
    assert "One rectangular pulse from t = 0 per sample." in md
    assert "| all | 48 |" in md and "| pulses |" in md
    general = {"amplitude": [-3.0, 40.0], "duration": [0.0, 100.0], "onset": [0.0, 95.0], "n_pulses": [0, 10],
               "current": [-30.0, 40.0]}
    s = _protocol_sentence(general)
    assert "1 to 10 per sample" in s and "first onset 0 to 95" in s and "smooth random currents" in s
    assert "from t = 0" not in s


def test_a_refused_build_leaves_an_existing_surrogate_as_it_was(run_dir, report_dir, tmp_path, monkeypatch):
    # The precision check fails (any change refused): a new name gets no folder, and an existing
    # one rebuilt with overwrite keeps its weights and card byte for byte (no stray staging file).
    import ionfno.pretrained.build as build

    build_pretrained(run_dir, "x", report_dir=report_dir, out_dir=tmp_path, weights_dtype="float32")
    before = {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()}
    monkeypatch.setattr(build, "MAX_PRECISION_CHANGE", -1.0)
    with pytest.raises(ValueError, match="use float32"):
        build_pretrained(run_dir, "x", report_dir=report_dir, out_dir=tmp_path, overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()} == before
    with pytest.raises(ValueError, match="use float32"):
        build_pretrained(run_dir, "new", report_dir=report_dir, out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
