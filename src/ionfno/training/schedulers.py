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

__all__ = ["SCHEDULERS", "STEP_PER_BATCH", "make_scheduler", "resize_scheduler"]


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


def resize_scheduler(
    name: str, scheduler, opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
):
    """The schedule ``name`` re-sized to ``cfg.epochs`` at the step ``scheduler`` has reached.

    A time-limited run re-plans its length from its own epoch times
    (:func:`ionfno.training.timing.replan_epochs`). Per-epoch schedules ("step", "constant") do
    not depend on the length and come back as they are. "onecycle" continues as the one-cycle
    schedule of the new length would be at this step (its rate is a closed-form function of
    step / total steps: a small jump, down when the run got shorter). "cosine" continues from
    the current rate to ``lr * final_lr_ratio`` at the new end (torch's recursive form,
    ``lr_t - lr_min = (lr_n - lr_min) (1 + cos(pi t / T)) / (1 + cos(pi n / T))``: no jump).

    Parameters
    ----------
    name : str
        The run's schedule, a key of :data:`SCHEDULERS`.
    scheduler : torch.optim.lr_scheduler.LRScheduler
        The schedule so far; ``scheduler.last_epoch`` optimiser steps taken.
    opt : torch.optim.Optimizer
    cfg : TrainConfig
        The new plan (``epochs``) and the schedule's settings.
    steps_per_epoch : int

    Returns
    -------
    torch.optim.lr_scheduler.LRScheduler
        A schedule to step from here on (a new object for the per-step schedules).
    """
    if not STEP_PER_BATCH[name]:
        return scheduler
    done = scheduler.last_epoch
    if not 0 < done < cfg.epochs * steps_per_epoch:
        raise ValueError(f"cannot re-size the {name!r} schedule at step {done} to "
                         f"{cfg.epochs} epochs of {steps_per_epoch} steps")
    lr = [g["lr"] for g in opt.param_groups]
    new = make_scheduler(name, opt, cfg, steps_per_epoch)  # one-cycle: back at its step 0
    if name == "cosine":  # the next step's rate comes from the current one, and the new length
        for g, v in zip(opt.param_groups, lr, strict=True):
            g["lr"] = v
        new.last_epoch, new._last_lr = done, lr
    else:  # closed form: the rate of step `done` of the new length
        new.last_epoch = done - 1
        new.step()
    return new
