"""The training loop: ``train(cfg, data_path, out_dir)`` with resume, checkpoints and logs.

Compact and explicit in the manner of nanoGPT's ``train.py``: seed, device and threads are
chosen once at the top; :func:`train_one_epoch` and :func:`evaluate` do one thing each; the
best-validation model and the last state are checkpointed every ``train.checkpoint_every``
epochs and at the end.

Run folder layout::

    out_dir/config.json        the RunConfig used
    out_dir/last.pt            everything needed to resume (written every checkpoint_every epochs)
    out_dir/best.pt            the best-validation model (same layout without optimizer, scheduler, rng)
    out_dir/metrics.csv        one row per epoch (rewritten atomically from the history)
    out_dir/test_metrics.json  test-split errors of the best and the last model, when finished
    out_dir/tensorboard/       event files, when the tensorboard package is installed

Determinism: on CPU with the same thread count, a run killed at any point and resumed with
``resume=True`` ends bitwise equal to an uninterrupted run (model, optimiser and scheduler
state, the shuffling generator and the global torch RNG are all restored; see
``tests/training/test_resume.py``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_path, write_json_atomic
from ..data.dataset import OperatorDataset, SplitData, read_split_tensors
from .checkpoint import load_checkpoint, save_checkpoint
from .config import RunConfig, TrainConfig, config_from_dict
from .schedulers import STEP_PER_BATCH, make_scheduler

__all__ = [
    "TrainResult",
    "train",
    "train_one_epoch",
    "evaluate",
    "build_model",
    "fit_normalizers",
    "normalizer_from_state",
    "resolve_device",
]

# Config fields that do not change the numbers a run produces: they may differ on resume.
_RESUME_FREE = {
    "train.threads", "train.workers", "train.eval_batch_size", "train.checkpoint_every", "description"
}


@dataclass
class TrainResult:
    """What :func:`train` returns.

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


# ---------------------------------------------------------------------------- building blocks
def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda when available else cpu; ``"cuda"`` without a GPU is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device; use --device cpu or auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ValueError(f"Unknown device {name!r}; expected one of ['auto', 'cpu', 'cuda']")
    return torch.device(name)


def build_model(cfg: RunConfig, in_channels: int, out_channels: int) -> torch.nn.Module:
    """The FNO1d described by ``cfg.model`` (initialised from the current torch RNG)."""
    from ..fno import FNO1d

    m = cfg.model
    return FNO1d(
        n_modes=m.n_modes,
        in_channels=in_channels,
        out_channels=out_channels,
        hidden_channels=m.hidden_channels,
        n_layers=m.n_layers,
        block=m.block,
        activation=m.activation,
        padding=m.padding,
        lifting_channels=m.lifting_channels,
        projection_channels=m.projection_channels,
    )


def _normalizer_class(kind: str):
    from ..data.normalize import NORMALIZERS

    try:
        return NORMALIZERS[kind]
    except KeyError:
        raise ValueError(f"Unknown normalization {kind!r}; expected one of {sorted(NORMALIZERS)}") from None


def fit_normalizers(kind: str, data: SplitData) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Fit the input (current) and output (states) normalisers on training data.

    Returns
    -------
    (input_normalizer, output_normalizer)
        Acting on ``(n, 1, N)`` and ``(n, n_states, N)`` tensors.
    """
    cls = _normalizer_class(kind)
    return cls.fit(data.i_app[:, None, :]), cls.fit(data.states)


def normalizer_from_state(kind: str, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Rebuild a fitted normaliser from its ``state_dict`` (as stored in a checkpoint)."""
    return _normalizer_class(kind).from_state_dict(state)


def _loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from .losses import LOSSES

    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None


