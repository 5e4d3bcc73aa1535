"""The held-out out-of-distribution benchmark and the S1-S2 restitution curve of a surrogate.

The study trains and tests on one rectangular pulse from t = 0. This module asks a trained
surrogate (a study-style one or a "general" one, trained on ``MODEL-general``) about the
protocols cardiac and neuro modellers actually run, each drawn with a **fixed seed** so that
every surrogate of a model is scored on the same inputs:

* ``onset_shift`` -- one pulse starting anywhere in the window;
* ``two_pulses`` -- two pulses (the second may fall in the refractory period);
* ``pacing_slow`` / ``pacing_fast`` -- trains at the upper / lower half of the model's pacing
  periods (each pulse with its own amplitude and duration);
* ``s1s2`` -- S1 pulse(s) then a premature S2;
* ``noise`` -- smooth band-limited random currents.

The ranges are those of the new parts of the model's general mixture
(``src/ionfno/presets/mixtures/MODEL-general.json``), sampled with :data:`HELDOUT_SEED` from
the ``test`` stream: independent of every training set, which use seeds 0, 1, ...

Scores per kind: the study's metric (relative L2 over time in the space normalised with the
surrogate's own training statistics, mean over states, then over samples), V in physical
units, and **per beat**: the window is cut at every pulse onset, each beat's biomarkers
(:func:`ionfno.evaluation.biomarkers.compute_biomarkers`, rest = V at the grid point at or
just before the beat's onset) are
compared: firing agreement per beat and the APD90 error over beats where both fire.

:func:`restitution_curve`: one S1 at t = 0 and an S2 at coupling intervals across the S1-S2
part's range; the APD90 of the S2 beat against the coupling interval, solver and surrogate.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "HELDOUT_SEED",
    "HELDOUT_KINDS",
    "heldout_mixture",
    "beat_onsets",
    "beat_biomarkers",
    "evaluate_heldout",
    "study_statistics",
    "restitution_curve",
]

#: Seed of the held-out draws (fixed: every surrogate of a model sees the same inputs).
HELDOUT_SEED = 20_261_206
#: The kinds of the benchmark, in report order.
HELDOUT_KINDS = ("onset_shift", "two_pulses", "pacing_slow", "pacing_fast", "s1s2", "noise")


def _general(model: str) -> Any:
    from ..data.mixtures import list_mixtures, load_mixture

    family = model.split("-")[0]
    name = f"{family}-general"
    if name not in list_mixtures():
        have = sorted(m[: -len("-general")] for m in list_mixtures() if m.endswith("-general"))
        raise ValueError(
            f"No held-out benchmark for model {model!r}: no mixture {name!r}; models with one: {have}"
        )
    return load_mixture(name)


def heldout_mixture(model: str, n_per_kind: int = 16) -> Any:
    """The benchmark as a mixture: one part per kind of :data:`HELDOUT_KINDS`, ``n_per_kind`` samples each.

    Parameters
    ----------
    model : str
        Registry name (``fhn``, ``hh``, ``ord``, or a variant such as ``ord-epi``).
    n_per_kind : int
        Samples per kind (``test`` counts; no training or validation samples).

    Returns
    -------
    ionfno.data.mixtures.Mixture
        Named ``MODEL-heldout``, with the general mixture's grid and solver settings.
    """
    from ..data.mixtures import Mixture

    if int(n_per_kind) < 1:
        raise ValueError(f"n_per_kind must be >= 1, got {n_per_kind}")
    g = _general(model)
    counts = {"train": 0, "val": 0, "test": int(n_per_kind)}
    train = g.part("train")
    p_lo, p_hi = train.bounds("period", float(g.t_end or 0.0))
    mid = 0.5 * (p_lo + p_hi)
    n_lo, n_hi = train.bounds("n_pulses", float(g.t_end or 0.0))
    parts = [
        dataclasses.replace(g.part("shifted"), name="onset_shift", counts=counts),
        dataclasses.replace(train, name="two_pulses", n_pulses=(2.0, 2.0), counts=counts,
                            description="two pulses of the train part's amplitudes and periods"),
        dataclasses.replace(train, name="pacing_slow", period=(mid, p_hi), n_pulses=(max(n_lo, 2.0), n_hi),
                            counts=counts, description=f"trains, period {mid:g}-{p_hi:g} ms"),
        dataclasses.replace(train, name="pacing_fast", period=(p_lo, mid), n_pulses=(max(n_lo, 2.0), n_hi),
                            counts=counts, description=f"trains, period {p_lo:g}-{mid:g} ms"),
        dataclasses.replace(g.part("s1s2"), name="s1s2", counts=counts),
        dataclasses.replace(g.part("noise"), name="noise", counts=counts),
    ]
    return Mixture(
        name=f"{g.model}-heldout",
        model=g.model,
        parts=tuple(parts),
        t_end=g.t_end,
        n_points=g.n_points,
        description=f"held-out out-of-distribution benchmark of {g.model} (ionfno.evaluation.heldout)",
        solver=dict(g.solver),
    )


def beat_onsets(stimulus: Any, t_end: float) -> list[np.ndarray]:
    """Sorted pulse onsets in ``[0, t_end)`` per sample (an empty array for a waveform).

    Parameters
    ----------
    stimulus : PulseTrain, Pulses or SampledWaveform
    t_end : float
        Window [ms].
    """
    from ..stimulus import Pulses, PulseTrain

    if isinstance(stimulus, PulseTrain):
        stimulus = stimulus.to_pulses()
    if not isinstance(stimulus, Pulses):
        return [np.zeros(0) for _ in range(stimulus.batch_size)]
    out = []
    for b in range(stimulus.batch_size):
        real = (stimulus.amplitude[b] != 0) | (stimulus.duration[b] != 0)
        o = np.sort(stimulus.onset[b][real])
        out.append(o[o < t_end])
    return out


def beat_biomarkers(v: np.ndarray, t: np.ndarray, onsets: np.ndarray, *, threshold: float) -> Any:
    """Biomarkers of every beat of one trace: the window cut at each pulse onset.

    Parameters
    ----------
    v : ndarray, shape (N,)
        Membrane potential [V unit] on ``t``.
    t : ndarray, shape (N,)
    onsets : ndarray, shape (K,)
        Sorted pulse onsets [ms]; beat ``k`` runs from the last grid point at or before
        ``onsets[k]`` up to that of ``onsets[k + 1]`` (the last to the end of the window).
        Beats with fewer than 3 grid points are skipped.

    Returns
    -------
    Biomarkers
        Shape ``(beats,)``; rest = V at the beat's first grid point (before its pulse acts).
    """
    from .biomarkers import Biomarkers, compute_biomarkers

    segs = []
    # A beat starts at the last grid point at or before its onset: the first point after it may
    # already be on the upstroke (a 1 ms upstroke on a 0.79 ms grid), which as the rest level
    # would shorten the APD.
    first = np.maximum(np.searchsorted(t, onsets, side="right") - 1, 0)
    stop = np.append(first[1:], t.shape[0])
    for k in range(len(onsets)):
        idx = np.arange(first[k], max(stop[k], first[k]))
        if idx.size >= 3:
            segs.append(compute_biomarkers(v[idx], t[idx] - t[idx[0]], threshold=threshold))
    if not segs:
        return Biomarkers(**{f.name: np.zeros(0, dtype=bool if f.name == "fires" else np.float64)
                             for f in dataclasses.fields(Biomarkers)})
    return Biomarkers(**{f.name: np.concatenate([getattr(s, f.name) for s in segs])
                         for f in dataclasses.fields(Biomarkers)})


def _per_beat(true_v: np.ndarray, pred_v: np.ndarray, t: np.ndarray, onsets: Sequence[np.ndarray],
              threshold: float) -> dict[str, Any]:
    fires_t, fires_p, apd_t, apd_p = [], [], [], []
    for b, o in enumerate(onsets):
        if o.size == 0:
            continue
        bt = beat_biomarkers(true_v[b], t, o, threshold=threshold)
        bp = beat_biomarkers(pred_v[b], t, o, threshold=threshold)
        fires_t.append(bt.fires)
        fires_p.append(bp.fires)
        apd_t.append(bt.apd90)
        apd_p.append(bp.apd90)
    if not fires_t:
        return {"n_beats": 0}
    ft, fp = np.concatenate(fires_t), np.concatenate(fires_p)
    at, ap = np.concatenate(apd_t), np.concatenate(apd_p)
    both = ft & fp & np.isfinite(at) & np.isfinite(ap)
    err = np.abs(ap[both] - at[both])
    return {
        "n_beats": int(ft.size),
        "n_beats_firing": int(ft.sum()),
        "beat_fire_agreement": float(np.mean(ft == fp)),
        "apd90_n": int(both.sum()),
        "apd90_mae": float(err.mean()) if err.size else float("nan"),
        "apd90_max": float(err.max()) if err.size else float("nan"),
    }


def _grid(sur: Any) -> tuple[np.ndarray, np.ndarray, int, float]:
    """The stored grid ``(M,)``, the surrogate's grid ``(N,)`` (every ``subsample``-th point),
    the index of V and the model's firing threshold."""
    from ..data.biomarkers import firing_threshold

    t_stored = np.linspace(0.0, sur.t_end, int(sur.info["n_points_stored"]))
    names = list(sur.state_names)
    iv = names.index("V") if "V" in names else 0
    return t_stored, t_stored[:: int(sur.info["subsample"])], iv, firing_threshold(sur.model_name)


