"""A TPE sampler whose random stream is a function of the study seed and the trial number.

Optuna's ``TPESampler(seed=s)`` draws from one random stream per sampler object, so two
processes started with the same seed propose the *same* configurations. Here each trial gets a
fresh ``TPESampler(seed=f(s, trial number))``: trial ``n`` is reproducible from the seed and the
trials finished before it, and concurrent workers (which always get different trial numbers)
never draw the same random start-up configuration.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["make_sampler"]


def make_sampler(seed: int, *, n_startup_trials: int = 10, constant_liar: bool = True) -> Any:
    """The study's sampler: TPE, seeded per trial (see the module docstring).

    Parameters
    ----------
    seed : int
        Study seed.
    n_startup_trials : int
        Random trials before TPE models the results.
    constant_liar : bool
        Treat running trials as bad results so that parallel workers spread out.
    """
    import optuna

    class _PerTrialTPE(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self._inner: dict[int, optuna.samplers.TPESampler] = {}
            self._lock = threading.Lock()

        def _for(self, trial: Any) -> optuna.samplers.TPESampler:
            with self._lock:
                s = self._inner.get(trial._trial_id)
                if s is None:
                    # Mix the seed and the number so neighbouring seeds do not share streams.
                    s = optuna.samplers.TPESampler(
                        seed=(seed * 1_000_003 + trial.number) % (2**32),
                        n_startup_trials=n_startup_trials,
                        constant_liar=constant_liar,
                    )
                    self._inner[trial._trial_id] = s
                return s

        def before_trial(self, study: Any, trial: Any) -> None:
            self._for(trial).before_trial(study, trial)

        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            return self._for(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
            return self._for(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
            return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            inner = self._for(trial)
            try:
                inner.after_trial(study, trial, state, values)
            finally:
                with self._lock:
                    self._inner.pop(trial._trial_id, None)

        def reseed_rng(self) -> None:  # the stream is fixed by (seed, number) by design
            pass

    return _PerTrialTPE()
