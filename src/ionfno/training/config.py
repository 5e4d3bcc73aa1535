"""Typed run configuration: data, model and training, as three dataclasses in one ``RunConfig``.

A run is fully described by a :class:`RunConfig`; it is saved inside every checkpoint (as
``dataclasses.asdict``) and the model is rebuilt from it. Presets are JSON files shipped in
``ionfno/presets/train/`` (``load_preset("fhn-quick")``); any file of the same layout loads
with :func:`load_config`. Command-line overrides (``--set train.lr=3e-3``) go through
:func:`apply_overrides`, which parses each value to the field's declared type and refuses
unknown keys and wrong types with a message listing the valid keys.

Preset file layout::

    {"description": "...", "data": {...}, "model": {...}, "train": {...}}

Every section and every field is optional; missing fields take the defaults below, which are
the reference study's default FHN recipe (Pellegrini et al. 2025, arXiv 2505.14039) with our
choices where the study's code gives none.
"""

from __future__ import annotations

import json
import math
import os
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from .._io import preset_names, read_preset_json

__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "load_config",
    "load_preset",
    "list_presets",
    "config_from_dict",
    "apply_overrides",
    "parse_overrides",
    "save_config",
    "valid_keys",
    "with_changes",
    "RESULT_FREE",
    "config_diff",
]

