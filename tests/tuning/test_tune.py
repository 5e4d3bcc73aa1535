"""Real tuning runs on a tiny FHN dataset: outputs, pruning, failures, resume after kill, workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from ionfno.cli import main  # noqa: E402
from ionfno.fno import FNO1d  # noqa: E402
from ionfno.training import load_config  # noqa: E402
from ionfno.tuning import TuneConfig, default_storage_url, tune  # noqa: E402
from ionfno.tuning.storage import open_storage  # noqa: E402

from .conftest import FAST  # noqa: E402

TINY_SPACE = {
    "description": "test space: tiny models only",
    "params": {
        "train.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
        "model.n_layers": {"type": "int", "low": 1, "high": 2},
        "model.hidden_channels": {"type": "categorical", "choices": [4, 8]},
        "model.n_modes": {"type": "int", "low": 2, "high": 8, "step": 2},
        "model.activation": {"type": "categorical", "choices": ["gelu", "tanh"]},
        "model.block": {"type": "categorical", "choices": ["classic", "zongyi", "residual"]},
    },
}


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("space") / "tiny_space.json"
    p.write_text(json.dumps(TINY_SPACE))
    return str(p)


def _cfg(space_file, **kw) -> TuneConfig:
    d = dict(
        space=space_file,
        trials=3,
        pruner="none",
        base="tiny",
        overrides=list(FAST),
        n_startup_trials=2,
        threads=1,
        device="cpu",
        heartbeat_interval=5,
    )
    d.update(kw)
    return TuneConfig(**d)


def _trials(out: Path, study: str = "tiny_space"):
    s = optuna.load_study(study_name=study, storage=default_storage_url(out))
    return s.get_trials(deepcopy=False)


def _count(trials, *states):
    return sum(t.state.name in states for t in trials)


def test_tune_outputs_pruning_and_report(tiny_fhn, space_file, tmp_path, capsys):
    out = tmp_path / "tune"
    cfg = _cfg(
        space_file, trials=6, pruner="asha", grace=1, reduction_factor=2, overrides=[*FAST, "train.epochs=3"]
    )
    summary = tune(cfg, tiny_fhn, out, progress=False)
    trials = _trials(out)
    assert summary.complete + summary.pruned == 6 == _count(trials, "COMPLETE", "PRUNED")
    assert summary.pruned >= 1 and summary.complete >= 1  # ASHA stopped someone at a rung
    for t in trials:
        d = out / "trials" / f"{t.number:04d}"
        record = json.loads((d / "trial.json").read_text())
        assert record["state"] == t.state.name and record["params"] == t.params
        cfg_t = load_config(d / "config.json")
        m = cfg_t.model
        n = FNO1d(
            n_modes=m.n_modes,
            in_channels=2,
            out_channels=2,
            hidden_channels=m.hidden_channels,
            n_layers=m.n_layers,
            block=m.block,
            lifting_channels=m.lifting_channels,
            projection_channels=m.projection_channels,
        ).n_parameters()
        assert t.user_attrs["n_parameters"] == record["n_parameters"] == n
        assert m.hidden_channels == t.params["model.hidden_channels"] and cfg_t.train.epochs == 3
        assert (d / "best.pt").exists() and (d / "metrics.csv").exists()
        n_rows = len((d / "metrics.csv").read_text().strip().splitlines()) - 1
        assert n_rows == len(t.intermediate_values) == t.user_attrs["epochs_run"]
        if t.state.name == "PRUNED":
            assert n_rows < 3
        else:
            assert n_rows == 3 and t.value == pytest.approx(min(t.intermediate_values.values()))
            assert 0 < t.user_attrs["test"]["rel_l2"] < 5

    capsys.readouterr()
    assert main(["tune-report", str(out), "--json", "--top", "2"]) == 0
    rep = json.loads(capsys.readouterr().out)
    (study,) = rep["studies"]
    assert len(study["trials"]) == 6
    for row, t in zip(study["trials"], trials, strict=True):
        assert (row["number"], row["state"], row["value"], row["params"]) == (
            t.number,
            t.state.name,
            t.value,
            t.params,
        )
        assert row["n_parameters"] == t.user_attrs["n_parameters"]
    best = min((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert study["best"]["number"] == best.number
    preset = load_config(rep["presets"][0])  # ready to train: loads as a training config
    assert preset.model.hidden_channels == best.params["model.hidden_channels"]
    assert preset.train.lr == best.params["train.lr"]
    assert main(["tune-report", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"best: trial {best.number}" in text

    # Asking again for the same number of trials does nothing; asking for more continues.
    summary = tune(
        _cfg(
            space_file,
            trials=7,
            pruner="asha",
            grace=1,
            reduction_factor=2,
            overrides=[*FAST, "train.epochs=3"],
        ),
        tiny_fhn,
        out,
        progress=False,
    )
    assert summary.complete + summary.pruned == 7


def test_failing_trials_are_recorded_and_the_study_goes_on(tiny_fhn, space_file, tmp_path, monkeypatch):
    import torch

    import ionfno.training as training

    real_train, calls = training.train, []

    def flaky_train(cfg, *a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        if len(calls) == 3:
            raise FloatingPointError("Training diverged at epoch 1 (train loss nan, val nan)")
        return real_train(cfg, *a, **kw)

    monkeypatch.setattr(training, "train", flaky_train)
    out = tmp_path / "tune"
    summary = tune(_cfg(space_file, trials=2), tiny_fhn, out, progress=False)
    trials = _trials(out)
    assert summary.complete == 2 and summary.failed == 2
    reasons = [t.user_attrs.get("fail_reason", "") for t in trials if t.state.name == "FAIL"]
    assert any("OutOfMemoryError" in r for r in reasons) and any("FloatingPointError" in r for r in reasons)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "FAIL", "COMPLETE"]


def test_a_broken_setup_stops_after_max_failures(tiny_fhn, space_file, tmp_path, monkeypatch):
    import ionfno.training as training

    def broken(*a, **kw):
        raise RuntimeError("broken setup")

    monkeypatch.setattr(training, "train", broken)
    summary = tune(_cfg(space_file, trials=5, max_failures=3), tiny_fhn, tmp_path / "t", progress=False)
    assert summary.failed == 3 and summary.complete == 0
    assert "3 failed trials in a row" in summary.stopped


def _tune_cmd(data, out, space_file, trials, *extra):
    return [
        sys.executable,
        "-m",
        "ionfno.cli",
        "tune",
        str(data),
        "--out",
        str(out),
        "--space",
        space_file,
        "--trials",
        str(trials),
        "--base",
        "tiny",
        "--pruner",
        "none",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        *[a for s in FAST for a in ("--set", s)],
        *extra,
    ]


def _env():
    return os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_resume_after_kill_loses_no_finished_trial(tiny_fhn, space_file, tmp_path):
    out = tmp_path / "tune"
    cmd = _tune_cmd(tiny_fhn, out, space_file, 2, "--set", "train.epochs=10")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    victim = out / "trials" / "0001" / "metrics.csv"
    t_end = time.monotonic() + 120
    while not victim.exists():  # trial 0 finished, trial 1 has checkpointed at least one epoch
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < t_end, "trial 1 never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: (t.state.name, t.value) for t in _trials(out)}
    assert before[0][0] == "COMPLETE" and before[1][0] == "RUNNING"  # killed mid-trial

    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    trials = _trials(out)
    assert _count(trials, "COMPLETE", "PRUNED") == 2
    assert (trials[0].state.name, trials[0].value) == before[0]  # kept, not re-run
    killed = trials[1]
    assert killed.state.name == "FAIL" and "died" in killed.user_attrs["fail_reason"]
    retries = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == killed.params
    assert retries[0].user_attrs["resumed_at_epoch"] >= 1  # continued from the dead trial's checkpoint
    assert sorted(retries[0].intermediate_values) == list(range(1, 11))
    assert len({t.number for t in trials}) == len(trials) == 3


def test_two_processes_share_one_study(tiny_fhn, space_file, tmp_path):
    out = tmp_path / "tune"
    cmd = _tune_cmd(tiny_fhn, out, space_file, 4)
    # Create the database first so that the two workers do not race to create its tables.
    out.mkdir()
    open_storage(default_storage_url(out), heartbeat_interval=None)
    procs = [
        subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)
    ]
    logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    trials = _trials(out)
    assert _count(trials, "COMPLETE", "PRUNED") == 4
    assert all(t.user_attrs.get("surplus") for t in trials if t.state.name == "FAIL")
    assert len({t.number for t in trials}) == len(trials)
    done = [json.dumps(t.params, sort_keys=True) for t in trials if t.state.name == "COMPLETE"]
    assert len(set(done)) == len(done)  # no configuration trained twice
    pids = {t.user_attrs["worker"]["pid"] for t in trials if t.state.name == "COMPLETE"}
    assert len(pids) == 2  # both workers ran trials


def test_jobs_run_trials_in_threads(tiny_fhn, space_file, tmp_path):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores < 2:
        pytest.skip("needs 2 cores")
    summary = tune(_cfg(space_file, trials=3, jobs=2), tiny_fhn, tmp_path / "t", progress=False)
    assert summary.complete == 3
    with pytest.raises(ValueError, match="cores"):
        tune(_cfg(space_file, jobs=cores + 1), tiny_fhn, tmp_path / "t2", progress=False)


def test_base_first_makes_the_base_configuration_the_first_trial(tiny_fhn, space_file, tmp_path, capsys):
    # The study evaluated its default configuration first (HyperOptSearch points_to_evaluate).
    from ionfno.training import apply_overrides, load_preset
    from ionfno.tuning import base_values, load_space

    out = tmp_path / "t"
    summary = tune(_cfg(space_file, trials=2, base_first=True), tiny_fhn, out, progress=False)
    assert summary.complete == 2
    first, second = sorted(_trials(out), key=lambda t: t.number)
    base = apply_overrides(load_preset("tiny"), list(FAST))
    assert first.params == base_values(load_space(space_file), base)
    assert first.user_attrs["base_config"] == "tiny" and "base_config" not in second.user_attrs
    # Running again does not enqueue the base a second time.
    tune(_cfg(space_file, trials=3, base_first=True), tiny_fhn, out, progress=False)
    assert sum(t.params == first.params for t in _trials(out)) == 1
    # A base value outside the space is refused before any trial, naming the key.
    capsys.readouterr()
    args = ["tune", str(tiny_fhn), "--out", str(tmp_path / "t2"), "--space", space_file, "--base", "tiny"]
    assert main([*args, "--base-first", "--set", "train.lr=0.5", "--no-progress"]) == 2
    assert "train.lr=0.5" in capsys.readouterr().err


def test_cli_refuses_bad_input(tiny_fhn, space_file, tmp_path, capsys):
    base = ["tune", str(tiny_fhn), "--out", str(tmp_path / "t"), "--base", "tiny", "--no-progress"]
    assert main([*base, "--pruner", "sha"]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert main([*base, "--space", "unconstrained", "--budget", "20000"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main([*base, "--space", space_file, "--set", "train.epochz=3"]) == 2
    assert "valid keys" in capsys.readouterr().err
    assert main(["tune-report", str(tmp_path / "nothing")]) == 2
    # A study refuses to continue with other settings.
    run = [
        *base,
        "--space",
        space_file,
        "--trials",
        "1",
        "--pruner",
        "none",
        "--threads",
        "1",
        *[a for s in FAST for a in ("--set", s)],
    ]
    assert main(run) == 0
    assert main([*run, "--set", "train.lr=0.5"]) == 2
    assert "created with a different base" in capsys.readouterr().err