def _truth(sur: Any, stimulus: Any, solver: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The solver's states on the surrogate's grid ``(B, S, N)`` (simulated on the stored grid,
    as the training data) and the per-sample status ``(B,)``."""
    from ..ionic import get_model
    from ..solvers import simulate

    kw = {k: v for k, v in solver.items() if k != "method"}
    traj = simulate(get_model(sur.model_name), stimulus, t_end=sur.t_end,
                    n_points=int(sur.info["n_points_stored"]), method=str(solver.get("method", "fast")), **kw)
    return traj.states[:, :, :: int(sur.info["subsample"])], traj.status


def study_statistics(sur: Any, statistics: tuple[np.ndarray, np.ndarray] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The point-wise ``(mean, std)`` that define the study's metric: ``statistics`` if given,
    else the surrogate's own output normaliser; ValueError when it has none (not point-wise)."""
    stats = sur.output_statistics() if statistics is None else statistics
    if stats is None:
        raise ValueError("the held-out benchmark scores in the study's metric, which needs a surrogate "
                         "trained with the point-wise normaliser (data.normalization = pointwise)")
    return stats


def _predict(sur: Any, stimulus: Any) -> np.ndarray:
    from ..surrogate import ExtrapolationWarning

    with warnings.catch_warnings():  # out of the training distribution on purpose
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return sur.predict_array(sur.encode(stimulus, strict=False), strict=False)


def evaluate_heldout(sur: Any, *, n_per_kind: int = 16, seed: int = HELDOUT_SEED,
                     kinds: Sequence[str] | None = None,
                     solver: dict[str, Any] | None = None,
                     statistics: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Score a surrogate on the held-out benchmark (module docstring).

    Parameters
    ----------
    sur : ionfno.surrogate.Surrogate
        Trained with the point-wise normaliser (its statistics define the study's metric).
    n_per_kind : int
        Samples per kind.
    seed : int
        Draw seed (default :data:`HELDOUT_SEED`; change it only to study the spread).
    kinds : sequence of str, optional
        A subset of :data:`HELDOUT_KINDS`.
    solver : dict, optional
        Truth solver settings (default: the general mixture's, the generation defaults).
    statistics : (ndarray, ndarray), shapes (S, N), optional
        Point-wise mean and std of the states over the training split on the surrogate's grid
        (default: the surrogate's own output normaliser, which must then be point-wise).

    Returns
    -------
    dict
        ``cases``: kind -> ``n``, ``n_failed`` (solver), ``rel_l2`` (study metric, mean over
        states and samples; ``rel_l2_median``, ``rel_l2_max`` over samples), ``rel_l2_V``,
        ``rmse_V`` [V unit], ``fire_agreement`` (whole trace), per-beat ``n_beats``,
        ``beat_fire_agreement``, ``apd90_mae``/``apd90_max`` [ms] over ``apd90_n`` beats where
        both fire, ``description``; ``traces``: kind ->
        ``t``, ``i_app``, ``true``, ``pred`` (V, for figures); ``seed``, ``n_per_kind``,
        ``solver``.
    """
    from ..data.mixtures import sample_stimuli
    from .biomarkers import compare_biomarkers, compute_biomarkers
    from .metrics import compute_errors

    kinds = list(HELDOUT_KINDS if kinds is None else kinds)
    bad = sorted(set(kinds) - set(HELDOUT_KINDS))
    if bad:
        raise ValueError(f"Unknown held-out kind(s) {bad}; expected some of {list(HELDOUT_KINDS)}")
    mean, std = study_statistics(sur, statistics)
    mix = heldout_mixture(sur.model_name, n_per_kind)
    solver = dict(mix.solver if solver is None else solver)
    names = list(sur.state_names)
    t_stored, t, iv, thr = _grid(sur)
    cases: dict[str, Any] = {}
    traces: dict[str, Any] = {}
    for kind in kinds:
        one = dataclasses.replace(mix, parts=(mix.part(kind),))
        _, st = sample_stimuli(one, seed=seed, split="test", t=t_stored, t_end=sur.t_end)
        states, status = _truth(sur, st, solver)
        ok = np.flatnonzero(status == 0)
        st_ok = st.select(ok)
        true = states[ok]
        pred = _predict(sur, st_ok)
        e = compute_errors(pred, true, mean=mean, std=std, state_names=names).summary()["all"]
        ft = compute_biomarkers(true[:, iv], t, threshold=thr)
        fp = compute_biomarkers(pred[:, iv], t, threshold=thr)
        cases[kind] = {
            "description": one.parts[0].description,
            "n": int(ok.size),
            "n_failed": int(status.size - ok.size),
            "rel_l2": float(e["rel_l2"]["overall"]),
            # A few failed samples can carry a kind's mean: its median and worst sample beside it.
            "rel_l2_median": float(e["rel_l2"]["median"]),
            "rel_l2_max": float(e["rel_l2"]["max"]),
            "rel_l2_V": float(e["rel_l2"]["per_variable"][names[iv]]),
            "rmse_V": float(e["rmse"]["per_variable"][names[iv]]),
            "fire_agreement": float(compare_biomarkers(ft, fp)["fire_agreement"]),
            **_per_beat(true[:, iv], pred[:, iv], t, beat_onsets(st_ok, sur.t_end), thr),
        }
        traces[kind] = {"t": t, "i_app": st_ok.sample(t), "true": true[:, iv], "pred": pred[:, iv]}
    return {"model": sur.model_name, "seed": int(seed), "n_per_kind": int(n_per_kind),
            "solver": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in solver.items()},
            "cases": cases, "traces": traces}


def restitution_curve(sur: Any, *, n: int = 16, couplings: Sequence[float] | None = None,
                      solver: dict[str, Any] | None = None) -> dict[str, Any]:
    """APD90 of a premature S2 beat against the S1-S2 coupling interval, solver and surrogate.

    One S1 at t = 0 (the middle of the general mixture's S1-S2 amplitude and duration ranges)
    and one S2 (the upper quarter of its S2 amplitude range, the middle of its duration range)
    ``CI`` after it. The S2 beat runs from ``CI`` to the end of the window; its APD90 is NaN
    when it does not fire or repolarise in the window.

    Parameters
    ----------
    sur : ionfno.surrogate.Surrogate
    n : int
        Coupling intervals, evenly spread over the S1-S2 part's range, up to where an S2 beat
        as long as the S1 beat still repolarises in the window (ignored with ``couplings``).
    couplings : sequence of float, optional
        Coupling intervals [ms].
    solver : dict, optional
        Truth solver settings (default: the general mixture's).

    Returns
    -------
    dict
        ``coupling`` (n,), ``apd90_true``, ``apd90_pred`` (n,) [ms] of S2, ``fires_true``,
        ``fires_pred`` (n,), ``s1_apd90_true``, ``s1_apd90_pred`` [ms], ``s1``/``s2``
        (amplitude, duration), ``apd90_mae`` [ms] where both fire, ``fire_agreement``.
    """
    from ..stimulus import Pulses
    from .biomarkers import compute_biomarkers

    g = _general(sur.model_name)
    part = g.part("s1s2")
    T = sur.t_end
    a1 = float(np.mean(part.bounds("amplitude", T)))
    d1 = float(np.mean(part.bounds("duration", T)))
    lo, hi = part.bounds("s2_amplitude", T)
    a2 = lo + 0.75 * (hi - lo)
    d2 = float(np.mean(part.bounds("s2_duration", T)))
    solver = dict(g.solver if solver is None else solver)
    _, t, iv, thr = _grid(sur)
    if couplings is None:
        # Up to the part's longest interval, but early enough for the S2 beat to repolarise
        # inside the window (its APD90 is at most about the S1's, from rest).
        c_lo, c_hi = part.bounds("coupling", T)
        s1, _ = _truth(sur, Pulses(np.array([[a1]]), np.array([[d1]]), np.zeros((1, 1))), solver)
        apd1 = compute_biomarkers(s1[:, iv], t, threshold=thr).apd90[0]
        if np.isfinite(apd1):
            c_hi = min(c_hi, T - 1.1 * apd1)
        couplings = np.linspace(c_lo, max(c_lo, min(c_hi, T - 1.0)), int(n))
    ci = np.asarray(couplings, dtype=np.float64)
    if ci.ndim != 1 or ci.size < 1 or np.any(ci <= d1) or np.any(ci >= T):
        raise ValueError(
            f"coupling intervals must lie in ({d1:g}, {T:g}) ms (after S1 ends, inside the window)"
        )
    B = ci.size
    st = Pulses(np.column_stack([np.full(B, a1), np.full(B, a2)]),
                np.column_stack([np.full(B, d1), np.full(B, d2)]),
                np.column_stack([np.zeros(B), ci]))
    states, status = _truth(sur, st, solver)
    true_v = states[:, iv]
    pred_v = _predict(sur, st)[:, iv]
    out: dict[str, Any] = {"coupling": ci, "s1": (a1, d1), "s2": (a2, d2)}
    for who, v in (("true", true_v), ("pred", pred_v)):
        s2 = [beat_biomarkers(v[b], t, np.array([0.0, ci[b]]), threshold=thr) for b in range(B)]
        out[f"apd90_{who}"] = np.array([s.apd90[-1] if s.apd90.size == 2 else np.nan for s in s2])
        out[f"fires_{who}"] = np.array([bool(s.fires[-1]) if s.fires.size == 2 else False for s in s2])
        s1 = np.array([s.apd90[0] for s in s2])
        s1 = s1[np.isfinite(s1)]  # none when the S1 beat never repolarises (an untrained FNO)
        out[f"s1_apd90_{who}"] = float(np.median(s1)) if s1.size else float("nan")
    both = out["fires_true"] & out["fires_pred"]
    both &= np.isfinite(out["apd90_true"]) & np.isfinite(out["apd90_pred"])
    err = np.abs(out["apd90_pred"][both] - out["apd90_true"][both])
    out["apd90_mae"] = float(err.mean()) if err.size else float("nan")
    out["fire_agreement"] = float(np.mean(out["fires_true"] == out["fires_pred"]))
    out["status"] = status
    return out
