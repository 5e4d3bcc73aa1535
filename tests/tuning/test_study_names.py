"""Study names never lead a file outside its folder; refused settings leave no tuning folder."""

from __future__ import annotations

import pytest

from ionfno.cli import main
from ionfno.tuning.report import write_presets
from ionfno.tuning.storage import check_study_name, safe_file_stem

BAD_NAMES = ["../../../x", "/tmp/abs", "a/b", "", "x y", ".hidden", "a..b", "-flag", "n" * 101, "a\\b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=range(len(BAD_NAMES)))
def test_invalid_names_are_refused_and_sanitised(name):
    with pytest.raises(ValueError, match="Invalid study name"):
        check_study_name(name)
    stem = safe_file_stem(name)
    assert check_study_name(stem) == stem
    assert safe_file_stem(name) == stem and safe_file_stem(name + "!") != stem  # stable, distinct


@pytest.mark.parametrize("name", ["constrained", "fhn-constrained-budget20000", "study_1.v2"])
def test_valid_names_are_kept(name):
    assert check_study_name(name) == name == safe_file_stem(name)


def _summary(name: str) -> dict:
    trial = {"state": "COMPLETE", "value": 0.1, "number": 0, "n_parameters": 5, "epochs_run": 1,
             "config": {"model": {"n_modes": 4}}, "test": None}
    return {"name": name, "kind": "constrained", "trials": [trial]}


@pytest.mark.parametrize("name", ["../../../evil", "/tmp/evil", "ok/../../evil"])
def test_presets_of_a_hostile_study_name_stay_in_their_folder(tmp_path, name):
    out = tmp_path / "a" / "best"
    (path,) = write_presets(_summary(name), out)
    assert path.parent == out and path.name.endswith("-rank1.json") and path.exists()
    assert sorted(p.name for p in tmp_path.rglob("*.json")) == [path.name]


def test_tune_report_with_a_hostile_study_in_a_shared_storage(tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="../../../evil", storage=url)
    attrs = {"config": {"model": {"n_modes": 4}}, "n_parameters": 5}
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs=attrs))
    presets = tmp_path / "presets"
    assert main(["tune-report", "--storage", url, "--presets-out", str(presets), "--json"]) == 0
    written = [p for p in tmp_path.rglob("*.json")]
    assert len(written) == 1 and written[0].parent == presets
    assert "evil" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--study", "../../../x"], "Invalid study name"),
        (["--study", "/abs/x"], "Invalid study name"),
        (["--base", "no-such-preset"], "no-such-preset"),
        (["--budget", "20000", "--space", "unconstrained"], "--budget needs a space"),
    ],
    ids=["traversal", "absolute", "base", "budget"],
)
def test_refused_tune_settings_leave_no_folder(tiny_fhn, tmp_path, capsys, extra, message):
    pytest.importorskip("optuna")
    out = tmp_path / "tune"
    assert main(["tune", str(tiny_fhn), "--out", str(out), "--trials", "1", "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "x").exists()
