"""The ionic-model interface: named data plus a pure, batched vector field.

Every model is a stiff ODE system

.. math::

    C_m \\frac{dV}{dt} = -I_{ion}(V, \\text{gates}, \\text{concentrations}) + I_{app}(t),

written as ``rhs(t, y, params, i_app) -> dydt`` with ``y`` of shape ``(batch, n_states)``
(float64) and ``i_app`` of shape ``(batch,)`` in the model's current unit (µA/µF for
ORd, µA/cm² with C_m = 1 µF/cm² for HH, dimensionless for FHN). Positive ``i_app``
depolarises in every model.

Gating variables obey ``dx/dt = a(y) x + b(y)`` with ``a = -1/tau_x`` and ``b =
x_inf/tau_x``; ``rhs_linear`` returns that diagonal coefficient ``a`` next to ``dydt`` so
that exponential (Rush–Larsen) integrators can treat the stiff gates exactly for frozen
coefficients (zero for the states that are not gates).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = ["IonicModel", "StateError"]


class StateError(ValueError):
    """A state vector or a state file does not match a model's states."""


class IonicModel(ABC):
    """Abstract ionic model: ordered states with units, cited defaults, a pure vector field.

    Subclasses set the class attributes below and implement :meth:`rhs_linear`; the class
    carries no mutable state, so one instance can be shared by threads and processes.

    Attributes
    ----------
    name : str
        Registry name (``"fhn"``, ``"hh"``, ``"ord"``, ...).
    description : str
        One line for ``ionfno models``.
    state_names : tuple of str
        Ordered state names; column ``i`` of ``y`` is ``state_names[i]``.
    state_units : tuple of str
        Unit of each state (``"mV"``, ``"mM"``, ``"1"`` for gates, ``""`` if dimensionless).
    state_aliases : dict of str to str
        Alternative name -> canonical state name (e.g. ORd's MATLAB names).
    gate_names : tuple of str
        States with the linear form ``dx/dt = a x + b`` (Rush–Larsen candidates).
    time_unit, current_unit : str
        Units of ``t`` and ``i_app``.
    t_end_default : float
        Default simulation window [time_unit]: the reference study's (Pellegrini et al. 2025,
        arXiv:2505.14039; ORd's as in the authors' latest code, MaxGhi8/HyperNOs).
    n_points_default : int
        Default number of output points on ``linspace(0, t_end, n)``.
    Params : type
        Frozen dataclass of parameters with defaults from the source paper.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    state_names: ClassVar[tuple[str, ...]]
    state_units: ClassVar[tuple[str, ...]]
    state_aliases: ClassVar[dict[str, str]] = {}
    gate_names: ClassVar[tuple[str, ...]] = ()
    time_unit: ClassVar[str] = "ms"
    current_unit: ClassVar[str] = "µA/µF"
    t_end_default: ClassVar[float]
    n_points_default: ClassVar[int]
    Params: ClassVar[type]
    version: ClassVar[str] = "1"

    # ------------------------------------------------------------------ named data
    @property
    def n_states(self) -> int:
        return len(self.state_names)

    @property
    def gate_mask(self) -> np.ndarray:
        """Boolean mask of shape ``(n_states,)``, True for gating variables."""
        gates = set(self.gate_names)
        return np.array([s in gates for s in self.state_names], dtype=bool)

    def state_index(self, name: str) -> int:
        """Index of a state by its name or alias.

        Raises
        ------
        StateError
            If the name is neither a state nor an alias; the message lists the states.
        """
        lookup = self._lookup()
        try:
            return lookup[name]
        except KeyError:
            raise StateError(
                f"Unknown state {name!r} for model {self.name!r}; "
                f"expected one of {list(self.state_names)}"
                + (f" or an alias {sorted(self.state_aliases)}" if self.state_aliases else "")
            ) from None

    def _lookup(self) -> dict[str, int]:
        idx = {s: i for i, s in enumerate(self.state_names)}
        for alias, canon in self.state_aliases.items():
            idx.setdefault(alias, idx[canon])
        return idx

    def unit(self, name: str) -> str:
        """Unit of a state given by name or alias."""
        return self.state_units[self.state_index(name)]

    def default_params(self, **overrides: Any) -> Any:
        """The paper's parameters, with keyword overrides (unknown names raise)."""
        fields = {f.name for f in dataclasses.fields(self.Params)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for model {self.name!r}; "
                f"expected some of {sorted(fields)}"
            )
        return self.Params(**overrides)

    @abstractmethod
    def default_state(self) -> np.ndarray:
        """The published initial state, shape ``(n_states,)``, float64."""

    def initial_state(self, values: Mapping[str, float] | None = None) -> np.ndarray:
        """Default state with some states replaced by name or alias.

        Parameters
        ----------
        values : mapping of str to float, optional
            State name (or alias) -> value in the state's unit.
        """
        y0 = self.default_state().copy()
        for k, v in (values or {}).items():
            y0[self.state_index(k)] = float(v)
        return y0

    def state_from_names(self, names: Sequence[str], values: np.ndarray) -> np.ndarray:
        """Build a full state vector from a complete set of named values.

        Every state must be given exactly once (by canonical name or alias).

        Raises
        ------
        StateError
            Listing every unknown, duplicated and missing state at once.
        """
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        names = [str(n) for n in names]
        if len(names) != values.shape[0]:
            raise StateError(
                f"{len(names)} state names but {values.shape[0]} values for model {self.name!r}"
            )
        lookup = self._lookup()
        problems = []
        unknown = [n for n in names if n not in lookup]
        if unknown:
            problems.append(f"unknown state(s) {unknown}")
        seen: dict[int, str] = {}
        dup = []
        for n in names:
            if n in lookup:
                i = lookup[n]
                if i in seen:
                    dup.append(f"{n} (= {seen[i]})")
                seen[i] = n
        if dup:
            problems.append(f"duplicated state(s) {dup}")
        missing = [s for i, s in enumerate(self.state_names) if i not in seen]
        if missing:
            problems.append(f"missing state(s) {missing}")
        if problems:
            raise StateError(
                f"State file does not match model {self.name!r}: " + "; ".join(problems)
                + f". Expected states: {list(self.state_names)}"
            )
        y0 = np.empty(self.n_states)
        for n, v in zip(names, values):
            y0[lookup[n]] = v
        if not np.all(np.isfinite(y0)):
            raise StateError(f"State file for model {self.name!r} has non-finite values")
        return y0

    # ------------------------------------------------------------------ vector field
    @abstractmethod
    def rhs_linear(
        self, t: np.ndarray | float, y: np.ndarray, params: Any, i_app: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vector field and the diagonal linear coefficient of each gate.

        Parameters
        ----------
        t : float or ndarray, shape (batch,)
            Time [time_unit]. The models here are autonomous apart from ``i_app``.
        y : ndarray, shape (batch, n_states), float64
            States in model units.
        params : Params
            Model parameters.
        i_app : float or ndarray, shape (batch,)
            Applied current [current_unit]; positive depolarises.

        Returns
        -------
        dydt : ndarray, shape (batch, n_states)
            Time derivative [unit / time_unit].
        a : ndarray, shape (batch, n_states)
            ``d(dydt_i)/dy_i`` for gates (``-1/tau``), 0 for other states.
        """

    def kernel(self, params: Any, tables: bool = False) -> tuple[Any, np.ndarray]:
        """The compiled one-cell vector field and the parameters packed for it.

        The scalar twin of :meth:`rhs_linear` for the compiled solver (``fast``), written
        once per model in :mod:`ionfno.ionic.kernels` and compiled with numba (imported here,
        lazily, on first use).

        Parameters
        ----------
        params : Params
            Model parameters.
        tables : bool
            Pack lookup tables of the voltage-dependent terms where the model has them (ORd:
            :data:`ionfno.ionic.kernels.ord.TABLE_DV`), so ``rhs`` interpolates them instead of
            evaluating exponentials; models without tables ignore it.

        Returns
        -------
        rhs : numba function of type :data:`ionfno.ionic.kernels.RHS_TYPE`
            ``rhs(t, y, p, i_app, f, a)`` for one cell: writes ``dydt`` into ``f`` and the
            gates' diagonal coefficient into ``a`` (arrays of shape ``(n_states,)``).
        p : ndarray, shape (m,), float64
            ``params`` packed in the order ``rhs`` reads them.

        Raises
        ------
        NotImplementedError
            The model has no compiled kernel (integrate it with ``method="fast_numpy"``).
        """
        raise NotImplementedError(
            f"Model {self.name!r} has no compiled kernel (IonicModel.kernel); "
            f"use method='fast_numpy' or 'reference'"
        )

    def rhs(
        self, t: np.ndarray | float, y: np.ndarray, params: Any, i_app: np.ndarray | float
    ) -> np.ndarray:
        """Pure vector field ``dy/dt``, shape ``(batch, n_states)``; see :meth:`rhs_linear`."""
        return self.rhs_linear(t, y, params, i_app)[0]

    def currents(self, y: np.ndarray, params: Any) -> dict[str, np.ndarray]:
        """Named intermediate currents (monitors) for plots, shape ``(batch,)`` each."""
        return {}

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary: states, units, aliases, defaults."""
        inv: dict[str, list[str]] = {}
        for a, c in self.state_aliases.items():
            if a != c:
                inv.setdefault(c, []).append(a)
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "time_unit": self.time_unit,
            "current_unit": self.current_unit,
            "t_end_default": self.t_end_default,
            "n_points_default": self.n_points_default,
            "states": [
                {
                    "name": s,
                    "unit": u,
                    "aliases": inv.get(s, []),
                    "gate": s in self.gate_names,
                    "initial": float(v),
                }
                for s, u, v in zip(self.state_names, self.state_units, self.default_state())
            ],
            "params": dataclasses.asdict(self.default_params()),
        }
