"""Evaluation: metrics, action-potential biomarkers, figures, reports, export.

* :mod:`~ionfno.evaluation.metrics` -- the study's normalised relative L2 (and L1, H1),
  physical RMSE and range-relative errors, per sample and variable; ``ErrorTable`` groups
  them per dataset part.
* :mod:`~ionfno.evaluation.biomarkers` -- firing, AP peak, upstroke time, APD50/APD90.
* :mod:`~ionfno.evaluation.plots` -- matplotlib figures (returned, never shown).
* :mod:`~ionfno.evaluation.report` -- one self-contained HTML page plus JSON/CSV.
* :mod:`~ionfno.evaluation.pipeline` -- ``evaluate_run(run_dir, data, out) -> Evaluation``: all
  of the above, plus surrogate-vs-solver speed and out-of-distribution stimuli.
* :mod:`~ionfno.evaluation.export` -- TorchScript and ONNX export of a whole surrogate.
* :mod:`~ionfno.evaluation.study` -- the reference study's published numbers.

Evaluation stands on the training stage and below it; the orchestrator of the whole pipeline
is :mod:`ionfno.reproduce`. Only numpy is imported here; torch and matplotlib load when a
function needs them.
"""

from .biomarkers import (
    Biomarkers as Biomarkers,
)
from .biomarkers import (
    compare_biomarkers as compare_biomarkers,
)
from .biomarkers import (
    compute_biomarkers as compute_biomarkers,
)
from .metrics import (
    ErrorTable as ErrorTable,
)
from .metrics import (
    compute_errors as compute_errors,
)
from .metrics import (
    max_abs_error as max_abs_error,
)
from .metrics import (
    normalise as normalise,
)
from .metrics import (
    relative_h1 as relative_h1,
)
from .metrics import (
    relative_lp as relative_lp,
)
from .metrics import (
    rmse as rmse,
)
from .metrics import (
    variable_range as variable_range,
)
from .pipeline import EvaluateOptions as EvaluateOptions
from .pipeline import Evaluation as Evaluation
from .pipeline import evaluate_run as evaluate_run
from .study import STUDY_RESULTS as STUDY_RESULTS

__all__ = [
    "Biomarkers",
    "compare_biomarkers",
    "compute_biomarkers",
    "ErrorTable",
    "compute_errors",
    "max_abs_error",
    "normalise",
    "relative_h1",
    "relative_lp",
    "rmse",
    "variable_range",
    "EvaluateOptions",
    "Evaluation",
    "evaluate_run",
    "STUDY_RESULTS",
]
