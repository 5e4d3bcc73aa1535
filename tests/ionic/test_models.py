"""Generic checks every registered ionic model must pass (names, shapes, gate diagonal, purity)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionfno.ionic import MODELS, get_model

NAMES = ["fhn", "hh", "ord", "ord-epi", "ord-m"]


def _perturbed_batch(model, n: int, rng: np.random.Generator, rel: float = 1e-2) -> np.ndarray:
    """Default state with small relative perturbations; gates stay inside [0, 1]."""
    y0 = model.default_state()
    y = np.repeat(y0[None], n, axis=0) * (1.0 + rel * rng.uniform(-1, 1, (n, y0.size)))
    mask = model.gate_mask
    y[:, mask] = np.clip(y[:, mask], 1e-9, 1.0)
    return y


@pytest.fixture(params=NAMES, ids=NAMES)
def model(request):
    return get_model(request.param)


def test_every_name_in_registry_is_tested():
    assert set(NAMES) == set(MODELS)


def test_registry_name_matches_instance(model):
    assert get_model(model.name).name == model.name
    assert model.name in MODELS


def test_named_data_is_consistent(model):
    n = model.n_states
    assert len(set(model.state_names)) == n
    assert len(model.state_units) == n
    assert set(model.gate_names) <= set(model.state_names)
    for alias, canon in model.state_aliases.items():
        assert model.state_index(alias) == model.state_names.index(canon)
    y0 = model.default_state()
    assert y0.shape == (n,) and y0.dtype == np.float64 and np.all(np.isfinite(y0))
    # describe() must be JSON-serialisable (it is written into dataset files)
    json.dumps(model.describe())


def test_rhs_shapes_dtype_and_purity(model, rng):
    p = model.default_params()
    y = _perturbed_batch(model, 5, rng)
    y_copy = y.copy()
    dy, a = model.rhs_linear(0.0, y, p, np.zeros(5))
    assert dy.shape == y.shape and a.shape == y.shape
    assert dy.dtype == np.float64 and a.dtype == np.float64
    assert np.all(np.isfinite(dy)) and np.all(np.isfinite(a))
    np.testing.assert_array_equal(y, y_copy)  # input untouched
    # a scalar i_app is the same as a constant array
    np.testing.assert_array_equal(model.rhs(0.0, y, p, 0.7), model.rhs(0.0, y, p, np.full(5, 0.7)))


def test_gate_coefficient_is_the_diagonal_jacobian(model, rng):
    """``a_i = d f_i / d y_i`` for gates (central differences), exactly 0 for other states."""
    p = model.default_params()
    y = _perturbed_batch(model, 3, rng)
    _, a = model.rhs_linear(0.0, y, p, 0.0)
    mask = model.gate_mask
    assert np.all(a[:, ~mask] == 0.0)
    for i in np.flatnonzero(mask):
        h = 1e-6 * np.maximum(np.abs(y[:, i]), 1e-3)
        yp, ym = y.copy(), y.copy()
        yp[:, i] += h
        ym[:, i] -= h
        fd = (model.rhs(0.0, yp, p, 0.0)[:, i] - model.rhs(0.0, ym, p, 0.0)[:, i]) / (2 * h)
        np.testing.assert_allclose(a[:, i], fd, rtol=1e-6, atol=1e-9, err_msg=model.state_names[i])
    # gates relax: the coefficient is strictly negative
    assert np.all(a[:, mask] < 0.0)


def test_batch_independence(model, rng):
    p = model.default_params()
    y = _perturbed_batch(model, 6, rng)
    i_app = rng.uniform(0, 5, 6)
    dy, a = model.rhs_linear(0.0, y, p, i_app)
    for k in range(6):
        dyk, ak = model.rhs_linear(0.0, y[k : k + 1], p, i_app[k : k + 1])
        np.testing.assert_allclose(dyk[0], dy[k], rtol=1e-13, atol=1e-300)
        np.testing.assert_allclose(ak[0], a[k], rtol=1e-13, atol=1e-300)


def test_positive_current_raises_dvdt(model):
    p = model.default_params()
    y = model.default_state()[None]
    dv0 = model.rhs(0.0, y, p, 0.0)[0, 0]
    dv1 = model.rhs(0.0, y, p, 2.0)[0, 0]
    assert dv1 > dv0
    np.testing.assert_allclose(dv1 - dv0, 2.0 / getattr(p, "C_m", 1.0), rtol=1e-9)
