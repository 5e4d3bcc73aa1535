"""ionfno: Fourier Neural Operator surrogates of ionic cell models.

Pipeline: ``ionic`` models + ``stimulus`` protocols -> ``solvers`` (fast batched, SciPy
reference) -> ``data`` (HDF5 datasets) -> ``fno`` + ``training`` -> ``tuning`` ->
``evaluation``. See CONTRIBUTING.md for the map of the code.
"""

__version__ = "0.1.0"

from .ionic import (  # noqa: E402
    IonicModel as IonicModel,
    StateError as StateError,
    get_model as get_model,
    list_models as list_models,
)
from .stimulus import (  # noqa: E402
    PulseTrain as PulseTrain,
    SampledWaveform as SampledWaveform,
    Stimulus as Stimulus,
    pulse as pulse,
)
