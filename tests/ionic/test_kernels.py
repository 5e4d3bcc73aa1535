"""The compiled one-cell vector fields (``IonicModel.kernel``) are the NumPy ``rhs_linear``.

The NumPy models are the tested references (physiology, the authors' MATLAB code); each
compiled twin must give the same ``dydt`` and gate coefficient ``a`` to rounding on many
random states, including V across rest, upstroke and plateau and an applied current. The
error is measured against each state's scale (its largest ``|dydt|`` over the states drawn):
a pointwise relative error is meaningless where a derivative crosses zero by cancellation.
"""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.ionic import get_model


def random_states(model, rng, n):
    """``n`` states around the default: V in [-100, 60] mV (HH: [-20, 110]), gates in (0, 1)."""
    y = model.default_state()[None, :] * rng.uniform(0.8, 1.2, (n, model.n_states))
    if model.name == "fhn":
        y = rng.uniform(-0.5, 1.2, (n, 2))
    elif model.name == "hh":
        y[:, 0] = rng.uniform(-20.0, 110.0, n)
    else:
        y[:, 0] = rng.uniform(-100.0, 60.0, n)
    gates = model.gate_mask.copy()
    if model.name.startswith("ord"):
        gates[38:40] = False  # the J_rel fluxes are linear states, not probabilities
    y[:, gates] = rng.uniform(0.0, 1.0, (n, int(gates.sum())))
    return y


def compiled(model, params, y, i_app, tables=False):
    rhs, p = model.kernel(params, tables=tables)
    f, a = np.empty_like(y), np.empty_like(y)
    for k in range(y.shape[0]):
        rhs(0.0, y[k], p, i_app[k], f[k], a[k])
    return f, a


@pytest.mark.parametrize("name,overrides", [
    ("fhn", {}), ("hh", {}), ("hh", {"g_Na": 80.0, "C_m": 1.3}), ("ord", {}), ("ord-epi", {}), ("ord-m", {}),
    ("ord", {"ko": 8.0, "GKr": 0.07, "T": 300.0}),
], ids=["fhn", "hh", "hh-params", "ord", "ord-epi", "ord-m", "ord-params"])
def test_kernel_equals_the_numpy_vector_field(name, overrides):
    model = get_model(name)
    params = model.default_params(**overrides)
    rng = np.random.default_rng(7)
    y = random_states(model, rng, 400)
    i_app = rng.uniform(-80.0, 80.0, 400)
    f, a = compiled(model, params, y, i_app)
    F, A = model.rhs_linear(0.0, y, params, i_app)
    assert np.all(np.isfinite(F))
    scale = np.maximum(np.abs(F).max(axis=0), 1e-300)
    err = np.abs(f - F).max(axis=0) / scale
    worst = int(np.argmax(err))
    assert err.max() < 1e-13, f"{name}: {model.state_names[worst]} off by {err.max():.1e} of its scale"
    np.testing.assert_allclose(a, A, rtol=1e-13, atol=0.0)
    assert np.all(a[:, ~model.gate_mask] == 0.0)


def test_kernel_propagates_nan():
    # A NaN state must reach dydt (the solver's status check relies on it), not be clipped away.
    model = get_model("ord")
    y = model.default_state()
    y[0] = np.nan
    f, _ = compiled(model, model.default_params(), y[None, :], np.zeros(1))
    assert np.isnan(f[0, 0])


@pytest.mark.parametrize("name,overrides", [("ord", {}), ("ord-epi", {}), ("ord", {"ko": 8.0, "T": 300.0})],
                         ids=["ord", "ord-epi", "ord-params"])
def test_ord_lookup_table_is_the_exact_kernel_to_interpolation_error(name, overrides):
    # Linear interpolation on a 0.05 mV grid errs by dV^2/8 times a term's curvature: below
    # 4e-5 relative for every voltage term but Ito's dti_develop (7e-3 within ~1 mV of +12 mV,
    # where it only scales two inactivation rates). On random states the derivatives and gate
    # rates agree to 2e-4 of each state's scale, exactly on the table's nodes, and outside the
    # table's range (-130..100 mV) the exact terms are used.
    from ionfno.ionic.kernels import ord as kernel

    model = get_model(name)
    params = model.default_params(**overrides)
    rng = np.random.default_rng(3)
    y = random_states(model, rng, 400)
    i_app = rng.uniform(-5.0, 80.0, 400)
    f, a = compiled(model, params, y, i_app)
    ft, at = compiled(model, params, y, i_app, tables=True)
    scale = np.abs(f).max(axis=0) + 1e-300
    assert np.max(np.abs(ft - f) / scale) < 2e-4
    assert np.max(np.abs(at - a) / (np.abs(a).max(axis=0) + 1e-300)) < 2e-4
    nodes = y[:50].copy()
    nodes[:, 0] = kernel.TABLE_V_MIN + kernel.TABLE_DV * rng.integers(0, 4600, 50)
    outside = y[:2].copy()
    outside[:, 0] = [-140.0, 120.0]
    for states in (nodes, outside):
        f, a = compiled(model, params, states, np.zeros(len(states)))
        ft, at = compiled(model, params, states, np.zeros(len(states)), tables=True)
        np.testing.assert_allclose(ft, f, rtol=1e-12, atol=1e-12 * np.abs(f).max())
    # a NaN voltage still reaches dydt through the table path
    nan_state = model.default_state()[None, :].copy()
    nan_state[0, 0] = np.nan
    assert np.isnan(compiled(model, params, nan_state, np.zeros(1), tables=True)[0][0, 0])


def test_model_without_kernel_names_the_alternatives():
    from ionfno.ionic.base import IonicModel
    from tests.solvers._models import ClampedGate

    class NoKernel(ClampedGate):
        kernel = IonicModel.kernel

    with pytest.raises(NotImplementedError, match="fast_numpy"):
        NoKernel().kernel(None)
