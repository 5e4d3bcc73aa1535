"""The training loop: ``train(cfg, data_path, out_dir)`` with resume, checkpoints and logs.

Compact in the manner of nanoGPT's ``train.py``: :func:`train` picks the ranks, and
:func:`_fit` is the loop, over small parts that each do one thing --
:func:`~ionfno.training.data.prepare` (the normalised splits), a step strategy
(:mod:`~ionfno.training.steps`: one process, or torch DDP over ranks), the time plan
(:mod:`~ionfno.training.timing`), one checkpoint payload (:func:`_payload`) and rank 0's
:class:`_Recorder` (checkpoints, :class:`~ionfno.training.logger.RunLogger`, the callback).
The run folder's layout is :class:`~ionfno.training.rundir.RunDir`'s.

Ranks: one process (``train.workers = 1``), ``train.workers = N`` ranks started here, or the
ranks of a torchrun launch (:mod:`~ionfno.training.distributed`). Every rank holds the model,
optimiser and schedule, and takes the same decisions; rank 0 alone reads and writes the run
folder and shares what it read or decided (the resumed state, the time plan, a failure).

Determinism: on CPU with the same thread count, a run killed at any point and resumed with
``resume=True`` ends bitwise equal to an uninterrupted run (model, optimiser and scheduler
state, the shuffling generator and the global torch RNG are all restored; see
``tests/training/test_resume.py``). Another number of ranks gives the same run up to float
summation order (``tests/training/test_parallel.py``).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .._io import write_json_atomic
from . import timing
from .checkpoint import save_checkpoint
from .config import RunConfig, TrainConfig, config_diff, save_config
from .data import Prepared, prepare
from .distributed import LocalRanks, check_local_ranks, launched_by_torchrun, torchrun_group
from .logger import RunLogger
from .losses import get_loss
from .model import build_model, calibrate_model, resolve_device
from .rundir import CHECKPOINTS, RunDir
from .schedulers import STEP_PER_BATCH, make_scheduler, resize_scheduler
from .steps import DataParallel, SingleProcess, Step

__all__ = ["TrainResult", "train", "summarise"]


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank: rank 0's).

    Attributes
    ----------
    best_val, final_val : float
        Validation loss (the study's metric, normalised space) of the best and the last epoch.
    best_epoch : int
        1-based epoch of ``best_val``.
    epochs_run : int
        Epochs completed in total (including those before a resume).
    history : list of dict
        One row per epoch, the columns of ``metrics.csv``.
    best_checkpoint, last_checkpoint : Path
    n_parameters : int
        Trainable parameters of the model.
    stopped_early : bool
        True when early stopping (``train.patience``) ended the run.
    planned_epochs : int
        Epochs the run was planned to (``train.epochs``, or fewer to fit ``train.time_limit_s``).
    stopped_by_time : bool
        True when the run stopped before its plan to stay within ``train.time_limit_s``.
    test_metrics : dict or None
        Test-split errors (``{"best": {...}, "last": {...}}``) when the file has a test split.
    out_dir : Path
    """

    best_val: float
    final_val: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, Any]]
    best_checkpoint: Path
    last_checkpoint: Path
    n_parameters: int
    stopped_early: bool = False
    test_metrics: dict[str, Any] | None = None
    out_dir: Path = field(default_factory=Path)
    planned_epochs: int = 0
    stopped_by_time: bool = False


