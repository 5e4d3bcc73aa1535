"""Training: typed configs and presets, the loop with resume, checkpoints, schedules, losses.

* :mod:`~ionfno.training.config` -- ``RunConfig`` (``DataConfig``, ``ModelConfig``,
  ``TrainConfig``), shipped presets (``load_preset``), JSON configs, typed overrides.
* :mod:`~ionfno.training.loop` -- ``train(cfg, data_path, out_dir)``, ``train_one_epoch``,
  ``evaluate``; the run-folder layout.
* :mod:`~ionfno.training.checkpoint` -- the checkpoint format (``weights_only`` loadable).
* :mod:`~ionfno.training.schedulers` -- ``SCHEDULERS`` registry (step, cosine, onecycle).
* :mod:`~ionfno.training.losses` -- relative Lp losses and the study's metric.

The config names import without torch; the loop's names (``train``, ``TrainResult``, ...)
import torch on first use.
"""

from typing import Any

from .checkpoint import (
    CheckpointError as CheckpointError,
)
from .checkpoint import (
    load_checkpoint as load_checkpoint,
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
    save_config as save_config,
)
from .config import (
    valid_keys as valid_keys,
)
from .config import (
    with_changes as with_changes,
)

_LAZY = {
    "train": "loop",
    "TrainResult": "loop",
    "train_one_epoch": "loop",
    "evaluate": "loop",
    "build_model": "loop",
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
    "apply_overrides",
    "config_from_dict",
    "list_presets",
    "load_config",
    "load_preset",
    "save_config",
    "valid_keys",
    "with_changes",
    "CheckpointError",
    "load_checkpoint",
    *_LAZY,
]
