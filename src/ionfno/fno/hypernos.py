"""Load the reference study's published FNO weights (HyperNOs state dicts) into :class:`FNO1d`.

The authors trained their FNOs with the HyperNOs library and published three trained
constrained-case models as PyTorch state dicts (MaxGhi8/stiffODE_streamlit, ``models/``).
Their 1-D FNO is, for the Classic and Zongyi blocks, the operator of :class:`FNO1d`; only
the parameter names and layouts differ:

=============================  =========================  ================================
theirs                         ours                       layout change
=============================  =========================  ================================
``p.mlp1``, ``p.mlp2``         ``lifting.fc1``, ``.fc2``  input columns ``(grid, I)`` ->
                                                          ``(I, grid)`` in ``fc1``
``integrals.<l>.weights``      ``convs.<l>.weight``       complex ``(I, O, K)`` -> real
                                                          pairs ``(I, O, K, 2)``
``ws.<l>``                     ``skips.<l>``              ``Conv1d`` ``(O, I, 1)`` -> ``(O, I)``
``mlps.<l>.mlp1``, ``.mlp2``   ``mlps.<l>.fc1``, ``.fc2`` same (Zongyi only)
``q.mlp1``, ``q.mlp2``         ``projection.fc1``, ``.fc2``  ``Linear`` -> 1x1, same matrices
=============================  =========================  ================================

What a state dict does not hold must be given: the activation and the zero padding (points).
Their grid channel is ``linspace(0, 1, n)`` over the evaluated points; feed that as our second
input channel to reproduce their outputs exactly (``t/T`` differs from it only by the last
kept point when a grid is subsampled). Their Residual block skips its last layer, which ours
does not, and their weight-shared ("RNN") variant has no counterpart: both are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .fno import FNO1d
from .spectral_conv import Implementation

__all__ = ["hypernos_architecture", "map_hypernos_state_dict", "from_hypernos_state_dict"]

_LAYER_KEY = re.compile(r"^(integrals|ws|mlps)\.(\d+)\.")


def _n_layers(state: Mapping[str, Tensor]) -> int:
    layers = {int(m.group(2)) for k in state if (m := _LAYER_KEY.match(k))}
    if not layers or "integrals.weights" in state:
        raise ValueError(
            "not a HyperNOs 1-D FNO state dict with per-layer weights (integrals.<l>.weights); "
            "the weight-shared RNN variant is not supported"
        )
    if layers != set(range(len(layers))):
        raise ValueError(f"layer indices {sorted(layers)} are not 0..L-1")
    return len(layers)


def hypernos_architecture(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """The :class:`FNO1d` arguments a HyperNOs state dict determines (read from its shapes).

    Returns
    -------
    dict
        ``n_modes``, ``in_channels`` (their inputs plus the grid), ``out_channels``,
        ``hidden_channels``, ``n_layers``, ``block`` (``"zongyi"`` if the layers have channel
        MLPs, else ``"classic"``), ``lifting_channels``, ``projection_channels``.

    Raises
    ------
    ValueError
        Missing keys or a layout that is not the 1-D FNO's.
    """
    for key in ("p.mlp1.weight", "p.mlp2.weight", "q.mlp1.weight", "q.mlp2.weight", "integrals.0.weights"):
        if key not in state:
            raise ValueError(f"not a HyperNOs 1-D FNO state dict: no {key!r} (keys: {sorted(state)[:8]} ...)")
    spec = state["integrals.0.weights"]
    if not spec.is_complex() or spec.ndim != 3:
        raise ValueError(
            f"integrals.0.weights must be complex (in, out, modes), got {spec.dtype} {tuple(spec.shape)}"
        )
    return {
        "n_modes": int(spec.shape[2]),
        "in_channels": int(state["p.mlp1.weight"].shape[1]),
        "out_channels": int(state["q.mlp2.weight"].shape[0]),
        "hidden_channels": int(state["p.mlp2.weight"].shape[0]),
        "n_layers": _n_layers(state),
        "block": "zongyi" if "mlps.0.mlp1.weight" in state else "classic",
        "lifting_channels": int(state["p.mlp1.weight"].shape[0]),
        "projection_channels": int(state["q.mlp1.weight"].shape[0]),
    }


def map_hypernos_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A HyperNOs 1-D FNO state dict in :class:`FNO1d`'s names and layouts (table above).

    Raises
    ------
    ValueError
        A key that has no counterpart (every key must be mapped; nothing is dropped silently).
    """
    n_layers = _n_layers(state)
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        value = value.detach()
        head, _, tail = key.partition(".")
        if head in ("p", "q"):
            mlp, param = tail.split(".")
            ours = {"p": "lifting", "q": "projection"}[head] + "." + {"mlp1": "fc1", "mlp2": "fc2"}[mlp]
            if key == "p.mlp1.weight":  # their inputs (grid, I...) -> ours (I..., grid)
                value = torch.cat([value[:, 1:], value[:, :1]], dim=1)
            out[f"{ours}.{param}"] = value.clone()
            continue
        m = _LAYER_KEY.match(key)
        if m is None or int(m.group(2)) >= n_layers:
            raise ValueError(f"HyperNOs key {key!r} has no counterpart in FNO1d")
        layer, rest = m.group(2), key[m.end() :]
        if head == "integrals" and rest == "weights":
            out[f"convs.{layer}.weight"] = torch.view_as_real(value.resolve_conj()).clone()
        elif head == "ws" and rest in ("weight", "bias"):
            out[f"skips.{layer}.{rest}"] = (value[..., 0] if rest == "weight" else value).clone()
        elif head == "mlps" and rest in ("mlp1.weight", "mlp1.bias", "mlp2.weight", "mlp2.bias"):
            mlp, param = rest.split(".")
            fc = {"mlp1": "fc1", "mlp2": "fc2"}[mlp]
            out[f"mlps.{layer}.{fc}.{param}"] = (value[..., 0] if param == "weight" else value).clone()
        else:
            raise ValueError(f"HyperNOs key {key!r} has no counterpart in FNO1d")
    return out