Normalization = Literal["pointwise", "channel"]
InputNormalization = Literal["same", "pointwise", "channel"]
Loading = Literal["auto", "memory", "stream"]
InputEncoding = Literal["point", "cell_average"]
Block = Literal["classic", "zongyi", "residual"]
Activation = Literal["gelu", "relu", "tanh", "leaky_relu"]
Scheduler = Literal["step", "cosine", "onecycle", "constant"]
Loss = Literal["l2", "l1", "h1"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass
class DataConfig:
    """How the stored dataset becomes training tensors."""

    # Keep every `subsample`-th stored time point (the study stored 5040 points and trained on
    # every 4th, 1260). The grid t/T given to the FNO uses the kept times.
    subsample: int = 4
    # Normaliser of the input current and of every state variable: "pointwise" = mean/std per
    # time index over the training split (the study's; ties the model to the training grid),
    # "channel" = one mean/std per variable (grid-free, allows other resolutions).
    normalization: Normalization = "pointwise"
    # The input current's own normaliser: "same" = as `normalization` (the study's). "channel"
    # for the input alone keeps the study's point-wise output statistics (and metric) but does
    # not amplify a current at times where the training currents were all zero: with the
    # point-wise input normaliser of a study-style ORd model a pulse at 300 ms enters the FNO
    # 100-170x larger than any training input (its std there is 0.35 uA/uF).
    input_normalization: InputNormalization = "same"
    # The training split in memory ("memory"), read from the file block by block every epoch
    # ("stream": data larger than memory; block-shuffled order, ionfno.training.streaming), or
    # streamed only when it would not fit in half of the available memory ("auto").
    loading: Loading = "auto"
    # The FNO's current channel: "point" = I_app sampled at the grid points (the study's),
    # "cell_average" = the mean current over each point's cell, computed exactly from the
    # stored pulse parameters, so pulses shorter than the grid spacing keep their charge
    # (ionfno.data.encoding; matters for ORd's sub-millisecond pulses on a 0.79 ms grid).
    input_encoding: InputEncoding = "point"
    # Drop samples whose solver status is not ok (they are flagged in the file, not removed).
    only_ok: bool = True
    # Use only the first n_train / n_val training / validation samples (None = all); for quick
    # experiments and CI. The normaliser is fitted on the training samples actually used.
    n_train: int | None = None
    n_val: int | None = None

    def __post_init__(self) -> None:
        _check_literals(self)
        _check_positive(self, "subsample")
        for name in ("n_train", "n_val"):
            if getattr(self, name) is not None:
                _check_positive(self, name)


@dataclass
class ModelConfig:
    """FNO1d architecture (names as in neuraloperator); channels in/out come from the data."""

    # Fourier modes kept in every spectral layer (<= n_points // 2 + 1 after padding).
    n_modes: int = 16
    # Width of the Fourier layers.
    hidden_channels: int = 64
    # Number of Fourier layers L.
    n_layers: int = 4
    # Block variant: classic act(Kx + Wx), zongyi act(MLP(Kx) + Wx), residual x + act(Kx + Wx).
    block: Block = "zongyi"
    # Point-wise nonlinearity.
    activation: Activation = "gelu"
    # Zero padding appended to the right end of the time axis [grid points].
    padding: int = 0
    # Hidden width of the lifting MLP (in_channels -> lifting_channels -> hidden_channels).
    lifting_channels: int = 128
    # Hidden width of the projection MLP (hidden_channels -> projection_channels -> n_states).
    projection_channels: int = 128
    # Whether the network sees the grid t / T beside the current (the study's second input
    # channel). False: the current alone, so with channel normalisers (data.normalization =
    # channel) and no padding the surrogate is equivariant to circular shifts in time, as the
    # cell's dynamics are to shifts (an issue 19 lever: absolute time tells it where pulses were
    # in training, not how the cell responds). Pad it (model.padding = the window's points) so
    # that it sees where the window starts: on FHN that variant had the lowest V error on every
    # held-out kind, the unpadded one was worse than the study's FNO (RESULTS.md).
    time_channel: bool = True
    # Grid intervals per step of a causal rollout (0: the study's FNO, one call for the whole
    # window). > 0: the FNO maps (state at a chunk's start, current over the chunk) to the states
    # over the chunk, and is rolled out from rest chunk by chunk (ionfno.fno.ChunkedRollout; an
    # issue 19 lever for random currents). Needs data.normalization = pointwise (its loss is the
    # study's) and data.input_normalization = channel (time invariance); n_modes <= (chunk + 1) // 2 + 1;
    # time_channel is ignored (each chunk has its own clock). On FHN it closed the random currents'
    # generalisation gap (train 23 % / test 31 % against the one-call FNO's 9 / 47 %; RESULTS.md).
    # A chunk + 1 that is a power of two keeps the FFTs fast (127 points cost 27-38 % more than
    # 128); weights carry over between chunk lengths (`ionfno train --init`).
    chunk: int = 0

    def __post_init__(self) -> None:
        _check_literals(self)
        for name in ("n_modes", "hidden_channels", "n_layers", "lifting_channels", "projection_channels"):
            _check_positive(self, name)
        if self.padding < 0:
            raise ValueError(f"model.padding must be >= 0, got {self.padding}")
        if self.chunk < 0:
            raise ValueError(f"model.chunk must be >= 0 grid intervals (0: no rollout), got {self.chunk}")


@dataclass
class TrainConfig:
    """Optimiser, schedule, stopping and bookkeeping of one training run."""

    # Number of passes over the training split.
    epochs: int = 1000
    # Samples per optimiser step.
    batch_size: int = 20
    # AdamW learning rate (peak learning rate for "onecycle").
    lr: float = 1e-3
    # AdamW decoupled weight decay.
    weight_decay: float = 1e-4
    # Learning-rate schedule, from training.schedulers.SCHEDULERS: "step" (the study's StepLR,
    # stepped every epoch), "cosine" (to lr * final_lr_ratio over the run), "onecycle" (warm-up
    # then cosine decay, sized to epochs x steps per epoch), "constant".
    scheduler: Scheduler = "step"
    # StepLR: epochs between decays, and the decay factor.
    step_size: int = 10
    gamma: float = 0.93
    # Cosine / one-cycle: final learning rate as a fraction of lr.
    final_lr_ratio: float = 1e-3
    # One-cycle: fraction of the run spent warming up.
    warmup_fraction: float = 0.1
    # Loss, from training.losses.LOSSES: relative "l2" over time per sample and variable (the
    # study's loss and metric), "l1" or "h1", always computed in normalised space.
    loss: Loss = "l2"
    # Stop after this many epochs without a validation improvement (None = never).
    patience: int | None = None
    # Clip the gradient norm to this value (None = no clipping).
    grad_clip: float | None = None
    # Seed of model initialisation and batch shuffling.
    seed: int = 0
    # torch intra-op threads on CPU (capped at the number of cores), per rank.
    threads: int = 2
    # Data-parallel ranks this process starts on this machine (torch DistributedDataParallel,
    # training.distributed): each batch is split over `workers` processes of `threads` threads
    # each (workers x threads <= cores; on CUDA one GPU per rank). Same updates as one process
    # up to float summation order; resumable with any worker count. 1 = off. Under torchrun the
    # launcher sets the ranks and this setting is ignored.
    workers: int = 1
    # Write the "last" checkpoint every this many epochs (resume restarts from it).
    checkpoint_every: int = 1
    # Validate every this many epochs (and always at the last one); the epochs between log NaN
    # validation errors and cannot become the best checkpoint. Early stopping counts epochs.
    # > 1 saves the full-grid validation pass, e.g. during a coarse-to-fine curriculum.
    val_every: int = 1
    # Samples per forward pass during evaluation (memory only; does not change results).
    eval_batch_size: int = 128
    # Coarse-to-fine curriculum: the first `coarse_epochs` epochs train on every
    # `coarse_factor`-th point of the training grid (a step costs about 1/coarse_factor), the
    # rest on the full grid. The FNO's weights do not depend on the grid (spectral weights act on
    # modes, the rest point-wise), so they carry over; the normalised targets are the full grid's,
    # subsampled, so the point-wise normaliser stays exact. Validation, checkpoint selection and
    # test always use the full grid. 0 = off.
    coarse_epochs: int = 0
    coarse_factor: int = 2
    # Teacher forcing (model.chunk > 0 only): the first `teacher_forcing_epochs` epochs train the
    # chunk map with every chunk started from the true state (all chunks of a window in one
    # batched call, the chunk grid shifted by a random offset per batch), the rest end to end
    # through the rollout. Validation always rolls out. The gain is in what an epoch teaches, not
    # its cost: a teacher-forced epoch took 1.1x an end-to-end one on FHN, 0.8x on HH (RESULTS.md,
    # "teacher forcing the rollout"). 0 = off.
    teacher_forcing_epochs: int = 0
    # Wall-clock budget of the epoch loop [s] (None = no budget). Before the first epoch a few
    # real steps (and a validation batch) are timed, and the run is planned to the number of
    # epochs that fits 90 % of the budget, at most `epochs` (`coarse_epochs` or
    # `teacher_forcing_epochs` scaled in proportion); every per-step schedule is sized to that
    # plan (re-sized when `replan_after` re-plans it), which the checkpoint keeps, so a resumed
    # run follows the same plan. If the machine slows down, the run stops after the epoch that
    # would otherwise end past the budget. Data loading and the final test pass come on top. The
    # plan depends on the machine: to repeat a run exactly, set `epochs` to the planned count (in
    # metrics.csv and last.pt; a run that was re-planned on the way cannot be repeated this way)
    # and leave this unset.
    time_limit_s: float | None = None
    # Re-plan a budgeted run from its own epochs: once this many full (not coarse, not
    # teacher-forced) epochs have run, and after every later one, the epochs that fit the rest
    # of the budget are counted from their mean wall time (validation and checkpoints included);
    # when that moves the end of the plan by at least 5 % (one epoch at least; shorter only when
    # the plan no longer fits the budget), the plan and its per-step schedule are re-sized from
    # the step reached (training.timing.replan_epochs). The
    # probe misjudged real epochs by 25 % on a 2-core FHN rollout (137.7 s against a mean of
    # 172 s), leaving the one-cycle decay unfinished when the budget ran out. 0 = keep the
    # probe's plan.
    replan_after: int = 2
    # Draw the samples of a mixture part this many times as often as the others (a dataset's
    # `part` labels; parts not named keep weight 1; 0 leaves a part out of training). An epoch
    # is still one draw per training sample, with replacement, from the seeded shuffling
    # generator (resumable). On the command line `--set train.part_weights=t0=3,general=2`;
    # empty: every sample once per epoch, as the study. In-memory training splits only.
    part_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_literals(self)
        for part, w in self.part_weights.items():
            if not (w >= 0 and math.isfinite(w)):
                raise ValueError(f"train.part_weights[{part!r}] must be a finite number >= 0, got {w}")
        for name in (
            "epochs", "batch_size", "step_size", "threads", "workers", "checkpoint_every", "val_every", "eval_batch_size",
            "coarse_factor",
        ):
            _check_positive(self, name)
        for name in ("coarse_epochs", "teacher_forcing_epochs"):
            if not 0 <= getattr(self, name) <= self.epochs:
                raise ValueError(
                    f"train.{name} must be in [0, train.epochs={self.epochs}], got {getattr(self, name)}"
                )
        for name in ("lr", "gamma", "final_lr_ratio"):
            if not (getattr(self, name) > 0):
                raise ValueError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.warmup_fraction < 1:
            raise ValueError(f"train.warmup_fraction must be in (0, 1), got {self.warmup_fraction}")
        if self.patience is not None:
            _check_positive(self, "patience")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"train.grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.time_limit_s is not None and not (self.time_limit_s > 0 and math.isfinite(self.time_limit_s)):
            raise ValueError(
                f"train.time_limit_s must be a positive number of seconds or None, got {self.time_limit_s}"
            )
        if self.replan_after < 0:
            raise ValueError(
                f"train.replan_after must be >= 0 (0 = keep the probe's plan), got {self.replan_after}"
            )


@dataclass
class RunConfig:
    """One training run: data, model and training settings plus a free-text description."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Free text: where the settings come from (paper, our choice, tuning study).
    description: str = ""

    def __post_init__(self) -> None:
        m, d = self.model, self.data
        if self.train.teacher_forcing_epochs > 0 and m.chunk == 0:
            raise ValueError("train.teacher_forcing_epochs > 0 needs a chunked rollout (model.chunk > 0): "
                             "only a chunk map can start from the true state")
        if m.chunk > 0:
            if d.normalization != "pointwise":
                raise ValueError(f"model.chunk > 0 needs data.normalization = 'pointwise' (its loss is the "
                                 f"study's, in point-wise space), got {d.normalization!r}")
            if d.input_normalization != "channel":
                raise ValueError("model.chunk > 0 needs data.input_normalization = 'channel' (one scale "
                                 f"for the current at every time), got {d.input_normalization!r}")
            if self.train.coarse_epochs > 0:
                raise ValueError("model.chunk > 0 cannot train on a coarse grid (train.coarse_epochs must "
                                 "be 0): its chunk length is a number of grid intervals")
            if m.padding > 0:
                raise ValueError("model.chunk > 0 steps through the window itself; model.padding must be 0")
            if m.n_modes > (m.chunk + 1) // 2 + 1:
                raise ValueError(f"model.n_modes = {m.n_modes} exceeds the {(m.chunk + 1) // 2 + 1} modes a "
                                 f"chunk of {m.chunk} intervals ({m.chunk + 1} points) has")


_SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
_SECTION_PREFIX = {DataConfig: "data", ModelConfig: "model", TrainConfig: "train"}


# ---------------------------------------------------------------------------- validation helpers
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_literals(obj: Any) -> None:
    prefix = _SECTION_PREFIX.get(type(obj), type(obj).__name__)
    for f in fields(obj):
        tp = _hints(type(obj))[f.name]
        value = getattr(obj, f.name)
        _check_type(f"{prefix}.{f.name}", tp, value)


def _check_type(key: str, tp: Any, value: Any) -> None:
    """Raise ValueError if ``value`` does not fit ``tp`` (Literal, int, float, bool, str, Optional,
    ``dict[str, float]``)."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                _check_type(key, a, value)
                return
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ValueError(f"{key} = {value!r} is not a valid choice; expected one of {list(choices)}")
        return
    if origin is dict:  # dict[str, float]: part name -> weight
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping of names to numbers, got {value!r}")
        for k, v in value.items():
            if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(f"{key} must map names to numbers, got {k!r}: {v!r}")
        return
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r}")


