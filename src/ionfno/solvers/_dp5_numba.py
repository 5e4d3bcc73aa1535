"""The compiled Dormand–Prince 5(4) integrator, for models that are not stiff at the step sizes
their accuracy needs (FitzHugh–Nagumo, Hodgkin–Huxley): one cell per call, batches one cell
after the other or in parallel, with the same arrays, stepping onto stimulus edges, dense
output and status codes as :mod:`ionfno.solvers._rl2_numba` (whose docstring lists the
arrays; ``gate`` is accepted and ignored here).

Scheme (Dormand & Prince 1980, doi:10.1016/0771-050X(80)90013-3; Hairer, Nørsett & Wanner,
*Solving ODEs I*, II.5): seven stages with the last one at the new point (first same as last),
the fifth-order solution propagated and the difference to the embedded fourth-order one as the
error estimate, ``err = max_j |y5 - y4|_j / max(atol_j + rtol * M_j, 16 eps |y_j|)`` with
``M_j`` the range the state has covered so far (as RL2). Step size
``h <- h * clip(0.9 err^(-1/5), 0.2, 5)``. Dense output: the cubic Hermite interpolant of the
step's end values and derivatives (both at hand: FSAL), error O(h^4) inside a step, below the
step's own error at the tolerances this scheme is used at (BENCHMARKS.md).

Why a second scheme: RL2 is second order, so its steps grow only as ``rtol^(-1/2)``. HH needs
rtol ~5e-9 to keep the late spikes of near-threshold repetitive firing within 1e-3 of range
(their timing amplifies errors ~6e4-fold); there RL2 takes 0.3-0.6 million steps per 100 ms
sample and DP5 tens of thousands. ORd stays on RL2: its fast gates make an explicit scheme
stability-limited at the steps its tolerance allows.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange

from ._rl2_numba import (
    _BATCH_SIGNATURE,
    _OPTS,
    MAX_STEPS,
    NONFINITE,
    OK,
    SOLVER_ERROR,
    _control,
    _current,
    _fail_outputs,
    _first_step,
    _next_piece,
    _start_outputs,
    _step_to,
)
from .exponential import ROUNDING_FLOOR

__all__ = ["integrate_batch", "integrate_batch_serial"]

# Butcher tableau of DOPRI5 (Hairer, Nørsett & Wanner, Table II.5.2)
C2, C3, C4, C5 = 1 / 5, 3 / 10, 4 / 5, 8 / 9
A21 = 1 / 5
A31, A32 = 3 / 40, 9 / 40
A41, A42, A43 = 44 / 45, -56 / 15, 32 / 9
A51, A52, A53, A54 = 19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729
A61, A62, A63, A64, A65 = 9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656
B1, B3, B4, B5, B6 = 35 / 384, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84
# fifth minus fourth order weights: the error estimate
E1, E3, E4, E5, E6, E7 = 71 / 57600, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40


@njit(**_OPTS)
def integrate_one(rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, dt, max_step, max_steps, out,
                  counts):
    """Integrate one sample into ``out`` (n, N); return its status, steps into ``counts``.

    ``dt > 0`` selects fixed steps of ``dt`` (still stepping onto every stop); ``dt == 0``
    the error-controlled mode. ``counts`` (2,) receives accepted and rejected steps.
    """
    n = y0.shape[0]
    N = t_eval.shape[0]
    fixed = dt > 0.0
    h_min = 1e-12 * t_end

    y = y0.copy()
    ylo = y0.copy()
    yhi = y0.copy()
    k1 = np.empty(n)
    k2 = np.empty(n)
    k3 = np.empty(n)
    k4 = np.empty(n)
    k5 = np.empty(n)
    k6 = np.empty(n)
    k7 = np.empty(n)
    yt = np.empty(n)
    y5 = np.empty(n)
    a = np.empty(n)  # the vector field's diagonal coefficients: not used by this scheme

    g = _start_outputs(y0, t_eval, out)
    t = 0.0
    k = 0
    nstep = 0
    nrej = 0
    status = OK

    rhs(t, y, p, _current(stops, v_start, v_end, 0, t), k1, a)
    h = dt if fixed else _first_step(y, k1, rtol, atol, t_end, max_step)

    while True:
        h, snap, hs, tn = _step_to(t, h, stops[k], fixed, max_step)

        # The stages, all on stimulus piece k (the step ends at or before its stop).
        for j in range(n):
            yt[j] = y[j] + hs * (A21 * k1[j])
        ts = t + C2 * hs
        rhs(ts, yt, p, _current(stops, v_start, v_end, k, ts), k2, a)
        for j in range(n):
            yt[j] = y[j] + hs * (A31 * k1[j] + A32 * k2[j])
        ts = t + C3 * hs
        rhs(ts, yt, p, _current(stops, v_start, v_end, k, ts), k3, a)
        for j in range(n):
            yt[j] = y[j] + hs * (A41 * k1[j] + A42 * k2[j] + A43 * k3[j])
        ts = t + C4 * hs
        rhs(ts, yt, p, _current(stops, v_start, v_end, k, ts), k4, a)
        for j in range(n):
            yt[j] = y[j] + hs * (A51 * k1[j] + A52 * k2[j] + A53 * k3[j] + A54 * k4[j])
        ts = t + C5 * hs
        rhs(ts, yt, p, _current(stops, v_start, v_end, k, ts), k5, a)
        for j in range(n):
            yt[j] = y[j] + hs * (A61 * k1[j] + A62 * k2[j] + A63 * k3[j] + A64 * k4[j] + A65 * k5[j])
        rhs(tn, yt, p, _current(stops, v_start, v_end, k, tn), k6, a)
        for j in range(n):
            y5[j] = y[j] + hs * (B1 * k1[j] + B3 * k3[j] + B4 * k4[j] + B5 * k5[j] + B6 * k6[j])
        rhs(tn, y5, p, _current(stops, v_start, v_end, k, tn), k7, a)

        err = 0.0
        esum = 0.0
        for j in range(n):
            e = abs(hs * (E1 * k1[j] + E3 * k3[j] + E4 * k4[j] + E5 * k5[j] + E6 * k6[j] + E7 * k7[j]))
            sc = max(rtol * (yhi[j] - ylo[j]) + atol[j], ROUNDING_FLOOR * abs(y[j]))
            esum += e + abs(y5[j])
            if e > err * sc:
                err = e / sc
        finite = math.isfinite(esum)

        acc, fail, under, h = _control(finite, err, fixed, snap, hs, h, h_min, k1, 0.2)

        if acc:
            # Output grid points in (t, tn]: cubic Hermite from y, k1 (at t) and y5, k7 (at tn).
            while g < N and t_eval[g] <= tn:
                if t_eval[g] == tn:
                    for j in range(n):
                        out[j, g] = y5[j]
                else:
                    th = (t_eval[g] - t) / hs
                    th1 = th - 1.0
                    h00 = (1.0 + 2.0 * th) * th1 * th1
                    h10 = th * th1 * th1 * hs
                    h01 = th * th * (3.0 - 2.0 * th)
                    h11 = th * th * th1 * hs
                    for j in range(n):
                        out[j, g] = h00 * y[j] + h10 * k1[j] + h01 * y5[j] + h11 * k7[j]
                g += 1
            t = tn
            for j in range(n):
                y[j] = y5[j]
                ylo[j] = min(ylo[j], y5[j])
                yhi[j] = max(yhi[j], y5[j])
                k1[j] = k7[j]  # first same as last
            nstep += 1
            if snap:
                if t >= t_end:
                    break
                k = _next_piece(stops, k, t)
                # the current jumps at a stop: the derivative at t is the new piece's
                rhs(t, y, p, _current(stops, v_start, v_end, k, t), k1, a)
        elif not fail:
            nrej += 1
        if fail:
            status = SOLVER_ERROR if under else NONFINITE
            break
        if nstep + nrej >= max_steps:
            status = MAX_STEPS
            break

    if status != OK:
        _fail_outputs(out, g)
    counts[0] = nstep
    counts[1] = nrej
    return status


@njit(**_OPTS)
def _one(i, rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, dt, max_step, max_steps, out,
         status, steps, rejected):
    counts = np.zeros(2, dtype=np.int64)
    status[i] = integrate_one(rhs, y0[i], p, stops[i], v_start[i], v_end[i], t_eval, t_end, rtol, atol, dt,
                              max_step, max_steps, out[i], counts)
    steps[i] = counts[0]
    rejected[i] = counts[1]


def _batch_prange(rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step, max_steps,
                  out, status, steps, rejected):
    for i in prange(y0.shape[0]):
        _one(i, rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, dt, max_step, max_steps, out,
             status, steps, rejected)


@functools.cache
def integrate_batch():
    """:func:`integrate_batch_serial` in parallel over samples (``prange``), compiled on first use
    (see :func:`ionfno.solvers._rl2_numba.integrate_batch` for why it is deferred)."""
    return njit(_BATCH_SIGNATURE, parallel=True, **_OPTS)(_batch_prange)


@njit(_BATCH_SIGNATURE, **_OPTS)
def integrate_batch_serial(rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step,
                           max_steps, out, status, steps, rejected):
    """:func:`integrate_one` for every sample of the batch, one after the other."""
    for i in range(y0.shape[0]):
        _one(i, rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, dt, max_step, max_steps, out,
             status, steps, rejected)
