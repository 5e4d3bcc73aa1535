"""Pruners by name: stop unpromising trials early from their per-epoch validation error.

The step a trial reports is its 1-based epoch, so ``grace`` is in epochs: no trial is stopped
before it has trained ``grace`` epochs. The study used ASHA with a grace period of 250 epochs
and a reduction factor of 4 over 1000 epochs: a trial continues past epoch ``250 * 4^r`` only if
it is in the best quarter of the trials that reached that rung.

References
----------
Li et al., "A system for massively parallel hyperparameter tuning", MLSys 2020 (ASHA),
arXiv:1810.05934. Li et al., "Hyperband: a novel bandit-based approach to hyperparameter
optimization", JMLR 18 (2018).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PRUNERS", "make_pruner"]


def _asha(grace: int, reduction_factor: int, max_epochs: int) -> Any:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=grace, reduction_factor=reduction_factor)


def _hyperband(grace: int, reduction_factor: int, max_epochs: int) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(
        min_resource=grace, max_resource=max(max_epochs, grace), reduction_factor=reduction_factor
    )


def _median(grace: int, reduction_factor: int, max_epochs: int) -> Any:
    import optuna

    # A few complete curves first, so the median is taken over more than one trial.
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=grace, interval_steps=1)


def _none(grace: int, reduction_factor: int, max_epochs: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


# name -> factory(grace [epochs], reduction_factor, max_epochs) -> optuna pruner
PRUNERS: dict[str, Callable[[int, int, int], Any]] = {
    "asha": _asha,
    "hyperband": _hyperband,
    "median": _median,
    "none": _none,
}


def make_pruner(name: str, *, grace: int, reduction_factor: int, max_epochs: int) -> Any:
    """Build the pruner registered as ``name``.

    Parameters
    ----------
    name : {"asha", "hyperband", "median", "none"}
    grace : int
        Epochs every trial trains before it can be pruned (>= 1).
    reduction_factor : int
        ASHA/Hyperband: keep the best ``1 / reduction_factor`` at each rung (>= 2).
    max_epochs : int
        Epochs of a full trial (Hyperband's maximum resource).

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones) or bad numbers.
    """
    if name not in PRUNERS:
        raise ValueError(f"Unknown pruner {name!r}; expected one of {sorted(PRUNERS)}")
    if grace < 1:
        raise ValueError(f"pruner grace period must be >= 1 epoch, got {grace}")
    if reduction_factor < 2:
        raise ValueError(f"pruner reduction factor must be >= 2, got {reduction_factor}")
    return PRUNERS[name](grace, reduction_factor, max_epochs)
