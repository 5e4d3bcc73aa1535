"""``ionfno models`` and ``ionfno simulate``: list the models, run one cell, pace it.

The ``simulate`` output (.npz) is a stable format other tools read:

* ``t`` (N,) float64, the grid ``linspace(0, T, N)`` [time unit]
* ``states`` (N, n_states) float64 in model units
* ``state_names`` (n_states,) str, model order; ``state_units`` (n_states,) str
* ``i_app`` (N,) float64, the sampled applied current (study convention)
* ``model`` str, ``status`` int (0 = ok), ``y0`` (n_states,) the initial state used

Pacing (``--period P --beats N --save-every-beat beats.csv``) runs the beats one window
``[0, P]`` at a time (:func:`ionfno.pacing.pace`), writes one CSV row per beat (``beat``, the
solver ``status``, ``fires``, ``v_rest``, ``v_peak``, ``amplitude``, ``t_upstroke`` from the
beat's start, ``dvdt_max``, ``apd50``, ``apd90`` [mV, ms], ``steps``, and ``end_<state>`` for
every state at the beat's end), and writes the last beat to ``--out`` in the layout above:
its last row is the final state, so ``--initial-state OUT`` continues the pacing.

Neither command imports torch (tests/test_cli_simulate.py checks it), so both start fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from .._text import quantity, unit_label
from ..ionic import IonicModel, get_model, list_models

__all__ = ["register", "load_initial_state", "write_trajectory_npz"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the ionic models with their states and units")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "simulate",
        help="simulate one cell under a pulse or pulse train",
        description="Simulate one cell of MODEL under a rectangular pulse (or pulse train) and "
        "write t, states, state_names and i_app to an .npz file.",
    )
    p.add_argument("model", help=f"one of {list_models()}")
    p.add_argument("--amplitude", type=float, required=True,
                   help="pulse amplitude A (model current unit; >= 0)")
    p.add_argument("--duration", type=float, required=True, help="pulse duration T_stim [ms] (>= 0)")
    p.add_argument("--onset", type=float, default=0.0, help="start of the first pulse [ms] (default 0)")
    p.add_argument("--period", type=float, default=None, help="pulse period [ms] for trains")
    p.add_argument("--beats", type=int, default=1,
                   help="number of pulses (default 1); without --t-end the window covers them all")
    p.add_argument("--t-end", type=float, default=None, help="end time T [ms] (default: the model's)")
    p.add_argument("--n-points", type=int, default=None, help="output points N (default: the model's)")
    p.add_argument("--solver", default="fast",
                   help="fast (default: compiled RL2, Dormand-Prince for HH), fast_exact (no lookup "
                        "tables), rl2, dopri5 or reference (SciPy BDF)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (solver default)")
    p.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance (default: rtol x each unit's floor, per state)")
    p.add_argument(
        "--initial-state",
        type=Path,
        default=None,
        help="start from a state: .npz with state_names and y0, or an earlier `simulate` output (last row)",
    )
    p.add_argument(
        "--save-every-beat",
        type=Path,
        default=None,
        metavar="BEATS.csv",
        help="pace beat by beat (needs --period): one CSV row of biomarkers and end state per beat; "
        "--out then holds the last beat, whose last row is the final state (for --initial-state)",
    )
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar over the beats (default: on when pacing on a terminal)")
    p.add_argument("--out", type=Path, required=True, help="output .npz file")
    p.set_defaults(func=cmd_simulate)


def cmd_models(args: argparse.Namespace) -> int:
    from ..pretrained import pretrained_by_model

    pretrained = pretrained_by_model()
    described = [get_model(name).describe() | {"name": name, "pretrained": pretrained.get(name, [])}
                 for name in list_models()]
    if args.json:
        json.dump(described, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for d in described:
        print(f"{d['name']}: {d['description']}  (t {_in(d['time_unit'])}, I_app {_in(d['current_unit'])}; "
              f"default T = {quantity(d['t_end_default'], d['time_unit'])}, N = {d['n_points_default']})")
        for s in d["states"]:
            alias = f"  alias: {', '.join(s['aliases'])}" if s["aliases"] else ""
            print(f"    {s['name']:<16} [{s['unit']}]{alias}")
        if d["pretrained"]:
            print(f"    pretrained surrogates: {', '.join(d['pretrained'])} (`ionfno pretrained show NAME`)")
    return 0


def _in(unit: str) -> str:
    return "dimensionless" if unit_label(unit) == "dimensionless" else f"in {unit}"


def load_initial_state(model: IonicModel, path: Path) -> np.ndarray:
    """Read a starting state for ``model`` from an .npz file.

    Accepted layouts: an ``ionfno simulate`` output (``state_names`` with ``states`` (N, n)),
    whose last row is used; or ``state_names`` (n,) with ``y0`` (n,). Names may be aliases.

    Raises
    ------
    ValueError
        Unreadable file, missing arrays, or unknown/missing/duplicated states (all listed).
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot read initial-state file {str(path)!r}: {e}") from None
    if "state_names" not in data:
        raise ValueError(f"Initial-state file {str(path)!r} has no 'state_names' array (has {sorted(data)})")
    # A simulate output carries both its starting point (y0) and its trajectory: continue
    # from where it ended, its last row.
    if "states" in data:
        values = np.asarray(data["states"])[-1]
    elif "y0" in data:
        values = data["y0"]
    else:
        raise ValueError(f"Initial-state file {str(path)!r} needs 'y0' or 'states' (has {sorted(data)})")
    return model.state_from_names(list(data["state_names"]), values)