@dataclass
class Progress:
    """Where a run stands besides its weights and optimiser state (kept in ``last.pt``)."""

    planned_epochs: int
    planned_coarse_epochs: int
    planned_teacher_epochs: int = 0
    epoch: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    finished: bool = False
    stopped_early: bool = False
    stopped_by_time: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any], cfg: RunConfig) -> Progress:
        return cls(
            planned_epochs=int(ck.get("planned_epochs", cfg.train.epochs)),
            planned_coarse_epochs=int(ck.get("planned_coarse_epochs", cfg.train.coarse_epochs)),
            planned_teacher_epochs=int(ck.get("planned_teacher_epochs", cfg.train.teacher_forcing_epochs)),
            epoch=int(ck["epoch"]),
            best_val=float(ck["best_val"]),
            best_epoch=int(ck["best_epoch"]),
            finished=bool(ck.get("finished", False)),
            stopped_early=bool(ck.get("stopped_early", False)),
            stopped_by_time=bool(ck.get("stopped_by_time", False)),
            history=list(ck["history"]),
        )

    def record(self, row: dict[str, Any], errors: torch.Tensor | None, tc: TrainConfig, planned: int) -> bool:
        """Add an epoch's row: best model, early stopping, the end of the plan. Returns whether the
        epoch is the best so far.

        Raises
        ------
        FloatingPointError
            A non-finite training loss or validation error.
        """
        train_loss, val = row["train_loss"], row["val_loss"]
        if not math.isfinite(train_loss) or (errors is not None and not math.isfinite(val)):
            raise FloatingPointError(
                f"Training diverged at epoch {row['epoch']} (train loss {train_loss}, val {val}); "
                "lower train.lr or set train.grad_clip"
            )
        self.epoch = row["epoch"]
        self.history.append(row)
        improved = errors is not None and val < self.best_val
        if improved:
            self.best_val, self.best_epoch = val, self.epoch
        self.stopped_early = tc.patience is not None and self.epoch - self.best_epoch >= tc.patience
        self.finished = self.stopped_early or self.stopped_by_time or self.epoch >= planned
        return improved


def _row(
    epoch: int,
    train_loss: float,
    errors: torch.Tensor | None,
    state_names: list[str],
    lr: float,
    n_points: int,
    t0: float,
    c0: float,
    run_start: float,
) -> dict[str, Any]:
    """The ``metrics.csv`` row of an epoch (NaN validation columns when it was not validated)."""
    row: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": float(errors.mean()) if errors is not None else math.nan,
        "train_points": int(n_points),
    }
    for i, s in enumerate(state_names):
        row[f"val_{s}"] = float(errors[:, i].mean()) if errors is not None else math.nan
    row["lr"] = lr
    row["epoch_time_s"] = time.perf_counter() - t0
    # CPU seconds of this process (all threads): a load-independent cost on a shared machine.
    row["cpu_time_s"] = time.process_time() - c0
    row["wall_time_s"] = time.perf_counter() - run_start
    return row


def summarise(errors: torch.Tensor, state_names: list[str], parts: list[str] | None = None) -> dict[str, Any]:
    """Scalar metric, per-variable and (optionally) per-part means of an (n, S) error table."""
    res: dict[str, Any] = {"rel_l2": float(errors.mean())}
    res.update({f"rel_l2_{s}": float(errors[:, i].mean()) for i, s in enumerate(state_names)})
    if parts is not None:
        by_part = {}
        per_sample = errors.mean(dim=1)
        for p in sorted(set(parts)):
            mask = torch.tensor([q == p for q in parts])
            by_part[p] = {"n": int(mask.sum()), "rel_l2": float(per_sample[mask].mean())}
        res["parts"] = by_part
    res["n_samples"] = int(errors.shape[0])
    return res


