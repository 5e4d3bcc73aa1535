"""Solvers: the compiled exponential integrator, its NumPy twin and a SciPy reference behind one ``simulate``.

>>> from ionfno.solvers import simulate
>>> from ionfno.stimulus import pulse
>>> traj = simulate("hh", pulse([5.0, 1.0], 2.0), t_end=100.0, n_points=5040)
>>> traj.states.shape, traj.status.tolist()
((2, 4, 5040), [0, 0])
"""

from .base import Solver as Solver
from .base import Status as Status
from .base import Trajectory as Trajectory
from .base import state_floor as state_floor
from .compiled import CompiledSolver as CompiledSolver
from .exponential import ExponentialSolver as ExponentialSolver
from .exponential import phi1 as phi1
from .integrate import SOLVERS as SOLVERS
from .integrate import get_solver as get_solver
from .integrate import simulate as simulate
from .reference import ReferenceSolver as ReferenceSolver
