"""O'Hara–Rudy 2011 for one cell, compiled: the scalar twin of ``OHaraRudy.rhs_linear``.

The same equations as :mod:`ionfno.ionic.ohara_rudy`, written as straight-line scalar code
in the same order and association as the NumPy model, so that the two agree to rounding
(``tests/ionic/test_kernels.py``: 1e-13 relative per state on random states). The 63 voltage
exponentials ``exp(slope V + offset)`` come from the same tables (:class:`_Derived`), packed
into the parameter array, so that a changed parameter (``ko``, ``F``, ``T``, ...) reaches
both implementations alike.

Packed parameters (:func:`pack`), float64:

=============  =====  =====================================================================
block          size   content
=============  =====  =====================================================================
slopes         63     ``1/scale`` of [sigmoids | rate terms 1 | rate terms 2 | plain]
offsets        63     ``shift/scale`` of the same exponents
rate_c1/c2     17+17  coefficients of the two-exponential rates
tau_offsets    11     ``tau = offset + 1/rate`` [ms]
scalars        ...    :data:`Q`: every numeric field of ``OHaraRudyParams`` and the
                      voltage-independent combinations of ``_Derived``
=============  =====  =====================================================================

Cost of one evaluation on one core: about 0.5 µs exact (63 ``exp``, 3 ``log``, one ``expm1``,
one ``pow``, ~55 divisions), 0.19 µs with the lookup table of the voltage terms (:data:`V`,
:data:`TABLE_DV`; what ``fast`` uses at its default tolerance); see BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from enum import IntEnum

import numpy as np
from numba import njit

from ..ohara_rudy import _N_RATE, _N_SIG, _N_TAU, OHaraRudyParams, _Derived, _Plain, _Rate, _Sig
from . import JIT_OPTIONS, RHS_SIGNATURE

_HELPER = {"cache": True, "error_model": "numpy", "fastmath": {"contract"}}

__all__ = ["N_VTERMS", "Q", "TABLE_DV", "V", "pack", "pack_tables", "rhs"]

_N_EXP = _N_SIG + 2 * _N_RATE + len(_Plain._fields)
_OFF = _N_EXP  # offsets block
_C1 = 2 * _N_EXP  # rate coefficients
_C2 = _C1 + _N_RATE
_TAU = _C2 + _N_RATE
_SCALARS = _TAU + _N_TAU

# Indices into the tables, by the names of ohara_rudy's namedtuples (numba reads IntEnum
# members as compile-time constants).
S = IntEnum("S", list(_Sig._fields), start=0)  # sigmoid rows
R = IntEnum("R", list(_Rate._fields), start=0)  # rate rows (the first _N_TAU are time constants)
E = IntEnum("E", list(_Plain._fields), start=0)  # plain exponentials

_FIELDS = tuple(f.name for f in dataclasses.fields(OHaraRudyParams) if f.name != "celltype")
_DERIVED = (
    "frt", "rtf", "af_myo", "af_ss", "vss_myo", "vnsr_myo", "vjsr_ss", "vjsr_nsr", "is_epi",
    "gkr", "gk1", "ln_nao", "ln_ko", "ln_ks_o", "ncx_h11", "ncx_k1", "nak_b1", "nak_a4",
    "nak_b3_scale", "nak_ko2", "nak_p0", "a_rel", "a_relp", "btp", "jup_np", "jup_p", "kmup_p",
    "jleak",
)  # fmt: skip
Q = IntEnum("Q", [*_FIELDS, *_DERIVED, "lut_rows", "lut_v0", "lut_inv_dv"], start=_SCALARS)
"""Position of each scalar in the packed array: ``p[Q.GNa]``, ``p[Q.frt]``, ...; the last three
describe the lookup table (``lut_rows = 0``: none)."""
_LUT = int(Q.lut_inv_dv) + 1  # first entry of the table, row-major (rows, N_VTERMS)


TABLE_V_MIN, TABLE_V_MAX, TABLE_DV = -130.0, 100.0, 0.05
"""Lookup table of the voltage terms: V from -130 to +100 mV in steps of 0.05 mV (4601 rows of
:data:`N_VTERMS` columns, 1.8 MB; the rows a beat visits stay in cache); outside it the
terms are computed exactly. Linear interpolation errs by at most ``dV**2 / 8`` times a term's
second derivative: relative 7e-3 in the steepest term (the ``1e-4 / rate`` term of Ito's
``dti_develop``, an exponential of scale 0.215 mV that matters only within about 1 mV of
+12 mV) and below 4e-5 in every other one. On a whole beat the states move by about 1e-5 of
their range (``tests/solvers/test_compiled.py``), against the default tolerance's own 1e-4;
a 0.01 mV table (9 MB) moved them less (1e-7) but cost 4-10 % more time (BENCHMARKS.md)."""


def pack(params: OHaraRudyParams, tables: bool = False) -> np.ndarray:
    """``OHaraRudyParams`` -> the packed float64 array of the module docstring.

    With ``tables``, the lookup table of the voltage terms (:data:`TABLE_DV`) is appended and
    ``rhs`` interpolates it instead of evaluating the exponentials.
    """
    d = _Derived(params)
    scalars = [float(getattr(params, k)) for k in _FIELDS] + [float(getattr(d, k)) for k in _DERIVED]
    p = np.concatenate([
        d.slopes[:, 0], d.offsets[:, 0], d.rate_c1[:, 0], d.rate_c2[:, 0], d.tau_offsets[:, 0],
        np.array(scalars), np.zeros(3),
    ]).astype(np.float64)  # fmt: skip
    assert p.shape[0] == _LUT
    if not tables:
        return p
    rows = int(round((TABLE_V_MAX - TABLE_V_MIN) / TABLE_DV)) + 1
    table = np.empty((rows, N_VTERMS))
    _fill_table(p, TABLE_V_MIN, TABLE_DV, table)
    p[Q.lut_rows], p[Q.lut_v0], p[Q.lut_inv_dv] = rows, TABLE_V_MIN, 1.0 / TABLE_DV
    return np.concatenate([p, table.ravel()])


@functools.lru_cache(maxsize=4)
def pack_tables(params: OHaraRudyParams) -> np.ndarray:
    """``pack(params, tables=True)``, kept for the last few parameter sets (a table takes about
    10 ms to fill). The array is shared: callers must not write into it."""
    return pack(params, tables=True)


# ---------------------------------------------------------------- exponentials of V
@njit(**_HELPER)
def _ex(p, k, v):
    # exp(slope V + offset), clipped at 700 like the NumPy model (no overflow far from physiology)
    return math.exp(min(p[k] * v + p[_OFF + k], 700.0))


@njit(**_HELPER)
def _sig(p, k, v):
    return 1.0 / (_ex(p, k, v) + 1.0)


@njit(**_HELPER)
def _rate(p, j, v):
    return _ex(p, _N_SIG + j, v) * p[_C1 + j] + _ex(p, _N_SIG + _N_RATE + j, v) * p[_C2 + j]


@njit(**_HELPER)
def _inv_tau(p, j, v, scale):
    # 1/tau with tau = (offset + 1/rate) * scale
    return 1.0 / ((1.0 / _rate(p, j, v) + p[_TAU + j]) * scale)


@njit(**_HELPER)
def _inaca(p, na, ca, frac, hna, k1, k2, k3, k3pp, k8, wca_hca):
    # One INaCa compartment (Kang & Hilgemann scheme), as ``inaca`` in ohara_rudy._evaluate.
    kna1, kna2, kna3 = p[Q.kna1], p[Q.kna2], p[Q.kna3]
    h1 = 1.0 + (na / kna3) * (1.0 + hna)
    h2 = (na * hna) / (kna3 * h1)
    h4 = 1.0 + (na / kna1) * (1.0 + na / kna2)
    k4pp = h2 * p[Q.wnaca]
    k4 = wca_hca / h1 + k4pp
    k6 = (ca * p[Q.kcaon]) / h4
    k7 = (na * na / (h4 * kna1 * kna2)) * h2 * p[Q.wna]
    k5 = k2
    k67 = k7 + k6
    x1 = k2 * k4 * k67 + k5 * k7 * (k2 + k3)
    x2 = k1 * k7 * (k4 + k5) + k4 * k6 * (k1 + k8)
    x3 = k1 * k3 * k67 + k8 * k6 * (k2 + k3)
    x4 = k2 * k8 * (k4 + k5) + k3 * k5 * (k1 + k8)
    inv = 1.0 / (x1 + x2 + x3 + x4)
    r = p[Q.KmCaAct] / ca
    allo = 1.0 / (1.0 + r * r)
    jnet = (3.0 * (x4 * k7 - x1 * k8) + x3 * k4pp - x2 * k3pp) + 2.0 * (x2 * k2 - x1 * k1)
    return (frac * p[Q.Gncx]) * allo * jnet * inv


@njit(inline="always", **_HELPER)
def _gate(y, f, a, i, ss, k):
    f[i] = (ss - y[i]) * k
    a[i] = -k


# ---------------------------------------------------------------- voltage terms
# Every quantity of the vector field that depends on V alone (and on the parameters): the
# rates, time constants, steady states and the voltage factors of the GHK, INaCa and INaK
# terms. ``_vterms_exact`` computes them; a lookup table (``pack(..., tables=True)``) stores
# them on a fine V grid, and ``rhs`` interpolates linearly between two rows instead (about
# 50 loads and multiply-adds in place of 63 ``exp`` and ~40 divisions). Columns 0..40 are
# written into ``f``, the rest into ``a``: both are scratch until ``rhs`` writes its result.
V = IntEnum("V", [
    "r_tm", "r_ths", "r_thf", "kt_tj", "kt_tiF", "kt_tiS", "kt_tff", "kt_tfcaf", "k_a", "k_ifp", "k_isp",
    "aif", "afcaf", "axrf", "rkr", "rk1", "xkb", "hna", "k3", "k3pp", "k8", "wca_hca", "knai", "b2",
    "a3", "e1", "ghk1", "ghk2", "hss", "iss", "fss", "xrss", "xs1ss", "mss", "hssp", "mLss", "hLss",
    "hLssp", "ass", "assp", "dss", "xk1ss", "kt_td", "kt_tfs", "kt_tfcas", "kt_txrf", "kt_txrs",
    "kt_txs1", "r_txs2", "r_txk1",
], start=0)  # fmt: skip
"""Columns of the voltage terms (``f`` holds 0..40, ``a`` the rest)."""
N_VTERMS = len(V)
_N_F = 41  # columns kept in f


@njit(inline="always", **_HELPER)
def _put(f, a, c, x):
    if c < _N_F:
        f[c] = x
    else:
        a[c - _N_F] = x


@njit(inline="always", **_HELPER)
def _get(f, a, c):
    return f[c] if c < _N_F else a[c - _N_F]


@njit(**_HELPER)
def _vterms_exact(p, v, f, a):
    """Write the :data:`V` columns at membrane potential ``v`` [mV] into ``f`` and ``a``."""
    # time constants (epi: Ito inactivation scaled by delta_epi)
    delta_epi = 1.0 - 0.95 * _sig(p, S.delta_epi, v) if p[Q.is_epi] != 0.0 else 1.0
    kt_tiF = _inv_tau(p, R.tiF, v, delta_epi)
    kt_tiS = _inv_tau(p, R.tiS, v, delta_epi)
    _put(f, a, V.r_tm, _rate(p, R.tm, v))
    _put(f, a, V.r_ths, _rate(p, R.ths, v))
    _put(f, a, V.r_thf, _rate(p, R.thf, v))
    _put(f, a, V.kt_tj, _inv_tau(p, R.tj, v, 1.0))
    _put(f, a, V.kt_tiF, kt_tiF)
    _put(f, a, V.kt_tiS, kt_tiS)
    _put(f, a, V.kt_tff, _inv_tau(p, R.tff, v, 1.0))
    _put(f, a, V.kt_tfcaf, _inv_tau(p, R.tfcaf, v, 1.0))
    # Ito
    _put(f, a, V.k_a, _sig(p, S.ta_1, v) * (1.0 / (1.2089 * 1.0515)) + (3.5 / 1.0515) * _sig(p, S.ta_2, v))
    dti = (1.354 + 1.0e-4 / _rate(p, R.dti_develop, v)) * (1.0 - 0.5 * _sig(p, S.dti_recover, v))
    _put(f, a, V.k_ifp, kt_tiF / dti)
    _put(f, a, V.k_isp, kt_tiS / dti)
    _put(f, a, V.aif, _sig(p, S.AiF, v))
    # ICaL gate weights, IKr, IK1, IKb
    _put(f, a, V.afcaf, 0.3 + 0.6 * _sig(p, S.Afcaf, v))
    _put(f, a, V.axrf, _sig(p, S.Axrf, v))
    _put(f, a, V.rkr, _sig(p, S.rkr_1, v) * _sig(p, S.rkr_2, v))
    _put(f, a, V.rk1, _sig(p, S.rk1, v))
    _put(f, a, V.xkb, _sig(p, S.xkb, v))
    # INaCa: the voltage terms shared by the bulk and subspace compartments
    hna = _ex(p, _N_SIG + 2 * _N_RATE + E.hna, v)
    hca = _ex(p, _N_SIG + 2 * _N_RATE + E.hca, v)
    nao, kna3 = p[Q.nao], p[Q.kna3]
    h7 = 1.0 + (nao / kna3) * (1.0 + 1.0 / hna)
    h8 = nao / (kna3 * hna * h7)
    k3pp = h8 * p[Q.wnaca]
    _put(f, a, V.hna, hna)
    _put(f, a, V.k3, p[Q.wca] / h7 + k3pp)
    _put(f, a, V.k3pp, k3pp)
    _put(f, a, V.k8, (p[Q.ncx_h11] * p[Q.wna]) * h8)
    _put(f, a, V.wca_hca, p[Q.wca] / hca)
    # INaK: the voltage-dependent half-saturations and the extracellular terms
    knai = p[Q.Knai0] * _ex(p, _N_SIG + 2 * _N_RATE + E.Knai, v)
    knao = p[Q.Knao0] * _ex(p, _N_SIG + 2 * _N_RATE + E.Knao, v)
    nao_r = nao / knao
    d_o = (1.0 + nao_r) ** 3 + (1.0 + p[Q.ko] / p[Q.Kko]) ** 2 - 1.0
    _put(f, a, V.knai, knai)
    _put(f, a, V.b2, p[Q.k2m] * nao_r**3 / d_o)
    _put(f, a, V.a3, p[Q.k3p] * p[Q.nak_ko2] / d_o)
    # GHK factors: x/expm1(x) continuous at V = 0
    vfrt = p[Q.frt] * v
    em1 = math.expm1(vfrt)
    e1 = em1 + 1.0
    r1 = 1.0 if em1 == 0.0 else vfrt / em1
    F = p[Q.F]
    _put(f, a, V.e1, e1)
    _put(f, a, V.ghk1, F * r1)
    _put(f, a, V.ghk2, (4.0 * F) * r1 / (e1 + 1.0))
    # steady states and the remaining rates of the linear states
    _put(f, a, V.hss, _sig(p, S.hss, v))
    _put(f, a, V.iss, _sig(p, S.iss, v))
    _put(f, a, V.fss, _sig(p, S.fss, v))
    _put(f, a, V.xrss, _sig(p, S.xrss, v))
    _put(f, a, V.xs1ss, _sig(p, S.xs1ss, v))
    _put(f, a, V.mss, _sig(p, S.mss, v))
    _put(f, a, V.hssp, _sig(p, S.hssp, v))
    _put(f, a, V.mLss, _sig(p, S.mLss, v))
    _put(f, a, V.hLss, _sig(p, S.hLss, v))
    _put(f, a, V.hLssp, _sig(p, S.hLssp, v))
    _put(f, a, V.ass, _sig(p, S.ass, v))
    _put(f, a, V.assp, _sig(p, S.assp, v))
    _put(f, a, V.dss, _sig(p, S.dss, v))
    _put(f, a, V.xk1ss, _sig(p, S.xk1ss, v))
    _put(f, a, V.kt_td, _inv_tau(p, R.td, v, 1.0))
    _put(f, a, V.kt_tfs, _inv_tau(p, R.tfs, v, 1.0))
    _put(f, a, V.kt_tfcas, _inv_tau(p, R.tfcas, v, 1.0))
    _put(f, a, V.kt_txrf, _inv_tau(p, R.txrf, v, 1.0))
    _put(f, a, V.kt_txrs, _inv_tau(p, R.txrs, v, 1.0))
    _put(f, a, V.kt_txs1, _inv_tau(p, R.txs1, v, 1.0))
    _put(f, a, V.r_txs2, _rate(p, R.txs2, v))
    _put(f, a, V.r_txk1, _rate(p, R.txk1, v))


@njit(**_HELPER)
def _vterms(p, v, f, a):
    """The :data:`V` columns at ``v``: interpolated from the table when ``p`` has one and ``v``
    lies on it, else exact (also for a NaN ``v``, which then propagates)."""
    rows = p[Q.lut_rows]
    x = (v - p[Q.lut_v0]) * p[Q.lut_inv_dv]
    if rows > 0.0 and x >= 0.0 and x < rows - 1.0:
        k = int(x)
        w = x - k
        lo = _LUT + k * N_VTERMS
        # two row views, indexed from 0: contiguous vector loads (indexing p[lo + c] directly
        # compiled to gathers with negative-index wraparound, 2x slower)
        r0 = p[lo:lo + N_VTERMS]
        r1 = p[lo + N_VTERMS:lo + 2 * N_VTERMS]
        for c in range(_N_F):
            f[c] = r0[c] + w * (r1[c] - r0[c])
        for c in range(_N_F, N_VTERMS):
            a[c - _N_F] = r0[c] + w * (r1[c] - r0[c])
    else:
        _vterms_exact(p, v, f, a)


@njit(**_HELPER)
def _fill_table(p, v0, dv, table):
    f = np.empty(_N_F)
    a = np.empty(_N_F)
    for i in range(table.shape[0]):
        _vterms_exact(p, v0 + i * dv, f, a)
        for c in range(N_VTERMS):
            table[i, c] = _get(f, a, c)


@njit(RHS_SIGNATURE, **JIT_OPTIONS)
def rhs(t, y, p, i_app, f, a):
    v, nai, nass, ki, kss, cai, cass, cansr, cajsr = y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7], y[8]
    jca, nca = y[29], y[30]

    # ---- the voltage terms, through f and a (scratch until the results are written)
    _vterms(p, v, f, a)
    r_tm, r_ths, r_thf = _get(f, a, V.r_tm), _get(f, a, V.r_ths), _get(f, a, V.r_thf)
    kt_tj, kt_tiF, kt_tiS = _get(f, a, V.kt_tj), _get(f, a, V.kt_tiF), _get(f, a, V.kt_tiS)
    kt_tff, kt_tfcaf, k_a = _get(f, a, V.kt_tff), _get(f, a, V.kt_tfcaf), _get(f, a, V.k_a)
    k_ifp, k_isp = _get(f, a, V.k_ifp), _get(f, a, V.k_isp)
    aif, afcaf = _get(f, a, V.aif), _get(f, a, V.afcaf)
    axrf, rkr, rk1, xkb = _get(f, a, V.axrf), _get(f, a, V.rkr), _get(f, a, V.rk1), _get(f, a, V.xkb)
    hna, k3, k3pp, k8 = _get(f, a, V.hna), _get(f, a, V.k3), _get(f, a, V.k3pp), _get(f, a, V.k8)
    wca_hca, knai, b2, a3 = _get(f, a, V.wca_hca), _get(f, a, V.knai), _get(f, a, V.b2), _get(f, a, V.a3)
    e1, ghk1, ghk2 = _get(f, a, V.e1), _get(f, a, V.ghk1), _get(f, a, V.ghk2)
    hss, iss, fss, xrss = _get(f, a, V.hss), _get(f, a, V.iss), _get(f, a, V.fss), _get(f, a, V.xrss)
    xs1ss, mss, hssp, mlss = _get(f, a, V.xs1ss), _get(f, a, V.mss), _get(f, a, V.hssp), _get(f, a, V.mLss)
    hlss, hlssp, ass, assp = _get(f, a, V.hLss), _get(f, a, V.hLssp), _get(f, a, V.ass), _get(f, a, V.assp)
    dss, xk1ss = _get(f, a, V.dss), _get(f, a, V.xk1ss)
    kt_td, kt_tfs = _get(f, a, V.kt_td), _get(f, a, V.kt_tfs)
    kt_tfcas, kt_txrf, kt_txrs = _get(f, a, V.kt_tfcas), _get(f, a, V.kt_txrf), _get(f, a, V.kt_txrs)
    kt_txs1, r_txs2, r_txk1 = _get(f, a, V.kt_txs1), _get(f, a, V.r_txs2), _get(f, a, V.r_txk1)
    for i in range(9):
        a[i] = 0.0
    a[40] = 0.0

    # ---- CaMK
    camkt = y[40]
    camkb = p[Q.CaMKo] * (1.0 - camkt) / (1.0 + p[Q.KmCaM] / cass)
    camka = camkb + camkt
    f[40] = p[Q.aCaMK] * camkb * camka - p[Q.bCaMK] * camkt
    fp = 1.0 / (1.0 + p[Q.KmCaMK] / camka)
    fnp = 1.0 - fp

    # ---- reversal potentials
    rtf = p[Q.rtf]
    ena = rtf * (p[Q.ln_nao] - math.log(nai))
    ek = rtf * (p[Q.ln_ko] - math.log(ki))
    eks = rtf * (p[Q.ln_ks_o] - math.log(ki + p[Q.PKNa] * nai))

    # ---- INa
    k_m, k_hf, k_hs, k_j = r_tm, r_thf, r_ths, kt_tj
    k_hsp = r_ths * (1.0 / 3.0)
    k_jp = kt_tj * (1.0 / 1.46)
    m, hf, hs, j, hsp, jp = y[9], y[10], y[11], y[12], y[13], y[14]
    ahf = p[Q.Ahf]
    ahs = 1.0 - ahf
    hf_a = ahf * hf
    h = hf_a + ahs * hs
    hp = hf_a + ahs * hsp
    v_ena = v - ena
    ina = p[Q.GNa] * v_ena * (m * m * m) * (fnp * h * j + fp * hp * jp)

    # ---- INaL
    thl = p[Q.thL]
    k_ml, k_hl, k_hlp = r_tm, 1.0 / thl, 1.0 / (3.0 * thl)
    inal = p[Q.GNaL] * v_ena * y[15] * (fnp * y[16] + fp * y[17])

    # ---- Ito
    ais = 1.0 - aif
    i_np = aif * y[19] + ais * y[20]
    i_p = aif * y[22] + ais * y[23]
    v_ek = v - ek
    ito = p[Q.Gto] * v_ek * (fnp * y[18] * i_np + fp * y[21] * i_p)

    # ---- ICaL, ICaNa, ICaK
    q = 1.0 + p[Q.Kmn] / cass
    q *= q
    q *= q
    k2n = p[Q.k2n]
    anca_k2n = (k2n * jca) / (k2n + q * jca)
    aff = p[Q.Aff]
    afs = 1.0 - aff
    afcas = 1.0 - afcaf
    fs_a = afs * y[26]
    fcas_a = afcas * y[28]
    one_nca = 1.0 - nca
    jca_nca = jca * nca
    gate_np = (aff * y[25] + fs_a) * one_nca + (afcaf * y[27] + fcas_a) * jca_nca
    gate_p = (aff * y[31] + fs_a) * one_nca + (afcaf * y[32] + fcas_a) * jca_nca
    g_cal = y[24] * (fnp * gate_np + (p[Q.PCap_ratio] * fp) * gate_p)
    e2 = e1 * e1
    gcao = p[Q.gamma_cao] * p[Q.cao]
    phi_cal = ghk2 * (cass * e2 - gcao)
    g_cal_pca = p[Q.PCa] * g_cal
    ical = g_cal_pca * phi_cal
    gk_nak = (p[Q.gamma_nak] * ghk1) * g_cal_pca
    nao, ko = p[Q.nao], p[Q.ko]
    icana = (p[Q.PCaNa_ratio] * gk_nak) * (nass * e1 - nao)
    icak = (p[Q.PCaK_ratio] * gk_nak) * (kss * e1 - ko)

    # ---- IKr, IKs, IK1
    xr = axrf * (y[33] - y[34]) + y[34]
    ikr = p[Q.gkr] * xr * rkr * v_ek
    ksca = 1.0 + 0.6 / (1.0 + (3.8e-5 / cai) ** 1.4)
    iks = p[Q.GKs] * ksca * y[35] * y[36] * (v - eks)
    ik1 = p[Q.gk1] * rk1 * y[37] * v_ek

    # ---- INaCa (bulk and subspace share the voltage terms)
    k1, k2 = p[Q.ncx_k1], p[Q.kcaoff]
    frac = p[Q.frac_ncx_i]
    inaca_i = _inaca(p, nai, cai, frac, hna, k1, k2, k3, k3pp, k8, wca_hca)
    inaca_ss = _inaca(p, nass, cass, 1.0 - frac, hna, k1, k2, k3, k3pp, k8, wca_hca)

    # ---- INaK
    nai_r = nai / knai
    kki = p[Q.Kki]
    ki_r = ki / kki
    ki_r2 = ki_r * ki_r
    d_i = (1.0 + nai_r) ** 3 + (1.0 + ki / kki) ** 2 - 1.0
    a1 = p[Q.k1p] * nai_r**3 / d_i
    b1 = p[Q.nak_b1]
    a2 = p[Q.k2p]
    P = p[Q.eP] / (p[Q.nak_p0] + nai / p[Q.Knap] + ki / p[Q.Kxkur])
    b3 = p[Q.nak_b3_scale] * P
    a4 = p[Q.nak_a4]
    b4 = p[Q.k4m] * ki_r2 / d_i
    x1 = (a1 * a2) * (a4 + b3) + (b4 * b3) * (b2 + a2)
    x2 = (b1 * b4) * (b2 + a3) + (a2 * a3) * (a1 + b4)
    x3 = (a3 * a4) * (a2 + b1) + (b1 * b2) * (b3 + a4)
    x4 = (b2 * b3) * (b4 + a1) + (a1 * a4) * (a3 + b2)
    inak = p[Q.Pnak] * (3.0 * (x1 * a3 - x2 * b3) + 2.0 * (x4 * b1 - x3 * a1)) / (x1 + x2 + x3 + x4)

    # ---- background currents, Ca pump
    ikb = p[Q.GKb] * xkb * v_ek
    inab = (p[Q.PNab] * ghk1) * (nai * e1 - nao)
    icab = (p[Q.PCab] * ghk2) * (cai * e2 - gcao)
    ipca = p[Q.GpCa] * cai / (p[Q.KmCap] + cai)

    # ---- membrane potential (C_m = 1 µF/cm²)
    i_k = ito + ikr + iks + ik1 + ikb
    i_ion = (
        ina + inal + ito + ical + icana + icak + ikr + iks + ik1
        + inaca_i + inaca_ss + inak + inab + ikb + ipca + icab
    )  # fmt: skip
    f[0] = i_app - i_ion

    # ---- fluxes
    jdiff_na = (nass - nai) * (1.0 / p[Q.tau_diff_Na])
    jdiff_k = (kss - ki) * (1.0 / p[Q.tau_diff_K])
    jdiff = (cass - cai) * (1.0 / p[Q.tau_diff_Ca])
    rj = p[Q.Kjsr] / cajsr
    rj *= rj
    rj *= rj
    rj *= rj
    rel_act = -ical / (1.0 + rj)
    tau_base = 1.0 / (1.0 + p[Q.Ktau_rel] / cajsr)
    k_jrelnp = 1.0 / max(p[Q.bt] * tau_base, p[Q.tau_rel_min])
    k_jrelp = 1.0 / max(p[Q.btp] * tau_base, p[Q.tau_rel_min])
    jrel = fnp * y[38] + fp * y[39]
    jupnp = p[Q.jup_np] * cai / (cai + p[Q.Kmup])
    jupp = p[Q.jup_p] * cai / (cai + p[Q.kmup_p])
    jleak = p[Q.jleak] * cansr
    jup = fnp * jupnp + fp * jupp - jleak
    jtr = (cansr - cajsr) * (1.0 / p[Q.tau_tr])

    # ---- concentrations (stimulus carried by K+: I_stim = -i_app)
    af_myo, af_ss, vss_myo = p[Q.af_myo], p[Q.af_ss], p[Q.vss_myo]
    f[1] = -(ina + inal + 3.0 * inaca_i + 3.0 * inak + inab) * af_myo + jdiff_na * vss_myo
    f[2] = -(icana + 3.0 * inaca_ss) * af_ss - jdiff_na
    f[3] = -(i_k - i_app - 2.0 * inak) * af_myo + jdiff_k * vss_myo
    f[4] = -icak * af_ss - jdiff_k
    cm = p[Q.kmcmdn] + cai
    tr = p[Q.kmtrpn] + cai
    bcai = 1.0 / (1.0 + p[Q.cmdnmax] * p[Q.kmcmdn] / (cm * cm) + p[Q.trpnmax] * p[Q.kmtrpn] / (tr * tr))
    f[5] = bcai * (-(ipca + icab - 2.0 * inaca_i) * (0.5 * af_myo) - jup * p[Q.vnsr_myo] + jdiff * vss_myo)
    bsr = p[Q.KmBSR] + cass
    bsl = p[Q.KmBSL] + cass
    bcass = 1.0 / (1.0 + p[Q.BSRmax] * p[Q.KmBSR] / (bsr * bsr) + p[Q.BSLmax] * p[Q.KmBSL] / (bsl * bsl))
    f[6] = bcass * (-(ical - 2.0 * inaca_ss) * (0.5 * af_ss) + jrel * p[Q.vjsr_ss] - jdiff)
    f[7] = jup - jtr * p[Q.vjsr_nsr]
    cs = p[Q.kmcsqn] + cajsr
    bcajsr = 1.0 / (1.0 + p[Q.csqnmax] * p[Q.kmcsqn] / (cs * cs))
    f[8] = bcajsr * (jtr - jrel)

    # ---- the 31 linear states: dx/dt = (x_inf - x) k, a = -k (k = 1/tau)
    _gate(y, f, a, 9, mss, k_m)
    _gate(y, f, a, 10, hss, k_hf)
    _gate(y, f, a, 11, hss, k_hs)
    _gate(y, f, a, 12, hss, k_j)
    _gate(y, f, a, 13, hssp, k_hsp)
    _gate(y, f, a, 14, hss, k_jp)
    _gate(y, f, a, 15, mlss, k_ml)
    _gate(y, f, a, 16, hlss, k_hl)
    _gate(y, f, a, 17, hlssp, k_hlp)
    _gate(y, f, a, 18, ass, k_a)
    _gate(y, f, a, 19, iss, kt_tiF)
    _gate(y, f, a, 20, iss, kt_tiS)
    _gate(y, f, a, 21, assp, k_a)
    _gate(y, f, a, 22, iss, k_ifp)
    _gate(y, f, a, 23, iss, k_isp)
    _gate(y, f, a, 24, dss, kt_td)
    _gate(y, f, a, 25, fss, kt_tff)
    _gate(y, f, a, 26, fss, kt_tfs)
    _gate(y, f, a, 27, fss, kt_tfcaf)
    _gate(y, f, a, 28, fss, kt_tfcas)
    _gate(y, f, a, 29, fss, 1.0 / p[Q.tjca])
    _gate(y, f, a, 30, 0.0, jca)  # n_Ca: -jca nca, + anca k2n below
    f[30] += anca_k2n
    _gate(y, f, a, 31, fss, kt_tff * (1.0 / 2.5))
    _gate(y, f, a, 32, fss, kt_tfcaf * (1.0 / 2.5))
    _gate(y, f, a, 33, xrss, kt_txrf)
    _gate(y, f, a, 34, xrss, kt_txrs)
    _gate(y, f, a, 35, xs1ss, kt_txs1)
    _gate(y, f, a, 36, xs1ss, r_txs2)
    _gate(y, f, a, 37, xk1ss, r_txk1)
    _gate(y, f, a, 38, p[Q.a_rel] * rel_act, k_jrelnp)
    _gate(y, f, a, 39, p[Q.a_relp] * rel_act, k_jrelp)
