"""Search spaces as data: one JSON file per space, sampled by :func:`suggest`.

A space file names training-config keys (the ``section.field`` keys of
:func:`ionfno.training.with_changes`) and how to sample each, plus optional rules for the
dimensions that are derived rather than sampled::

    {
      "description": "...",
      "params": {
        "train.lr":               {"type": "float", "low": 1e-4, "high": 1e-2, "log": true},
        "model.n_layers":         {"type": "int", "low": 1, "high": 5},
        "train.gamma":            {"type": "float", "low": 0.75, "high": 0.99, "step": 0.01},
        "model.n_modes":          {"type": "int", "low": 2, "high": 32, "step": 2},
        "model.activation":       {"type": "categorical", "choices": ["tanh", "relu"]}
      },
      "modes": {"rule": "spectral_budget", "spectral_budget": 524288},
      "budget": {"tolerance": 0.02, "channels_range": [8, 1024], "preferred_channels": 128}
    }

A ``step`` on a linear range samples a grid ``low, low + step, ...`` (for floats this is
hyperopt's ``quniform``, which the reference study used). ``modes`` derives ``model.n_modes``
(rules in ``MODE_RULES``); ``budget`` allows
``--budget N``: with it, the modes and the lifting/projection width are solved so that the
total parameter count is within ``tolerance`` of ``N`` (see :mod:`ionfno.tuning.budget`).
Shipped spaces live in ``ionfno/presets/spaces/``; any file of this layout loads by path.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .budget import STUDY_SPECTRAL_BUDGET, max_modes, project_feasible, spectral_modes

__all__ = [
    "PARAM_TYPES",
    "MODE_RULES",
    "SearchSpace",
    "list_spaces",
    "load_space",
    "space_from_dict",
    "suggest",
    "sample_values",
    "base_values",
]

PARAM_TYPES = ("float", "int", "categorical")


def _rule_spectral_budget(values: dict[str, Any], rule: dict[str, Any], n_points: int) -> int:
    return spectral_modes(
        int(values["model.hidden_channels"]),
        int(values["model.n_layers"]),
        n_points,
        int(rule.get("spectral_budget", STUDY_SPECTRAL_BUDGET)),
    )


# How a space may derive model.n_modes from the sampled values: name -> f(values, rule, n_points).
MODE_RULES = {"spectral_budget": _rule_spectral_budget}


@dataclass(frozen=True)
class SearchSpace:
    """A declared search space (see the module docstring for the file layout).

    Attributes
    ----------
    name : str
        File name without ``.json`` (or the path it was loaded from).
    params : dict
        Config key -> sampling spec (``type`` and ``low``/``high``/``log``/``step`` or ``choices``).
    modes : dict or None
        Rule deriving ``model.n_modes`` (``{"rule": name, ...}``), or None.
    budget : dict or None
        Settings of the total-parameter rule; None if the space does not accept ``--budget``.
    description : str
    """

    name: str
    params: dict[str, dict[str, Any]]
    modes: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("name")
        return {k: v for k, v in d.items() if v is not None}

    def choices_of(self, key: str, default: Any) -> list[Any]:
        """The values ``key`` can take: its choices, its integer range, or ``[default]``."""
        spec = self.params.get(key)
        if spec is None:
            return [default]
        if spec["type"] == "categorical":
            return list(spec["choices"])
        if spec["type"] == "int":
            return list(range(spec["low"], spec["high"] + 1, spec.get("step", 1)))
        raise ValueError(f"{key} is a float parameter; it has no finite set of values")


def _space_dir():
    return resources.files("ionfno") / "presets" / "spaces"


def list_spaces() -> list[str]:
    """Names of the shipped search spaces, sorted."""
    return sorted(p.name[: -len(".json")] for p in _space_dir().iterdir() if p.name.endswith(".json"))


def load_space(name_or_path: str | os.PathLike) -> SearchSpace:
    """Load a shipped space by name (``"constrained"``) or any space file by path.

    Raises
    ------
    ValueError
        Unknown name (the message lists the shipped spaces) or an invalid space.
    OSError
        If a given file cannot be read.
    """
    text_name = str(name_or_path)
    if text_name.endswith(".json") or os.sep in text_name:
        p = Path(name_or_path)
        try:
            text = p.read_text()
        except OSError as e:
            raise OSError(f"Cannot read search space file {text_name!r}: {e.strerror or e}") from None
        source = text_name
    else:
        names = list_spaces()
        if text_name not in names:
            raise ValueError(f"Unknown search space {text_name!r}; expected one of {names} or a .json path")
        text = (_space_dir() / f"{text_name}.json").read_text()
        source = f"space {text_name!r}"
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source} is not valid JSON: {e}") from None
    return space_from_dict(d, name=text_name, source=source)


def space_from_dict(d: dict[str, Any], *, name: str = "custom", source: str = "space") -> SearchSpace:
    """Validate a space given as a dict (the JSON layout) and build a :class:`SearchSpace`.

    Raises
    ------
    ValueError
        Unknown keys, config keys that training does not know, bad bounds or empty choices.
    """
    from ..training import valid_keys

    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a JSON object")
    unknown = sorted(set(d) - {"description", "params", "modes", "budget"})
    if unknown:
        raise ValueError(f"{source}: unknown field(s) {unknown}; expected description, params, modes, budget")
    params = d.get("params")
    if not isinstance(params, dict) or not params:
        raise ValueError(f"{source}: 'params' must be a non-empty object of config key -> spec")
    keys = set(valid_keys())
    clean: dict[str, dict[str, Any]] = {}
    for key, spec in params.items():
        if key not in keys:
            raise ValueError(f"{source}: {key!r} is not a training config key; valid keys: {sorted(keys)}")
        clean[key] = _check_spec(f"{source}: {key}", spec)
    modes = d.get("modes")
    if modes is not None:
        if not isinstance(modes, dict) or modes.get("rule") not in MODE_RULES:
            raise ValueError(f"{source}: 'modes' must be {{\"rule\": one of {sorted(MODE_RULES)}, ...}}")
        if "model.n_modes" in clean:
            raise ValueError(f"{source}: model.n_modes is both sampled and derived by 'modes'")
        for needed in ("model.hidden_channels", "model.n_layers"):
            if needed not in clean:
                raise ValueError(f"{source}: the modes rule needs {needed} in 'params'")
    budget = d.get("budget")
    if budget is not None:
        allowed = {"tolerance", "channels_range", "preferred_channels"}
        if not isinstance(budget, dict) or set(budget) - allowed:
            raise ValueError(f"{source}: 'budget' may only set {sorted(allowed)}")
        tol = budget.get("tolerance", 0.02)
        if not 0 < tol < 1:
            raise ValueError(f"{source}: budget.tolerance must be in (0, 1), got {tol}")
        for fixed in ("model.n_modes", "model.lifting_channels", "model.projection_channels"):
            if fixed in clean:
                raise ValueError(f"{source}: {fixed} is solved by the budget rule; it cannot be sampled too")
    desc = d.get("description", "")
    return SearchSpace(name=name, params=clean, modes=modes, budget=budget, description=str(desc))


def _check_spec(where: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
        raise ValueError(f"{where}: spec must have 'type' in {list(PARAM_TYPES)}, got {spec!r}")
    kind = spec["type"]
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices or set(spec) - {"type", "choices"}:
            raise ValueError(
                f"{where}: a categorical spec needs a non-empty 'choices' list (and nothing else)"
            )
        return {"type": kind, "choices": list(choices)}
    allowed = {"type", "low", "high", "log", "step"}
    if set(spec) - allowed:
        raise ValueError(
            f"{where}: unknown field(s) {sorted(set(spec) - allowed)}; expected {sorted(allowed)}"
        )
    low, high, log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
    num = (int,) if kind == "int" else (int, float)
    if (
        not isinstance(low, num)
        or not isinstance(high, num)
        or isinstance(low, bool)
        or isinstance(high, bool)
    ):
        raise ValueError(f"{where}: 'low' and 'high' must be {'integers' if kind == 'int' else 'numbers'}")
    if not low < high:
        raise ValueError(f"{where}: need low < high, got [{low}, {high}]")
    if log and low <= 0:
        raise ValueError(f"{where}: a log-scale range needs low > 0, got {low}")
    out: dict[str, Any] = {"type": kind, "low": low, "high": high, "log": log}
    if "step" in spec:
        step = spec["step"]
        if kind == "int":
            ok = isinstance(step, int) and not isinstance(step, bool) and step >= 1
        else:
            ok = isinstance(step, (int, float)) and not isinstance(step, bool) and 0 < step <= high - low
        if log or not ok:
            raise ValueError(
                f"{where}: 'step' must be a positive {'integer' if kind == 'int' else 'number'} "
                "(at most high - low), for a linear range"
            )
        out["step"] = step
    return out


def sample_values(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Ask ``trial`` for every declared parameter; the optuna parameter names are the config keys."""
    values: dict[str, Any] = {}
    for key, spec in space.params.items():
        kind = spec["type"]
        if kind == "float":
            values[key] = trial.suggest_float(
                key, spec["low"], spec["high"], step=spec.get("step"), log=spec["log"]
            )
        elif kind == "int":
            values[key] = trial.suggest_int(
                key, spec["low"], spec["high"], step=spec.get("step", 1), log=spec["log"]
            )
        else:
            values[key] = trial.suggest_categorical(key, spec["choices"])
    return values


