"""Biomarkers against traces whose values are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ionfno.evaluation.biomarkers import compare_biomarkers, compute_biomarkers

T = np.linspace(0.0, 500.0, 5001)  # dt = 0.1 ms


def piecewise_ap(t_on=10.03, t_peak=12.0, t_rest=312.17, v_rest=-80.0, v_peak=20.0, t=T):
    """Linear rise from rest to the peak, then a linear fall back to rest.

    The peak sits on a grid point (so the sampled amplitude is exact); the other breakpoints
    lie between grid points, so the crossings test the interpolation.
    """
    return np.interp(t, [0.0, t_on, t_peak, t_rest, t[-1]], [v_rest, v_rest, v_peak, v_rest, v_rest])


def test_piecewise_linear_ap_hand_values():
    # Amplitude 100 mV. The 50 % level, -30 mV, is crossed upward halfway up the rise,
    # t_up = 10.03 + 0.5 * 1.97 = 11.015, and downward at 12 + 0.5 * 300.17 = 162.085;
    # 90 % repolarisation (-70 mV) at 12 + 0.9 * 300.17 = 282.153.
    bm = compute_biomarkers(piecewise_ap(), T, threshold=-20.0)
    assert bm.fires[0]
    np.testing.assert_allclose(bm.v_rest, [-80.0])
    np.testing.assert_allclose(bm.v_peak, [20.0])
    np.testing.assert_allclose(bm.t_upstroke, [11.015], atol=1e-9)
    np.testing.assert_allclose(bm.apd50, [162.085 - 11.015], atol=1e-9)
    np.testing.assert_allclose(bm.apd90, [282.153 - 11.015], atol=1e-9)
    np.testing.assert_allclose(bm.dvdt_max, [100.0 / 1.97], rtol=1e-9)


def test_subthreshold_unrepolarised_double_and_nonfinite_traces():
    sub = piecewise_ap(v_peak=-60.0)  # a 20 mV bump
    plateau = np.interp(T, [0, 10, 12, 500], [-80, -80, 20, -40])  # -30 mV reached, -70 never
    # Two APs, the second higher: the first AP's own peak and APD are measured.
    double = np.maximum(piecewise_ap(), piecewise_ap(t_on=400.0, t_peak=402.0, t_rest=480.0, v_peak=40.0))
    broken = piecewise_ap()
    broken[100] = np.nan
    bm = compute_biomarkers(np.stack([sub, plateau, double, broken]), T, threshold=-20.0)
    np.testing.assert_array_equal(bm.fires, [False, True, True, False])
    np.testing.assert_allclose(bm.v_peak[0], -60.0, atol=0.1)
    assert np.isnan(bm.t_upstroke[0]) and np.isnan(bm.apd90[0])
    assert np.isfinite(bm.apd50[1]) and np.isnan(bm.apd90[1])
    np.testing.assert_allclose(bm.apd90[2], 282.153 - 11.015, atol=1e-9)
    np.testing.assert_allclose(bm.v_peak[2], 20.0)
    assert all(np.isnan(getattr(bm, k)[3]) for k in ("v_peak", "t_upstroke", "apd90", "v_rest"))


def test_compare_biomarkers_shift_and_confusion():
    true = compute_biomarkers(
        np.stack([piecewise_ap(), piecewise_ap(), piecewise_ap(v_peak=-60.0)]), T, threshold=-20.0
    )
    # Prediction: the first AP 2 ms late (APDs unchanged), the second does not fire, the third fires.
    pred = compute_biomarkers(
        np.stack(
            [piecewise_ap(t_on=12.03, t_peak=14.0, t_rest=314.17), piecewise_ap(v_peak=-60.0), piecewise_ap()]
        ),
        T,
        threshold=-20.0,
    )
    c = compare_biomarkers(true, pred)
    assert (c["both_fire"], c["missed_fire"], c["false_fire"], c["neither_fires"]) == (1, 1, 1, 0)
    np.testing.assert_allclose(c["fire_agreement"], 1 / 3)
    np.testing.assert_allclose(c["t_upstroke"]["mean_abs"], 2.0, atol=1e-9)
    np.testing.assert_allclose(c["t_upstroke"]["mean_signed"], 2.0, atol=1e-9)
    np.testing.assert_allclose(c["apd90"]["mean_abs"], 0.0, atol=1e-9)
    assert c["peak_abs_error"]["n"] == 3


def test_bad_inputs():
    with pytest.raises(ValueError, match="threshold"):
        compute_biomarkers(piecewise_ap(), T, threshold=float("nan"))
    with pytest.raises(ValueError, match="expected v"):
        compute_biomarkers(np.zeros((2, 5)), T, threshold=1.0)
