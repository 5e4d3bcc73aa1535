"""The run folder of ``ionfno train``: one object owns its layout.

::

    RUN/config.json        the RunConfig used (``ionfno train --config`` reads it back)
    RUN/last.pt            everything needed to resume, written every ``checkpoint_every`` epochs
    RUN/best.pt            the best-validation model (enough to predict; never resumed from)
    RUN/metrics.csv        one row per epoch (the checkpoint's history, plus rows since)
    RUN/test_metrics.json  test-split errors of the best and the last model, when finished
    RUN/tensorboard/       event files, when the tensorboard package is installed

Every other module names these files through :class:`RunDir`, so the layout is spelled once.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

__all__ = ["RunDir", "CHECKPOINTS"]

#: The checkpoints of a run folder.
CHECKPOINTS = ("best", "last")


class RunDir:
    """Paths and small reads of one training run folder (nothing is created until written).

    Parameters
    ----------
    path : path-like
        The run folder.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def test_metrics(self) -> Path:
        return self.path / "test_metrics.json"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def checkpoint(self, which: str = "best") -> Path:
        """Path of the ``"best"`` or ``"last"`` checkpoint."""
        if which not in CHECKPOINTS:
            raise ValueError(f"which must be one of {list(CHECKPOINTS)}, got {which!r}")
        return self.path / f"{which}.pt"

    def load(self, which: str = "best", map_location: Any = "cpu") -> dict[str, Any]:
        """The ``which`` checkpoint, read with :func:`~ionfno.training.checkpoint.load_checkpoint`.

        Raises
        ------
        FileNotFoundError
            The folder has no such checkpoint (the message says what that means).
        CheckpointError
            The file is not an ionfno checkpoint.
        """
        from .checkpoint import load_checkpoint

        return load_checkpoint(RunDir.resolve(self.path, which), map_location=map_location)

    def history(self) -> list[dict[str, float]]:
        """Rows of ``metrics.csv`` as floats (empty cells left out; [] without the file)."""
        if not self.metrics.exists():
            return []
        with open(self.metrics, newline="") as fh:
            return [
                {k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)
            ]

    def finished(self) -> bool:
        """True when both checkpoints exist and ``last.pt`` says the run ended (planned epochs
        done, early stopping or the time limit)."""
        if not (self.checkpoint("last").exists() and self.checkpoint("best").exists()):
            return False
        try:
            return bool(self.load("last").get("finished", False))
        except (OSError, ValueError):
            return False

    def copy_from(self, other: RunDir) -> None:
        """Copy another run folder's checkpoints and ``metrics.csv`` here (to resume its run)."""
        import shutil

        self.path.mkdir(parents=True, exist_ok=True)
        for src, dst in (
            (other.checkpoint("last"), self.checkpoint("last")),
            (other.checkpoint("best"), self.checkpoint("best")),
            (other.metrics, self.metrics),
        ):
            if src.exists():
                shutil.copy2(src, dst)

    def clear(self) -> None:
        """Delete the checkpoints and logs of an earlier run (starting over in this folder)."""
        for p in (*map(self.checkpoint, CHECKPOINTS), self.metrics, self.test_metrics):
            p.unlink(missing_ok=True)

    @staticmethod
    def resolve(source: str | os.PathLike, which: str = "best") -> Path:
        """The checkpoint file ``source`` names: a run folder's ``which`` checkpoint, or the file.

        Raises
        ------
        FileNotFoundError
            No such folder or file, or the folder lacks the checkpoint.
        """
        p = Path(source)
        if p.is_dir():
            path = RunDir(p).checkpoint(which)
            if not path.exists():
                raise FileNotFoundError(
                    f"Run folder {str(p)!r} has no {path.name} (has training finished an epoch?)"
                )
            return path
        if not p.exists():
            raise FileNotFoundError(f"No run folder or checkpoint at {str(p)!r}")
        return p
