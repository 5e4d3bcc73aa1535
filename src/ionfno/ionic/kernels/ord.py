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

Cost: one evaluation is about 1-2 µs on one core (63 ``exp``, 3 ``log``, one ``expm1`` and
one ``pow``); see BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import math
from enum import IntEnum

import numpy as np
from numba import njit

from ..ohara_rudy import _N_RATE, _N_SIG, _N_TAU, OHaraRudyParams, _Derived, _Plain, _Rate, _Sig
from . import JIT_OPTIONS, RHS_SIGNATURE

__all__ = ["Q", "pack", "rhs"]

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
Q = IntEnum("Q", [*_FIELDS, *_DERIVED], start=_SCALARS)
"""Position of each scalar in the packed array: ``p[Q.GNa]``, ``p[Q.frt]``, ..."""


def pack(params: OHaraRudyParams) -> np.ndarray:
    """``OHaraRudyParams`` -> the packed float64 array of the module docstring."""
    d = _Derived(params)
    scalars = [float(getattr(params, k)) for k in _FIELDS] + [float(getattr(d, k)) for k in _DERIVED]
    return np.concatenate([
        d.slopes[:, 0], d.offsets[:, 0], d.rate_c1[:, 0], d.rate_c2[:, 0], d.tau_offsets[:, 0],
        np.array(scalars),
    ]).astype(np.float64)  # fmt: skip


# ---------------------------------------------------------------- exponentials of V
@njit(cache=True, error_model="numpy")
def _ex(p, k, v):
    # exp(slope V + offset), clipped at 700 like the NumPy model (no overflow far from physiology)
    return math.exp(min(p[k] * v + p[_OFF + k], 700.0))


@njit(cache=True, error_model="numpy")
def _sig(p, k, v):
    return 1.0 / (_ex(p, k, v) + 1.0)


@njit(cache=True, error_model="numpy")
def _rate(p, j, v):
    return _ex(p, _N_SIG + j, v) * p[_C1 + j] + _ex(p, _N_SIG + _N_RATE + j, v) * p[_C2 + j]


@njit(cache=True, error_model="numpy")
def _inv_tau(p, j, v, scale):
    # 1/tau with tau = (offset + 1/rate) * scale
    return 1.0 / ((1.0 / _rate(p, j, v) + p[_TAU + j]) * scale)


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy", inline="always")
def _gate(y, f, a, i, ss, k):
    f[i] = (ss - y[i]) * k
    a[i] = -k


