"""Training: typed configs, the loop, its parts, the run folder, and the trained model.

* :mod:`~ionfno.training.config` -- ``RunConfig`` (``DataConfig``, ``ModelConfig``,
  ``TrainConfig``), shipped presets (``load_preset``), typed changes (``with_changes``), the
  settings that do not change results (``RESULT_FREE``) and ``config_diff``.
* :mod:`~ionfno.training.loop` -- ``train(cfg, data_path, out_dir)``: a short loop over the
  parts below.
* :mod:`~ionfno.training.data` -- ``prepare``: the splits as normalised tensors.
* :mod:`~ionfno.training.steps` -- one epoch of updates and the validation pass, in one
  process (``SingleProcess``) or split over ranks (``DataParallel``, torch DDP).
* :mod:`~ionfno.training.distributed` -- the ranks: started here (``train.workers``) or by
  ``torchrun``.
* :mod:`~ionfno.training.timing` -- ``train.time_limit_s``: the timed probe and the plan.
* :mod:`~ionfno.training.logger` -- ``metrics.csv``, TensorBoard and the progress bar.
* :mod:`~ionfno.training.checkpoint` -- the checkpoint format (``weights_only`` loadable).
* :mod:`~ionfno.training.rundir` -- ``RunDir``: the run folder's layout.
* :mod:`~ionfno.training.model` -- ``build_model``, ``load_trained``, the normalisers.
* :mod:`~ionfno.training.schedulers`, :mod:`~ionfno.training.losses`.

The config and run-folder names import without torch; the others import torch on first use.
"""

from typing import Any

from .checkpoint import (
    CheckpointError as CheckpointError,
)
from .checkpoint import (
    load_checkpoint as load_checkpoint,
)
from .config import (
    RESULT_FREE as RESULT_FREE,
)
from .config import (
    DataConfig as DataConfig,
)
from .config import (
    ModelConfig as ModelConfig,
)
from .config import (
    RunConfig as RunConfig,
)
from .config import (
    TrainConfig as TrainConfig,
)
from .config import (
    apply_overrides as apply_overrides,
)
from .config import (
    config_diff as config_diff,
)
from .config import (
    config_from_dict as config_from_dict,
)
from .config import (
    list_presets as list_presets,
)
from .config import (
    load_config as load_config,
)
from .config import (
    load_preset as load_preset,
)
from .config import (
    parse_overrides as parse_overrides,
)
from .config import (
    save_config as save_config,
)
from .config import (
    valid_keys as valid_keys,
)
from .config import (
    with_changes as with_changes,
)
from .rundir import (
    RunDir as RunDir,
)

_LAZY = {
    "train": "loop",
    "TrainResult": "loop",
    "train_one_epoch": "steps",
    "evaluate": "steps",
    "build_model": "model",
    "load_trained": "model",
    "Trained": "model",
    "SCHEDULERS": "schedulers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "RESULT_FREE",
    "apply_overrides",
    "config_diff",
    "config_from_dict",
    "list_presets",
    "load_config",
    "load_preset",
    "parse_overrides",
    "save_config",
    "valid_keys",
    "with_changes",
    "CheckpointError",
    "load_checkpoint",
    "RunDir",
    *_LAZY,
]
