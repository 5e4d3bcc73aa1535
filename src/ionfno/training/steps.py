"""One epoch of updates and one validation pass, in one process or split over ranks.

The loop talks to a :class:`Step`: ``train_epoch`` (a pass over the training tensors in a
shuffled order, one optimiser update per batch), ``evaluate`` (per-sample errors of a split),
and ``share`` (rank 0 computes something -- the resumed state, the time plan, a checkpoint
write -- and every rank gets its value or its error). Two strategies implement it:

* :class:`SingleProcess` -- :func:`train_one_epoch` and :func:`evaluate` on one device;
* :class:`DataParallel` -- torch ``DistributedDataParallel`` over a process group (gloo on
  CPU, NCCL on CUDA; :mod:`ionfno.training.distributed` starts it). Every rank draws the same
  shuffled order (the generator is seeded and checkpointed alike on every rank) and takes its
  contiguous share ``b_r`` of each batch of ``B`` samples; its loss is scaled by ``b_r / B``
  and the gradients are *summed* over ranks (a comm hook in place of DDP's average), so every
  update is that of the whole batch in one process, up to float summation order. Every rank
  then clips, steps its optimiser and its schedule identically. Validation splits the samples
  into contiguous shares and gathers the errors on every rank.

Both give the same batches and updates, so a run resumes with any number of ranks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import torch

__all__ = ["Step", "SingleProcess", "DataParallel", "RankAbort", "train_one_epoch", "evaluate"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class RankAbort(Exception):
    """Raised on ranks other than 0 when rank 0 stopped with an error (it reports it)."""


def train_one_epoch(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, device: torch.device, **kw: Any
) -> float:
    """One pass over the training tensors in a random order; returns the mean batch loss.

    ``SingleProcess(model, device).train_epoch(x, y, **kw)``: keywords ``optimizer``,
    ``loss_fn``, ``batch_size``, ``generator`` (the CPU generator of the shuffling order, whose
    state is checkpointed), and optionally ``batch_scheduler`` (stepped after every optimiser
    step), ``grad_clip`` and ``teacher_forcing`` (a :class:`~ionfno.fno.ChunkedRollout` called
    as ``model(x_b, y_b, offset)`` with a random chunk offset per batch) and ``sample_weights``
    (shape ``(n,)``: the epoch's ``n`` samples drawn with replacement in proportion to them instead
    of a permutation; ``train.part_weights``). ``x`` of shape
    ``(n, in_channels, N)`` and ``y`` of shape ``(n, n_states, N)`` are the normalised pairs, on
    ``device`` or on the CPU (then moved per batch).
    """
    return SingleProcess(model, device).train_epoch(x, y, **kw)


def _epoch(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    batch_scheduler: Any,
    grad_clip: float | None,
    teacher_forcing: bool = False,
    sample_weights: torch.Tensor | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> torch.Tensor:
    """One pass in the shuffled order on this rank's share of every batch (the whole batch in one
    process); returns the sum of this rank's (weighted) batch losses, a 0-d float64 tensor on
    ``device``."""
    model.train()
    # Host -> GPU copies (data too large to keep on the GPU): gather the batch into pinned memory
    # (torch's caching host allocator) so that the copy is asynchronous.
    stream_in = device.type == "cuda" and x.device.type == "cpu"
    total = torch.zeros((), dtype=torch.float64, device=device)
    for xb, yb, weight in _shares(x, y, batch_size, generator, rank, world_size, sample_weights):
        if stream_in:
            xb = xb.pin_memory().to(device, non_blocking=True)
            yb = yb.pin_memory().to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        if teacher_forcing:  # a chunked rollout, its chunks started from the targets
            offset = int(torch.randint(1 << 30, (), generator=generator))
            loss = loss_fn(model(xb, yb, offset), yb)
        else:
            loss = loss_fn(model(xb), yb)
        if world_size > 1:
            loss = loss * weight
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if batch_scheduler is not None:
            batch_scheduler.step()
        total += loss.detach()
    return total


def _shares(
    x: Any,
    y: torch.Tensor | None,
    batch_size: int,
    generator: torch.Generator,
    rank: int,
    world_size: int,
    sample_weights: torch.Tensor | None = None,
) -> Any:
    """This rank's share ``(x_b, y_b, weight)`` of every batch of an epoch, in the shuffled order.

    ``x, y`` are the in-memory tensors, or ``x`` a streamed split (``batches()``) and ``y`` None.
    ``weight`` is the share's fraction of its batch; a rank without samples in a short last
    batch still joins the gradient sum, with one sample at weight zero. ``sample_weights``
    (shape ``(n,)``, in-memory tensors only) replaces the permutation by ``n`` draws with
    replacement in proportion to them.
    """
    if hasattr(x, "batches"):
        if sample_weights is not None:
            raise ValueError("a streamed training split cannot be drawn with sample weights")
        for bx, by in x.batches(batch_size, generator):
            rows = torch.arange(bx.shape[0])
            idx = torch.tensor_split(rows, world_size)[rank] if world_size > 1 else rows
            weight = idx.numel() / rows.numel()
            idx = idx if idx.numel() else rows[:1]
            yield bx[idx], by[idx], weight
        return
    if sample_weights is None:
        order = torch.randperm(x.shape[0], generator=generator)  # the same on every rank
    else:  # the same draws on every rank, too
        order = torch.multinomial(sample_weights, x.shape[0], replacement=True, generator=generator)
    for start in range(0, x.shape[0], batch_size):
        batch = order[start : start + batch_size]
        idx = torch.tensor_split(batch, world_size)[rank] if world_size > 1 else batch
        weight = idx.numel() / batch.numel()
        idx = (idx if idx.numel() else batch[:1]).to(x.device)
        yield x[idx], y[idx], weight  # (b, C_in, N), (b, S, N)


def _per_variable_errors(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Relative L2 over time per sample and variable, shape (B, S) (the study's metric)."""
    from .losses import relative_lp

    return relative_lp(pred, true, 2, reduction="none")


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
    out = [torch.zeros(0, y.shape[1], dtype=torch.float64)]
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        out.append(_per_variable_errors(model(xb), yb).double().cpu())
    model.train(was_training)
    return torch.cat(out)


