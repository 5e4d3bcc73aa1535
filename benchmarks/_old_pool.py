"""The home-made data-parallel pool that train.workers used before torch DDP (issue 17).

A copy of ``src/ionfno/training/parallel.py`` as of commit 0fcf5f5 (deleted since), imports
adjusted, kept only so that ``bench_parallel.py`` can measure DDP against it in one run. Not
used by ionfno.

Data-parallel training on the CPU: helper processes compute gradients on shards of each batch.

On a small CPU a single training process cannot use the cores well: the FNO's tensors for a
batch of 16 samples are a few MB, so splitting every operation over two threads gains little
(measured 1.0-1.3x for the ``fhn-quick`` model, see RESULTS.md). Splitting the *batch* over
processes instead keeps every process busy on its own core. ``train.workers = W`` starts
``W - 1`` helper processes; per optimiser step

1. the main process (rank 0) publishes its parameters into a shared-memory vector and sends each
   helper the indices of its shard of the batch (the batch split into ``W`` contiguous parts);
2. every process computes ``loss(shard) * b_r / B`` and its gradient (``b_r`` samples of the
   ``B`` in the batch), so that the sum over processes is the gradient of the batch's mean loss;
3. the helpers write their gradients into shared memory; rank 0 adds them to its own, then
   clips, steps the optimiser and the schedule exactly as a single process would.

The helpers hold no optimiser or schedule state (they receive the parameters every step), so a
run resumes with any number of workers, and the result equals single-process training up to
float summation order. Validation is split over the workers by samples; checkpoints and logs
stay in rank 0.

Helpers are spawned (not forked), so a Python script that calls ``train()`` with
``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard around its top-level code.
Helpers block on a pipe from rank 0; when rank 0 exits, even when killed, the pipe closes and
they exit too. CPU only: on a GPU one process already keeps the device busy.
"""

from __future__ import annotations

import os
import traceback
from typing import Any, Callable

import torch

__all__ = ["DataParallelPool"]


def _flat_grads(model: torch.nn.Module, out: torch.Tensor) -> None:
    offset = 0
    for p in model.parameters():
        n = p.numel()
        if p.grad is None:
            out[offset : offset + n].zero_()
        else:
            out[offset : offset + n].copy_(p.grad.reshape(-1))
        offset += n


def _worker_main(
    rank: int,
    conn: Any,
    cfg: Any,
    in_channels: int,
    out_channels: int,
    threads: int,
    params: torch.Tensor,
    grads: torch.Tensor,
    tensors: dict[str, torch.Tensor],
) -> None:
    """Helper loop: wait for a command, compute a shard's gradient, report; exit on EOF."""
    torch.set_num_threads(threads)
    from torch.nn.utils import vector_to_parameters

    from ionfno.training.losses import get_loss as _loss_fn
    from ionfno.training.model import build_model
    from ionfno.training.steps import evaluate as _evaluate_on

    def _evaluate(model, x, y, batch_size):
        return _evaluate_on(model, x, y, batch_size=batch_size, device=torch.device("cpu"))

    model = build_model(cfg, in_channels=in_channels, out_channels=out_channels)
    model.train()
    loss_fn = _loss_fn(cfg.train.loss)
    plist = list(model.parameters())
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # rank 0 is gone
            return
        if msg is None:
            return
        try:
            if msg[0] == "eval":
                _, key, start, stop, batch_size = msg
                x, y = tensors[key + "_x"], tensors[key + "_y"]
                vector_to_parameters(params, plist)
                errors = _evaluate(model, x[start:stop], y[start:stop], batch_size)
                conn.send(("ok", errors.tolist()))
                continue
            key, idx, weight = msg
            x, y = tensors[key + "_x"], tensors[key + "_y"]
            vector_to_parameters(params, plist)
            for p in plist:
                p.grad = None
            xb, yb = x[idx], y[idx]
            loss = loss_fn(model(xb), yb) * weight
            loss.backward()
            _flat_grads(model, grads[rank - 1])
            conn.send(("ok", float(loss.detach())))
        except Exception:  # report instead of hanging rank 0
            conn.send(("error", traceback.format_exc()))


