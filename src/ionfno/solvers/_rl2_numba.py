"""The compiled RL2 integrator: one cell per call (:func:`integrate_one`), batches one cell
after the other (:func:`integrate_batch_serial`) or in parallel (:func:`integrate_batch`,
a ``prange`` loop compiled on first use).

The scheme, error control, stimulus-edge stepping, dense output and status codes are those
of :class:`ionfno.solvers.exponential.ExponentialSolver` (its module docstring has the
equations); this is the same algorithm written for one sample at a time in scalar code, so
that numba compiles it to a loop without per-step Python or array overhead. The NumPy
solver stays as the tested reference (``fast_numpy``); ``tests/solvers/test_compiled.py``
checks that both agree.

Arrays of one batch call (``B`` samples, ``n`` states, ``K`` pieces of the stimulus, ``N``
output points)::

    y0        (B, n)     initial states
    p         (m,)       packed model parameters (``IonicModel.kernel``)
    stops     (B, K)     end of each stimulus piece; the last is t_end (padding = t_end)
    v_start   (B, K)     current at the start of each piece
    v_end     (B, K)     current at the end of each piece (linear in between)
    t_eval    (N,)       output times in [0, t_end]
    atol      (n,)       absolute tolerance per state
    gate      (n,)       True for the states integrated exponentially
    out       (B, n, N)  output; NaN after a failure
    status    (B,)       int8 Status code
    steps, rejected (B,) int64 accepted and rejected steps

A sample's result depends only on its own inputs: no state is shared between samples, so
the batch size, the order of the samples and the number of threads do not change a bit of
it. Compiled with explicit signatures and ``cache=True`` (see :mod:`ionfno.ionic.kernels`);
of ``fastmath`` only FMA contraction.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange, types

from ..ionic.kernels import RHS_TYPE
from .exponential import ROUNDING_FLOOR

__all__ = ["integrate_batch", "integrate_batch_serial", "OK", "NONFINITE", "MAX_STEPS", "SOLVER_ERROR"]

# ionfno.solvers.base.Status, as plain ints for the compiled code
OK, NONFINITE, MAX_STEPS, SOLVER_ERROR = 0, 1, 2, 3

# "contract" lets LLVM fuse a * b + c into one FMA instruction (one rounding instead of two:
# never less accurate); 8-10 % faster steps for ORd (BENCHMARKS.md). No other fastmath flag:
# NaN and inf must propagate to the status checks.
_OPTS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract"}}


# phi1(z) = (e^z - 1) / z and phi2(z) = (e^z - 1 - z) / z^2, the ETD weights. Below |z| = 1e-2
# a Taylor series (as ``exponential.phi12``); above it ``exp(z) - 1`` rather than ``expm1``:
# half the cost (4 vs 7.5 ns here, 62 calls a step for ORd), and its absolute error of about
# 1e-16 is a relative 1e-14 in phi1 and 2e-12 in phi2 at |z| = 1e-2, less above.
@njit(**_OPTS)
def _phi12(z):
    """``(phi1(z), phi2(z))``; Taylor series below |z| < 1e-2 (as ``exponential.phi12``)."""
    if abs(z) < 1e-2:
        p1 = 1.0 + z * (1 / 2 + z * (1 / 6 + z * (1 / 24 + z * (1 / 120 + z / 720))))
        p2 = 1 / 2 + z * (1 / 6 + z * (1 / 24 + z * (1 / 120 + z * (1 / 720 + z / 5040))))
        return p1, p2
    e = math.exp(z) - 1.0
    r = 1.0 / z
    return e * r, (e - z) * (r * r)


@njit(**_OPTS)
def _phi12_from(z, z0, e0):
    """``_phi12(z)`` given ``e0 = exp(z0)`` for a nearby ``z0`` (``e0 = 0`` if unknown).

    Stage 2 of a step needs ``exp`` at the averaged rate, ``z = z0 + d`` with ``d`` usually
    tiny: ``exp(z) = exp(z0) exp(d)``, the second factor from its series to ``d^5`` (relative
    error below 2e-15 for ``|d| < 1e-2``), halves the ``exp`` calls of a step.
    """
    if abs(z) < 1e-2:
        return _phi12(z)
    d = z - z0
    if e0 == 0.0 or not abs(d) < 1e-2:
        return _phi12(z)
    e = e0 * (1.0 + d * (1.0 + d * (1 / 2 + d * (1 / 6 + d * (1 / 24 + d * (1 / 120)))))) - 1.0
    r = 1.0 / z
    return e * r, (e - z) * (r * r)


@njit(**_OPTS)
def _current(stops, v_start, v_end, k, t):
    """The stimulus on piece ``k`` at time ``t``: linear from v_start to v_end."""
    v0, v1 = v_start[k], v_end[k]
    if v0 == v1:
        return v0  # pulses: exactly the amplitude, so the delivered charge is exact
    t0 = stops[k - 1] if k > 0 else 0.0
    return v0 + (t - t0) / (stops[k] - t0) * (v1 - v0)


@njit(**_OPTS)
def _start_outputs(y0, t_eval, out):
    """Write ``y0`` to the grid points at t <= 0; return the index of the first one after."""
    g = 0
    while g < t_eval.shape[0] and t_eval[g] <= 0.0:
        for j in range(y0.shape[0]):
            out[j, g] = y0[j]
        g += 1
    return g


@njit(**_OPTS)
def _first_step(y, f, rtol, atol, t_end, max_step):
    """First step from the size of the derivative ``f`` at ``y`` (Hairer, Nørsett & Wanner, II.4)."""
    d0 = 0.0
    d1 = 0.0
    d1_bad = False
    for j in range(y.shape[0]):
        sc = atol[j] + rtol * abs(y[j])
        d0 = max(d0, abs(y[j]) / sc)
        r = abs(f[j]) / sc
        if not math.isfinite(r):
            d1_bad = True
        d1 = max(d1, r)
    if d0 < 1e-5 or d1 < 1e-5 or d1_bad:
        h = 1e-6 * t_end
    else:
        h = 0.01 * d0 / d1
    h = min(h, max_step)
    if not (math.isfinite(h) and h > 0.0):
        h = 1e-6 * t_end
    return h


@njit(**_OPTS)
def _step_to(t, h, stop, fixed, max_step):
    """``(h, snap, hs, tn)``: the step from ``t`` of nominal size ``h``, onto ``stop`` when it is
    near (a fixed step by rounding, an adaptive one stretched by up to 10 % rather than leave a
    sliver)."""
    if fixed:
        snap = stop - t <= h * (1.0 + 1e-9)
    else:
        h = min(h, max_step)
        snap = stop - t <= 1.1 * h
    hs = stop - t if snap else h
    tn = stop if snap else t + hs
    return h, snap, hs, tn


@njit(**_OPTS)
def _next_piece(stops, k, t):
    """The stimulus piece after reaching stop ``k`` at ``t``, skipping coincident stops (a pulse
    ending where the next begins)."""
    last = stops.shape[0] - 1
    k += 1
    while k < last and stops[k] <= t:
        k += 1
    return min(k, last)


@njit(**_OPTS)
def _control(finite, err, fixed, snap, hs, h, h_min, f0, expo):
    """``(accept, fail, underflow, next h)`` after a step of size ``hs`` with error norm ``err``.

    Error-controlled: accept at ``err <= 1``; next ``h = hs clip(0.9 err^-expo, 0.2, 5)``
    (``expo`` = 1 / (order of the estimate + 1)); a non-finite step is retried at a quarter of
    the size, and fails once that is below ``h_min`` or at once when the derivative ``f0`` at
    the accepted state is not finite; a finite step below ``h_min`` that does not end on a
    stop is a step-size underflow (a blow-up). Fixed steps: accept whatever is finite.
    """
    if fixed:
        return finite, not finite, False, h
    acc = finite and err <= 1.0
    fail = (not finite) and hs <= h_min
    under = finite and (not snap) and hs <= h_min
    if not finite:
        for j in range(f0.shape[0]):  # a non-finite derivative at an accepted state: no retry helps
            if not math.isfinite(f0[j]):
                fail = True
        h = h * 0.25
    else:
        if err == 0.0:
            fac = 5.0
        elif expo == 0.5:
            fac = min(5.0, max(0.2, 0.9 / math.sqrt(err)))
        else:
            fac = min(5.0, max(0.2, 0.9 * err**-expo))
        h = hs * fac  # snapped steps restart from their own size
    return acc and not fail, fail or under, under, h


@njit(**_OPTS)
def _fail_outputs(out, g):
    """NaN on every grid point from ``g`` on (a failed sample)."""
    for gg in range(g, out.shape[1]):
        for j in range(out.shape[0]):
            out[j, gg] = np.nan


@njit(**_OPTS)
def integrate_one(rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step,
                  max_steps, out, counts):
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
    f0 = np.empty(n)
    a0 = np.empty(n)
    f1 = np.empty(n)
    a1 = np.empty(n)
    y1 = np.empty(n)
    y2 = np.empty(n)
    # dense-output coefficients per state: quintic in theta (c1, c2, c3, c6, c7), then the
    # expm1 weight and rate (c4, c5)
    c1 = np.empty(n)
    c2 = np.empty(n)
    c3 = np.zeros(n)  # c3, c6, c7 stay 0 for the states that are not gates
    c4 = np.empty(n)
    c5 = np.empty(n)
    c6 = np.zeros(n)
    c7 = np.zeros(n)
    vals = np.empty(n)
    e0 = np.zeros(n)  # exp(a0 h) of each gate in stage 1 (0: not computed)
    eidx = np.empty(n, dtype=np.int64)
    ne = 0
    # the gates and the other states as index lists: branch-free loops over each
    ng = 0
    for j in range(n):
        if gate[j]:
            ng += 1
    gidx = np.empty(ng, dtype=np.int64)
    oidx = np.empty(n - ng, dtype=np.int64)
    ig = 0
    for j in range(n):
        if gate[j]:
            gidx[ig] = j
            ig += 1
        else:
            oidx[j - ig] = j

    g = _start_outputs(y0, t_eval, out)
    t = 0.0
    k = 0
    nstep = 0
    nrej = 0
    status = OK

    if fixed:
        h = dt
    else:
        rhs(t, y, p, _current(stops, v_start, v_end, 0, t), f0, a0)
        h = _first_step(y, f0, rtol, atol, t_end, max_step)

    while True:
        h, snap, hs, tn = _step_to(t, h, stops[k], fixed, max_step)

        # Stage 1: RL1 on the gates, forward Euler on the rest.
        rhs(t, y, p, _current(stops, v_start, v_end, k, t), f0, a0)
        for jj in range(ng):
            j = gidx[jj]
            zj = a0[j] * hs
            if abs(zj) < 1e-2:
                p1 = 1.0 + zj * (1 / 2 + zj * (1 / 6 + zj * (1 / 24 + zj * (1 / 120 + zj / 720))))
                e0[j] = 0.0
            else:
                ez = math.exp(zj)
                p1 = (ez - 1.0) / zj
                e0[j] = ez
            y1[j] = y[j] + hs * p1 * f0[j]
        for jj in range(n - ng):
            j = oidx[jj]
            y1[j] = f0[j] * hs + y[j]
        # Stage 2: Heun on the rest; ETD2 on the gates with the averaged a (module docstring
        # of exponential.py), and the embedded estimate |y2 - y1| in units of the tolerance.
        rhs(tn, y1, p, _current(stops, v_start, v_end, k, tn), f1, a1)
        # err = max_j |y2 - y1|_j / sc_j, dividing only when the maximum moves (a division per
        # state was a tenth of an ORd step); a NaN or inf anywhere makes esum non-finite.
        # A step that reaches the next grid point also forms its dense-output coefficients
        # here (used only if it is accepted): a quintic in theta per state, plus
        # c4 (exp(c5 theta) - 1) for the gates listed in eidx.
        dense = g < N and t_eval[g] <= tn
        ne = 0
        err = 0.0
        esum = 0.0
        for jj in range(ng):
            j = gidx[jj]
            d = f1[j] - f0[j]
            ab = (a0[j] + a1[j]) * 0.5
            dn = d - ab * (y1[j] - y[j])
            zj = ab * hs
            p1, p2 = _phi12_from(zj, a0[j] * hs, e0[j])
            y2[j] = (p2 * dn + p1 * f0[j]) * hs + y[j]
            if dense:
                u = hs * (zj * f0[j] + dn)
                if abs(zj) >= 0.1:
                    # y - th h dN / z + expm1(z th) u / z^2
                    rz = 1.0 / zj
                    c1[j] = -hs * dn * rz
                    c2[j] = 0.0
                    c3[j] = 0.0
                    c6[j] = 0.0
                    c7[j] = 0.0
                    c4[j] = u * rz * rz
                    c5[j] = zj
                    eidx[ne] = j
                    ne += 1
                else:
                    # the same as its Taylor series in z: y + th h f0 + th^2 u/2 + th^3 z u/6
                    # + th^4 z^2 u/24 + th^5 z^3 u/120; truncation z^4 u/720 (1.4e-7 u at
                    # |z| = 0.1), and no exp per grid point
                    c1[j] = f0[j] * hs
                    c2[j] = 0.5 * u
                    c3[j] = zj * u * (1.0 / 6.0)
                    c6[j] = zj * zj * u * (1.0 / 24.0)
                    c7[j] = zj * zj * zj * u * (1.0 / 120.0)
            e = abs(y2[j] - y1[j])
            sc = max(rtol * (yhi[j] - ylo[j]) + atol[j], ROUNDING_FLOOR * abs(y[j]))
            sc *= 1.0 + zj * zj  # drift of a stiff gate's steady state
            esum += e
            if e > err * sc:
                err = e / sc
        for jj in range(n - ng):
            j = oidx[jj]
            d = f1[j] - f0[j]
            y2[j] = (d * 0.5 + f0[j]) * hs + y[j]
            if dense:
                c1[j] = f0[j] * hs
                c2[j] = d * (0.5 * hs)
            e = abs(y2[j] - y1[j])
            sc = max(rtol * (yhi[j] - ylo[j]) + atol[j], ROUNDING_FLOOR * abs(y[j]))
            esum += e
            if e > err * sc:
                err = e / sc
        finite = math.isfinite(esum)

        acc, fail, under, h = _control(finite, err, fixed, snap, hs, h, h_min, f0, 0.5)

        if acc:
            # Output grid points in (t, tn] from the dense output of this step.
            while g < N and t_eval[g] <= tn:
                if t_eval[g] == tn:
                    for j in range(n):  # a grid point at the step's end gets y_{n+1} itself
                        out[j, g] = y2[j]
                else:
                    th = (t_eval[g] - t) / hs
                    # the polynomial part of every state (a loop without branches), then
                    # the exponential part of the gates that have one (listed in eidx)
                    for j in range(n):
                        v = (((c7[j] * th + c6[j]) * th + c3[j]) * th + c2[j]) * th
                        vals[j] = (v + c1[j]) * th + y[j]
                    for jj in range(ne):
                        j = eidx[jj]  # |c5| >= 0.1: exp - 1 is as good as expm1 here
                        vals[j] += (math.exp(c5[j] * th) - 1.0) * c4[j]
                    for j in range(n):
                        out[j, g] = vals[j]
                g += 1
            t = tn
            for j in range(n):
                y[j] = y2[j]
                ylo[j] = min(ylo[j], y2[j])
                yhi[j] = max(yhi[j], y2[j])
            if snap:
                k = _next_piece(stops, k, t)
            nstep += 1
            if snap and t >= t_end:
                break
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
def _one(i, rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step, max_steps, out,
         status, steps, rejected):
    counts = np.zeros(2, dtype=np.int64)
    status[i] = integrate_one(rhs, y0[i], p, stops[i], v_start[i], v_end[i], t_eval, t_end, rtol, atol, gate,
                              dt, max_step, max_steps, out[i], counts)
    steps[i] = counts[0]
    rejected[i] = counts[1]


_f8 = types.float64
_v8 = types.float64[::1]
_m8 = types.float64[:, ::1]
_BATCH_SIGNATURE = types.void(
    RHS_TYPE, _m8, _v8, _m8, _m8, _m8, _v8, _f8, _f8, _v8, types.boolean[::1], _f8, _f8, types.int64,
    types.float64[:, :, ::1], types.int8[::1], types.int64[::1], types.int64[::1],
)


def _batch_prange(rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step, max_steps,
                  out, status, steps, rejected):
    for i in prange(y0.shape[0]):
        _one(i, rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step, max_steps,
             out, status, steps, rejected)


@functools.cache
def integrate_batch():
    """:func:`integrate_batch_serial` in parallel over samples (``prange``), compiled on first use.

    Deferred because loading a ``parallel=True`` function starts numba's thread pool (OpenMP),
    which costs start-up time and makes a later ``fork`` of the process unsafe: one cell, or
    one thread, never needs it.
    """
    return njit(_BATCH_SIGNATURE, parallel=True, **_OPTS)(_batch_prange)


@njit(_BATCH_SIGNATURE, **_OPTS)
def integrate_batch_serial(rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step,
                           max_steps, out, status, steps, rejected):
    """:func:`integrate_one` for every sample of the batch, one after the other."""
    for i in range(y0.shape[0]):
        _one(i, rhs, y0, p, stops, v_start, v_end, t_eval, t_end, rtol, atol, gate, dt, max_step, max_steps,
             out, status, steps, rejected)