def write_trajectory_npz(path: Path, *, model: IonicModel, t, states, i_app, status: int, y0) -> None:
    """Write one trajectory in the ``ionfno simulate`` layout, atomically."""
    from .._io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            t=np.asarray(t, dtype=np.float64),
            states=np.asarray(states, dtype=np.float64),
            state_names=np.array(model.state_names),
            state_units=np.array(model.state_units),
            i_app=np.asarray(i_app, dtype=np.float64),
            model=np.array(model.name),
            status=np.array(int(status)),
            y0=np.asarray(y0, dtype=np.float64),
        )


def _check_grid(t_end: float, n_points: int) -> None:
    if not (math.isfinite(t_end) and t_end > 0):
        raise ValueError(f"--t-end must be a finite number > 0, got {t_end}")
    if n_points < 2:
        raise ValueError(f"--n-points must be >= 2, got {n_points}")


def check_simulate_size(model: IonicModel, *, n_points: int, n_beats: int, pacing: bool, out: Path,
                        beats_csv: Path | None = None) -> None:
    """Refuse, before allocating, a run whose arrays would not fit in memory or whose files on disk.

    Estimates: one window holds the trajectory (float64, ``n_states + 8`` rows of ``N`` with
    the sampled current and its temporaries) and about 16 float64 per pulse for the stimulus
    edges; pacing keeps per beat its biomarkers and end state, and writes a CSV row of about
    20 characters per value.

    Raises
    ------
    MemoryError, OSError
        With the estimate, what is available, and how to make it smaller.
    """
    from .._io import check_free_space, check_memory

    S = model.n_states
    if pacing:
        check_memory(8.0 * (n_points * (S + 8) + n_beats * (S + 16)),
                     f"pacing {n_beats} beats of {n_points} points", hint="use fewer --beats")
        check_free_space(beats_csv, 20.0 * n_beats * (S + 11),
                         f"the {n_beats}-row beat table {str(beats_csv)!r}", hint="use fewer --beats")
    else:
        check_memory(8.0 * (n_points * (S + 8) + 16 * n_beats),
                     f"a window of {n_points} points and {n_beats} pulse(s)",
                     hint="use fewer --n-points or --beats")
    check_free_space(out, 8.0 * n_points * (S + 2), f"the {n_points}-point trajectory {str(out)!r}",
                     hint="use fewer --n-points")