def _check_positive(obj: Any, name: str) -> None:
    v = getattr(obj, name)
    if not v > 0:
        raise ValueError(f"{_SECTION_PREFIX[type(obj)]}.{name} must be > 0, got {v}")


# ---------------------------------------------------------------------------- dict <-> config
def valid_keys() -> list[str]:
    """Every settable key, as ``section.field`` (``description`` has no section)."""
    keys = [f"{s}.{f.name}" for s, cls in _SECTIONS.items() for f in fields(cls)]
    return keys + ["description"]


def config_from_dict(d: dict[str, Any], *, source: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from a nested dict, refusing unknown sections and keys.

    Integers are accepted where a float is declared (JSON writes ``1`` for ``1.0``).

    Raises
    ------
    ValueError
        Unknown section or key (the message lists the valid ones), or a wrong type/choice.
    """
    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a JSON object with sections {sorted(_SECTIONS)}")
    unknown = sorted(set(d) - set(_SECTIONS) - {"description"})
    if unknown:
        raise ValueError(
            f"{source}: unknown section(s) {unknown}; expected some of {sorted(_SECTIONS) + ['description']}"
        )
    parts: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        sec = d.get(name, {})
        if not isinstance(sec, dict):
            raise ValueError(f"{source}: section {name!r} must be an object, got {type(sec).__name__}")
        names = {f.name for f in fields(cls)}
        bad = sorted(set(sec) - names)
        if bad:
            raise ValueError(
                f"{source}: unknown key(s) {[f'{name}.{k}' for k in bad]}; "
                f"valid keys in {name!r}: {sorted(names)}"
            )
        hints = _hints(cls)
        values = {k: _coerce_json(hints[k], v) for k, v in sec.items()}
        try:
            parts[name] = cls(**values)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None
    desc = d.get("description", "")
    if not isinstance(desc, str):
        raise ValueError(f"{source}: description must be a string")
    return RunConfig(description=desc, **parts)


def _coerce_json(tp: Any, v: Any) -> Any:
    # JSON has one number type: accept 3 for a float field, never 3.0 for an int field.
    accepts_float = tp is float or (
        get_origin(tp) in (typing.Union, types.UnionType) and float in get_args(tp)
    )
    if accepts_float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if get_origin(tp) is dict and isinstance(v, dict):
        return {k: _coerce_json(get_args(tp)[1], x) for k, x in v.items()}
    return v


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a run configuration from a JSON file (layout in the module docstring).

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not valid JSON or does not describe a valid configuration.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise OSError(f"Cannot read config file {str(p)!r}: {e.strerror or e}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"Config file {str(p)!r} is not valid JSON: {e}") from None
    return config_from_dict(d, source=str(p))


def list_presets() -> list[str]:
    """Names of the shipped training presets (file names without ``.json``), sorted."""
    return preset_names("train")


def load_preset(name: str) -> RunConfig:
    """Load a shipped preset by name, e.g. ``"fhn-quick"``, ``"tiny"``, ``"hh-constrained"``.

    Raises
    ------
    ValueError
        If no preset has that name; the message lists the presets.
    """
    names = list_presets()
    if name not in names:  # by name only: files go through load_config
        raise ValueError(f"Unknown preset {name!r}; expected one of {names}")
    d = read_preset_json(name, "train", "preset")
    return config_from_dict(d, source=f"preset {name!r}")


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write ``cfg`` as a JSON file that :func:`load_config` reads back, atomically."""
    from .._io import write_json_atomic

    write_json_atomic(path, asdict(cfg))


# ---------------------------------------------------------------------------- overrides
def _resolve_key(key: str) -> tuple[str | None, str]:
    if key == "description":
        return None, key
    if "." in key:
        section, name = key.split(".", 1)
        if section in _SECTIONS and name in {f.name for f in fields(_SECTIONS[section])}:
            return section, name
        raise ValueError(f"Unknown config key {key!r}; valid keys: {valid_keys()}")
    owners = [s for s, cls in _SECTIONS.items() if key in {f.name for f in fields(cls)}]
    if len(owners) == 1:
        return owners[0], key
    if len(owners) > 1:  # no field name is shared today; keep the guard for the future
        raise ValueError(f"Config key {key!r} is ambiguous; write one of {[f'{s}.{key}' for s in owners]}")
    raise ValueError(f"Unknown config key {key!r}; valid keys: {valid_keys()}")


def _parse_value(key: str, tp: Any, text: str) -> Any:
    """Parse command-line text to the declared type ``tp`` of ``key``."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if type(None) in get_args(tp) and text.strip().lower() in ("none", "null"):
            return None
        last: Exception | None = None
        for a in args:
            try:
                return _parse_value(key, a, text)
            except ValueError as e:
                last = e
        raise ValueError(f"{last} (or none)")
    if origin is Literal:
        choices = get_args(tp)
        if text not in choices:
            raise ValueError(f"{key} = {text!r} is not a valid choice; expected one of {list(choices)}")
        return text
    if origin is dict:  # "name=value,name=value" ("" or "none": empty)
        text = text.strip()
        if text.lower() in ("", "none", "{}"):
            return {}
        out = {}
        for item in text.split(","):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ValueError(f"{key} must look like name=number,name=number; got {text!r}")
            out[name] = _parse_value(f"{key}[{name!r}]", get_args(tp)[1], value)
        return out
    if tp is bool:
        t = text.strip().lower()
        if t in ("true", "1", "yes", "on"):
            return True
        if t in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{key} must be true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key} must be an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key} must be a number, got {text!r}") from None
    if tp is str:
        return text
    raise ValueError(f"{key}: cannot parse a value of type {tp}")  # pragma: no cover


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Text ``key=value`` items (``--set``, preset files) as typed changes for :func:`with_changes`.

    Keys are ``section.field`` (``train.lr=3e-3``) or a bare field name when it is unique
    (``epochs=3``); the result is keyed ``section.field``. Values are parsed to the field's
    declared type; ``none`` sets an optional field to None. A key given twice keeps its last value.

    Raises
    ------
    ValueError
        A malformed item, an unknown key (the message lists the valid keys), a value of the
        wrong type, or a choice not among the allowed ones.
    """
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"Override {item!r} must look like key=value; valid keys: {valid_keys()}")
        key, text = item.split("=", 1)
        section, name = _resolve_key(key.strip())
        if section is None:
            changes[name] = text
        else:
            key = f"{section}.{name}"
            changes[key] = _parse_value(key, _hints(_SECTIONS[section])[name], text)
    return changes


