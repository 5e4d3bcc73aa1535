"""Checkpoints: one ``torch.save`` dict with everything needed to rebuild, resume or predict.

Layout (version 1)::

    {"format": "ionfno-checkpoint", "version": 1, "ionfno_version": str,
     "config": asdict(RunConfig),            # the model is rebuilt from this
     "model": state_dict,
     "normalizers": {"kind": str, "input_kind": str (absent before 2026-12: = kind),
                     "input": state_dict, "output": state_dict},
     "optimizer": state_dict, "scheduler": state_dict,
     "epoch": int,                           # epochs completed
     "best_val": float, "best_epoch": int,
     "history": [dict per epoch],
     "rng": {"torch": ByteTensor, "shuffle": ByteTensor, "cuda": [ByteTensor, ...]},
     "data_info": {"model": str, "state_names": [...], "state_units": [...], "time_unit": str,
                   "current_unit": str, "t_end": float, "n_points": int, "subsample": int,
                   "in_channels": int, "dataset": str, "fingerprint": str}}

Only tensors, numbers, strings, lists and dicts, so the file loads with
``torch.load(..., weights_only=True)`` (no pickle code runs; see equinox's serialisation notes).
Files are written atomically: a kill during a save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "ionfno-checkpoint"
CHECKPOINT_VERSION = 1

_REQUIRED = ("config", "model", "normalizers", "epoch", "data_info")


class CheckpointError(ValueError):
    """A file is not an ionfno checkpoint, is damaged, or is of a newer version."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (without format/version keys, which are added) atomically."""
    import torch

    from .. import __version__
    from .._io import atomic_path

    full = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "ionfno_version": __version__}
    full.update(payload)
    # Serialised in memory first: torch's own file writer reports a full disk as a bare
    # RuntimeError ("enforce fail at inline_container.cc"); Python's write raises ENOSPC,
    # which atomic_path turns into a message naming the file (the previous file stays).
    buf = io.BytesIO()
    torch.save(full, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and check an ionfno checkpoint with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is not a torch file, not one of ours, is missing parts, or is newer than
        this version of ionfno can read.
    """
    import torch

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"Checkpoint {str(p)!r} does not exist")
    try:
        ck = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types (UnpicklingError, RuntimeError, EOFError)
        raise CheckpointError(_load_failure(p, e)) from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{str(p)!r} is not an ionfno checkpoint (no format={CHECKPOINT_FORMAT!r} marker); "
            "expected a file written by `ionfno train`"
        )
    version = ck.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{str(p)!r} is checkpoint version {version!r}; "
            f"this ionfno reads versions <= {CHECKPOINT_VERSION}"
        )
    missing = [k for k in _REQUIRED if k not in ck]
    if missing:
        raise CheckpointError(f"{str(p)!r} is missing {missing}; the file is damaged")
    return ck


def _load_failure(p: Path, e: Exception) -> str:
    """Our message for a file torch would not load: never torch's advice to retry unsafely.

    torch's message explains how to load the file anyway (without ``weights_only``, which runs
    any code the file holds); ionfno never writes such objects, so that is never the way here.
    """
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    pickled = next((ln for ln in lines if "GLOBAL" in ln.upper() and "weights_only" not in ln), None)
    if pickled is not None:
        return (
            f"{str(p)!r} was refused: it holds Python objects other than tensors, numbers, strings, "
            f"lists and dicts ({pickled[:200]}). ionfno never writes those into a checkpoint, so the file "
            "was made or changed by something else; it is not loaded (that could run code from the file). "
            "Use a checkpoint written by `ionfno train`"
        )
    what = "not a torch file, or damaged" if any("Weights only load failed" in ln for ln in lines) else (
        f"{type(e).__name__}: {(lines or [''])[0][:200]}"
    )
    return f"{str(p)!r} is not a readable ionfno checkpoint ({what})"
