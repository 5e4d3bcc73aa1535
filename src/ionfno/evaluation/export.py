"""Export a trained surrogate as one self-contained network: torch.export, TorchScript or ONNX.

The exported network is the whole surrogate, not only the FNO: it takes the applied current
sampled on the training grid and returns every state in physical units,

    i_app (batch, N) float32  ->  states (batch, n_states, N) float32,

with the input and output normalisers and the grid channel ``t / T`` built in, so that a C++
(libtorch) or ONNX Runtime user needs nothing from ionfno. ``N`` is the run's training grid
(the point-wise normaliser and any cached transform matrices are tied to it); the batch size
is free.

Three formats:

* ``pt2``: ``torch.export`` (an ``ExportedProgram``, ``torch.export.load(path).module()``),
  the format torch develops (AOTInductor compiles it for C++ deployment).
* ``torchscript``: ``torch.jit.trace``, deprecated from torch 2.10 on in favour of
  ``torch.export`` but still what libtorch C++ loads with ``torch::jit::load`` (the deprecation
  warnings are torch's).
* ``onnx``: the ``torch.export``-based (dynamo) exporter, opsets :data:`ONNX_OPSETS` (the
  TorchScript-based ONNX exporter is deprecated). It needs the optional extra ``export``
  (``pip install 'ionfno[export]'``: ``onnx`` and ``onnxscript``; ``onnxruntime`` to run the
  file). ONNX has no complex tensors, so the spectral layers are exported in their real
  truncated-DFT form (two dense matrix products; the same operator and parameters as
  rfft/irfft).

A small JSON file next to the export (``<file>.json``) records the model, state names and
units, the grid and the run it came from.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SurrogateNetwork",
    "build_network",
    "export_pt2",
    "export_torchscript",
    "export_onnx",
    "EXPORT_FORMATS",
    "ONNX_OPSETS",
]

EXPORT_FORMATS = ("pt2", "torchscript", "onnx")
# ONNX opsets the exporter writes: 18 natively (torch 2.13), newer ones by onnxscript's version
# converter (checked up to 23 with onnxruntime 1.32; its adapters stop there for Gelu).
ONNX_OPSETS = (18, 23)


def _torch():
    import torch

    return torch


def build_network(run: str | os.PathLike, which: str = "best") -> tuple[Any, dict[str, Any]]:
    """The surrogate of a run folder (or a checkpoint file) as one ``nn.Module``, in eval mode.

    Parameters
    ----------
    run : path-like
        Run folder (``best.pt``/``last.pt``) or a checkpoint file.
    which : {"best", "last"}
        Checkpoint of a run folder.

    Returns
    -------
    network : SurrogateNetwork
        ``forward(i_app (B, N)) -> (B, n_states, N)``, physical units, float32.
    meta : dict
        Model name, state names and units, the grid, the source checkpoint.
    """
    from ..training import load_trained

    tr = load_trained(run, which)
    info = tr.data_info
    t = tr.t
    net = SurrogateNetwork(tr.model, tr.input_normalizer, tr.output_normalizer, t / float(info["t_end"]))
    net.eval()
    meta = {
        "format": "ionfno-export",
        "format_version": 1,
        "model": info["model"],
        "state_names": list(info["state_names"]),
        "state_units": list(info["state_units"]),
        "time_unit": info.get("time_unit", "ms"),
        "current_unit": info.get("current_unit", ""),
        "t_end": float(info["t_end"]),
        "n_points": int(t.shape[0]),
        "t": t.tolist(),
        "input": "i_app (batch, n_points) float32, applied current on t",
        "output": "states (batch, n_states, n_points) float32, model units",
        "checkpoint": str(tr.path.resolve()),
        "epoch": tr.epoch,
        "normalization": tr.normalization,
    }
    return net, meta


def _network_class():
    torch = _torch()

    class _SurrogateNetwork(torch.nn.Module):
        """Normalise the current, add the grid channel, run the FNO, de-normalise the states."""

        def __init__(self, fno, in_norm, out_norm, grid):
            super().__init__()
            self.fno = fno
            self.in_norm = in_norm
            self.out_norm = out_norm
            self.register_buffer("grid", torch.as_tensor(np.asarray(grid), dtype=torch.float32))

        def forward(self, i_app):
            z = self.in_norm.encode(i_app[:, None, :])[:, 0, :]  # (B, N)
            x = torch.stack([z, self.grid.expand_as(z)], dim=1)  # (B, 2, N)
            return self.out_norm.decode(self.fno(x))  # (B, S, N)

    return _SurrogateNetwork


def SurrogateNetwork(fno: Any, in_norm: Any, out_norm: Any, grid: np.ndarray) -> Any:  # noqa: N802
    """Build the exportable module (a class made on first use, so that importing is torch-free)."""
    return _network_class()(fno, in_norm, out_norm, grid)


def _write_meta(path: Path, meta: dict[str, Any]) -> Path:
    from .._io import write_json_atomic

    mp = path.with_name(path.name + ".json")
    write_json_atomic(mp, meta)
    return mp


def export_torchscript(run: str | os.PathLike, out: str | os.PathLike, *, which: str = "best") -> Path:
    """Trace the surrogate to a TorchScript file (``torch.jit.load`` it anywhere, no ionfno needed).

    Returns
    -------
    Path
        ``out``; ``out.json`` holds the metadata.
    """
    from .._io import atomic_path

    torch = _torch()
    net, meta = build_network(run, which)
    # The tracer warns about Python branches on n_time (silenced by _exporting); the export is
    # for one grid (n_time is fixed by design), and the batch size, which varies, enters no branch.
    with _exporting(net, meta) as example:
        traced = torch.jit.trace(net, example, check_trace=False)
    out = Path(out)
    with atomic_path(out) as tmp:
        torch.jit.save(traced, str(tmp))
    _write_meta(out, meta | {"exporter": f"torch.jit.trace (torch {torch.__version__})"})
    return out


def export_pt2(run: str | os.PathLike, out: str | os.PathLike, *, which: str = "best") -> Path:
    """Export the surrogate with ``torch.export`` (a ``.pt2`` file with a dynamic batch axis).

    Load it with ``torch.export.load(out).module()``; no ionfno needed.

    Returns
    -------
    Path
        ``out``; ``out.json`` holds the metadata.
    """
    from .._io import atomic_path

    torch = _torch()
    net, meta = build_network(run, which)
    with _exporting(net, meta) as example:
        program = torch.export.export(net, (example,), dynamic_shapes=_batch_dim())
    out = Path(out)
    with atomic_path(out, suffix=".pt2") as tmp:
        torch.export.save(program, str(tmp))
    _write_meta(out, meta | {"exporter": f"torch.export (torch {torch.__version__})"})
    return out


def check_opset(opset: int) -> int:
    """Return ``opset`` if the ONNX exporter writes it, else raise naming the valid range."""
    lo, hi = ONNX_OPSETS
    if isinstance(opset, bool) or not isinstance(opset, int) or not lo <= opset <= hi:
        raise ValueError(f"ONNX opset {opset!r} is not supported: the exporter writes opsets {lo} to {hi}")
    return opset


def export_onnx(
    run: str | os.PathLike, out: str | os.PathLike, *, which: str = "best", opset: int = ONNX_OPSETS[0]
) -> Path:
    """Export the surrogate to ONNX with a dynamic batch axis (needs the ``export`` extra).

    Parameters
    ----------
    opset : int
        ONNX opset, within :data:`ONNX_OPSETS` (default 18).

    Raises
    ------
    ValueError
        An opset outside :data:`ONNX_OPSETS` (checked first), or the exporter failed (its first
        line, not the graph it dumps).
    ImportError
        ``onnx`` or ``onnxscript`` is not installed (``pip install 'ionfno[export]'``).
    """
    check_opset(opset)
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ImportError(f"ONNX export needs the {e.name!r} package: pip install 'ionfno[export]'") from None
    from .._io import atomic_path
    from ..fno.spectral_conv import SpectralConv1d

    torch = _torch()
    net, meta = build_network(run, which)
    # ONNX has no complex tensors: use the spectral layers' real truncated-DFT form (the same
    # operator with the same parameters, see ionfno.fno.spectral_conv), not rfft/irfft.
    for m in net.modules():
        if isinstance(m, SpectralConv1d):
            m.implementation = "dft"
    out = Path(out)
    with atomic_path(out, suffix=".onnx") as tmp, _exporting(net, meta) as example:
        try:
            torch.onnx.export(
                net,
                (example,),
                str(tmp),
                input_names=["i_app"],
                output_names=["states"],
                dynamic_shapes=_batch_dim(),
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        except Exception as e:  # the exporter's errors carry the whole graph: keep the first line
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise ValueError(f"ONNX export (opset {opset}) failed: {type(e).__name__}: {first}") from None
    exporter = f"torch.onnx.export, dynamo (torch {torch.__version__}), opset {opset}"
    _write_meta(out, meta | {"exporter": exporter})
    return out


def _batch_dim() -> tuple[dict[int, Any]]:
    return ({0: _torch().export.Dim("batch", min=1)},)


@contextlib.contextmanager
def _exporting(net: Any, meta: dict[str, Any]) -> Iterator[Any]:
    """Export-time setup: an example input, no autograd, quiet exporters, clean caches.

    One eager forward first fills the spectral layers' cache of DFT bases with real tensors;
    otherwise tracing would build them, and leave the tracer's fake tensors in the cache for
    the next forward (``ionfno.fno.spectral_conv._BASIS_CACHE``). Whatever is left there that
    is not a plain tensor is dropped afterwards.
    """
    torch = _torch()
    from ..fno import spectral_conv

    example = torch.zeros(2, meta["n_points"], dtype=torch.float32)
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in quiet]
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer, deprecation and registry chatter
            for lg in quiet:
                lg.setLevel(logging.ERROR)
            net(example)
            yield example
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
        for key, bases in list(spectral_conv._BASIS_CACHE.items()):
            if any(type(b) is not torch.Tensor for b in bases):
                spectral_conv._BASIS_CACHE.pop(key, None)


def load_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata written next to an export."""
    p = Path(path)
    return json.loads(p.with_name(p.name + ".json").read_text())
