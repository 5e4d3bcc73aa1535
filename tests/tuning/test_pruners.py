"""Pruners prune bad curves and never the best one, on a synthetic learning-curve objective."""

from __future__ import annotations

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from ionfno.tuning import PRUNERS, make_pruner  # noqa: E402
from ionfno.tuning.report import epochs_to_within  # noqa: E402


def _run(pruner_name: str, n_trials: int = 30, epochs: int = 16, seed: int = 0):
    """Curves c_i * (1 + 1/epoch): ordered by c_i at every epoch, so the best trial is known."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        pruner=make_pruner(pruner_name, grace=2, reduction_factor=3, max_epochs=epochs)
    )
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.1, 1.0, n_trials)
    for c in scales:
        t = study.ask()
        state = optuna.trial.TrialState.COMPLETE
        for epoch in range(1, epochs + 1):
            t.report(c * (1 + 1 / epoch), epoch)
            if t.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        study.tell(
            t, c * (1 + 1 / epochs) if state == optuna.trial.TrialState.COMPLETE else None, state=state
        )
    return study, scales


@pytest.mark.parametrize("name", ["asha", "hyperband", "median"])
def test_pruners_prune_bad_curves_and_keep_the_best(name):
    study, scales = _run(name)
    states = [t.state for t in study.trials]
    n_pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states)
    assert n_pruned >= 5, name
    best = int(np.argmin(scales))
    assert states[best] == optuna.trial.TrialState.COMPLETE
    # No trial is stopped before the grace period of 2 epochs.
    assert min(max(t.intermediate_values) for t in study.trials) >= 2
    # Pruned trials are worse on average than complete ones (pruning is not random).
    pruned_c = [c for c, s in zip(scales, states, strict=True) if s == optuna.trial.TrialState.PRUNED]
    kept_c = [c for c, s in zip(scales, states, strict=True) if s == optuna.trial.TrialState.COMPLETE]
    assert np.mean(pruned_c) > np.mean(kept_c)


def test_none_prunes_nothing():
    study, _ = _run("none")
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_registry_errors_list_the_names():
    assert set(PRUNERS) == {"asha", "hyperband", "median", "none"}
    with pytest.raises(ValueError, match="expected one of"):
        make_pruner("sha", grace=1, reduction_factor=4, max_epochs=10)
    with pytest.raises(ValueError, match="grace"):
        make_pruner("asha", grace=0, reduction_factor=4, max_epochs=10)


def test_epochs_to_within_five_percent():
    # Best-so-far reaches 1.05 x the final best (1.0) at epoch 4; the later spike does not count.
    curve = {1: 3.0, 2: 1.5, 3: 1.2, 4: 1.04, 5: 2.0, 6: 1.0}
    assert epochs_to_within(curve) == 4
    assert epochs_to_within({1: 1.0, 2: 1.0}) == 1
    assert epochs_to_within({}) is None
