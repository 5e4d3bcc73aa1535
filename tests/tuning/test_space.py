"""Search spaces: shipped files match the study, sampling follows the declaration, budgets hold."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from ionfno.fno import FNO1d  # noqa: E402
from ionfno.training import apply_overrides, load_preset  # noqa: E402
from ionfno.tuning import (  # noqa: E402
    STUDY_SPECTRAL_BUDGET,
    base_values,
    load_space,
    load_tune_preset,
    project_feasible,
    solve_total_budget,
    space_from_dict,
    spectral_modes,
    suggest,
)
from ionfno.tuning.space import sample_values  # noqa: E402

BASE = load_preset("fhn-default")
N_POINTS = 1260  # the study's training grid (5040 stored points, every 4th kept)


def _random_study(seed: int = 0):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def test_shipped_spaces_are_the_studys():
    shared = {
        "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "train.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
        "train.gamma": {"type": "float", "low": 0.75, "high": 0.99, "log": False},
        "model.n_layers": {"type": "int", "low": 1, "high": 5, "log": False},
        "model.padding": {"type": "int", "low": 0, "high": 15, "log": False},
    }
    for name in ("constrained", "unconstrained"):
        s = load_space(name)
        for key, spec in shared.items():
            assert s.params[key] == spec, (name, key)
        assert set(s.params["model.activation"]["choices"]) == {"tanh", "relu", "gelu", "leaky_relu"}
        assert set(s.params["model.block"]["choices"]) == {"classic", "zongyi", "residual"}
    u = load_space("unconstrained")
    assert u.choices_of("model.n_modes", None) == list(range(2, 33, 2))
    assert max(u.params["model.hidden_channels"]["choices"]) >= 256
    c = load_space("constrained")
    assert c.params["model.hidden_channels"]["choices"] == [4, 8, 16, 32, 48, 64, 80, 96, 112, 128]
    assert c.modes == {"rule": "spectral_budget", "spectral_budget": 524288}
    assert c.budget["tolerance"] == 0.02


def test_samples_follow_the_declaration():
    space = load_space("unconstrained")
    study = _random_study()
    values = []
    for _ in range(400):
        t = study.ask()
        values.append(sample_values(t, space))
        study.tell(t, 0.0)
    for key, spec in space.params.items():
        col = [v[key] for v in values]
        if spec["type"] == "categorical":
            assert set(col) == set(spec["choices"]), key  # every choice drawn, nothing else
            continue
        arr = np.asarray(col, dtype=float)
        assert arr.min() >= spec["low"] and arr.max() <= spec["high"], key
        if spec["type"] == "int":
            assert all(isinstance(x, int) for x in col), key
            assert np.all((arr - spec["low"]) % spec.get("step", 1) == 0), key
        # Log scale: log10 uniform, so its median sits at the middle of the decades; a linear
        # range would put it near the middle of the values instead.
        mid = (
            (math.log10(spec["low"]) + math.log10(spec["high"])) / 2
            if spec["log"]
            else (spec["low"] + spec["high"]) / 2
        )
        med = np.median(np.log10(arr)) if spec["log"] else np.median(arr)
        span = (
            (math.log10(spec["high"]) - math.log10(spec["low"]))
            if spec["log"]
            else spec["high"] - spec["low"]
        )
        assert abs(med - mid) < 0.1 * span, (key, med, mid)
    # The distributions optuna records are the declared ones (what TPE models).
    d = study.trials[0].distributions
    assert d["train.lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert d["model.n_modes"] == optuna.distributions.IntDistribution(2, 32, step=2)


# The authors' search spaces (MaxGhi8/HyperNOs ray_fno.py at 697e7142, ray_same_dof_fno.py at
# 0870a00c): Ray Tune quniform grids for the rates, the listed choices for the rest.
STUDY_SHARED = {
    "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": False, "step": 1e-5},
    "train.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": False, "step": 1e-6},
    "train.gamma": {"type": "float", "low": 0.75, "high": 0.99, "log": False, "step": 0.01},
    "model.n_layers": {"type": "int", "low": 1, "high": 5, "log": False},
    "model.padding": {"type": "int", "low": 0, "high": 15, "log": False},
    "model.activation": {"type": "categorical", "choices": ["tanh", "relu", "gelu", "leaky_relu"]},
    "model.block": {"type": "categorical", "choices": ["classic", "zongyi", "residual"]},
}


def test_study_spaces_are_the_authors_scripts():
    c, u = load_space("study-constrained"), load_space("study-unconstrained")
    for s in (c, u):
        for key, spec in STUDY_SHARED.items():
            assert s.params[key] == spec, (s.name, key)
    assert c.params["model.hidden_channels"]["choices"] == [4, 8, 16, 32, 48, 64, 80, 96, 112, 128]
    assert c.modes == {"rule": "spectral_budget", "spectral_budget": 524288} and c.budget is None
    assert u.params["model.n_modes"]["choices"] == [2, 4, 8, 12, 16, 20, 24, 28, 32]
    # The script's widths plus 224 and 256, the widths of the published unconstrained models.
    assert u.params["model.hidden_channels"]["choices"] == [4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256]
    for name in ("study-constrained", "study-unconstrained"):
        assert load_tune_preset(name).space == name


def test_stepped_floats_are_uniform_on_the_grid():
    space = load_space("study-constrained")
    study = _random_study(1)
    lrs, gammas = [], []
    for _ in range(300):
        t = study.ask()
        v = sample_values(t, space)
        lrs.append(v["train.lr"])
        gammas.append(v["train.gamma"])
        study.tell(t, 0.0)
    k = (np.asarray(lrs) - 1e-4) / 1e-5
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    assert set(np.round(gammas, 10)) <= {round(0.75 + 0.01 * i, 10) for i in range(25)}
    # Uniform, not log-uniform: the median lr sits near the middle of the values (5e-3), where
    # a log scale would put it near 1e-3.
    assert 3.5e-3 < np.median(lrs) < 6.5e-3
    d = study.trials[0].distributions["train.lr"]
    assert d == optuna.distributions.FloatDistribution(1e-4, 1e-2, step=1e-5)


def test_base_values_are_the_default_point_and_must_be_in_the_space():
    for model in ("fhn", "hh", "ord"):
        base = load_preset(f"{model}-default")
        v = base_values(load_space("study-unconstrained"), base)
        assert v["model.n_modes"] == 16 and v["model.hidden_channels"] == 64 and v["train.gamma"] == 0.93
    for override, key in (
        ("model.hidden_channels=72", "model.hidden_channels=72"),
        ("train.lr=0.001234567", "train.lr"),
    ):
        with pytest.raises(ValueError, match=key):
            base_values(load_space("study-constrained"), apply_overrides(BASE, [override]))


@pytest.mark.parametrize(
    ("width", "layers", "modes"),
    [(64, 4, 16), (64, 5, 12), (96, 5, 5), (128, 5, 3), (128, 4, 4), (32, 1, 256), (4, 1, 631), (8, 3, 631)],
)
def test_spectral_rule_is_the_studys(width, layers, modes):
    # k = floor(524288 / (2 L H^2)), clipped to 1 .. n_points // 2 + 1 (631 on 1260 points).
    assert spectral_modes(width, layers, N_POINTS) == modes
    assert modes == min(max(STUDY_SPECTRAL_BUDGET // (2 * layers * width**2), 1), N_POINTS // 2 + 1)


def test_constrained_suggest_derives_modes_and_counts_exactly():
    space = load_space("constrained")
    study = _random_study(1)
    for _ in range(30):
        t = study.ask()
        cfg = suggest(t, space, BASE, n_points=N_POINTS, out_channels=2)
        m = cfg.model
        assert m.n_modes == spectral_modes(m.hidden_channels, m.n_layers, N_POINTS)
        assert t.user_attrs["size_rule"] == "spectral_budget"
        assert t.user_attrs["n_parameters"] == _fno(cfg).n_parameters()
        # Sampled values reach the config exactly (floats through repr).
        assert cfg.train.lr == t.params["train.lr"] and cfg.model.block == t.params["model.block"]
        study.tell(t, 0.0)


def _fno(cfg, out_channels: int = 2) -> FNO1d:
    from ionfno.training import build_model  # the model every trial actually trains

    return build_model(cfg, in_channels=2, out_channels=out_channels)


@pytest.mark.parametrize("budget", [20_000, 35_000, 100_000, 250_000, 571_000, 1_500_000])
def test_every_budgeted_config_is_within_two_percent(budget):
    space = load_space("constrained")
    study = _random_study(budget)
    projected = 0
    for _ in range(25):
        t = study.ask()
        cfg = suggest(t, space, BASE, n_points=N_POINTS, out_channels=2, budget=budget)
        n = _fno(cfg).n_parameters()  # the model itself, not the formula
        assert abs(n - budget) <= 0.02 * budget, (t.params, n)
        assert t.user_attrs["n_parameters"] == n
        assert t.user_attrs["size_rule"] == "total_budget"
        projected += "projected_from" in t.user_attrs
        study.tell(t, 0.0)
    if budget == 20_000:
        assert projected > 0  # widths >= 64 cannot fit 20 000 parameters: they were mapped


def test_budget_with_more_outputs_and_small_grid():
    # Four HH states and a coarse grid change the count; the solver must account for both.
    for block in ("classic", "zongyi", "residual"):
        sol = solve_total_budget(
            20_000, hidden_channels=16, n_layers=2, block=block, n_points=65, out_channels=4
        )
        assert sol is not None and sol.n_modes <= 33
        m = FNO1d(
            n_modes=sol.n_modes,
            in_channels=2,
            out_channels=4,
            hidden_channels=16,
            n_layers=2,
            block=block,
            lifting_channels=sol.lifting_channels,
            projection_channels=sol.projection_channels,
        )
        assert m.n_parameters() == sol.n_parameters
        assert abs(sol.n_parameters - 20_000) <= 400


def test_projection_keeps_layers_and_moves_width():
    h, n_l, sol = project_feasible(
        20_000,
        hidden_channels=128,
        n_layers=3,
        block="classic",
        n_points=N_POINTS,
        widths=[4, 8, 16, 32, 48, 64, 128],
        layers=[1, 2, 3, 4, 5],
    )
    assert n_l == 3 and h < 64  # 3 layers of width >= 48 alone exceed 20 000 parameters
    assert abs(sol.n_parameters - 20_000) <= 400
    with pytest.raises(ValueError, match="No configuration"):
        project_feasible(
            10**9, hidden_channels=8, n_layers=1, block="classic", n_points=65, widths=[4, 8], layers=[1]
        )


def test_budget_needs_a_budget_space():
    t = _random_study().ask()
    with pytest.raises(ValueError, match="no 'budget' section"):
        suggest(t, load_space("unconstrained"), BASE, n_points=N_POINTS, out_channels=2, budget=20_000)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"params": {"train.lrr": {"type": "float", "low": 1, "high": 2}}}, "not a training config key"),
        ({"params": {"train.lr": {"type": "float", "low": 2, "high": 1}}}, "low < high"),
        ({"params": {"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}}, "low > 0"),
        (
            {"params": {"train.lr": {"type": "float", "low": 1e-3, "high": 1, "log": True, "step": 1e-3}}},
            "'step'",
        ),
        ({"params": {"train.lr": {"type": "float", "low": 0.1, "high": 0.2, "step": 0.5}}}, "'step'"),
        ({"params": {"model.block": {"type": "categorical", "choices": []}}}, "non-empty 'choices'"),
        ({"params": {"train.lr": {"type": "uniform", "low": 0, "high": 1}}}, "'type' in"),
        (
            {"params": {"train.lr": {"type": "float", "low": 0.1, "high": 1}}, "modes": {"rule": "magic"}},
            "rule",
        ),
        ({"params": {}}, "non-empty"),
        ({"params": {"train.lr": {"type": "float", "low": 0.1, "high": 1}}, "extra": 1}, "unknown field"),
    ],
)
def test_bad_space_files_are_refused(space, message):
    with pytest.raises(ValueError, match=message):
        space_from_dict(space)


def test_space_file_by_path_and_unknown_name(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(
        json.dumps({"params": {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})
    )
    assert load_space(str(p)).params["train.lr"]["log"] is True
    with pytest.raises(ValueError, match="expected one of"):
        load_space("constrainedd")
