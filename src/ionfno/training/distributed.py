"""The ranks of a data-parallel run: launched by torchrun, or started here for ``train.workers``.

Two ways to run :func:`ionfno.training.train` on several processes, one rank each:

* ``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT] $(which ionfno) train ...``
  starts every rank; each joins the process group the launcher describes in its environment
  (:func:`launched_by_torchrun`, :func:`torchrun_group`). A group the caller already set up
  is used as it is.
* ``train.workers = N`` without a launcher: this process becomes rank 0 and spawns ranks
  1..N-1 on this machine (:class:`LocalRanks`), on ``127.0.0.1`` and a port the system picks,
  handing them the prepared training tensors in shared memory (no second copy, no second read).

The backend is gloo on the CPU and NCCL on CUDA (one GPU per rank). A rank that dies closes
its connections, so the others fail in their next collective instead of waiting: spawned ranks
exit when rank 0's connections close or its process is gone (they also watch their parent),
rank 0 names the rank that died, and torchrun stops the remaining ranks of its run.

Ranks are spawned, not forked (forking a process whose OpenMP runtime has started can
deadlock), so a script that calls ``train()`` with ``workers > 1`` needs the usual
``if __name__ == "__main__":`` guard around its top-level code.
"""

from __future__ import annotations

import datetime
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = [
    "LocalRanks",
    "RankError",
    "backend_for",
    "check_local_ranks",
    "fit_local_ranks",
    "launched_by_torchrun",
    "torchrun_group",
]

_CONNECT_TIMEOUT = datetime.timedelta(seconds=300)


class RankError(RuntimeError):
    """A rank of a data-parallel run died; the message names it."""


def backend_for(device: torch.device) -> str:
    """``"nccl"`` for CUDA, ``"gloo"`` for the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def launched_by_torchrun() -> bool:
    """True in a rank of a multi-process launch (torchrun's environment, or a group set up
    by the caller)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return True
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def _cpu_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_local_ranks(ranks: int, threads: int, device: torch.device, *, what: str = "train.workers") -> None:
    """Refuse ``ranks`` processes on this machine that it cannot run without oversubscription.

    Raises
    ------
    ValueError
        On the CPU ``ranks x threads`` above the cores; on CUDA more ranks than GPUs.
    """
    if ranks == 1:
        return
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if ranks > n:
            raise ValueError(f"{what} = {ranks} needs one CUDA device per rank; torch sees {n}")
        return
    cores = _cpu_cores()
    if ranks * threads > cores:
        raise ValueError(
            f"{what} x train.threads = {ranks} x {threads} = {ranks * threads} exceeds the "
            f"{cores} CPU cores of this machine (oversubscribed cores make every step many times "
            f"slower); use ranks x threads <= {cores}, e.g. train.workers = {max(1, cores // threads)} "
            "or train.threads = 1"
        )


