"""Compiled (numba) vector fields: one scalar function per model, one cell per call.

Every model's batched NumPy ``rhs_linear`` (the tested reference, readable and vectorised over
a batch) has a twin here written for one cell, compiled with numba, with the signature
:data:`RHS_SIGNATURE`::

    rhs(t, y, p, i_app, f, a) -> None
        t      float64             time [time unit]
        y      float64[::1] (n,)   state of one cell, model order
        p      float64[::1] (m,)   packed parameters (the model module's ``pack``)
        i_app  float64             applied current [current unit]
        f      float64[::1] (n,)   out: dy/dt
        a      float64[::1] (n,)   out: diagonal coefficient of the gates, 0 elsewhere

The compiled integrator (:mod:`ionfno.solvers._rl2_numba`) takes the vector field as a
first-class function of that type (:data:`RHS_TYPE`), so one compiled integrator serves
every model. Both carry explicit signatures, which is what lets numba cache them on disk
(``cache=True``): a function that takes a jitted function as an ordinary argument, or a
closure over one, is recompiled in every process (measured, numba 0.68).

:meth:`ionfno.ionic.IonicModel.kernel` returns ``(rhs, p)`` for a model and a parameter set;
the modules here are imported lazily by it, so importing :mod:`ionfno.ionic` does not import
numba. ``tests/ionic/test_kernels.py`` checks every kernel against ``rhs_linear``.
"""

from __future__ import annotations

from numba import types

__all__ = ["RHS_SIGNATURE", "RHS_TYPE", "JIT_OPTIONS"]

_vec = types.float64[::1]
RHS_SIGNATURE = types.void(types.float64, _vec, _vec, types.float64, _vec, _vec)
"""numba signature of every compiled vector field (see the module docstring)."""

RHS_TYPE = types.FunctionType(RHS_SIGNATURE)
"""The first-class function type the integrator accepts."""

# Of fastmath only "contract" (a * b + c as one FMA, one rounding instead of two): the kernels
# must stay within rounding of the NumPy reference (reassociation and flush-to-zero would not),
# and a NaN must propagate to the solver's status check (so no "nnan"/"ninf").
JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract"}}
