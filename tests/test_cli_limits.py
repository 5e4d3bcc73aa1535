"""Command-line cases of issue 20: sizes that cannot fit, odd inputs, missing extras, tampered files.

Each case: the exit code, the message, and no file left where it would mislead.
"""

from __future__ import annotations

import sys

import pytest

import ionfno._io as io
from ionfno.cli import main

GB = 10**9


@pytest.fixture
def small_machine(monkeypatch):
    """8 GB of available memory, whatever this machine has (the checks are then deterministic)."""
    monkeypatch.setattr(io, "available_memory", lambda: 8 * GB)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--n-points", "1000000000"], "a window of 1000000000 points and 1 pulse(s) needs about 80 GB"),
        (["--beats", "1000000000", "--period", "1e-7", "--duration", "0"],
         "a window of 5040 points and 1000000000 pulse(s) needs about 128 GB"),
        (["--beats", "1000000000", "--period", "1e-7", "--duration", "0", "--save-every-beat", "{tmp}/b.csv"],
         "pacing 1000000000 beats of 3 points needs about 144 GB"),
    ],
    ids=["points", "pulses", "pacing"],
)
def test_simulate_sizes_that_cannot_fit_are_refused_before_allocating(
    small_machine, tmp_path, capsys, extra, message
):
    out = tmp_path / "x.npz"
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main(["simulate", "fhn", "--amplitude", "0.1", "--duration", "1", *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "but 8 GB is available" in err and "use fewer" in err
    assert not any(tmp_path.iterdir())


def test_simulate_output_larger_than_the_disk(tmp_path, capsys, monkeypatch):
    import shutil

    class Usage:
        free = 10**5  # the trajectory takes 161 kB

    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage)
    out = tmp_path / "x.npz"
    assert main(["simulate", "fhn", "--amplitude", "0.1", "--duration", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device for the 5040-point trajectory" in err and "100 kB free" in err
    assert "[Errno" not in err and not any(tmp_path.iterdir())


def test_an_onset_after_the_window_warns(tmp_path, capsys):
    out = tmp_path / "x.npz"
    args = ["simulate", "hh", "--amplitude", "10", "--duration", "1", "--onset", "150", "--n-points", "200"]
    assert main([*args, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning: the pulse starts at 150 ms, at or after the end of the window (100 ms)" in captured.err
    assert "points over [0, 100 ms]" in captured.out and out.exists()


def test_dimensionless_quantities_print_without_a_unit_of_1(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    fhn = next(line for line in out.splitlines() if line.startswith("fhn:"))
    hh = next(line for line in out.splitlines() if line.startswith("hh:"))
    assert "default T = 100, N" in fhn and "t dimensionless" in fhn and " 1;" not in fhn
    assert "default T = 100 ms, N" in hh and "t in ms" in hh


@pytest.mark.parametrize(
    "module, argv, extra",
    [
        ("optuna", ["tune", "{data}", "--out", "{tmp}/t", "--trials", "1", "--no-progress"], "tune"),
        ("optuna", ["tune-report", "--storage", "sqlite:///{tmp}/s.db"], "tune"),
    ],
    ids=["tune", "tune-report"],
)
def test_a_missing_optional_extra_names_the_pip_command(tmp_path, capsys, monkeypatch, module, argv, extra):
    from tests.training.conftest import write_synthetic

    data = write_synthetic(tmp_path / "d.h5", n_train=4, n_val=2, n_test=2, n_points=32)
    monkeypatch.setitem(sys.modules, module, None)  # `import optuna` now fails as if not installed
    argv = [a.replace("{data}", str(data)).replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"needs the optional package {module!r}" in err and f"pip install 'ionfno[{extra}]'" in err
    assert not (tmp_path / "t").exists()


def test_a_tampered_checkpoint_is_refused_with_our_advice(tmp_path, capsys):
    torch = pytest.importorskip("torch")

    class Payload:
        def __reduce__(self):
            import os

            return (os.getcwd, ())

    bad = tmp_path / "best.pt"
    torch.save({"format": "ionfno-checkpoint", "version": 1, "model": Payload()}, bad)
    out = tmp_path / "p.npz"
    assert main(["predict", str(bad), "--amplitude", "1", "--duration", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "was refused: it holds Python objects" in err and "GLOBAL posix.getcwd" in err
    assert "weights_only" not in err and "Use a checkpoint written by `ionfno train`" in err
    assert not out.exists()


def test_a_refused_training_config_leaves_no_run_folder(tmp_path, capsys):
    from tests.training.conftest import write_synthetic

    data = write_synthetic(tmp_path / "d.h5", n_train=4, n_val=2, n_test=2, n_points=32)
    run = tmp_path / "run"
    argv = ["train", str(data), "--preset", "tiny", "--set", "model.n_modes=1000", "--out", str(run),
            "--no-progress"]
    assert main(argv) == 2
    assert "n_modes" in capsys.readouterr().err and not run.exists()
    run.mkdir()  # a folder the user made is left alone
    assert main(argv) == 2 and run.is_dir()