# ---------------------------------------------------------------------------- train()
def train(
    cfg: RunConfig,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    resume: bool = True,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    init: str | os.PathLike | None = None,
) -> TrainResult:
    """Train an FNO on a dataset file and write a run folder (layout: :mod:`~ionfno.training.rundir`).

    Parameters
    ----------
    cfg : RunConfig
        Data, model and training settings (saved into every checkpoint). ``train.workers > 1``
        starts that many data-parallel ranks on this machine; under torchrun every launched
        process is a rank and calls this function (module docstring).
    data_path : path-like
        Dataset file with "train" and "val" splits (and optionally "test"); every rank reads it
        under torchrun.
    out_dir : path-like
        Run folder; created if missing (by rank 0, the only rank that touches it).
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to train; "auto" picks cuda when available. Splits are kept on the device when
        they fit in half its free memory, else moved per batch from pinned memory. Ranks on
        CUDA use one GPU each.
    resume : bool
        Continue from ``out_dir/last.pt`` when it exists (the config must match, apart from
        :data:`~ionfno.training.config.RESULT_FREE`). False starts over and replaces the
        folder's checkpoints.
    progress : bool
        Show a tqdm progress bar over epochs.
    on_epoch : callable(epoch, metrics), optional
        Called on rank 0 after each epoch's validation and checkpoint with the 1-based epoch
        and that epoch's metrics row. It may raise (e.g. ``optuna.TrialPruned``) to stop: every
        rank stops, and the exception propagates after the logs are closed; checkpoints are
        already consistent.
    init : path-like or str, optional
        Start from these weights instead of a random initialisation (fine-tuning, or a longer
        schedule after a finished run): a run folder (its ``last.pt``), a ``.pt`` checkpoint or a
        pretrained name. Its model must have this config's architecture; the normalisers are
        fitted on this run's data as always. A resumed run ignores it. Recorded in the
        checkpoints' ``data_info["init"]``.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        Bad config for this data (e.g. too many modes) or this machine (ranks x threads above
        the cores), a config that differs from the run being resumed, or a dataset without
        train/val samples.
    CheckpointError
        ``out_dir/last.pt`` exists but is not a checkpoint of ours.
    RuntimeError
        A rank died (the message names it).
    """
    run = RunDir(out_dir)
    dev = resolve_device(device)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.train.threads, os.cpu_count() or 1)))
    init_state = None if init is None else init_weights(init)
    fit = dict(resume=resume, progress=progress, on_epoch=on_epoch, init_state=init_state)
    try:
        if launched_by_torchrun():
            local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            check_local_ranks(local, cfg.train.threads, dev, what="torchrun's ranks on this machine")
            with torchrun_group(dev) as rank_dev:
                import torch.distributed as dist

                rank0 = dist.get_rank() == 0
                if rank0 and cfg.train.workers not in (1, dist.get_world_size()):
                    _say(
                        f"train.workers = {cfg.train.workers} is ignored: torchrun started "
                        f"{dist.get_world_size()} ranks"
                    )
                return _fit(cfg, prepare(cfg, data_path), run if rank0 else None, rank_dev, **fit)
        check_local_ranks(cfg.train.workers, cfg.train.threads, dev)
        data = prepare(cfg, data_path)
        # A finished run only re-scores its test split: no ranks to start for that.
        workers = 1 if resume and run.finished() else cfg.train.workers
        if workers == 1:
            return _fit(cfg, data, run, dev, **fit)
        with LocalRanks(workers, dev, cfg.train.threads, _fit_rank, (cfg, data, init_state)) as rank_dev:
            return _fit(cfg, data, run, rank_dev, **fit)
    finally:
        torch.set_num_threads(threads_before)


def _fit_rank(device: torch.device, cfg: RunConfig, data: Prepared,
              init_state: dict[str, Any] | None = None) -> None:
    """What a rank started by :class:`LocalRanks` runs (it never touches the run folder)."""
    _fit(cfg, data, None, device, init_state=init_state)


def init_weights(source: str | os.PathLike) -> dict[str, Any]:
    """The model weights to start a run from: ``{"source", "epoch", "model"}`` of a run folder's
    ``last.pt``, a ``.pt`` checkpoint or a pretrained surrogate.

    Raises
    ------
    FileNotFoundError
        Nothing of that name (the message lists the pretrained names).
    """
    from ..pretrained import resolve_source
    from .checkpoint import load_checkpoint

    try:
        path = RunDir.resolve(resolve_source(source), "last")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"init: {e}") from None
    ck = load_checkpoint(path, map_location="cpu")
    return {"source": str(path), "epoch": int(ck["epoch"]), "model": ck["model"]}


