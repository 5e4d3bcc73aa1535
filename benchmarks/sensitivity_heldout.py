"""How sensitive the solver's own answer is to a small change of the held-out stimuli.

The held-out benchmark (``ionfno heldout``) scores surrogates in the study's metric: relative
L2 over time in the point-wise normalised space, mean over states, then over samples. For
random currents and fast pacing, the answer hinges on *when* the cell crosses threshold, so a
small change of the input can move the truth itself a lot in that metric. This script measures
that floor of difficulty with the solver alone: each held-out stimulus of a kind (the fixed
draws of ``ionfno heldout``) is perturbed and the truth of the perturbed input is scored
against the truth of the original, as if it were a surrogate's prediction:

* random currents (``noise``): ``I + eps * A * z``, ``z`` an independent band-limited noise of
  the same cutoff and unit peak, ``A`` the sample's own deviation;
* pulse kinds: every pulse amplitude scaled by ``1 + eps * u``, ``u ~ U(-1, 1)`` per pulse.

A surrogate whose error is far above the solver's own change at ``eps = 1 %`` is not limited by
the problem's conditioning; one close to it is as good as an input error of that size allows.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/sensitivity_heldout.py \\
        --surrogates fhn-general hh-general ord-general --kinds pacing_fast noise

The normalisation statistics (the metric's space) are those of each named surrogate (a
pretrained name or a run folder), so the numbers sit on the same scale as its held-out score.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ionfno.data.mixtures import sample_stimuli  # noqa: E402
from ionfno.evaluation import heldout as H  # noqa: E402
from ionfno.evaluation.metrics import compute_errors  # noqa: E402
from ionfno.stimulus import Pulses, PulseTrain, SampledWaveform, band_limited_noise  # noqa: E402
from ionfno.surrogate import Surrogate  # noqa: E402


def perturb(stimulus, params: dict, eps: float, t: np.ndarray, seed: int):
    """The stimulus with every sample changed by ``eps`` of its own size (module docstring)."""
    rng = np.random.default_rng(seed)
    if isinstance(stimulus, SampledWaveform):
        amp = np.abs(np.asarray(params["amplitude"], dtype=np.float64))
        z = band_limited_noise(
            t,
            amplitude=np.ones(stimulus.batch_size),
            offset=np.zeros(stimulus.batch_size),
            cutoff=np.asarray(params["noise_cutoff"], dtype=np.float64),
            rngs=[np.random.default_rng([seed, b]) for b in range(stimulus.batch_size)],
        )
        values = stimulus.sample(t) + eps * amp[:, None] * z.values
        return SampledWaveform(t, values, kind=stimulus.kind)
    if isinstance(stimulus, PulseTrain):
        stimulus = stimulus.to_pulses()
    if not isinstance(stimulus, Pulses):
        raise TypeError(f"cannot perturb a {type(stimulus).__name__}")
    scale = 1.0 + eps * rng.uniform(-1.0, 1.0, stimulus.amplitude.shape)
    return dataclasses.replace(stimulus, amplitude=stimulus.amplitude * scale)


def n_upstrokes(v: np.ndarray, threshold: float) -> np.ndarray:
    """Upward threshold crossings of each trace, shape (B,) from ``v`` (B, N)."""
    above = v > threshold
    return np.sum(above[:, 1:] & ~above[:, :-1], axis=-1) + above[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--surrogates", nargs="+", default=["fhn-general", "hh-general", "ord-general"],
                    help="pretrained names or run folders (their model and normaliser are used)")
    ap.add_argument("--kinds", nargs="+", default=["pacing_fast", "noise"], choices=list(H.HELDOUT_KINDS))
    ap.add_argument("--eps", nargs="+", type=float, default=[0.001, 0.01, 0.03])
    ap.add_argument("--n-per-kind", type=int, default=16)
    args = ap.parse_args()

    print(f"{'surrogate':<14} {'kind':<12} {'eps':>6} {'rel_l2':>8} {'rel_l2_V':>9} {'same APs':>9}")
    for name in args.surrogates:
        sur = Surrogate.load(name, which="last")
        mean, std = H.study_statistics(sur, None)
        mix = H.heldout_mixture(sur.model_name, args.n_per_kind)
        t_stored, t, iv, thr = H._grid(sur)
        names = list(sur.state_names)
        for kind in args.kinds:
            one = dataclasses.replace(mix, parts=(mix.part(kind),))
            params, st = sample_stimuli(one, seed=H.HELDOUT_SEED, split="test", t=t_stored, t_end=sur.t_end)
            base, status0 = H._truth(sur, st, dict(mix.solver))
            for k, eps in enumerate(args.eps):
                moved, status = H._truth(sur, perturb(st, params, eps, t_stored, seed=k), dict(mix.solver))
                ok = np.flatnonzero((status0 == 0) & (status == 0))
                e = compute_errors(moved[ok], base[ok], mean=mean, std=std, state_names=names)
                e = e.summary()["all"]
                same_count = n_upstrokes(base[ok][:, iv], thr) == n_upstrokes(moved[ok][:, iv], thr)
                print(f"{name:<14} {kind:<12} {eps:>6.3f} {e['rel_l2']['overall']:>8.4f} "
                      f"{e['rel_l2']['per_variable'][names[iv]]:>9.4f} {np.mean(same_count):>9.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