def apply_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """Return a copy of ``cfg`` with text ``key=value`` overrides applied, typed and validated:
    ``with_changes(cfg, parse_overrides(overrides))``.

    Raises
    ------
    ValueError
        As :func:`parse_overrides` and :func:`with_changes`.
    """
    return _changed(cfg, parse_overrides(overrides).items(), "overrides")


def with_changes(cfg: RunConfig, changes: Mapping[str, Any] | None = None, /, **sections: Any) -> RunConfig:
    """Copy of ``cfg`` with typed values replaced, validated like a config file.

    ``changes`` maps ``section.field`` keys (or ``description``) to values,
    ``with_changes(cfg, {"model.n_modes": 8, "train.lr": 3e-3})``; keyword arguments replace
    fields per section, ``with_changes(cfg, train={"epochs": 3}, description="...")``. Values keep their type
    (no text parsing); numpy scalars become Python numbers.

    Raises
    ------
    ValueError
        An unknown section or key, or a value of the wrong type or out of range.
    """
    items = list((changes or {}).items())
    for sec, values in sections.items():
        if sec == "description":
            items.append((sec, values))
            continue
        if sec not in _SECTIONS:
            raise ValueError(f"Unknown section {sec!r}; expected one of {sorted(_SECTIONS)}")
        items += [(f"{sec}.{k}", v) for k, v in values.items()]
    return _changed(cfg, items, "with_changes")