def _start_from(model: torch.nn.Module, init_state: dict[str, Any]) -> None:
    """Load ``init_state``'s weights into ``model``; ValueError naming the mismatch if they do not fit."""
    try:
        model.load_state_dict(init_state["model"])
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise ValueError(f"init {init_state['source']!r}: its model does not fit this config's "
                         f"(model.* settings and the data's states must match): {detail[:400]}") from None


def _say(msg: str) -> None:
    print(f"train: {msg}", file=sys.stderr, flush=True)


def _fit(
    cfg: RunConfig,
    data: Prepared,
    run: RunDir | None,
    device: torch.device,
    *,
    resume: bool = True,
    progress: bool = False,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    init_state: dict[str, Any] | None = None,
) -> TrainResult:
    """The loop, on one rank; ``run`` is the run folder on rank 0 and None elsewhere."""
    import torch.distributed as dist

    tc = cfg.train
    data.to(device)
    torch.manual_seed(tc.seed)  # model initialisation: the same on every rank
    model = build_model(cfg, in_channels=2, out_channels=len(data.state_names))
    if init_state is not None:  # every rank, before DDP compares them (a resumed run overwrites)
        _start_from(model, init_state)
        data.data_info["init"] = {"source": init_state["source"], "epoch": init_state["epoch"]}
    calibrate_model(model, data.output_normalizer)  # a rollout's statistics: this run's data
    model = model.to(device)
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    distributed = dist.is_available() and dist.is_initialized()
    step: Step = DataParallel(model, device) if distributed else SingleProcess(model, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    loss_fn = get_loss(tc.loss)
    shuffle = torch.Generator().manual_seed(tc.seed + 1)
    record = _Recorder(cfg, data, run, n_parameters, progress, on_epoch) if run is not None else None

    ck = step.share(lambda: record.restore(resume))
    state = (
        Progress.from_checkpoint(ck, cfg) if ck is not None else Progress(*_plan(cfg, step, data, loss_fn))
    )
    planned = replace(tc, epochs=state.planned_epochs, coarse_epochs=state.planned_coarse_epochs,
                      teacher_forcing_epochs=state.planned_teacher_epochs)
    steps_per_epoch = math.ceil(len(data.train) / tc.batch_size)
    scheduler = make_scheduler(tc.scheduler, optimizer, planned, steps_per_epoch)
    per_batch = STEP_PER_BATCH[tc.scheduler]
    if ck is not None:
        _load_state(ck, model, optimizer, scheduler, data, shuffle, device)
    step.share(lambda: record.open(state))
    try:
        run_start = time.perf_counter() - (state.history[-1]["wall_time_s"] if state.history else 0.0)
        while not state.finished and state.epoch < planned.epochs:
            t0, c0 = time.perf_counter(), time.process_time()
            lr = optimizer.param_groups[0]["lr"]
            x, y = data.grid(coarse=state.epoch < planned.coarse_epochs)
            teacher = state.epoch < planned.teacher_forcing_epochs
            train_loss = step.train_epoch(
                x,
                y,
                optimizer=optimizer,
                loss_fn=loss_fn,
                batch_size=tc.batch_size,
                generator=shuffle,
                batch_scheduler=scheduler if per_batch else None,
                grad_clip=tc.grad_clip,
                teacher_forcing=teacher,
                sample_weights=data.sample_weights,
            )
            if not per_batch:
                scheduler.step()
            # Stop before an epoch that would end past the time limit (the plan already fits it;
            # this catches a machine that became slower than at the probe). Decided before
            # validation, so that the last epoch is always validated; rank 0's clock decides.
            took = time.perf_counter() - t0
            state.stopped_by_time = step.share(
                lambda took=took, planned_epochs=planned.epochs: (
                    tc.time_limit_s is not None
                    and state.epoch + 1 < planned_epochs
                    and (time.perf_counter() - run_start) + took > tc.time_limit_s
                )
            )
            errors = None
            if (
                state.stopped_by_time
                or state.epoch + 1 == planned.epochs
                or (state.epoch + 1) % tc.val_every == 0
            ):
                errors = step.evaluate(data.val.x, data.val.y, batch_size=tc.eval_batch_size)
            row = _row(
                state.epoch + 1, train_loss, errors, data.state_names, lr, x.shape[-1], t0, c0, run_start
            )
            if tc.teacher_forcing_epochs:  # the column only in runs that have the phase
                row["teacher_forced"] = int(teacher)
            improved = state.record(row, errors, tc, planned.epochs)
            if not state.finished:
                n_early = max(state.planned_coarse_epochs, state.planned_teacher_epochs)
                new = step.share(lambda n_early=n_early: _replan(tc, state, n_early))
                if new is not None:
                    state.planned_epochs = new
                    planned = replace(planned, epochs=new)
                    scheduler = resize_scheduler(tc.scheduler, scheduler, optimizer, planned, steps_per_epoch)
            step.share(
                lambda improved=improved, scheduler=scheduler: record.epoch(
                    state, improved, model, optimizer, scheduler, shuffle
                )
            )
    finally:
        if record is not None:
            record.close()
    test_metrics = _test_metrics(cfg, step, data, record)
    return step.share(lambda: record.result(state, test_metrics))


def _plan(cfg: RunConfig, step: Step, data: Prepared, loss_fn: Any) -> tuple[int, int, int]:
    """``(epochs, coarse_epochs, teacher_forcing_epochs)``: the config's, or what fits
    ``train.time_limit_s`` as timed by every rank together and decided by rank 0."""
    tc = cfg.train
    if tc.time_limit_s is None:
        return tc.epochs, tc.coarse_epochs, tc.teacher_forcing_epochs
    probe = dict(cfg=cfg, loss_fn=loss_fn)
    full_s = timing.probe_epoch_seconds(step, *data.grid(coarse=False), data.val.x, data.val.y, **probe)
    early_s, early = None, ""
    if data.coarse_x is not None:
        early_s = timing.probe_epoch_seconds(step, *data.grid(coarse=True), data.val.x, data.val.y, **probe)
        early = "coarse"
    elif tc.teacher_forcing_epochs:
        early_s = timing.probe_epoch_seconds(step, *data.grid(coarse=False), data.val.x, data.val.y,
                                             teacher_forcing=True, **probe)
        early = "teacher-forced"

    def decide() -> tuple[int, int, int]:
        epochs, n_early = timing.plan_epochs(tc, full_s, early_s)
        _say(
            f"time limit {tc.time_limit_s:.0f} s, an epoch takes about {full_s:.1f} s"
            + (f" ({early_s:.1f} s {early})" if early_s is not None else "")
            + f" -> planned {epochs} of at most {tc.epochs} epochs"
            + (f" ({n_early} {early})" if timing.early_epochs(tc) else "")
        )
        return (epochs, n_early, 0) if tc.coarse_epochs else (epochs, 0, n_early)

    return step.share(decide)


def _replan(tc: TrainConfig, state: Progress, n_early: int) -> int | None:
    """Rank 0's re-count of the plan from the epochs run (:func:`timing.replan_epochs`), said aloud."""
    new = timing.replan_epochs(tc, state.planned_epochs, n_early, state.history)
    if new is not None:
        done = len(state.history)
        per_epoch = timing.full_epoch_seconds(n_early, state.history)  # as the probe's figure
        _say(f"epochs take {per_epoch:.1f} s on average ({done} run, "
             f"{tc.time_limit_s - state.history[-1]['wall_time_s']:.0f} s left) -> "
             f"re-planned {new} epochs instead of {state.planned_epochs}")
    return new


def _load_state(
    ck: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    data: Prepared,
    shuffle: torch.Generator,
    device: torch.device,
) -> None:
    """Put a rank where the checkpoint left the run."""
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    # Normalisers were fitted on the same data; restore them anyway so they are bitwise the
    # saved ones (refitting is deterministic, restoring is cheaper to trust).
    data.input_normalizer.load_state_dict(ck["normalizers"]["input"])
    data.output_normalizer.load_state_dict(ck["normalizers"]["output"])
    shuffle.set_state(ck["rng"]["shuffle"].cpu())
    torch.set_rng_state(ck["rng"]["torch"].cpu())
    if device.type == "cuda" and ck["rng"].get("cuda"):
        torch.cuda.set_rng_state_all([s.cpu() for s in ck["rng"]["cuda"]])


def _payload(
    which: str,
    cfg: RunConfig,
    data: Prepared,
    state: Progress,
    model_state: dict[str, torch.Tensor],
    n_parameters: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    shuffle: torch.Generator | None = None,
) -> dict[str, Any]:
    """The checkpoint of a run: ``"last"`` holds everything needed to resume; ``"best"`` the
    best weights and enough to predict and evaluate (training never resumes from it)."""
    common = {
        "config": asdict(cfg),
        "model": model_state,
        "normalizers": {
            "kind": cfg.data.normalization,
            "input_kind": cfg.data.normalization
            if cfg.data.input_normalization == "same"
            else cfg.data.input_normalization,
            "input": data.input_normalizer.state_dict(),
            "output": data.output_normalizer.state_dict(),
        },
    }
    if which == "best":
        return common | {
            "epoch": state.best_epoch,
            "best_val": state.best_val,
            "best_epoch": state.best_epoch,
            "history": state.history[: state.best_epoch],
            "data_info": data.data_info,
            "n_parameters": n_parameters,
        }
    assert optimizer is not None and shuffle is not None
    cuda = next(iter(model_state.values())).device.type == "cuda"
    return common | {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": state.epoch,
        "best_val": state.best_val,
        "best_epoch": state.best_epoch,
        "finished": state.finished,
        "stopped_early": state.stopped_early,
        "stopped_by_time": state.stopped_by_time,
        "planned_epochs": state.planned_epochs,
        "planned_coarse_epochs": state.planned_coarse_epochs,
        "planned_teacher_epochs": state.planned_teacher_epochs,
        "history": state.history,
        "rng": {
            "torch": torch.get_rng_state(),
            "shuffle": shuffle.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if cuda else [],
        },
        "data_info": data.data_info,
        "n_parameters": n_parameters,
    }


class _Recorder:
    """Rank 0's side of a run: the run folder (restore, config, checkpoints, logs), the
    callback and the result."""

    def __init__(
        self,
        cfg: RunConfig,
        data: Prepared,
        run: RunDir,
        n_parameters: int,
        progress: bool,
        on_epoch: Callable[[int, dict[str, Any]], None] | None,
    ) -> None:
        self.cfg, self.data, self.run, self.n_parameters = cfg, data, run, n_parameters
        self.progress, self.on_epoch = progress, on_epoch
        self.log: RunLogger | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def restore(self, resume: bool) -> dict[str, Any] | None:
        """The checkpoint to resume from (checked against this config and data), or None."""
        run = self.run
        run.path.mkdir(parents=True, exist_ok=True)
        if not resume:
            run.clear()
            return None
        if not run.checkpoint("last").exists():
            return None
        ck = run.load("last", map_location="cpu")
        diffs = config_diff(ck["config"], self.cfg)
        if diffs:
            raise ValueError(
                f"Cannot resume {str(run.path)!r}: the config differs from the saved run "
                f"({'; '.join(diffs)}). Use the same config, a new output folder, or start over "
                "(resume=False)."
            )
        info, saved = self.data.data_info, ck["data_info"]
        if saved["state_names"] != info["state_names"] or saved["n_points"] != info["n_points"]:
            raise ValueError(
                f"Cannot resume {str(run.path)!r}: it was trained on different data "
                f"({saved['dataset']!r}: other states or grid than {info['dataset']!r})"
            )
        # Same model and grid is not the same data: another seed, size or mixture would train
        # on with the old run's normalisers. Runs from before fingerprints are not checked.
        if saved.get("fingerprint") and saved["fingerprint"] != info["fingerprint"]:
            raise ValueError(
                f"Cannot resume {str(run.path)!r}: it was trained on other data ({saved['dataset']!r}, "
                f"fingerprint {saved['fingerprint']}) than {info['dataset']!r} (fingerprint "
                f"{info['fingerprint']}). Give the run's dataset, a new output folder, or start over "
                "(ionfno train --no-resume; resume=False)."
            )
        return ck

    def open(self, state: Progress) -> None:
        save_config(self.cfg, self.run.config)
        self.log = RunLogger(
            self.run, state.history, planned_epochs=state.planned_epochs, progress=self.progress
        )

    def epoch(
        self,
        state: Progress,
        improved: bool,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        shuffle: torch.Generator,
    ) -> None:
        """After the epoch whose row ends ``state.history``: checkpoint (every
        ``checkpoint_every`` epochs and at the end), log, call back."""
        assert self.log is not None
        if improved:
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        checkpoint = state.finished or state.epoch % self.cfg.train.checkpoint_every == 0
        if checkpoint:
            # best.pt first: at every checkpoint the pair (best.pt, last.pt) is consistent,
            # and the best weights are written once per checkpoint, not once per improvement.
            if self.best_state is not None:
                save_checkpoint(
                    self.run.checkpoint("best"),
                    _payload("best", self.cfg, self.data, state, self.best_state, self.n_parameters),
                )
                self.best_state = None
            save_checkpoint(
                self.run.checkpoint("last"),
                _payload(
                    "last",
                    self.cfg,
                    self.data,
                    state,
                    model.state_dict(),
                    self.n_parameters,
                    optimizer,
                    scheduler,
                    shuffle,
                ),
            )
        self.log.log(state.history, best_val=state.best_val, checkpointed=checkpoint,
                     planned_epochs=state.planned_epochs)
        if self.on_epoch is not None:
            self.on_epoch(state.epoch, dict(state.history[-1]))

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def result(self, state: Progress, test_metrics: dict[str, Any] | None) -> TrainResult:
        if test_metrics is not None:
            write_json_atomic(self.run.test_metrics, test_metrics)
        h = state.history
        return TrainResult(
            best_val=state.best_val,
            final_val=next(
                (float(r["val_loss"]) for r in reversed(h) if math.isfinite(float(r["val_loss"]))), math.nan
            ),
            best_epoch=state.best_epoch,
            epochs_run=len(h),
            history=h,
            best_checkpoint=self.run.checkpoint("best"),
            last_checkpoint=self.run.checkpoint("last"),
            n_parameters=self.n_parameters,
            stopped_early=state.stopped_early,
            test_metrics=test_metrics,
            out_dir=self.run.path,
            planned_epochs=state.planned_epochs,
            stopped_by_time=state.stopped_by_time,
        )


def _test_metrics(
    cfg: RunConfig, step: Step, data: Prepared, record: _Recorder | None
) -> dict[str, Any] | None:
    """Errors of the best and the last model on the test split (None if the file has none),
    the samples split over the ranks."""
    if data.test is None:
        return None
    res: dict[str, Any] = {}
    for which in CHECKPOINTS:
        ck = step.share(
            lambda which=which: {k: v for k, v in record.run.load(which).items() if k in ("model", "epoch")}
        )
        step.model.load_state_dict(ck["model"])
        errors = step.evaluate(data.test.x, data.test.y, batch_size=cfg.train.eval_batch_size)
        res[which] = {"epoch": int(ck["epoch"]), **summarise(errors, data.state_names, data.test.part)}
    return res
