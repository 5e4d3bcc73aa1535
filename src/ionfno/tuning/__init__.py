"""Automatic hyperparameter tuning of the FNO, from a laptop to many machines (optuna).

* :mod:`~ionfno.tuning.space` -- search spaces as JSON data (``presets/spaces``) and
  ``suggest(trial, space, base, ...) -> RunConfig``.
* :mod:`~ionfno.tuning.budget` -- the study's spectral-budget rule and the total-parameter
  budget solver (``--budget N``, within 2 %).
* :mod:`~ionfno.tuning.pruners` -- ``PRUNERS`` registry (asha, hyperband, median, none).
* :mod:`~ionfno.tuning.sampler` -- TPE seeded per trial number (no duplicate proposals across
  workers).
* :mod:`~ionfno.tuning.storage` -- embedded SQLite store or a database URL, heartbeat, worker
  identity for failing trials of dead processes.
* :mod:`~ionfno.tuning.tuner` -- ``tune(cfg, data, out_dir)`` and ``TuneConfig`` / tuning presets
  (``presets/tune``).
* :mod:`~ionfno.tuning.report` -- tables, best configs as training presets, the constrained vs
  unconstrained comparison.

optuna is imported only when a study runs (extra ``tune``; ``postgres`` adds the driver).
"""

from .budget import (
    STUDY_SPECTRAL_BUDGET as STUDY_SPECTRAL_BUDGET,
    BudgetSolution as BudgetSolution,
    count_parameters as count_parameters,
    project_feasible as project_feasible,
    solve_total_budget as solve_total_budget,
    spectral_modes as spectral_modes,
)
from .pruners import PRUNERS as PRUNERS, make_pruner as make_pruner
from .report import (
    compare as compare,
    epochs_to_within as epochs_to_within,
    format_report as format_report,
    load_studies as load_studies,
    study_summary as study_summary,
    write_presets as write_presets,
)
from .space import (
    MODE_RULES as MODE_RULES,
    SearchSpace as SearchSpace,
    list_spaces as list_spaces,
    load_space as load_space,
    space_from_dict as space_from_dict,
    suggest as suggest,
)
from .storage import default_storage_url as default_storage_url
from .tuner import (
    TuneConfig as TuneConfig,
    TuneSummary as TuneSummary,
    default_study_name as default_study_name,
    list_tune_presets as list_tune_presets,
    load_tune_preset as load_tune_preset,
    tune as tune,
    tune_config_from_dict as tune_config_from_dict,
)
