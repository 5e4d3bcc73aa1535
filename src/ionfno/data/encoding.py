"""How the applied current becomes the FNO's input channel: point samples or cell averages.

The reference study (Pellegrini et al. 2025, arXiv 2505.14039) feeds the FNO the current
*sampled* at the grid points, ``x_i = I_app(t_i)`` (``"point"``). That loses the stimulus
whenever a pulse is shorter than the grid spacing: on ORd's 1260-point training grid over
1000 ms (``dt = 0.79 ms``) every pulse with ``T_stim < 0.79 ms`` becomes the same single
spike ``x_0 = A``, whether it delivers no charge (``T_stim = 0``: the cell stays at rest)
or enough to fire (``A = 150`` for 0.5 ms). The operator the FNO is asked to learn is then
not a function of its input.

``"cell_average"`` keeps what matters to the cell, the delivered charge: each grid point gets
the mean current over its cell (the half-way points to its neighbours, clipped to
``[0, t_end]``),

.. math::

    x_i = \\frac{1}{b_{i+1} - b_i} \\int_{b_i}^{b_{i+1}} I_{app}(t)\\,dt, \\qquad
    b_0 = 0,\\; b_i = \\tfrac{1}{2}(t_{i-1} + t_i),\\; b_N = t_{end},

computed exactly from the protocol (piecewise linear between its breakpoints), so
``sum_i x_i (b_{i+1} - b_i)`` is the total charge on any grid and a zero-length pulse is no
input at all. It is the finite-volume view of the input function; the output grid, the
normalisers and the study's metric do not change.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from collections.abc import Mapping

from ..stimulus import Mixed, Pulses, SampledWaveform, Stimulus, pulse

__all__ = [
    "INPUT_ENCODINGS",
    "InputEncoding",
    "cell_averages",
    "encode_current",
    "stimulus_from_arrays",
    "stored_stimulus",
]

InputEncoding = Literal["point", "cell_average"]
INPUT_ENCODINGS: tuple[str, ...] = ("point", "cell_average")


def cell_averages(stimulus: Stimulus, t: np.ndarray, t_end: float) -> np.ndarray:
    """Mean applied current over each grid point's cell (module docstring), exact.

    Parameters
    ----------
    stimulus : Stimulus
        Batch of ``B`` protocols (linear in time between their breakpoints).
    t : ndarray, shape (N,)
        Increasing grid in ``[0, t_end]`` [ms], ``N >= 2``.
    t_end : float
        End of the window [ms]; the last cell ends there.

    Returns
    -------
    ndarray, shape (B, N), float64
        Cell means [current unit].
    """
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be an increasing 1-D grid of at least 2 points")
    bounds = np.concatenate([[0.0], 0.5 * (t[:-1] + t[1:]), [float(t_end)]])  # (N + 1,)
    # The charge delivered up to each cell boundary (exact, Stimulus.integral), differenced.
    return np.diff(stimulus.integral(bounds), axis=1) / np.diff(bounds)[None, :]


def stimulus_from_arrays(amplitude: np.ndarray, duration: np.ndarray, onset: np.ndarray) -> Stimulus:
    """The single rectangular pulses stored per sample in a dataset (``amplitude``, ``duration``, ``onset``).

    Only the first pulse of each sample: :func:`stored_stimulus` rebuilds any stored protocol.
    """
    return pulse(np.asarray(amplitude, dtype=np.float64), np.asarray(duration, dtype=np.float64),
                 np.asarray(onset, dtype=np.float64))


def stored_stimulus(arrays: Mapping[str, np.ndarray]) -> Stimulus:
    """The exact stimulus of samples read from a dataset (:func:`ionfno.data.storage.read_split`).

    ``"pulses"`` samples are their ``n_pulses`` pulses (single pulses as
    :func:`~ionfno.stimulus.pulse`, several as :class:`~ionfno.stimulus.Pulses`),
    ``"waveform"`` samples the piecewise-linear currents through their stored knots
    (``waveform`` on ``t_stored``); a batch of both is a :class:`~ionfno.stimulus.Mixed`.
    A mapping without the protocol arrays (a caller's own ``amplitude``, ``duration`` and
    ``onset``) gives single pulses, as :func:`stimulus_from_arrays`.

    Parameters
    ----------
    arrays : mapping
        ``amplitude``, ``duration``, ``onset`` (n,), and optionally the protocol arrays of
        :func:`~ionfno.data.storage.read_split` (``protocol``, ``n_pulses``, ``pulse_*``,
        ``t_stored``, ``waveform``, ``waveform_rows``).

    Returns
    -------
    Stimulus
        Batch of ``n`` samples, in the order of ``arrays``.
    """
    if "protocol" not in arrays:
        return stimulus_from_arrays(arrays["amplitude"], arrays["duration"], arrays["onset"])
    protocol = np.asarray(arrays["protocol"])
    waves = np.asarray(arrays.get("waveform_rows", np.flatnonzero(protocol == "waveform")), dtype=np.int64)
    if not np.array_equal(np.sort(waves), np.flatnonzero(protocol == "waveform")):
        raise ValueError("waveform_rows must be the positions of the 'waveform' samples")
    rows = np.flatnonzero(protocol != "waveform")
    members: list[Stimulus] = []
    parts = []
    if rows.size:
        n_pulses = np.asarray(arrays["n_pulses"])[rows]
        amp, dur, ons = (np.asarray(arrays[f"pulse_{k}"], dtype=np.float64)[rows]
                         for k in ("amplitude", "duration", "onset"))
        if np.all(n_pulses == 1):  # the study's single pulses (the faster protocol class)
            members.append(pulse(amp[:, 0], dur[:, 0], ons[:, 0]))
        else:
            width = max(1, int(n_pulses.max()))
            members.append(Pulses(amp[:, :width], dur[:, :width], ons[:, :width]))
        parts.append(rows)
    if waves.size:
        members.append(SampledWaveform(np.asarray(arrays["t_stored"], dtype=np.float64),
                                       np.asarray(arrays["waveform"], dtype=np.float64), "linear"))
        parts.append(waves)
    if not members:
        raise ValueError("No samples to build a stimulus from")
    return Mixed.of(members, parts)


def encode_current(encoding: str, *, i_app: np.ndarray, stimulus: Stimulus | None, t: np.ndarray,
                   t_end: float) -> np.ndarray:
    """The input channel for ``encoding``: ``i_app`` as sampled, or the cell averages of ``stimulus``.

    Parameters
    ----------
    encoding : {"point", "cell_average"}
    i_app : ndarray, shape (B, N)
        Point samples on ``t`` (returned as they are for ``"point"``).
    stimulus : Stimulus or None
        The protocol behind ``i_app``; required for ``"cell_average"``.
    t : ndarray, shape (N,)
    t_end : float
    """
    if encoding not in INPUT_ENCODINGS:
        raise ValueError(f"Unknown input encoding {encoding!r}; expected one of {list(INPUT_ENCODINGS)}")
    if encoding == "point":
        return i_app
    if stimulus is None:
        raise ValueError("input encoding 'cell_average' needs the stimulus protocol, not only its samples")
    return cell_averages(stimulus, t, t_end)
