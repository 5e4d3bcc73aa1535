"""Training to a wall-clock budget (``train.time_limit_s``): time real steps, plan the epochs.

Before the first epoch, :func:`probe_epoch_seconds` times a few real optimiser steps of the
run's model (through the run's step strategy, so data-parallel ranks are timed together) and
one validation batch; :func:`plan_epochs` turns that into the number of epochs that fits
:data:`PLAN_FILL` of the budget. Once the run has timed its own epochs (``train.replan_after``
full ones), :func:`replan_epochs` re-counts the epochs that fit the rest of the budget after
every epoch, and the loop re-sizes the plan and its per-step schedule when that count has moved
(:func:`ionfno.training.schedulers.resize_scheduler`). The loop keeps the plan in the checkpoint
(a resumed run follows it), and stops after an epoch if the next one would end past the budget.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from .config import RunConfig, TrainConfig

__all__ = [
    "PLAN_FILL", "REPLAN_FILL", "REPLAN_TOLERANCE", "early_epochs", "full_epoch_seconds",
    "probe_epoch_seconds", "plan_epochs", "replan_epochs",
]

#: Share of ``train.time_limit_s`` the plan fills. Real epochs ran about 4 % longer than the
#: probe's estimate on average (HH, hh-quick: probe 10.5 s, epochs 9.3-12.6 s, mean 10.9 s; the
#: probe's few samples sit in cache, real batches are gathered from the whole split, and
#: checkpoints are written), which a fill of 0.95 left 1 % of room for; 0.90 leaves about 5 %.
PLAN_FILL = 0.90
#: Share of the rest of the budget a re-plan fills: its epoch times are measured, not probed,
#: but real epochs still vary (FHN rollout, 2 ranks: 134-205 s around a mean of 172 s).
REPLAN_FILL = 0.95
#: A re-plan moves the plan only when the epochs that fit differ from it by at least this share
#: of the plan (and by one epoch at least), so that jitter between epochs leaves the schedule be.
REPLAN_TOLERANCE = 0.05
#: The probe's timed steps run as this many separate runs; their median per-step time counts.
CHUNKS = 3


def probe_epoch_seconds(
    step: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    *,
    cfg: RunConfig,
    loss_fn: Any,
    steps: int = 12,
    warmup: int = 3,
    teacher_forcing: bool = False,
) -> float:
    """Wall seconds of one epoch on ``x`` plus its share of validation, timed on real steps.

    Runs ``warmup`` untimed steps and then ``steps`` optimiser steps of ``step.model`` (through
    the strategy ``step``, :mod:`ionfno.training.steps`) with a zero learning rate, and one
    validation batch (``teacher_forcing``: teacher-forced steps, :mod:`ionfno.training.steps`;
    validation always rolls out); the weights and the global torch RNG are restored afterwards, so the run
    that follows is the one it would have been without the probe. Every rank of a
    data-parallel run must call it (the steps are collective); each returns its own timing.

    Parameters
    ----------
    x, y : Tensor, shapes (n, in_channels, N), (n, n_states, N)
        Training tensors of the grid to time.
    val_x, val_y : Tensor
        Validation tensors (timed on one ``eval_batch_size`` batch, scaled to the split).

    Returns
    -------
    float
        ``ceil(n / batch_size) * t_step + t_val / val_every`` [s].
    """
    tc = cfg.train
    b = tc.batch_size
    model = step.model
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)

    n_epoch = x.shape[0]
    if hasattr(x, "head"):  # a streamed split: time steps on its first samples (reads not timed)
        x, y = x.head(b * (warmup + steps))

    def run(n: int) -> float:
        t0 = time.perf_counter()
        step.train_epoch(x[:n], y[:n], optimizer=opt, loss_fn=loss_fn, batch_size=b, generator=gen,
                         teacher_forcing=teacher_forcing)
        return time.perf_counter() - t0

    try:
        # Warm-up: allocator, first touch, cached DFT bases, and DDP's first iterations (its
        # gradient buckets are rebuilt after the first one). The 1.3-1.8x overestimates of the
        # 2-rank HH/ORd 2-hour runs (82.9 and 107.1 s against 60-67 s) were other processes
        # running at probe time; on the idle machine (hh-constrained-2h, 2 ranks, 2026-12-07)
        # one 12-step run said 9.3 s against 7.8-8.2 s real epochs (1.17x), the median of
        # three 4-step runs 8.4 s (1.04x).
        run(min(b * warmup, x.shape[0]))
        # The timed steps in CHUNKS runs, the median per-step time of the runs: a burst of
        # another process during one run (a test suite, an editor) does not become the plan.
        n = min(x.shape[0], b * max(1, steps // CHUNKS))
        t_step = float(sorted(run(n) / math.ceil(n / b) for _ in range(CHUNKS))[CHUNKS // 2])
        m = min(val_x.shape[0], tc.eval_batch_size)
        t0 = time.perf_counter()
        step.evaluate(val_x[:m], val_y[:m], batch_size=tc.eval_batch_size)
        t_val = (time.perf_counter() - t0) * val_x.shape[0] / max(m, 1)
    finally:
        model.load_state_dict(saved)
        torch.set_rng_state(rng)
    return math.ceil(n_epoch / b) * t_step + t_val / tc.val_every


def early_epochs(tc: TrainConfig) -> int:
    """Epochs of the run's cheaper first phase: ``coarse_epochs`` or ``teacher_forcing_epochs``
    (never both: a chunked rollout, the only model that can be teacher-forced, has no coarse grid)."""
    return tc.coarse_epochs or tc.teacher_forcing_epochs


def plan_epochs(tc: TrainConfig, full_s: float, early_s: float | None = None) -> tuple[int, int]:
    """Epochs (and early-phase epochs) that fit :data:`PLAN_FILL` of ``tc.time_limit_s``.

    The early phase (coarse-grid or teacher-forced epochs, :func:`early_epochs`) keeps its share
    of the config's epochs; the result is at least one epoch and at most ``tc.epochs``. Without a
    time limit it is the config's own plan.

    Parameters
    ----------
    tc : TrainConfig
    full_s, early_s : float
        Seconds of one full epoch and of one early-phase epoch (:func:`probe_epoch_seconds`);
        ``early_s`` None: the same as ``full_s``.

    Returns
    -------
    (epochs, early_epochs) : tuple of int
    """
    early = early_epochs(tc)
    if tc.time_limit_s is None:
        return tc.epochs, early
    share = early / tc.epochs
    per_epoch = (1.0 - share) * full_s + share * (early_s if early_s is not None else full_s)
    epochs = max(1, min(tc.epochs, int(PLAN_FILL * tc.time_limit_s / max(per_epoch, 1e-9))))
    return epochs, min(epochs, round(share * epochs))


def replan_epochs(
    tc: TrainConfig, planned: int, n_early: int, history: list[dict[str, Any]]
) -> int | None:
    """The run's plan re-counted from its own epochs, or None to keep ``planned``.

    The full epochs run so far (those after the ``n_early`` coarse or teacher-forced ones) give a
    mean wall time per epoch ``t`` (differences of ``wall_time_s``: training, validation and
    checkpoint writing); the plan becomes ``done + max(1, floor(REPLAN_FILL * (time_limit_s -
    elapsed) / t))`` epochs, at most ``tc.epochs``, when that differs from ``planned`` by at
    least ``max(1, ceil(REPLAN_TOLERANCE * planned))`` epochs; a shorter plan only when the
    current one's remaining epochs no longer fit the whole remaining budget (``(planned - done) *
    t > time_limit_s - elapsed``), so that the plan does not flip back and forth at the margin.

    Parameters
    ----------
    tc : TrainConfig
        ``time_limit_s``, ``replan_after`` (full epochs needed first; 0: never) and ``epochs``.
    planned : int
        The current plan [epochs].
    n_early : int
        Early-phase epochs of the plan (they ran at another cost and are not counted).
    history : list of dict
        The run's ``metrics.csv`` rows so far, each with a cumulative ``wall_time_s`` [s].

    Returns
    -------
    int or None
        The new plan (> ``len(history)``), or None when the plan stands.
    """
    done = len(history)
    if tc.time_limit_s is None or tc.replan_after <= 0 or done >= planned:
        return None
    if done - n_early < tc.replan_after:
        return None
    per_epoch = max(full_epoch_seconds(n_early, history), 1e-9)
    left = tc.time_limit_s - float(history[-1]["wall_time_s"])
    new = min(tc.epochs, done + max(1, int(REPLAN_FILL * left / per_epoch)))
    tolerance = max(1, math.ceil(REPLAN_TOLERANCE * planned))
    if new >= planned + tolerance:
        return new
    # Shrink only a plan that no longer fits the whole budget: at the edge of REPLAN_FILL the
    # count flips between two values from one epoch's jitter to the next (seen on a 20-epoch
    # HH run: 19, 20, 19, 20), and each flip re-sizes the schedule.
    if new <= planned - tolerance and (planned - done) * per_epoch > left:
        return new
    return None


def full_epoch_seconds(n_early: int, history: list[dict[str, Any]]) -> float:
    """Mean wall seconds of the full epochs in ``history`` (those after the first ``n_early``),
    from the differences of the cumulative ``wall_time_s``; NaN when there are none."""
    walls = [0.0] + [float(r["wall_time_s"]) for r in history]
    full = [walls[i + 1] - walls[i] for i in range(n_early, len(history))]
    return sum(full) / len(full) if full else math.nan
