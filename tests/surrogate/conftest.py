"""A small trained run, its evaluation report and a pretrained surrogate built from them.

The run is the ``tiny`` FNO trained for a few epochs on the synthetic dataset of
``tests/training/conftest.py`` (labelled FHN, states V and w) with the cell-average input
encoding of the new presets; the report is ``evaluate_run`` without its slow parts; the
pretrained folder is made by :func:`ionfno.pretrained.build.build_pretrained` and found
through ``IONFNO_PRETRAINED_PATH``, as shipped ones are found in the package.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import write_synthetic

NAME = "fhn-test"


@pytest.fixture(scope="session")
def data_h5(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("data") / "synthetic.h5")


@pytest.fixture(scope="session")
def run_dir(data_h5, tmp_path_factory) -> Path:
    from ionfno.training import apply_overrides, load_preset, train

    out = tmp_path_factory.mktemp("runs") / "tiny-run"
    cfg = apply_overrides(load_preset("tiny"), ["threads=1", "epochs=6", "data.input_encoding=cell_average"])
    train(cfg, data_h5, out, device="cpu", progress=False)
    return out


@pytest.fixture(scope="session")
def report_dir(run_dir, data_h5, tmp_path_factory) -> Path:
    from ionfno.evaluation import EvaluateOptions, evaluate_run

    out = tmp_path_factory.mktemp("reports") / "tiny-eval"
    opts = EvaluateOptions(speed_samples=0, reference_samples=0, ood_per_kind=0, dpi=40)
    evaluate_run(run_dir, data_h5, out, opts)
    return out


@pytest.fixture(scope="session")
def built_root(run_dir, report_dir, tmp_path_factory) -> Path:
    """A folder holding NAME/, built with float16 weights."""
    from ionfno.pretrained.build import build_pretrained

    root = tmp_path_factory.mktemp("pretrained")
    build_pretrained(run_dir, NAME, report_dir=report_dir, out_dir=root, weights_dtype="float16")
    return root


@pytest.fixture
def pretrained_root(built_root, monkeypatch) -> Path:
    """``built_root`` on IONFNO_PRETRAINED_PATH for one test, so that NAME resolves."""
    monkeypatch.setenv("IONFNO_PRETRAINED_PATH", str(built_root))
    return built_root


@pytest.fixture
def card(pretrained_root) -> dict:
    from ionfno.pretrained import load_card

    return load_card(NAME)
