"""Small synthetic datasets in the real file layout, for fast training tests.

The "states" follow a closed-form operator of the pulse (amplitude A, duration T_stim):
``V`` charges towards A with time constant 5 during the pulse and relaxes with time constant
10 after it; ``w`` is a slow running integral of ``V``. Smooth, deterministic and learnable in
a few hundred steps, which is all a training test needs; physics is tested elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

T_END = 100.0


def synthetic_states(amplitude: np.ndarray, duration: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(n, 2, N) states V, w of the closed-form operator in the module docstring."""
    A, D = amplitude[:, None], duration[:, None]
    tt = t[None, :]
    v_end = A * (1.0 - np.exp(-D / 5.0))
    V = np.where(tt <= D, A * (1.0 - np.exp(-tt / 5.0)), v_end * np.exp(-(tt - D) / 10.0))
    dt = t[1] - t[0]
    w = 0.05 * np.cumsum(V, axis=1) * dt
    return np.stack([V, w], axis=1)


def write_synthetic(path: Path, *, n_train=48, n_val=16, n_test=16, n_points=256, seed=0) -> Path:
    from ionfno.data.storage import write_arrays
    from ionfno.stimulus import pulse

    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, T_END, n_points)
    splits = {}
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        A = rng.uniform(0.1, 2.0, n)
        D = rng.uniform(1.0, 100.0, n)
        D[-max(1, n // 8) :] = 0.0  # a few "t0" samples (last, so n_train=4 picks general ones)
        part = np.where(D == 0.0, "t0", "general")
        splits[name] = {
            "i_app": pulse(A, D).sample(t),
            "states": synthetic_states(A, D, t),
            "amplitude": A,
            "duration": D,
            "part": part,
        }
    attrs = {
        "model": "fhn",
        "state_names": ["V", "w"],
        "state_units": ["1", "1"],
        "time_unit": "ms",
        "current_unit": "1",
        "config": {"t_end": T_END, "n_points": n_points},
    }
    return write_arrays(path, t, splits, attrs)


@pytest.fixture(scope="session")
def synthetic_h5(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("data") / "synthetic.h5")
