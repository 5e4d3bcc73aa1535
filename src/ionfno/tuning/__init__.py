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
)
from .budget import (
    BudgetSolution as BudgetSolution,
)
from .budget import (
    count_parameters as count_parameters,
)
from .budget import (
    project_feasible as project_feasible,
)
from .budget import (
    solve_total_budget as solve_total_budget,
)
from .budget import (
    spectral_modes as spectral_modes,
)
from .pruners import PRUNERS as PRUNERS
from .pruners import make_pruner as make_pruner
from .report import (
    compare as compare,
)
from .report import (
    epochs_to_within as epochs_to_within,
)
from .report import (
    format_report as format_report,
)
from .report import (
    read_trials as read_trials,
)
from .report import (
    load_studies as load_studies,
)
from .report import (
    study_summary as study_summary,
)
from .report import (
    write_presets as write_presets,
)
from .space import (
    MODE_RULES as MODE_RULES,
)
from .space import (
    SearchSpace as SearchSpace,
)
from .space import (
    base_values as base_values,
)
from .space import (
    list_spaces as list_spaces,
)
from .space import (
    load_space as load_space,
)
from .space import (
    space_from_dict as space_from_dict,
)
from .space import (
    suggest as suggest,
)
from .storage import default_storage_url as default_storage_url
from .tuner import (
    TuneConfig as TuneConfig,
)
from .tuner import (
    TuneSummary as TuneSummary,
)
from .tuner import (
    default_study_name as default_study_name,
)
from .tuner import (
    list_tune_presets as list_tune_presets,
)
from .tuner import (
    load_tune_preset as load_tune_preset,
)
from .tuner import (
    tune as tune,
)
from .tuner import (
    tune_config_from_dict as tune_config_from_dict,
)
