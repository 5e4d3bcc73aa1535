"""Fixtures of the tuning tests: a tiny FHN dataset in the project's HDF5 layout."""

from __future__ import annotations

import numpy as np
import pytest


def fhn_trajectories(
    amplitude: np.ndarray, duration: np.ndarray, t: np.ndarray, dt: float = 0.05
) -> np.ndarray:
    """FitzHugh-Nagumo (the study's constants) under rectangular pulses, RK4; (n, 2, len(t))."""
    b, beta, c, delta, gamma, e = 5.0, 0.1, 1.0, 1.0, 0.25, 0.1
    n = amplitude.size
    y = np.zeros((n, 2))
    out = np.empty((n, 2, t.size))
    out[:, :, 0] = y
    steps_per = int(round((t[1] - t[0]) / dt))

    def f(tt: float, y: np.ndarray) -> np.ndarray:
        v, w = y[:, 0], y[:, 1]
        i_app = np.where(tt <= duration, amplitude, 0.0)
        return np.stack([b * v * (v - beta) * (delta - v) - c * w + i_app, e * (v - gamma * w)], axis=1)

    tt = 0.0
    for j in range(1, t.size):
        for _ in range(steps_per):
            k1 = f(tt, y)
            k2 = f(tt + dt / 2, y + dt / 2 * k1)
            k3 = f(tt + dt / 2, y + dt / 2 * k2)
            k4 = f(tt + dt, y + dt * k3)
            y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            tt += dt
        out[:, :, j] = y
    return out


def write_tiny_fhn(
    path, n_train: int = 24, n_val: int = 8, n_test: int = 8, n_points: int = 65, seed: int = 0
):
    from ionfno.data.storage import write_arrays

    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 100.0, n_points)
    splits = {}
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        a = rng.uniform(0.1, 2.0, n)
        d = rng.uniform(1.0, 100.0, n)
        states = fhn_trajectories(a, d, t)
        i_app = np.where(t[None, :] <= d[:, None], a[:, None], 0.0)
        splits[name] = {
            "states": states,
            "i_app": i_app,
            "amplitude": a,
            "duration": d,
            "part": np.array(["general"] * n),
        }
    attrs = {
        "model": "fhn",
        "state_names": ["V", "w"],
        "state_units": ["1", "1"],
        "time_unit": "1",
        "current_unit": "1",
        "n_points": n_points,
    }
    return write_arrays(path, t, splits, attrs)


@pytest.fixture(scope="session")
def tiny_fhn(tmp_path_factory):
    """A 24/8/8-sample FHN dataset on 65 stored points (path)."""
    return write_tiny_fhn(tmp_path_factory.mktemp("data") / "fhn_tiny.h5")


# Training settings for fast trials: tiny model, 65-point grid, one thread.
FAST = [
    "data.subsample=1",
    "train.epochs=2",
    "train.batch_size=8",
    "model.lifting_channels=8",
    "model.projection_channels=8",
    "train.scheduler=step",
]