def cmd_simulate(args: argparse.Namespace) -> int:
    model = get_model(args.model)  # an unknown name fails before the heavier imports

    from .._io import check_writable
    from ..solvers import SOLVERS, simulate
    from ..stimulus import pulse

    if args.solver not in SOLVERS:
        raise ValueError(f"Unknown solver {args.solver!r}; expected one of {sorted(SOLVERS)}")
    if args.save_every_beat is not None:
        if args.period is None:
            raise ValueError("--save-every-beat needs --period (each beat is one window of --period ms)")
        if args.t_end is not None:
            raise ValueError("--t-end does not apply with --save-every-beat: each beat lasts --period ms")
    t_end = model.t_end_default if args.t_end is None else args.t_end
    if args.t_end is None and args.beats > 1 and args.period is not None:
        t_end = args.onset + args.beats * args.period  # the window covers every beat of the train
    if args.n_points is not None:
        n_points = args.n_points
    else:  # the model's default resolution over the window
        n_points = max(3, int(round(model.n_points_default * t_end / model.t_end_default)))
    _check_grid(t_end, n_points)
    if args.beats > 1 and args.period is None:
        raise ValueError("--beats > 1 needs --period")
    stim = pulse(args.amplitude, args.duration, args.onset,
                 period=np.inf if args.period is None else args.period, n_beats=args.beats)
    check_writable(args.out)  # fail before a long simulation, not after
    if args.save_every_beat is not None:
        check_writable(args.save_every_beat)
    pacing = args.save_every_beat is not None
    # pacing: one beat of --period at a time, on --n-points or the model's resolution per beat
    beat_points = args.n_points or max(3, int(round(model.n_points_default * (args.period or 0.0)
                                                    / model.t_end_default)))
    check_simulate_size(model, n_points=beat_points if pacing else n_points, n_beats=args.beats,
                        pacing=pacing, out=args.out, beats_csv=args.save_every_beat)
    if args.save_every_beat is None and args.onset >= t_end:
        print(f"ionfno simulate: warning: the pulse starts at {quantity(args.onset, model.time_unit)}, at or "
              f"after the end of the window ({quantity(t_end, model.time_unit)}): no current is applied",
              file=sys.stderr)
    if args.initial_state is None:
        y0 = model.default_state()
    else:
        y0 = load_initial_state(model, args.initial_state)
    if args.save_every_beat is not None:
        return _cmd_pace(args, model, y0)
    traj = simulate(model, stim, t_end=t_end, n_points=n_points, y0=y0, method=args.solver,
                    rtol=args.rtol, atol=args.atol)
    status = int(traj.status[0])
    write_trajectory_npz(args.out, model=model, t=traj.t, states=traj.states[0].T, i_app=traj.i_app[0],
                         status=status, y0=y0)
    if status != 0:
        print(f"ionfno simulate: warning: solver status {status} (see ionfno.solvers.Status); "
              f"wrote {args.out} with the trajectory up to the failure", file=sys.stderr)
        return 1
    window = quantity(t_end, model.time_unit)
    print(f"wrote {args.out}: {model.name}, {len(traj.t)} points over [0, {window}], {model.n_states} states")
    return 0


def _cmd_pace(args: argparse.Namespace, model: IonicModel, y0: np.ndarray) -> int:
    import csv

    from .._io import atomic_path
    from ..pacing import BEAT_FIELDS, pace

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    res = pace(model, amplitude=args.amplitude, duration=args.duration, onset=args.onset, period=args.period,
               n_beats=args.beats, y0=y0, n_points=args.n_points, method=args.solver, rtol=args.rtol,
               atol=args.atol, progress=progress)
    header = ["beat", *BEAT_FIELDS, *(f"end_{s}" for s in model.state_names)]
    with atomic_path(args.save_every_beat) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for b in range(args.beats):
            row = [b + 1, *(res.beats[k][b] for k in BEAT_FIELDS), *res.end_states[b]]
            w.writerow([_csv_value(x) for x in row])
    last = res.last
    status = int(last.status[0])
    write_trajectory_npz(args.out, model=model, t=last.t, states=last.states[0].T, i_app=last.i_app[0],
                         status=status, y0=last.states[0, :, 0])
    failed = np.flatnonzero(res.beats["status"] != 0)
    if failed.size:
        print(f"ionfno simulate: warning: beat {failed[0] + 1} failed (solver status "
              f"{res.beats['status'][failed[0]]}); wrote {args.save_every_beat} and {args.out} up to it",
              file=sys.stderr)
        return 1
    apd = res.beats["apd90"]
    print(f"wrote {args.save_every_beat} ({args.beats} beats; APD90 first {apd[0]:.2f} ms, "
          f"last {apd[-1]:.2f} ms) and {args.out} (the last beat; its last row is the final state, "
          f"for --initial-state)")
    return 0


def _csv_value(x) -> str:
    # flags and counts as integers, floats with every digit (repr round-trips), NaN as "nan"
    if isinstance(x, (bool, np.bool_, int, np.integer)):
        return str(int(x))
    return repr(float(x))