class Step(Protocol):
    """What the loop needs from a strategy (module docstring)."""

    model: torch.nn.Module  # the plain module: its state_dict is what checkpoints hold
    device: torch.device
    rank: int
    world_size: int

    def train_epoch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn,
        batch_size: int,
        generator: torch.Generator,
        batch_scheduler: Any = None,
        grad_clip: float | None = None,
        teacher_forcing: bool = False,
        sample_weights: torch.Tensor | None = None,
    ) -> float: ...

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int) -> torch.Tensor: ...

    def share(self, compute: Callable[[], Any]) -> Any: ...


class SingleProcess:
    """The whole batch in this process, on ``device``."""

    rank, world_size = 0, 1

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, **kw: Any) -> float:
        n_batches = math.ceil(x.shape[0] / kw["batch_size"])
        total = _epoch(self.model, x, y, device=self.device, **_with_defaults(kw))
        return float(total) / max(n_batches, 1)  # one device sync per epoch, not per step

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int) -> torch.Tensor:
        return evaluate(self.model, x, y, batch_size=batch_size, device=self.device)

    def share(self, compute: Callable[[], Any]) -> Any:
        return compute()


def _with_defaults(kw: dict[str, Any]) -> dict[str, Any]:
    defaults = {"batch_scheduler": None, "grad_clip": None, "teacher_forcing": False, "sample_weights": None}
    return {**defaults, **kw}


def _sum_gradients(group, bucket):  # noqa: ANN001, ANN202 (DDP checks the annotations: none or its own)
    """DDP comm hook: the sum of the ranks' gradients (DDP's own hook averages them)."""
    import torch.distributed as dist

    fut = dist.all_reduce(bucket.buffer(), group=group, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


class DataParallel:
    """Each batch split over the ranks of the default process group (module docstring).

    Parameters
    ----------
    model : nn.Module
        This rank's replica, on ``device`` (the same initial weights on every rank: the loop
        seeds it alike; DDP also broadcasts rank 0's at construction).
    device : torch.device
        ``cpu`` (gloo) or this rank's ``cuda:i`` (NCCL).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        self.model, self.device = model, device
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        ids = [device] if device.type == "cuda" else None
        self._ddp = DistributedDataParallel(model, device_ids=ids)
        self._ddp.register_comm_hook(None, _sum_gradients)
        # Collectives run on the backend's device: CUDA tensors for NCCL, CPU ones for gloo.
        self._comm = device if dist.get_backend() == "nccl" else torch.device("cpu")

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, **kw: Any) -> float:
        import torch.distributed as dist

        n_batches = math.ceil(x.shape[0] / kw["batch_size"])
        total = _epoch(
            self._ddp,
            x,
            y,
            device=self.device,
            rank=self.rank,
            world_size=self.world_size,
            **_with_defaults(kw),
        ).to(self._comm)
        dist.all_reduce(total)  # the batch losses: the sums of the ranks' weighted shares
        return float(total) / max(n_batches, 1)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int) -> torch.Tensor:
        import torch.distributed as dist

        n = x.shape[0]
        bounds = torch.linspace(0, n, self.world_size + 1).round().long().tolist()
        lo, hi = bounds[self.rank], bounds[self.rank + 1]
        mine = evaluate(self.model, x[lo:hi], y[lo:hi], batch_size=batch_size, device=self.device)
        width = max(b - a for a, b in zip(bounds, bounds[1:], strict=False))
        padded = torch.zeros(width, y.shape[1], dtype=torch.float64, device=self._comm)
        padded[: hi - lo] = mine.to(self._comm)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[: b - a].cpu() for p, a, b in zip(parts, bounds, bounds[1:], strict=False)])

    def share(self, compute: Callable[[], Any]) -> Any:
        """``compute()`` on rank 0, its value (or its error) on every rank.

        Rank 0 re-raises the error; the other ranks raise :class:`RankAbort`.
        """
        import torch.distributed as dist

        box: list[Any] = [None]
        error: BaseException | None = None
        if self.rank == 0:
            try:
                box[0] = ("ok", compute())
            except BaseException as e:  # reported by rank 0, after the others know
                error = e
                box[0] = ("error", f"{type(e).__name__}: {e}")
        dist.broadcast_object_list(box, src=0, device=self._comm)
        if error is not None:
            raise error
        status, value = box[0]
        if status != "ok":
            raise RankAbort(f"rank 0 stopped: {value}")
        return value
