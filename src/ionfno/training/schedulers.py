"""Learning-rate schedules, picked by name from a plain dict.

Every schedule is a standard ``torch.optim.lr_scheduler`` object stepped once per optimiser
step (``"onecycle"``, ``"cosine"``) or once per epoch (``"step"``, the study's StepLR); the
training loop asks :data:`STEP_PER_BATCH` which. Their ``state_dict`` holds plain numbers
only, so it goes into a checkpoint loaded with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import TrainConfig

__all__ = ["SCHEDULERS", "STEP_PER_BATCH", "make_scheduler"]


def _step(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    # The study: StepLR(step_size=10 epochs, gamma), stepped at the end of each epoch.
    return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)


def _cosine(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * cfg.final_lr_ratio
    )


def _onecycle(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    # Sized to the whole run, so the rate reaches its floor exactly at the last step; what
    # worked best for our 2-hour CPU budgets (RESULTS.md: FHN, HH and ORd 2-hour runs).
    return torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=cfg.lr,
        total_steps=cfg.epochs * steps_per_epoch,
        pct_start=cfg.warmup_fraction,
        anneal_strategy="cos",
        div_factor=25.0,
        # min_lr = (max_lr / div_factor) / final_div_factor = lr * final_lr_ratio
        final_div_factor=1.0 / (25.0 * cfg.final_lr_ratio),
        cycle_momentum=False,
    )


def _constant(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


SCHEDULERS: dict[
    str, Callable[[torch.optim.Optimizer, TrainConfig, int], torch.optim.lr_scheduler.LRScheduler]
] = {
    "step": _step,
    "cosine": _cosine,
    "onecycle": _onecycle,
    "constant": _constant,
}

# Schedules stepped after every optimiser step (the others after every epoch).
STEP_PER_BATCH = {"step": False, "cosine": True, "onecycle": True, "constant": False}


def make_scheduler(name: str, opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Build the schedule ``name`` for ``opt``.

    Parameters
    ----------
    name : str
        A key of :data:`SCHEDULERS`.
    opt : torch.optim.Optimizer
    cfg : TrainConfig
        Supplies lr, epochs, step_size, gamma, final_lr_ratio, warmup_fraction.
    steps_per_epoch : int
        Optimiser steps per epoch (sizes the per-step schedules to the run).

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message lists the valid names.
    """
    try:
        factory = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"Unknown scheduler {name!r}; expected one of {sorted(SCHEDULERS)}") from None
    return factory(opt, cfg, steps_per_epoch)