def _changed(cfg: RunConfig, items: Any, source: str) -> RunConfig:
    d = asdict(cfg)
    for key, value in items:
        value = value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value  # numpy scalars
        section, name = _resolve_key(key)
        if section is None:
            d[name] = value
        else:
            d[section][name] = value
    return config_from_dict(d, source=source)


# ---------------------------------------------------------------------------- comparing configs
#: Settings that never change the numbers a run produces, only its speed, memory use or
#: bookkeeping: a run resumes with other values, a tuning study accepts them, a retried trial
#: adopts a checkpoint written with them. Everything else makes a different run.
RESULT_FREE: frozenset[str] = frozenset(
    {"train.threads", "train.workers", "train.eval_batch_size", "train.checkpoint_every", "description"}
)


def config_diff(
    a: RunConfig | Mapping[str, Any],
    b: RunConfig | Mapping[str, Any],
    *,
    ignore: Collection[str] = RESULT_FREE,
) -> list[str]:
    """The settings in which two configs differ, as ``"section.field: a -> b"`` lines, sorted.

    Either side may be a :class:`RunConfig` or its dict form (a checkpoint's or a study's copy);
    a dict is read through :func:`config_from_dict` when it can be, so that settings added
    since it was written count with their defaults. Keys in ``ignore`` (default
    :data:`RESULT_FREE`) are skipped.
    """
    da, db = _as_dict(a), _as_dict(b)
    out = []
    for sec in sorted(set(da) | set(db)):
        sa, sb = da.get(sec), db.get(sec)
        if isinstance(sa, Mapping) and isinstance(sb, Mapping):
            pairs = [(f"{sec}.{k}", sa.get(k), sb.get(k)) for k in sorted(set(sa) | set(sb))]
        else:
            pairs = [(sec, sa, sb)]
        out += [f"{key}: {va!r} -> {vb!r}" for key, va, vb in pairs if key not in ignore and va != vb]
    return out


def _as_dict(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(cfg, RunConfig):
        return asdict(cfg)
    try:
        return asdict(config_from_dict(dict(cfg)))
    except ValueError:  # written by another version: compare as it is
        return json.loads(json.dumps(cfg))