@njit(RHS_SIGNATURE, **JIT_OPTIONS)
def rhs(t, y, p, i_app, f, a):
    v, nai, nass, ki, kss, cai, cass, cansr, cajsr = y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7], y[8]
    jca, nca = y[29], y[30]
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

    # ---- time constants (epi: Ito inactivation scaled by delta_epi)
    delta_epi = 1.0 - 0.95 * _sig(p, S.delta_epi, v) if p[Q.is_epi] != 0.0 else 1.0
    r_tm = _rate(p, R.tm, v)
    r_ths = _rate(p, R.ths, v)
    kt_tj = _inv_tau(p, R.tj, v, 1.0)
    kt_tiF = _inv_tau(p, R.tiF, v, delta_epi)
    kt_tiS = _inv_tau(p, R.tiS, v, delta_epi)
    kt_tff = _inv_tau(p, R.tff, v, 1.0)
    kt_tfcaf = _inv_tau(p, R.tfcaf, v, 1.0)

    # ---- INa
    k_m, k_hf, k_hs, k_j = r_tm, _rate(p, R.thf, v), r_ths, kt_tj
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
    k_a = _sig(p, S.ta_1, v) * (1.0 / (1.2089 * 1.0515)) + (3.5 / 1.0515) * _sig(p, S.ta_2, v)
    dti = (1.354 + 1.0e-4 / _rate(p, R.dti_develop, v)) * (1.0 - 0.5 * _sig(p, S.dti_recover, v))
    k_ifp = kt_tiF / dti
    k_isp = kt_tiS / dti
    aif = _sig(p, S.AiF, v)
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
    afcaf = 0.3 + 0.6 * _sig(p, S.Afcaf, v)
    afcas = 1.0 - afcaf
    fs_a = afs * y[26]
    fcas_a = afcas * y[28]
    one_nca = 1.0 - nca
    jca_nca = jca * nca
    gate_np = (aff * y[25] + fs_a) * one_nca + (afcaf * y[27] + fcas_a) * jca_nca
    gate_p = (aff * y[31] + fs_a) * one_nca + (afcaf * y[32] + fcas_a) * jca_nca
    g_cal = y[24] * (fnp * gate_np + (p[Q.PCap_ratio] * fp) * gate_p)
    vfrt = p[Q.frt] * v
    em1 = math.expm1(vfrt)
    e1 = em1 + 1.0
    r1 = 1.0 if em1 == 0.0 else vfrt / em1  # x/expm1(x), continuous at V = 0
    e2 = e1 * e1
    F = p[Q.F]
    ghk1 = F * r1
    ghk2 = (4.0 * F) * r1 / (e1 + 1.0)
    gcao = p[Q.gamma_cao] * p[Q.cao]
    phi_cal = ghk2 * (cass * e2 - gcao)
    g_cal_pca = p[Q.PCa] * g_cal
    ical = g_cal_pca * phi_cal
    gk_nak = (p[Q.gamma_nak] * ghk1) * g_cal_pca
    nao, ko = p[Q.nao], p[Q.ko]
    icana = (p[Q.PCaNa_ratio] * gk_nak) * (nass * e1 - nao)
    icak = (p[Q.PCaK_ratio] * gk_nak) * (kss * e1 - ko)

    # ---- IKr, IKs, IK1
    xr = _sig(p, S.Axrf, v) * (y[33] - y[34]) + y[34]
    ikr = p[Q.gkr] * xr * (_sig(p, S.rkr_1, v) * _sig(p, S.rkr_2, v)) * v_ek
    ksca = 1.0 + 0.6 / (1.0 + (3.8e-5 / cai) ** 1.4)
    iks = p[Q.GKs] * ksca * y[35] * y[36] * (v - eks)
    ik1 = p[Q.gk1] * _sig(p, S.rk1, v) * y[37] * v_ek

    # ---- INaCa (bulk and subspace share the voltage terms)
    hna = _ex(p, _N_SIG + 2 * _N_RATE + E.hna, v)
    hca = _ex(p, _N_SIG + 2 * _N_RATE + E.hca, v)
    kna3 = p[Q.kna3]
    h7 = 1.0 + (nao / kna3) * (1.0 + 1.0 / hna)
    h8 = nao / (kna3 * hna * h7)
    wca = p[Q.wca]
    k3p = wca / h7
    k3pp = h8 * p[Q.wnaca]
    k3 = k3p + k3pp
    k8 = (p[Q.ncx_h11] * p[Q.wna]) * h8
    wca_hca = wca / hca
    k1, k2 = p[Q.ncx_k1], p[Q.kcaoff]
    frac = p[Q.frac_ncx_i]
    inaca_i = _inaca(p, nai, cai, frac, hna, k1, k2, k3, k3pp, k8, wca_hca)
    inaca_ss = _inaca(p, nass, cass, 1.0 - frac, hna, k1, k2, k3, k3pp, k8, wca_hca)

    # ---- INaK
    knai = p[Q.Knai0] * _ex(p, _N_SIG + 2 * _N_RATE + E.Knai, v)
    knao = p[Q.Knao0] * _ex(p, _N_SIG + 2 * _N_RATE + E.Knao, v)
    nai_r = nai / knai
    nao_r = nao / knao
    kki = p[Q.Kki]
    ki_r = ki / kki
    ki_r2 = ki_r * ki_r
    d_i = (1.0 + nai_r) ** 3 + (1.0 + ki / kki) ** 2 - 1.0
    d_o = (1.0 + nao_r) ** 3 + (1.0 + ko / p[Q.Kko]) ** 2 - 1.0
    a1 = p[Q.k1p] * nai_r**3 / d_i
    b1 = p[Q.nak_b1]
    a2 = p[Q.k2p]
    b2 = p[Q.k2m] * nao_r**3 / d_o
    a3 = p[Q.k3p] * p[Q.nak_ko2] / d_o
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
    ikb = p[Q.GKb] * _sig(p, S.xkb, v) * v_ek
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
    hss = _sig(p, S.hss, v)
    iss = _sig(p, S.iss, v)
    fss = _sig(p, S.fss, v)
    xrss = _sig(p, S.xrss, v)
    xs1ss = _sig(p, S.xs1ss, v)
    _gate(y, f, a, 9, _sig(p, S.mss, v), k_m)
    _gate(y, f, a, 10, hss, k_hf)
    _gate(y, f, a, 11, hss, k_hs)
    _gate(y, f, a, 12, hss, k_j)
    _gate(y, f, a, 13, _sig(p, S.hssp, v), k_hsp)
    _gate(y, f, a, 14, hss, k_jp)
    _gate(y, f, a, 15, _sig(p, S.mLss, v), k_ml)
    _gate(y, f, a, 16, _sig(p, S.hLss, v), k_hl)
    _gate(y, f, a, 17, _sig(p, S.hLssp, v), k_hlp)
    _gate(y, f, a, 18, _sig(p, S.ass, v), k_a)
    _gate(y, f, a, 19, iss, kt_tiF)
    _gate(y, f, a, 20, iss, kt_tiS)
    _gate(y, f, a, 21, _sig(p, S.assp, v), k_a)
    _gate(y, f, a, 22, iss, k_ifp)
    _gate(y, f, a, 23, iss, k_isp)
    _gate(y, f, a, 24, _sig(p, S.dss, v), _inv_tau(p, R.td, v, 1.0))
    _gate(y, f, a, 25, fss, kt_tff)
    _gate(y, f, a, 26, fss, _inv_tau(p, R.tfs, v, 1.0))
    _gate(y, f, a, 27, fss, kt_tfcaf)
    _gate(y, f, a, 28, fss, _inv_tau(p, R.tfcas, v, 1.0))
    _gate(y, f, a, 29, fss, 1.0 / p[Q.tjca])
    _gate(y, f, a, 30, 0.0, jca)  # n_Ca: -jca nca, + anca k2n below
    f[30] += anca_k2n
    _gate(y, f, a, 31, fss, kt_tff * (1.0 / 2.5))
    _gate(y, f, a, 32, fss, kt_tfcaf * (1.0 / 2.5))
    _gate(y, f, a, 33, xrss, _inv_tau(p, R.txrf, v, 1.0))
    _gate(y, f, a, 34, xrss, _inv_tau(p, R.txrs, v, 1.0))
    _gate(y, f, a, 35, xs1ss, _inv_tau(p, R.txs1, v, 1.0))
    _gate(y, f, a, 36, xs1ss, _rate(p, R.txs2, v))
    _gate(y, f, a, 37, _sig(p, S.xk1ss, v), _rate(p, R.txk1, v))
    _gate(y, f, a, 38, p[Q.a_rel] * rel_act, k_jrelnp)
    _gate(y, f, a, 39, p[Q.a_relp] * rel_act, k_jrelp)

