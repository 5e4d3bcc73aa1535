"""Every dataset preset is ground truth: within 1e-3 of each state's range on every part.

The metric of ``tests/solvers/test_agreement.py`` (largest error over time relative to each
state's range, with the per-unit floors), applied to samples of every part of each mixture
preset, simulated exactly as ``ionfno generate`` does (the preset's resolved solver
settings, its grid), against a much tighter solution.

* Default run: the first sample of each part of the ``train`` split (seed 0), plus the
  hardest sample found so far (HH near the onset of repetitive firing, whose late spikes move
  most per unit of local error), against ``fast`` itself at a tolerance 50x (HH) to 1000x
  below the preset's (its error is linear in the tolerance). That proxy is checked against
  SciPy Radau in the slow tests (within 3e-5 of range).
* ``-m slow``: several samples per part against SciPy Radau at tol 1e-10, the reference the
  presets' notes quote.
"""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.data.generate import make_config
from ionfno.data.mixtures import sample_parameters
from ionfno.ionic import get_model
from ionfno.solvers import ReferenceSolver, Status, simulate, state_floor
from ionfno.stimulus import pulse

from ..solvers.test_agreement import range_relative_error

BOUND = 1e-3
# tolerance of the default run's proxy truth: far below every preset, cheap enough for ORd
PROXY_RTOL = {"fhn": 1e-10, "hh": 1e-10, "ord": 5e-8}
# samples the per-part draw may miss: (part label, amplitude, duration)
HARD = {"hh": [("general", 6.261, 92.49), ("t_fin", 6.22, 100.0)], "fhn": [], "ord": []}


def preset_samples(model: str, per_part: int):
    """(config, {part: (amplitude, duration, onset)}) for the first ``per_part`` samples per part."""
    config = make_config(model)
    p = sample_parameters(config.mixture, seed=0, split="train", t_end=config.t_end)
    out = {}
    for part in config.mixture.part_names:
        rows = np.flatnonzero(p["part"] == part)[:per_part]
        out[part] = (p["amplitude"][rows], p["duration"][rows], p["onset"][rows])
    for part, a, d in HARD[model]:
        out[f"{part} (hard)"] = (np.array([a]), np.array([d]), np.zeros(1))
    return config, out


def check_preset(model_name: str, per_part: int, truth_solver) -> None:
    config, parts = preset_samples(model_name, per_part)
    model = get_model(model_name)
    s = config.solver
    worst = []
    for part, (A, T, onset) in parts.items():
        stim = pulse(A, T, onset)
        kw = dict(t_end=config.t_end, t_eval=config.grid)
        data = simulate(model, stim, method=s.method, rtol=s.rtol, atol=np.asarray(s.atol), **kw)
        truth = truth_solver(model, stim, kw)
        assert np.all(data.status == Status.OK) and np.all(truth.status == Status.OK), part
        err = range_relative_error(data, truth, model)
        i, j = np.unravel_index(np.argmax(err), err.shape)
        worst.append((err.max(), part, model.state_names[j], A[i], T[i]))
    e, part, state, a, d = max(worst)
    assert e <= BOUND, (f"{model_name} preset (rtol {s.rtol:g}): error {e:.2e} of range in {state}, part "
                        f"{part} (A={a:.4g}, T={d:.4g}); all parts: "
                        + ", ".join(f"{w[1]} {w[0]:.1e}" for w in worst))


def proxy(model, stim, kw):
    r = PROXY_RTOL[model.name]
    return simulate(model, stim, rtol=r, atol=r * state_floor(model), **kw)


def radau(model, stim, kw):
    return simulate(model, stim, method=ReferenceSolver("Radau", tol=1e-10), **kw)


@pytest.mark.parametrize("model", ["fhn", "hh", "ord"])
def test_preset_is_within_1e3_of_range_on_every_part(model):
    check_preset(model, 1, proxy)


@pytest.mark.slow
@pytest.mark.parametrize("model,per_part", [("fhn", 8), ("hh", 8), ("ord", 2)])
def test_preset_is_within_1e3_of_range_against_radau(model, per_part):
    check_preset(model, per_part, radau)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["fhn", "hh", "ord"])
def test_proxy_truth_agrees_with_radau(model):
    # The default run's truth is fast at PROXY_RTOL: it must itself be within 3e-5 of Radau.
    config, parts = preset_samples(model, 1)
    m = get_model(model)
    kw = dict(t_end=config.t_end, t_eval=config.grid)
    A, T, onset = (np.concatenate(x) for x in zip(*parts.values(), strict=True))
    stim = pulse(A, T, onset)
    err = range_relative_error(proxy(m, stim, kw), radau(m, stim, kw), m)
    assert err.max() < 3e-5, err.max()