class DataParallelPool:
    """``workers - 1`` helper processes that share the gradient work of every batch (CPU).

    Parameters
    ----------
    workers : int
        Processes in all, rank 0 (this process) included; ``>= 2``.
    threads : int
        torch threads in each helper (rank 0 keeps its own setting).
    cfg : RunConfig
        Run configuration; helpers build the model from ``cfg.model`` (weights come from rank 0).
    in_channels, out_channels : int
        Model channels.
    model : torch.nn.Module
        Rank 0's model; its parameters define the shared vectors' layout.
    tensors : dict of str to Tensor
        Training (and validation) tensors by name, ``"<key>_x"`` of shape ``(n, in_channels, N_key)`` and
        ``"<key>_y"`` of shape ``(n, n_states, N_key)``, CPU, float; moved to shared memory.
    """

    def __init__(
        self,
        workers: int,
        threads: int,
        cfg: Any,
        in_channels: int,
        out_channels: int,
        model: torch.nn.Module,
        tensors: dict[str, torch.Tensor],
    ):
        import torch.multiprocessing as mp

        if workers < 2:
            raise ValueError(f"DataParallelPool needs workers >= 2, got {workers}")
        self.workers = workers
        self.model = model
        self._plist = list(model.parameters())
        n_params = sum(p.numel() for p in self._plist)
        self.params = torch.zeros(n_params).share_memory_()
        self.grads = torch.zeros(workers - 1, n_params).share_memory_()
        self._grad_buf = torch.zeros(n_params)
        try:
            shared = {k: v.contiguous().share_memory_() for k, v in tensors.items()}
        except RuntimeError as e:
            mb = sum(v.numel() * v.element_size() for v in tensors.values()) / 2**20
            raise RuntimeError(
                f"train.workers = {workers}: could not place the training tensors ({mb:.0f} MB) in "
                f"shared memory (/dev/shm on Linux): {e}. Free space there (in Docker: "
                "--shm-size) or use train.workers = 1"
            ) from e
        # Spawn, not fork: forking a process whose OpenMP runtime is initialised can deadlock.
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        env_before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        try:
            for rank in range(1, workers):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker_main,
                    args=(rank, child, cfg, in_channels, out_channels, threads, self.params, self.grads, shared),
                    daemon=True,
                    name=f"ionfno-train-worker-{rank}",
                )
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _publish(self) -> None:
        with torch.no_grad():
            offset = 0
            for p in self._plist:
                n = p.numel()
                self.params[offset : offset + n].copy_(p.detach().reshape(-1))
                offset += n

    def _receive(self, conn: Any) -> Any:
        try:
            status, value = conn.recv()
        except (EOFError, OSError):
            raise RuntimeError("a data-parallel training worker died (see its output above)") from None
        if status != "ok":
            raise RuntimeError(f"a data-parallel training worker failed:\n{value}")
        return value

    def train_one_epoch(
        self,
        key: str,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        batch_size: int,
        generator: torch.Generator,
        batch_scheduler: Any = None,
        grad_clip: float | None = None,
    ) -> float:
        """One pass in a random order, each batch split over the workers; mean batch loss.

        Same order, batches and update rule as :func:`ionfno.training.loop.train_one_epoch`.
        ``key`` names the tensors passed at construction (``x``, ``y`` are rank 0's copies).
        """
        model = self.model
        model.train()
        n = x.shape[0]
        order = torch.randperm(n, generator=generator)
        total, n_batches = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            b = idx.shape[0]
            shards = torch.tensor_split(idx, self.workers)
            self._publish()
            busy = []  # helper ranks - 1 with a non-empty shard this step
            for i, (conn, shard) in enumerate(zip(self._conns, shards[1:])):
                if shard.numel():
                    # A list, not a tensor: a tensor would travel as a new shared-memory segment.
                    conn.send((key, shard.tolist(), shard.numel() / b))
                    busy.append(i)
            optimizer.zero_grad(set_to_none=True)
            mine = shards[0]
            loss = loss_fn(model(x[mine]), y[mine]) * (mine.numel() / b)
            loss.backward()
            batch_loss = float(loss.detach())
            for i in busy:
                batch_loss += self._receive(self._conns[i])
            if busy:
                torch.sum(self.grads[busy], dim=0, out=self._grad_buf)
                offset = 0
                with torch.no_grad():
                    for p in self._plist:
                        k = p.numel()
                        g = self._grad_buf[offset : offset + k].view_as(p)
                        if p.grad is None:
                            p.grad = g.clone()
                        else:
                            p.grad.add_(g)
                        offset += k
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if batch_scheduler is not None:
                batch_scheduler.step()
            total += batch_loss
            n_batches += 1
        return total / max(n_batches, 1)

    def evaluate(self, key: str, x: torch.Tensor, y: torch.Tensor, *, batch_size: int) -> torch.Tensor:
        """Per-sample, per-variable errors, shape ``(n, n_states)``, float64, the samples split
        over the workers; equals :func:`ionfno.training.loop.evaluate` on rank 0's weights.
        """
        from ionfno.training.steps import evaluate

        n, n_states = x.shape[0], y.shape[1]
        bounds = torch.linspace(0, n, self.workers + 1).round().long().tolist()
        self._publish()
        busy = []
        for i, conn in enumerate(self._conns, start=1):
            if bounds[i + 1] > bounds[i]:
                conn.send(("eval", key, bounds[i], bounds[i + 1], batch_size))
                busy.append(conn)
        parts = []
        if bounds[1] > 0:
            parts.append(evaluate(self.model, x[: bounds[1]], y[: bounds[1]], batch_size=batch_size,
                                  device=torch.device("cpu")))
        for conn in busy:
            rows = self._receive(conn)
            parts.append(torch.tensor(rows, dtype=torch.float64).reshape(-1, n_states))
        return torch.cat(parts)

    def close(self) -> None:
        """Stop the helpers (idempotent)."""
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        self._conns, self._procs = [], []

    def __enter__(self) -> "DataParallelPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