def base_values(space: SearchSpace, base: Any) -> dict[str, Any]:
    """The base config's value of every parameter the space samples (its "default point").

    Used to make the base configuration the first trial of a study, as the reference study
    evaluated its default configuration first.

    Raises
    ------
    ValueError
        A value the space cannot propose (not among the choices, outside the range or off the
        step grid); the message names the key, the value and the space's spec.
    """
    out: dict[str, Any] = {}
    for key, spec in space.params.items():
        section, name = key.split(".", 1)
        value = getattr(getattr(base, section), name)
        if not _contains(spec, value):
            raise ValueError(
                f"The base config's {key}={value!r} is not in search space {space.name!r} ({spec}); "
                "the base configuration can be tried first only if the space contains it"
            )
        out[key] = value
    return out


def _contains(spec: dict[str, Any], value: Any) -> bool:
    if spec["type"] == "categorical":
        return value in spec["choices"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec["type"] == "int" and not isinstance(value, int):
        return False
    if not spec["low"] <= value <= spec["high"]:
        return False
    step = spec.get("step")
    if step is None:
        return True
    k = (value - spec["low"]) / step
    return abs(k - round(k)) < 1e-8 * max(1.0, abs(k))


@dataclass
class Derived:
    """What :func:`derive` adds to the sampled values, and how the model was sized."""

    values: dict[str, Any]
    n_parameters: int
    rule: str
    projected_from: dict[str, Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def derive(
    values: dict[str, Any],
    space: SearchSpace,
    base: Any,
    *,
    n_points: int,
    out_channels: int,
    budget: int | None = None,
) -> Derived:
    """Complete sampled ``values`` with the space's derived dimensions and count the parameters.

    Parameters
    ----------
    values : dict
        Sampled config key -> value.
    space : SearchSpace
    base : RunConfig
        Where unsampled settings come from.
    n_points : int
        Time points of the training grid (after subsampling); bounds the modes.
    out_channels : int
        Number of state variables the model outputs.
    budget : int, optional
        Total-parameter budget (needs a space with a ``budget`` section).
    """
    from ..training import with_changes

    m = with_changes(base, values).model
    out = dict(values)
    projected = None
    if budget is not None:
        if space.budget is None:
            raise ValueError(
                f"Search space {space.name!r} has no 'budget' section, so --budget does not apply; "
                "use a constrained space"
            )
        opts = space.budget
        widths = space.choices_of("model.hidden_channels", m.hidden_channels)
        layers = space.choices_of("model.n_layers", m.n_layers)
        h, n_l, sol = project_feasible(
            budget,
            hidden_channels=m.hidden_channels,
            n_layers=m.n_layers,
            block=m.block,
            n_points=n_points,
            widths=widths,
            layers=layers,
            out_channels=out_channels,
            tolerance=float(opts.get("tolerance", 0.02)),
            channels_range=tuple(opts.get("channels_range", (8, 1024))),
            preferred_channels=int(opts.get("preferred_channels", 128)),
        )
        if (h, n_l) != (m.hidden_channels, m.n_layers):
            projected = {"model.hidden_channels": m.hidden_channels, "model.n_layers": m.n_layers}
        out.update(
            {
                "model.hidden_channels": h,
                "model.n_layers": n_l,
                "model.n_modes": sol.n_modes,
                "model.lifting_channels": sol.lifting_channels,
                "model.projection_channels": sol.projection_channels,
            }
        )
        rule = "total_budget"
    elif space.modes is not None:
        out["model.n_modes"] = MODE_RULES[space.modes["rule"]](
            {"model.hidden_channels": m.hidden_channels, "model.n_layers": m.n_layers}, space.modes, n_points
        )
        rule = space.modes["rule"]
    else:
        rule = "sampled"
        if m.n_modes > max_modes(n_points):  # a coarse grid: keep every mode it has
            out["model.n_modes"] = max_modes(n_points)
    from .budget import count_parameters

    final = with_changes(base, out).model
    n = count_parameters(
        n_modes=final.n_modes,
        hidden_channels=final.hidden_channels,
        n_layers=final.n_layers,
        block=final.block,
        lifting_channels=final.lifting_channels,
        projection_channels=final.projection_channels,
        out_channels=out_channels,
    )
    if budget is not None and not math.isclose(n, budget, rel_tol=float(space.budget.get("tolerance", 0.02))):
        raise AssertionError(f"budget solver returned {n} parameters for a budget of {budget}")  # our bug
    return Derived(values=out, n_parameters=n, rule=rule, projected_from=projected)


def suggest(
    trial: Any,
    space: SearchSpace,
    base: Any,
    *,
    n_points: int,
    out_channels: int,
    budget: int | None = None,
) -> Any:
    """Sample one configuration: the base config with the space's values and derived dimensions.

    Records on the trial (user attributes): ``n_parameters`` (exact trainable parameter count),
    ``size_rule`` (``sampled``, ``spectral_budget`` or ``total_budget``), ``config_values`` (every
    key the tuner set) and ``projected_from`` when an infeasible (width, layers) pair was mapped
    to the nearest feasible one.

    Parameters
    ----------
    trial : optuna.trial.Trial (or FixedTrial)
    space : SearchSpace
    base : RunConfig
        Settings that are not tuned (after ``--set`` overrides).
    n_points : int
        Time points of the training grid (after subsampling).
    out_channels : int
        Number of state variables.
    budget : int, optional
        Total-parameter budget (``--budget``).

    Returns
    -------
    RunConfig
    """
    from ..training import with_changes

    d = derive(
        sample_values(trial, space), space, base, n_points=n_points, out_channels=out_channels, budget=budget
    )
    trial.set_user_attr("n_parameters", d.n_parameters)
    trial.set_user_attr("size_rule", d.rule)
    trial.set_user_attr("config_values", d.values)
    if d.projected_from is not None:
        trial.set_user_attr("projected_from", d.projected_from)
    return with_changes(base, d.values)