def _per_variable_errors(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Relative L2 over time per sample and variable, shape (B, S) (the study's metric)."""
    from .losses import relative_lp

    return relative_lp(pred, true, 2, reduction="none")


def train_one_epoch(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    batch_scheduler: Any = None,
    grad_clip: float | None = None,
) -> float:
    """One pass over the training tensors in a random order; returns the mean batch loss.

    Parameters
    ----------
    x : Tensor, shape (n, in_channels, N)
    y : Tensor, shape (n, n_states, N)
        Normalised training pairs, on ``device`` or on the CPU (then moved per batch).
    generator : torch.Generator
        CPU generator of the shuffling order (its state is checkpointed).
    batch_scheduler : LRScheduler, optional
        Stepped after every optimiser step (per-step schedules).
    """
    model.train()
    n = x.shape[0]
    order = torch.randperm(n, generator=generator)
    # Host -> GPU copies (data too large to keep on the GPU): gather the batch into pinned memory
    # (torch's caching host allocator) so that the copy is asynchronous.
    stream_in = device.type == "cuda" and x.device.type == "cpu"
    total = torch.zeros((), dtype=torch.float64, device=device)
    n_batches = 0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size].to(x.device)
        xb, yb = x[idx], y[idx]  # (B, C_in, N), (B, S, N)
        if stream_in:
            xb = xb.pin_memory().to(device, non_blocking=True)
            yb = yb.pin_memory().to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if batch_scheduler is not None:
            batch_scheduler.step()
        total += loss.detach()
        n_batches += 1
    return float(total) / max(n_batches, 1)  # one device sync per epoch, not per step


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """Per-sample, per-variable relative L2 errors in normalised space, shape (n, n_states), CPU.

    The study's scalar metric is ``errors.mean()`` (mean over variables, then samples).
    """
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        out.append(_per_variable_errors(model(xb), yb).double().cpu())
    model.train(was_training)
    return torch.cat(out)


def _summarise(
    errors: torch.Tensor, state_names: list[str], parts: list[str] | None = None
) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------- logging
def _csv_text(history: list[dict[str, Any]], header: bool = True) -> str:
    buf = io.StringIO()
    # Union of the rows' columns: a run resumed from an older version may gain a column.
    fieldnames = list(dict.fromkeys(k for row in history for k in row))
    w = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n", restval="")
    if header:
        w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite the whole CSV atomically (at checkpoints: the file then matches last.pt)."""
    if not history:
        path.unlink(missing_ok=True)
        return
    with atomic_path(path) as tmp:
        tmp.write_text(_csv_text(history))


def _append_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Append the newest row (cheap, every epoch; a kill may leave rows past last.pt, which the
    rewrite on resume removes)."""
    if len(history) == 1 or not path.exists() or list(history[-1]) != list(history[0]):
        _write_csv(path, history)
        return
    with open(path, "a") as f:
        f.write(_csv_text(history[-1:], header=False))


def _tensorboard_writer(out_dir: Path, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional extra `tensorboard`
        return None
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=purge_step)


# ---------------------------------------------------------------------------- train()
def _config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    diffs = []
    for sec in ("data", "model", "train"):
        for k in sorted(set(a.get(sec, {})) | set(b.get(sec, {}))):
            key = f"{sec}.{k}"
            if key not in _RESUME_FREE and a.get(sec, {}).get(k) != b.get(sec, {}).get(k):
                diffs.append(f"{key}: {a.get(sec, {}).get(k)!r} -> {b.get(sec, {}).get(k)!r}")
    return diffs


def _check_workers(cfg: RunConfig, dev: torch.device) -> None:
    """Refuse data-parallel settings this machine cannot run without oversubscription."""
    workers, threads = cfg.train.workers, cfg.train.threads
    if workers == 1:
        return
    if dev.type != "cpu":
        raise ValueError(
            f"train.workers = {workers} runs data-parallel CPU processes; on {dev.type} use "
            "train.workers = 1 (one process keeps a GPU busy)"
        )
    cores = os.cpu_count() or 1
    if workers * threads > cores:
        raise ValueError(
            f"train.workers x train.threads = {workers} x {threads} = {workers * threads} exceeds the "
            f"{cores} CPU cores of this machine (oversubscribed cores make every step many times "
            f"slower); use workers x threads <= {cores}, e.g. --set train.workers={max(1, cores // threads)}"
        )


def _check_grid(cfg: RunConfig, n_points: int) -> None:
    grids = [(n_points, f"data.subsample={cfg.data.subsample}")]
    if cfg.train.coarse_epochs:
        n_coarse = -(-n_points // cfg.train.coarse_factor)
        grids.append((n_coarse, f"the coarse grid of train.coarse_factor={cfg.train.coarse_factor}"))
    for n, what in grids:
        limit = (n + cfg.model.padding) // 2 + 1
        if cfg.model.n_modes > limit:
            raise ValueError(
                f"model.n_modes={cfg.model.n_modes} exceeds {limit}, the most a grid of {n} points "
                f"({what}) plus padding {cfg.model.padding} holds"
            )


def _data_info(path: Path, info: dict[str, Any], train: SplitData, cfg: RunConfig) -> dict[str, Any]:
    t = train.t.numpy()
    return {
        "model": str(info.get("model", "")),
        "state_names": [str(s) for s in info["state_names"]],
        "state_units": [str(u) for u in info.get("state_units", [""] * len(info["state_names"]))],
        "time_unit": str(info.get("time_unit", "ms")),
        "current_unit": str(info.get("current_unit", "")),
        # The FNO's grid channel is t / t_end with t_end the stored window, not the last kept time.
        "t_end": float(train.t_end),
        "n_points": int(t.shape[0]),
        "n_points_stored": int(info["n_points"]),
        "subsample": int(cfg.data.subsample),
        "in_channels": 2,
        "dataset": str(path),
    }


# Share of train.time_limit_s the plan fills. Real epochs ran about 4 % longer than the probe's
# estimate on average (HH, hh-quick: probe 10.5 s, epochs 9.3-12.6 s, mean 10.9 s; the probe's
# few samples sit in cache, real batches are gathered from the whole split, and checkpoints are
# written), which a fill of 0.95 left 1 % of room for; 0.90 leaves about 5 %.
_PLAN_FILL = 0.90


def probe_epoch_seconds(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    *,
    cfg: RunConfig,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device,
    pool: Any = None,
    key: str = "full",
    steps: int = 8,
) -> float:
    """Wall seconds of one epoch on ``x`` plus its share of validation, timed on real steps.

    Runs one warm-up step and then ``steps`` optimiser steps of the run's model (through
    ``pool`` when data-parallel) with a zero learning rate, and one validation batch; the
    weights and the global torch RNG are restored afterwards, so the run that follows is the
    one it would have been without the probe.

    Parameters
    ----------
    x, y : Tensor, shapes (n, in_channels, N), (n, n_states, N)
        Training tensors of the grid to time (``key`` names them in ``pool``).
    val_x, val_y : Tensor
        Validation tensors (timed on one ``eval_batch_size`` batch, scaled to the split).

    Returns
    -------
    float
        ``ceil(n / batch_size) * t_step + t_val / val_every`` [s].
    """
    tc = cfg.train
    b = tc.batch_size
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)

    def run(n: int) -> float:
        t0 = time.perf_counter()
        if pool is not None:
            pool.train_one_epoch(
                key, x[:n], y[:n], optimizer=opt, loss_fn=loss_fn, batch_size=b, generator=gen
            )
        else:
            train_one_epoch(model, x[:n], y[:n], optimizer=opt, loss_fn=loss_fn, batch_size=b,
                            generator=gen, device=device)
        return time.perf_counter() - t0

    try:
        run(min(b, x.shape[0]))  # warm-up: allocator, first touch, cached DFT bases
        n = min(x.shape[0], b * steps)
        t_step = run(n) / math.ceil(n / b)
        m = min(val_x.shape[0], tc.eval_batch_size)
        t0 = time.perf_counter()
        if pool is not None:
            pool.evaluate("val", val_x[:m], val_y[:m], batch_size=tc.eval_batch_size)
        else:
            evaluate(model, val_x[:m], val_y[:m], batch_size=tc.eval_batch_size, device=device)
        t_val = (time.perf_counter() - t0) * val_x.shape[0] / max(m, 1)
    finally:
        model.load_state_dict(saved)
        torch.set_rng_state(rng)
    return math.ceil(x.shape[0] / b) * t_step + t_val / tc.val_every


def plan_epochs(tc: TrainConfig, full_s: float, coarse_s: float | None = None) -> tuple[int, int]:
    """Epochs (and coarse epochs) that fit ``_PLAN_FILL`` of ``tc.time_limit_s``.

    The coarse share ``coarse_epochs / epochs`` of the config is kept; the result is at least
    one epoch and at most ``tc.epochs``. Without a time limit it is the config's own plan.

    Parameters
    ----------
    tc : TrainConfig
    full_s, coarse_s : float
        Seconds of one full-grid and one coarse-grid epoch (:func:`probe_epoch_seconds`).

    Returns
    -------
    (epochs, coarse_epochs) : tuple of int
    """
    if tc.time_limit_s is None:
        return tc.epochs, tc.coarse_epochs
    share = tc.coarse_epochs / tc.epochs
    per_epoch = (1.0 - share) * full_s + share * (coarse_s if coarse_s is not None else full_s)
    epochs = max(1, min(tc.epochs, int(_PLAN_FILL * tc.time_limit_s / max(per_epoch, 1e-9))))
    return epochs, min(epochs, round(share * epochs))


def train(
    cfg: RunConfig,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    resume: bool = True,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train an FNO on a dataset file and write a run folder (layout in the module docstring).

    Parameters
    ----------
    cfg : RunConfig
        Data, model and training settings (saved into every checkpoint).
    data_path : path-like
        Dataset file with "train" and "val" splits (and optionally "test").
    out_dir : path-like
        Run folder; created if missing.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to train; "auto" picks cuda when available. Splits are kept on the device when
        they fit in half its free memory, else moved per batch from pinned memory.
    resume : bool
        Continue from ``out_dir/last.pt`` when it exists (the config must match, apart from
        threads, eval batch size and checkpoint frequency). False starts over and replaces
        the folder's checkpoints.
    progress : bool
        Show a tqdm progress bar over epochs.
    on_epoch : callable(epoch, metrics), optional
        Called after each epoch's validation and checkpoint with the 1-based epoch and that
        epoch's metrics row. It may raise (e.g. ``optuna.TrialPruned``) to stop: the
        exception propagates after the logs are closed; checkpoints are already consistent.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        Bad config for this data (e.g. too many modes), a config that differs from the run
        being resumed, or a dataset without train/val samples.
    CheckpointError
        ``out_dir/last.pt`` exists but is not a checkpoint of ours.
    """
    from tqdm.auto import tqdm

    from ..data.storage import dataset_info

    data_path = Path(data_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out / "last.pt", out / "best.pt"

    dev = resolve_device(device)
    _check_workers(cfg, dev)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.train.threads, os.cpu_count() or 1)))
    tb = None
    pool = None
    try:
        # ---- data (normalisers fitted on the training split only)
        info = dataset_info(data_path)
        read = dict(subsample=cfg.data.subsample, only_ok=cfg.data.only_ok, input_encoding=cfg.data.input_encoding)
        train_data = read_split_tensors(data_path, "train", limit=cfg.data.n_train, **read)
        val_data = read_split_tensors(data_path, "val", limit=cfg.data.n_val, **read)
        state_names = [str(s) for s in info["state_names"]]
        n_points = int(train_data.t.shape[0])
        _check_grid(cfg, n_points)
        data_info = _data_info(data_path, info, train_data, cfg)

        torch.manual_seed(cfg.train.seed)
        in_norm, out_norm = fit_normalizers(cfg.data.normalization, train_data)
        train_ds = OperatorDataset(train_data, data_info["t_end"], in_norm, out_norm)
        val_ds = OperatorDataset(val_data, data_info["t_end"], in_norm, out_norm)
        _place(train_ds, val_ds, dev)
        coarse_x = coarse_y = None
        if cfg.train.coarse_epochs:
            # Contiguous copies: batches gathered from a strided view would be strided too.
            k = cfg.train.coarse_factor
            coarse_x = train_ds.x[..., ::k].contiguous()  # (n, 2, ceil(N / k))
            coarse_y = train_ds.y[..., ::k].contiguous()  # (n, S, ceil(N / k))

        # ---- model, optimiser, schedule (seeded once, here)
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg, in_channels=2, out_channels=len(state_names)).to(dev)
        n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )
        steps_per_epoch = math.ceil(len(train_ds) / cfg.train.batch_size)
        per_batch = STEP_PER_BATCH[cfg.train.scheduler]
        loss_fn = _loss_fn(cfg.train.loss)
        shuffle = torch.Generator().manual_seed(cfg.train.seed + 1)

        start_epoch, history = 0, []
        best_val, best_epoch, finished, stopped_early, stopped_by_time = math.inf, 0, False, False, False
        ck = load_checkpoint(last_path, map_location=dev) if resume and last_path.exists() else None
        if ck is not None:
            # Through config_from_dict: settings added since the run was saved take their defaults.
            diffs = _config_diff(asdict(config_from_dict(ck["config"])), asdict(cfg))
            if diffs:
                raise ValueError(
                    f"Cannot resume {str(out)!r}: the config differs from the saved run "
                    f"({'; '.join(diffs)}). "
                    "Use the same config, a new --out folder, or --no-resume to start over."
                )
            if ck["data_info"]["state_names"] != state_names or ck["data_info"]["n_points"] != n_points:
                raise ValueError(
                    f"Cannot resume {str(out)!r}: it was trained on different data "
                    f"({ck['data_info']['dataset']!r})"
                )
            finished = bool(ck.get("finished", False))
        elif not resume:
            for p in (last_path, best_path, out / "metrics.csv", out / "test_metrics.json"):
                p.unlink(missing_ok=True)

        if cfg.train.workers > 1 and not finished:
            from .parallel import DataParallelPool

            shared = {"full_x": train_ds.x, "full_y": train_ds.y, "val_x": val_ds.x, "val_y": val_ds.y}
            if coarse_x is not None:
                shared.update(coarse_x=coarse_x, coarse_y=coarse_y)
            pool = DataParallelPool(
                cfg.train.workers, cfg.train.threads, cfg, 2, len(state_names), model, shared
            )

        # ---- the plan: train.epochs, or what fits train.time_limit_s on this machine (kept in
        # the checkpoint, so a resumed run follows the plan it started with)
        if ck is not None:
            plan = (
                int(ck.get("planned_epochs", cfg.train.epochs)),
                int(ck.get("planned_coarse_epochs", cfg.train.coarse_epochs)),
            )
        elif cfg.train.time_limit_s is not None:
            probe = dict(val_x=val_ds.x, val_y=val_ds.y, cfg=cfg, loss_fn=loss_fn, device=dev, pool=pool)
            full_s = probe_epoch_seconds(model, train_ds.x, train_ds.y, key="full", **probe)
            coarse_s = None
            if coarse_x is not None:
                coarse_s = probe_epoch_seconds(model, coarse_x, coarse_y, key="coarse", **probe)
            plan = plan_epochs(cfg.train, full_s, coarse_s)
            print(
                f"train: time limit {cfg.train.time_limit_s:.0f} s, an epoch takes about {full_s:.1f} s"
                + (f" ({coarse_s:.1f} s coarse)" if coarse_s is not None else "")
                + f" -> planned {plan[0]} of at most {cfg.train.epochs} epochs"
                + (f" ({plan[1]} coarse)" if cfg.train.coarse_epochs else ""),
                file=sys.stderr,
                flush=True,
            )
        else:
            plan = (cfg.train.epochs, cfg.train.coarse_epochs)
        run = replace(cfg.train, epochs=plan[0], coarse_epochs=plan[1])  # what this run executes
        scheduler = make_scheduler(run.scheduler, optimizer, run, steps_per_epoch)

        if ck is not None:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            # Normalisers were fitted on the same data; restore them anyway so they are bitwise
            # the saved ones (refitting is deterministic, restoring is cheaper to trust).
            in_norm.load_state_dict(ck["normalizers"]["input"])
            out_norm.load_state_dict(ck["normalizers"]["output"])
            shuffle.set_state(ck["rng"]["shuffle"].cpu())
            torch.set_rng_state(ck["rng"]["torch"].cpu())
            if dev.type == "cuda" and ck["rng"].get("cuda"):
                torch.cuda.set_rng_state_all([s.cpu() for s in ck["rng"]["cuda"]])
            start_epoch, history = int(ck["epoch"]), list(ck["history"])
            best_val, best_epoch = float(ck["best_val"]), int(ck["best_epoch"])
            stopped_early = bool(ck.get("stopped_early", False))
            stopped_by_time = bool(ck.get("stopped_by_time", False))
        from .config import save_config

        save_config(cfg, out / "config.json")
        _write_csv(out / "metrics.csv", history)  # drops rows a killed run wrote past last.pt

        def payload(epoch: int, done: bool) -> dict[str, Any]:
            return {
                "config": asdict(cfg),
                "model": model.state_dict(),
                "normalizers": {
                    "kind": cfg.data.normalization,
                    "input": in_norm.state_dict(),
                    "output": out_norm.state_dict(),
                },
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "best_val": best_val,
                "best_epoch": best_epoch,
                "finished": done,
                "stopped_early": stopped_early,
                "stopped_by_time": stopped_by_time,
                "planned_epochs": run.epochs,
                "planned_coarse_epochs": run.coarse_epochs,
                "history": history,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "shuffle": shuffle.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if dev.type == "cuda" else [],
                },
                "data_info": data_info,
                "n_parameters": n_parameters,
            }

        def best_payload(state: dict[str, torch.Tensor]) -> dict[str, Any]:
            # Enough to predict and evaluate; training resumes from last.pt, never from best.pt.
            return {
                "config": asdict(cfg),
                "model": state,
                "normalizers": {
                    "kind": cfg.data.normalization,
                    "input": in_norm.state_dict(),
                    "output": out_norm.state_dict(),
                },
                "epoch": best_epoch,
                "best_val": best_val,
                "best_epoch": best_epoch,
                "history": history[:best_epoch],
                "data_info": data_info,
                "n_parameters": n_parameters,
            }

        best_state: dict[str, torch.Tensor] | None = None
        tb = _tensorboard_writer(out, purge_step=start_epoch + 1 if start_epoch else None)
        bar = tqdm(
            total=run.epochs,
            initial=start_epoch,
            disable=not progress,
            unit="epoch",
            desc=f"train {out.name}",
            dynamic_ncols=True,
        )
        run_start = time.perf_counter() - (history[-1]["wall_time_s"] if history else 0.0)
        epoch = start_epoch
        while not finished and epoch < run.epochs:
            t0, c0 = time.perf_counter(), time.process_time()
            lr = optimizer.param_groups[0]["lr"]
            coarse = epoch < run.coarse_epochs
            step_args = dict(
                optimizer=optimizer,
                loss_fn=loss_fn,
                batch_size=cfg.train.batch_size,
                generator=shuffle,
                batch_scheduler=scheduler if per_batch else None,
                grad_clip=cfg.train.grad_clip,
            )
            if pool is not None:
                train_loss = pool.train_one_epoch(
                    "coarse" if coarse else "full",
                    coarse_x if coarse else train_ds.x,
                    coarse_y if coarse else train_ds.y,
                    **step_args,
                )
            else:
                train_loss = train_one_epoch(
                    model,
                    coarse_x if coarse else train_ds.x,
                    coarse_y if coarse else train_ds.y,
                    device=dev,
                    **step_args,
                )
            if not per_batch:
                scheduler.step()
            # Stop before an epoch that would end past the time limit (the plan already fits it;
            # this catches a machine that became slower than at the probe). Decided before
            # validation, so that the last epoch is always validated.
            took = time.perf_counter() - t0
            stopped_by_time = (
                cfg.train.time_limit_s is not None
                and epoch + 1 < run.epochs
                and (time.perf_counter() - run_start) + took > cfg.train.time_limit_s
            )
            validate = stopped_by_time or epoch + 1 == run.epochs or (epoch + 1) % cfg.train.val_every == 0
            errors = None
            if validate and pool is not None:
                errors = pool.evaluate("val", val_ds.x, val_ds.y, batch_size=cfg.train.eval_batch_size)
            elif validate:
                errors = evaluate(model, val_ds.x, val_ds.y, batch_size=cfg.train.eval_batch_size, device=dev)
            epoch += 1
            val = float(errors.mean()) if errors is not None else math.nan
            if not math.isfinite(train_loss) or (errors is not None and not math.isfinite(val)):
                raise FloatingPointError(
                    f"Training diverged at epoch {epoch} (train loss {train_loss}, val {val}); "
                    "lower train.lr or set train.grad_clip"
                )
            row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "val_loss": val}
            row["train_points"] = int((coarse_x if coarse else train_ds.x).shape[-1])
            row.update(
                {
                    f"val_{s}": float(errors[:, i].mean()) if errors is not None else math.nan
                    for i, s in enumerate(state_names)
                }
            )
            row["lr"] = lr
            row["epoch_time_s"] = time.perf_counter() - t0
            # CPU seconds of this process (all threads): a load-independent cost on a shared machine.
            row["cpu_time_s"] = time.process_time() - c0
            row["wall_time_s"] = time.perf_counter() - run_start
            history.append(row)
            if errors is not None and val < best_val:
                best_val, best_epoch = val, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            no_progress = epoch - best_epoch
            stopped_early = cfg.train.patience is not None and no_progress >= cfg.train.patience
            done = stopped_early or stopped_by_time or epoch >= run.epochs
            if done or epoch % cfg.train.checkpoint_every == 0:
                # best.pt first: at every checkpoint the pair (best.pt, last.pt) is consistent,
                # and the best weights are written once per checkpoint, not once per improvement.
                if best_state is not None:
                    save_checkpoint(best_path, best_payload(best_state))
                    best_state = None
                save_checkpoint(last_path, payload(epoch, done))
            if done or epoch % cfg.train.checkpoint_every == 0:
                _write_csv(out / "metrics.csv", history)
            else:
                _append_csv(out / "metrics.csv", history)
            if tb is not None:
                for k, v in row.items():
                    if k != "epoch":
                        tb.add_scalar(k, v, epoch)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val:.4f}", best=f"{best_val:.4f}")
            if on_epoch is not None:
                on_epoch(epoch, dict(row))
            finished = done
        bar.close()

        test_metrics = _test_metrics(data_path, cfg, out, dev, state_names, last_path, best_path)
        if test_metrics is not None:
            write_json_atomic(out / "test_metrics.json", test_metrics)
        return TrainResult(
            best_val=best_val,
            final_val=next(
                (float(r["val_loss"]) for r in reversed(history) if math.isfinite(float(r["val_loss"]))), math.nan
            ),
            best_epoch=best_epoch,
            epochs_run=len(history),
            history=history,
            best_checkpoint=best_path,
            last_checkpoint=last_path,
            n_parameters=n_parameters,
            stopped_early=stopped_early,
            test_metrics=test_metrics,
            out_dir=out,
            planned_epochs=run.epochs,
            stopped_by_time=stopped_by_time,
        )
    finally:
        if pool is not None:
            pool.close()
        if tb is not None:
            tb.close()
        torch.set_num_threads(threads_before)


def _place(train_ds: OperatorDataset, val_ds: OperatorDataset, dev: torch.device) -> None:
    """Keep both splits on the GPU when they fit in half its free memory (no copies per step);
    otherwise they stay in host memory and batches are streamed through pinned buffers."""
    if dev.type != "cuda":
        return
    nbytes = sum(t.numel() * t.element_size() for d in (train_ds, val_ds) for t in (d.x, d.y))
    free, _ = torch.cuda.mem_get_info(dev)
    if nbytes < 0.5 * free:
        train_ds.to(dev)
        val_ds.to(dev)


def _test_metrics(
    data_path: Path,
    cfg: RunConfig,
    out: Path,
    dev: torch.device,
    state_names: list[str],
    last_path: Path,
    best_path: Path,
) -> dict[str, Any] | None:
    """Errors of the best and the last model on the test split (None if the file has none)."""
    from ..data.storage import split_sizes

    if split_sizes(data_path).get("test", 0) == 0:
        return None
    try:
        test = read_split_tensors(
            data_path, "test", subsample=cfg.data.subsample, only_ok=cfg.data.only_ok,
            input_encoding=cfg.data.input_encoding,
        )
    except ValueError:  # no usable test sample
        return None
    res: dict[str, Any] = {}
    for name, path in (("best", best_path), ("last", last_path)):
        ck = load_checkpoint(path, map_location=dev)
        kind = ck["normalizers"]["kind"]
        in_norm = normalizer_from_state(kind, ck["normalizers"]["input"])
        out_norm = normalizer_from_state(kind, ck["normalizers"]["output"])
        ds = OperatorDataset(test, ck["data_info"]["t_end"], in_norm, out_norm)
        model = build_model(config_from_dict(ck["config"]), 2, len(state_names)).to(dev)
        model.load_state_dict(ck["model"])
        errors = evaluate(model, ds.x, ds.y, batch_size=cfg.train.eval_batch_size, device=dev)
        res[name] = {"epoch": int(ck["epoch"]), **_summarise(errors, state_names, ds.part)}
    return res