def from_hypernos_state_dict(
    state: Mapping[str, Tensor],
    *,
    activation: str,
    padding: int,
    block: str | None = None,
    spectral: Implementation = "auto",
) -> FNO1d:
    """An :class:`FNO1d` holding a HyperNOs 1-D FNO's trained weights.

    Parameters
    ----------
    state : mapping
        The HyperNOs ``state_dict`` (load it with ``torch.load(path, weights_only=True,
        map_location="cpu")``).
    activation : {"gelu", "relu", "tanh", "leaky_relu"}
        Their ``fun_act`` (not stored in a state dict).
    padding : int
        Their ``padding``: zero points appended to the time axis (not stored in a state dict).
    block : {"classic", "zongyi"}, optional
        Their ``fno_arc`` in our spelling; checked against the state dict (which tells zongyi
        from classic by its channel MLPs). ``"residual"`` is refused (their residual block
        skips its last layer).
    spectral : {"auto", "fft", "dft"}
        Our spectral implementation (same operator).

    Returns
    -------
    FNO1d
        In evaluation mode, in the state dict's real dtype (float32 for the published weights),
        inputs ``(batch, I + grid, n_time)`` with the grid last.
    """
    arch = hypernos_architecture(state)
    if block is not None and block.lower() != arch["block"]:
        if block.lower() == "residual":
            raise ValueError("their Residual block skips its last layer; FNO1d's residual block does not")
        raise ValueError(f"block {block!r} given, but the state dict holds a {arch['block']!r} FNO")
    model = FNO1d(**arch, activation=activation, padding=padding, spectral=spectral)
    model.to(dtype=state["p.mlp1.weight"].dtype)  # their float32, or float64 in tests
    model.load_state_dict(map_hypernos_state_dict(state), strict=True)
    return model.eval()
