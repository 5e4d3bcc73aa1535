"""Pieces of the evaluation pipeline on small synthetic files: statistics, protocols, plans."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionfno.data.storage import write_arrays
from ionfno.evaluation.pipeline import EvaluateOptions, training_statistics
from ionfno.evaluation.study import study_results
from ionfno.reproduce import load_reproduce_preset, reproduce, resolve_plan
from ionfno.tuning.report import read_trials


def test_training_statistics_streams_blocks_and_matches_numpy(tmp_path, rng):
    n, N = 9, 12
    t = np.linspace(0, 1, N)
    states = (rng.standard_normal((n, 2, N)) + np.array([140.0, 0.0])[None, :, None]).astype(np.float32)
    status = np.zeros(n, dtype=np.int8)
    status[4] = 1  # a failed sample is left out, as in training
    p = write_arrays(
        tmp_path / "d.h5",
        t,
        {"train": {"states": states, "i_app": np.zeros((n, N)), "status": status}},
        {"model": "fhn", "state_names": ["V", "w"]},
    )
    mean, std = training_statistics(p, subsample=2, n_train=7, block=3)
    keep = states[[0, 1, 2, 3, 5, 6]][:, :, ::2].astype(np.float64)
    np.testing.assert_allclose(mean, keep.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, keep.std(axis=0, ddof=1), rtol=1e-9)


def test_options_and_tuning_reader_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="which"):
        EvaluateOptions(which="middle")
    with pytest.raises(ValueError, match="speed_samples"):
        EvaluateOptions(speed_samples=-1)
    with pytest.raises(ValueError, match="restitution_points"):
        EvaluateOptions(restitution_points=-1)
    assert read_trials(tmp_path) == []


def test_paper_plan_has_the_studys_three_columns():
    from ionfno.reproduce import _space_labels, format_summary

    for model in ("fhn", "hh", "ord"):
        plan = resolve_plan(model, "paper")
        assert plan.default_run is True and plan.train.preset == f"{model}-default"
        assert plan.default_config().train.epochs == 1000  # final_overrides, typed
        tune = plan.tune
        assert tune.spaces == {
            "constrained": "study-constrained",
            "unconstrained": "study-unconstrained",
        }
        s = tune.settings
        assert (s["trials"], s["grace"], s["reduction_factor"]) == (200, 250, 4)
        assert (s["n_startup_trials"], s["base_first"]) == (20, True)
    assert _space_labels(["constrained"]) == {"constrained": "constrained"}
    for bad in (["a", "a"], {"default": "constrained"}, {"x": 3}):
        with pytest.raises(ValueError, match="tune.spaces"):
            _space_labels(bad)
    with pytest.raises(ValueError, match="tune.spaces"):
        resolve_plan("fhn", {"tune": {"spaces": ["constrained", "constrained"]}})
    runs = {
        k: {"rel_l2": v, "epoch": 1000, "n_parameters": 1, "report": "r"}
        for k, v in (("default", 0.01), ("constrained", 0.009), ("unconstrained", 0.008))
    }
    table = format_summary({"model": "fhn", "preset": "paper", "runs": runs, "study": study_results("fhn")})
    rows = [line for line in table.splitlines() if line.startswith("| ") and "%" in line]
    assert [r.split(" | ")[0] for r in rows] == ["| default", "| constrained", "| unconstrained"]
    assert (
        rows[0].endswith("| 0.89 % |") and rows[1].endswith("| 0.82 % |") and rows[2].endswith("| 0.88 % |")
    )


def test_reproduce_plans_merge_model_sections_and_refuse_unknown_keys(tmp_path):
    plan = resolve_plan("ord", "quick")
    assert plan.data.n_train == 300 and plan.data.workers == 2  # merged, not replaced
    assert plan.train.preset == "fhn-quick" and plan.train.changes == {"data.subsample": 8}
    assert plan.to_dict()["train"]["overrides"] == ["data.subsample=8"]  # reproduce.json: as written
    assert resolve_plan("hh", "cpu").train.preset == "hh-default"
    for name in ("quick", "cpu", "paper", "smoke"):
        load_reproduce_preset(name)
    with pytest.raises(ValueError, match="Unknown key"):
        resolve_plan("fhn", {"data": {"n_trian": 3}})
    with pytest.raises(ValueError, match="expected one of"):
        resolve_plan("fhn", "fastest")
    # A folder holding another plan is refused before any work.
    (tmp_path / "reproduce.json").write_text(json.dumps(resolve_plan("fhn", "quick").to_dict()))
    with pytest.raises(ValueError, match="another plan"):
        reproduce("fhn", "smoke", tmp_path, progress=False)
