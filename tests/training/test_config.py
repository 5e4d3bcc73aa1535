"""Run configs: shipped presets, typed overrides, and the errors for bad configs."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from ionfno.training import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    list_presets,
    load_config,
    load_preset,
    save_config,
    with_changes,
)

STUDY_PRESETS = [
    "fhn-default",
    "hh-default",
    "ord-default",
    "fhn-constrained",
    "hh-constrained",
    "hh-unconstrained",
    "ord-constrained",
    "ord-constrained-v2",
    "ord-unconstrained",
    "fhn-unconstrained",
]


def test_shipped_presets_include_the_study_and_cpu_ones():
    assert set(STUDY_PRESETS + ["fhn-quick", "tiny"]) <= set(list_presets())


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_and_describes_itself(name):
    cfg = load_preset(name)
    assert isinstance(cfg, RunConfig)
    assert len(cfg.description) > 20  # where the numbers come from
    # Round trip through the checkpoint form.
    assert load_config_roundtrip(cfg) == cfg


@pytest.mark.parametrize("name", ["fhn-constrained-cpu", "fhn-constrained-2h"])
def test_cpu_budget_runs_of_the_constrained_model_keep_the_study_architecture(name):
    # RESULTS.md reports them as "the study's constrained architecture": apart from training,
    # only the padding differs (0 there, 5 points in the published configuration), as their
    # descriptions say.
    cpu, study = load_preset(name), load_preset("fhn-constrained")
    assert with_changes(cpu, model={"padding": 5}).model == study.model
    assert (cpu.model.padding, study.model.padding) == (0, 5)
    assert "pads 5 points" in cpu.description
    assert cpu.data == study.data


def load_config_roundtrip(cfg):
    from ionfno.training import config_from_dict

    return config_from_dict(json.loads(json.dumps(asdict(cfg))))


# Parameter counts of the study's chosen models as published (Pellegrini et al. 2025,
# arXiv:2505.14039, tables of the unconstrained and constrained tuning results).
@pytest.mark.parametrize(
    ("name", "n_states", "expected", "rtol"),
    [
        ("fhn-constrained", 2, 571_000, 0.002),
        ("hh-constrained", 4, 626_000, 0.002),
        ("hh-unconstrained", 4, 13.4e6, 0.005),
        ("ord-unconstrained", 41, 12.4e6, 0.005),
        ("ord-constrained", 41, 0.5e6, 0.1),
    ],
)
def test_study_presets_have_the_study_parameter_counts(name, n_states, expected, rtol):
    from ionfno.fno import fno_parameter_count

    m = load_preset(name).model
    n = fno_parameter_count(
        n_modes=m.n_modes,
        in_channels=2,
        out_channels=n_states,
        hidden_channels=m.hidden_channels,
        n_layers=m.n_layers,
        block=m.block,
        lifting_channels=m.lifting_channels,
        projection_channels=m.projection_channels,
    )
    assert n == pytest.approx(expected, rel=rtol)


def test_constrained_presets_respect_the_spectral_budget():
    # k = floor(524288 / (2 L width^2)) (REFERENCE section 6)
    for name in ("fhn-constrained", "hh-constrained", "ord-constrained"):
        m = load_preset(name).model
        assert m.n_modes == 524288 // (2 * m.n_layers * m.hidden_channels**2), name


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ValueError, match="fhn-quick"):
        load_preset("fhn-quik")


def test_overrides_are_typed():
    cfg = apply_overrides(
        load_preset("tiny"),
        [
            "epochs=3",
            "model.hidden_channels=32",
            "train.lr=3e-3",
            "patience=none",
            "only_ok=false",
            "block=zongyi",
            "grad_clip=1",
            "time_limit_s=7200",
            "description=a test",
        ],
    )
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.model.hidden_channels == 32
    assert cfg.train.lr == 3e-3 and isinstance(cfg.train.lr, float)
    assert cfg.train.patience is None
    assert cfg.data.only_ok is False
    assert cfg.model.block == "zongyi"
    assert cfg.train.grad_clip == 1.0 and isinstance(cfg.train.grad_clip, float)
    assert cfg.train.time_limit_s == 7200.0 and isinstance(cfg.train.time_limit_s, float)
    assert cfg.description == "a test"
    # The input is not modified, and no overrides is the identity.
    base = load_preset("tiny")
    apply_overrides(base, ["epochs=99"])
    assert base.train.epochs == load_preset("tiny").train.epochs != 99
    assert apply_overrides(cfg, []) == cfg


def test_typed_changes_equal_the_parsed_overrides():
    # Tuning and reproduction change configs with values, not text: the same result as --set.
    import numpy as np

    base = load_preset("tiny")
    typed = with_changes(
        base,
        {"model.hidden_channels": np.int64(32), "train.lr": 3e-3, "patience": None, "description": "a test"},
        train={"grad_clip": 1},
    )
    text = apply_overrides(base, ["model.hidden_channels=32", "train.lr=0.003", "patience=none",
                                  "description=a test", "grad_clip=1"])
    assert typed == text
    assert isinstance(typed.model.hidden_channels, int) and isinstance(typed.train.grad_clip, float)
    with pytest.raises(ValueError, match="valid keys"):
        with_changes(base, {"model.widht": 3})
    with pytest.raises(ValueError, match="train.epochs must be an integer"):
        with_changes(base, {"train.epochs": 2.5})


def test_one_config_diff_ignores_the_settings_that_do_not_change_results():
    from ionfno.training import RESULT_FREE, config_diff

    base = load_preset("tiny")
    free = with_changes(base, train={"threads": 2, "workers": 2, "eval_batch_size": 7, "checkpoint_every": 3},
                        description="other words")
    assert {"train.threads", "train.workers", "description"} <= RESULT_FREE
    assert config_diff(base, free) == []
    # A saved dict (a checkpoint's, an older version's without newer fields) compares the same.
    old = asdict(base)
    del old["train"]["time_limit_s"]
    assert config_diff(old, base) == []
    assert config_diff(asdict(base), with_changes(base, {"train.lr": 0.5, "model.n_layers": 3})) == [
        "model.n_layers: 2 -> 3",
        "train.lr: 0.01 -> 0.5",
    ]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("epochz=3", "valid keys: .*train.epochs"),
        ("model.widht=3", "valid keys"),
        ("epochs=3.5", "train.epochs must be an integer"),
        ("train.lr=fast", "train.lr must be a number"),
        ("model.block=fancy", r"expected one of \['classic', 'zongyi', 'residual'\]"),
        ("scheduler=linear", "onecycle"),
        ("only_ok=maybe", "true or false"),
        ("epochs", "key=value"),
        ("epochs=0", "train.epochs must be > 0"),
        ("train.warmup_fraction=1.5", r"warmup_fraction must be in \(0, 1\)"),
        ("train.time_limit_s=0", "time_limit_s must be a positive number of seconds"),
        ("train.time_limit_s=inf", "time_limit_s must be a positive number of seconds"),
        ("train.time_limit_s=2h", "train.time_limit_s must be a number"),
        ("chunk=-1", "model.chunk must be >= 0"),
        ("chunk=16", "needs data.input_normalization = 'channel'"),
        ("chunk=16 normalization=channel", "needs data.normalization = 'pointwise'"),
        ("chunk=4 input_normalization=channel", "n_modes = 8 exceeds the 3 modes a chunk of 4"),
        ("chunk=16 input_normalization=channel coarse_epochs=2", "cannot train on a coarse grid"),
        ("chunk=16 input_normalization=channel padding=4", "padding must be 0"),
    ],
)
def test_bad_overrides_are_refused_with_a_clear_message(item, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(load_preset("tiny"), item.split())


def test_dataclasses_validate_their_choices():
    with pytest.raises(ValueError, match="model.activation"):
        ModelConfig(activation="swish")
    with pytest.raises(ValueError, match="data.normalization"):
        DataConfig(normalization="minmax")
    with pytest.raises(ValueError, match="train.batch_size"):
        TrainConfig(batch_size=0)


def test_config_file_roundtrip_and_errors(tmp_path):
    cfg = apply_overrides(load_preset("fhn-quick"), ["epochs=7"])
    save_config(cfg, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == cfg

    (tmp_path / "partial.json").write_text(json.dumps({"train": {"epochs": 2, "lr": 1}}))
    partial = load_config(tmp_path / "partial.json")
    assert partial.train.epochs == 2 and partial.train.lr == 1.0 and partial.model == ModelConfig()

    (tmp_path / "bad_key.json").write_text(json.dumps({"train": {"epoch": 2}}))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['train.epoch'\].*epochs"):
        load_config(tmp_path / "bad_key.json")
    (tmp_path / "bad_section.json").write_text(json.dumps({"optim": {}}))
    with pytest.raises(ValueError, match="unknown section"):
        load_config(tmp_path / "bad_section.json")
    (tmp_path / "bad_type.json").write_text(json.dumps({"model": {"n_layers": "four"}}))
    with pytest.raises(ValueError, match="model.n_layers must be an integer"):
        load_config(tmp_path / "bad_type.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(tmp_path / "broken.json")
    with pytest.raises(OSError, match="Cannot read config file"):
        load_config(tmp_path / "missing.json")
