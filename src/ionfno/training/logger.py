"""Rank 0's record of a run: ``metrics.csv``, TensorBoard events and the progress bar.

``metrics.csv`` gets one row per epoch: appended every epoch (cheap), rewritten atomically
from the history at every checkpoint, so that at a checkpoint the file matches ``last.pt``;
rows a killed run wrote past its last checkpoint are dropped when the run resumes.
TensorBoard (the optional ``tensorboard`` package) gets every column of the row under its
name, and a resumed run purges the events written after its checkpoint.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from .._io import atomic_path
from .rundir import RunDir

__all__ = ["RunLogger", "csv_text", "open_tensorboard"]


def csv_text(history: list[dict[str, Any]], header: bool = True) -> str:
    """Rows as CSV; the columns are the union of the rows' (a resumed older run may gain one)."""
    buf = io.StringIO()
    fieldnames = list(dict.fromkeys(k for row in history for k in row))
    w = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n", restval="")
    if header:
        w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def open_tensorboard(log_dir: Path, purge_step: int | None) -> Any:
    """A ``SummaryWriter`` on ``log_dir``, or None without the tensorboard package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional extra `tensorboard`
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


class RunLogger:
    """Writes the epoch rows of one run (module docstring); use as a context manager.

    Parameters
    ----------
    run : RunDir
    history : list of dict
        The rows up to the checkpoint the run starts from (``[]`` for a new run).
    planned_epochs : int
        Length of the progress bar.
    progress : bool
        Show a tqdm progress bar over epochs.
    """

    def __init__(
        self, run: RunDir, history: list[dict[str, Any]], *, planned_epochs: int, progress: bool
    ) -> None:
        from tqdm.auto import tqdm

        self.run = run
        start = len(history)
        self._write_all(history)  # drops rows a killed run wrote past last.pt
        self._tb = open_tensorboard(run.tensorboard, purge_step=start + 1 if start else None)
        self._bar = tqdm(
            total=planned_epochs,
            initial=start,
            disable=not progress,
            unit="epoch",
            desc=f"train {run.path.name}",
            dynamic_ncols=True,
        )

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def log(
        self, history: list[dict[str, Any]], *, best_val: float, checkpointed: bool,
        planned_epochs: int | None = None,
    ) -> None:
        """Record the epoch whose row ends ``history``; ``checkpointed``: a checkpoint was just
        written, so the CSV is rewritten to match it; ``planned_epochs``: the plan now (a
        time-limited run re-plans its length), the new length of the progress bar."""
        row = history[-1]
        if planned_epochs is not None and planned_epochs != self._bar.total:
            self._bar.total = planned_epochs
            self._bar.refresh()
        if checkpointed:
            self._write_all(history)
        else:
            self._append(history)
        if self._tb is not None:
            for k, v in row.items():
                if k != "epoch":
                    self._tb.add_scalar(k, v, row["epoch"])
        self._bar.update(1)
        self._bar.set_postfix(
            train=f"{row['train_loss']:.4f}", val=f"{row['val_loss']:.4f}", best=f"{best_val:.4f}"
        )

    def close(self) -> None:
        self._bar.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _write_all(self, history: list[dict[str, Any]]) -> None:
        path = self.run.metrics
        if not history:
            path.unlink(missing_ok=True)
            return
        with atomic_path(path) as tmp:
            tmp.write_text(csv_text(history))

    def _append(self, h: list[dict[str, Any]]) -> None:
        path = self.run.metrics
        if len(h) == 1 or not path.exists() or list(h[-1]) != list(h[0]):
            self._write_all(h)
            return
        with open(path, "a") as f:
            f.write(csv_text(h[-1:], header=False))