def fit_local_ranks(cfg: Any, device: str | torch.device = "auto") -> Any:
    """``cfg`` with ``train.workers`` lowered to what this machine runs: ``workers x threads``
    within the cores on the CPU, one GPU per rank on CUDA (a setting that does not change
    results, so the run is the same run)."""
    from .config import with_changes
    from .model import resolve_device

    tc = cfg.train
    if resolve_device(device).type == "cuda":
        fits = min(tc.workers, max(1, torch.cuda.device_count()))
    else:
        fits = tc.workers if tc.workers * tc.threads <= _cpu_cores() else max(1, _cpu_cores() // tc.threads)
    return cfg if fits == tc.workers else with_changes(cfg, train={"workers": fits})


@contextmanager
def torchrun_group(device: torch.device) -> Iterator[torch.device]:
    """Join the process group of a torchrun launch (from its environment) for the block.

    Yields this rank's device: ``cuda:LOCAL_RANK`` when ``device`` is CUDA. A group that is
    already initialised is used and left as it is.
    """
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if dist.is_initialized():
        yield device
        return
    dist.init_process_group(backend_for(device), timeout=datetime.timedelta(minutes=30))
    try:
        yield device
    finally:
        # After training, the step's DDP wrapper (which holds the group and gloo's threads) sits in
        # a reference cycle through a closure, so only the cyclic GC frees it: at an arbitrary
        # moment, or during interpreter exit, where C++ destructors in arbitrary order can end a
        # rank that succeeded in std::terminate (SIGABRT). Free it now, before the group goes.
        gc.collect()
        dist.destroy_process_group()


def _exit_with(parent: int) -> None:
    """Exit this process as soon as ``parent`` is gone (re-parented: its pid changes)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="ionfno-parent-watch", daemon=True).start()


def _rank_main(
    rank: int,
    world_size: int,
    port: int,
    device: str,
    threads: int,
    parent: int,
    target: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    """A spawned rank: join the group on 127.0.0.1:port, run ``target(device, *args)``, leave."""
    import torch.distributed as dist

    from .steps import RankAbort

    _exit_with(parent)
    torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=_CONNECT_TIMEOUT)
    dist.init_process_group(backend_for(dev), store=store, rank=rank, world_size=world_size)
    try:
        target(dev, *args)
    except RankAbort:  # rank 0 stopped and reports why
        _leave_now(0)
    except Exception as e:
        if os.getppid() != parent:  # rank 0 is gone: nothing to report to
            os._exit(1)
        if _lost_connection(e):  # another rank failed first; it (or rank 0) reports why
            print(
                f"ionfno training rank {rank}: lost the connection to the other ranks, stopping",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(1)
        raise
    else:
        _leave_now(0)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _leave_now(code: int) -> None:
    """End a spawned rank whose work is done, without tearing its process group down.

    Its results are with rank 0 already. Tearing gloo down while rank 0 closes its side of the
    same connections can end the rank in ``std::terminate`` ("terminate called without an active
    exception", SIGABRT), which rank 0 would report as a failed run although it succeeded; the
    interpreter's exit handlers (C++ static destructors) are skipped for the same reason.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class LocalRanks:
    """This process as rank 0 and ``world_size - 1`` spawned ranks on this machine, for a block.

    ``with LocalRanks(n, device, threads, target, args) as dev:`` joins rank 0 to the group
    (the default torch.distributed group) and yields its device; rank ``r`` runs
    ``target(device_r, *args)`` (``target`` a module-level function, ``args`` picklable; CPU
    tensors in ``args`` travel through shared memory). On leaving, the group is destroyed and
    the ranks are joined (stopped if they linger); if a rank died, the error names it.

    Raises
    ------
    RankError
        A rank died.
    RuntimeError
        A default process group exists already (use torchrun for nested launches), or the
        tensors do not fit in shared memory.
    """

    def __init__(
        self,
        world_size: int,
        device: torch.device,
        threads: int,
        target: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self.world_size, self.device, self.threads = world_size, device, threads
        self.target, self.args = target, args
        self._procs: list[Any] = []

    def _device(self, rank: int) -> torch.device:
        return torch.device("cuda", rank) if self.device.type == "cuda" else torch.device("cpu")

    def __enter__(self) -> torch.device:
        import torch.distributed as dist
        import torch.multiprocessing as mp

        if dist.is_initialized():
            raise RuntimeError(
                "train.workers > 1 starts its own ranks, but this process already belongs to a "
                "torch.distributed group; launch the ranks with torchrun instead"
            )
        _share(self.args)
        store = dist.TCPStore(
            "127.0.0.1", 0, self.world_size, is_master=True, wait_for_workers=False, timeout=_CONNECT_TIMEOUT
        )
        ctx = mp.get_context("spawn")
        env_before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(self.threads)
        try:
            for rank in range(1, self.world_size):
                proc = ctx.Process(
                    target=_rank_main,
                    args=(
                        rank,
                        self.world_size,
                        store.port,
                        str(self._device(rank)),
                        self.threads,
                        os.getpid(),
                        self.target,
                        self.args,
                    ),
                    daemon=True,
                    name=f"ionfno-train-rank-{rank}",
                )
                proc.start()
                self._procs.append(proc)
            dev = self._device(0)
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group(backend_for(dev), store=store, rank=0, world_size=self.world_size)
        except BaseException:
            self._stop(grace=0.0)
            raise
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return dev

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        import torch.distributed as dist

        # A rank that died first is the cause of a lost connection here: find it before the
        # others stop because rank 0 leaves (they would fail too, as a consequence).
        dead: list[tuple[int, int]] = []
        if exc is not None and _lost_connection(exc):
            deadline = time.monotonic() + 5.0
            while not dead and time.monotonic() < deadline:
                dead = self._failed()
                time.sleep(0.05)
        if dist.is_initialized():
            gc.collect()  # DDP's reducer holds the group: see torchrun_group
            dist.destroy_process_group()  # closes rank 0's connections: no rank waits on it
        failed = self._stop(grace=60.0 if exc is None else 10.0)
        dead = dead or (failed if exc is None else [])
        if dead:
            rank, code = dead[0]
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            raise RankError(
                f"training rank {rank} of {self.world_size} died ({how}; its error, if any, is printed "
                "above); the run stopped at its last checkpoint, and the same command resumes it"
            ) from exc

    def _stop(self, grace: float) -> list[tuple[int, int]]:
        """Join the ranks, stopping those still alive after ``grace`` s; (rank, exit code) of the
        ranks that failed by themselves (not those stopped here: a rank still leaving after the
        run ended, slow on a loaded machine, has done its work)."""
        deadline = time.monotonic() + grace
        for proc in self._procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
        failed = self._failed()
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        self._procs = []
        return failed

    def _failed(self) -> list[tuple[int, int]]:
        return [(r, p.exitcode) for r, p in enumerate(self._procs, start=1) if p.exitcode not in (0, None)]


def _lost_connection(exc: BaseException) -> bool:
    """True for the error of a collective whose peer went away (gloo: "Connection closed by
    peer", "Connection reset"; NCCL: a remote error or an aborted communicator)."""
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in text
        for s in (
            "connection closed",
            "connection reset",
            "broken pipe",
            "remote process exited",
            "nccl communicator was aborted",
            "socket",
            "timed out",
        )
    )


def _share(obj: Any) -> None:
    """Move the CPU tensors reachable in ``obj`` to shared memory, with a clear error if full."""
    tensors = list(_tensors(obj))
    try:
        for t in tensors:
            t.share_memory_()
    except RuntimeError as e:
        mb = sum(t.numel() * t.element_size() for t in tensors) / 2**20
        raise RuntimeError(
            f"could not place the training tensors ({mb:.0f} MB) in shared memory (/dev/shm on Linux) "
            f"for the other ranks: {e}. Free space there (in Docker: --shm-size) or use train.workers = 1"
        ) from e


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        if obj.device.type == "cpu":
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _tensors(v)
    elif hasattr(obj, "shared_tensors"):
        yield from obj.shared_tensors()
