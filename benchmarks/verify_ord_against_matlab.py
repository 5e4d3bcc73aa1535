"""Check ionfno's O'Hara–Rudy 2011 against the authors' own MATLAB code, run in GNU Octave.

This is an independent check of the model (not of another port): the authors' ``model.m``
(function ``output = model(t, X, flag_ode)``, distributed with the 2011 paper; we do not ship
it) is evaluated by Octave, and compared with ionfno

1. right-hand side, at states along a beat and at randomly perturbed states, for the endo, epi
   and M cells, with and without stimulus: max |ours - theirs| / max|theirs| per state;
2. one 1000 ms endocardial beat from the published steady state (I_app = 80 µA/µF for 0.5 ms):
   Octave ``ode15s`` at RelTol 1e-9 / AbsTol 1e-11 against ionfno's ``fast`` solver, error
   relative to each state's range, plus APD90 from both.

Usage (needs ``octave`` on PATH, e.g. Debian's ``apt-get install octave``)::

    python benchmarks/verify_ord_against_matlab.py --matlab-model /path/to/model.m

The copy of ``model.m`` is patched in a temporary folder only where it hard-codes the cell type
(``celltype=...;``) and the stimulus amplitude (``amp=...;``), so that both can be set.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ionfno import get_model, pulse
from ionfno.solvers import simulate

CELLTYPES = [(0, "ord"), (1, "ord-epi"), (2, "ord-m")]

_RHS_M = """function rhs_eval(ct, amp, t, infile, out)
global CELLTYPE AMP
CELLTYPE = ct; AMP = amp;
S = dlmread(infile);
D = zeros(size(S));
for k = 1:size(S,1)
  D(k,:) = model(t, S(k,:)', 1)';
end
dlmwrite(out, D, 'precision', 17);
end
"""

_BEAT_M = """function beat(ct, amp, y0file, out)
global CELLTYPE AMP
CELLTYPE = ct;
opts = odeset('RelTol', 1e-9, 'AbsTol', 1e-11, 'MaxStep', 0.5, 'InitialStep', 1e-4);
X0 = dlmread(y0file)';
AMP = amp;
[t1, X1] = ode15s(@(t, X) model(t, X, 1), [0:0.05:0.5], X0, opts);
AMP = 0;
[t2, X2] = ode15s(@(t, X) model(t, X, 1), [0.5:0.05:1000], X1(end, :)', opts);
dlmwrite(out, [[t1; t2(2:end)] [X1; X2(2:end, :)]], 'precision', 17);
end
"""


def _patch_model(src: Path, dst: Path) -> None:
    text = src.read_text()
    text, n1 = re.subn(r"^celltype\s*=\s*\d\s*;", "global CELLTYPE; celltype=CELLTYPE;", text, count=1, flags=re.M)
    text, n2 = re.subn(r"^amp\s*=\s*-?[\d.]+\s*;", "global AMP; amp=AMP;", text, count=1, flags=re.M)
    if n1 != 1 or n2 != 1:
        raise SystemExit(f"{src}: could not find the 'celltype=' and 'amp=' lines to patch; is this the ORd model.m?")
    dst.write_text(text)


def _octave(cwd: Path, expr: str) -> None:
    subprocess.run(["octave", "--no-gui", "-q", "--eval", expr], cwd=cwd, check=True, capture_output=True)


def _apd90(t: np.ndarray, V: np.ndarray) -> float:
    rest, ip = V[0], int(V.argmax())
    thr = V[ip] - 0.9 * (V[ip] - rest)
    tu = t[int(np.argmax(np.diff(V) / np.diff(t)))]
    k = ip + int(np.nonzero(V[ip:] < thr)[0][0])
    return t[k - 1] + (thr - V[k - 1]) * (t[k] - t[k - 1]) / (V[k] - V[k - 1]) - tu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--matlab-model", type=Path, required=True, help="the authors' ORd model.m")
    ap.add_argument("--n-random", type=int, default=100, help="perturbed states for the rhs check")
    args = ap.parse_args()
    if shutil.which("octave") is None:
        raise SystemExit("octave not found on PATH (Debian: apt-get install octave)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _patch_model(args.matlab_model, tmp / "model.m")
        (tmp / "rhs_eval.m").write_text(_RHS_M)
        (tmp / "beat.m").write_text(_BEAT_M)
        endo = get_model("ord")
        np.savetxt(tmp / "y0.csv", endo.default_state()[None], delimiter=",", fmt="%.17g")

        t0 = time.perf_counter()
        _octave(tmp, "beat(0, -80, 'y0.csv', 'beat.csv')")
        ref = np.loadtxt(tmp / "beat.csv", delimiter=",")
        print(f"Octave ode15s beat: {time.perf_counter() - t0:.1f} s")
        t, Yref = ref[:, 0], ref[:, 1:]

        # 1. rhs at states along the beat and perturbed ones.
        rng = np.random.default_rng(0)
        along = Yref[:: max(1, len(t) // args.n_random)]
        pert = along * rng.uniform(0.8, 1.2, size=along.shape)
        pert[:, 0] = rng.uniform(-95.0, 50.0, size=len(pert))
        gates = endo.gate_mask & ~np.isin(np.array(endo.state_names), ["J_rel_NP", "J_rel_CaMK"])
        pert[:, gates] = np.clip(pert[:, gates], 0.0, 1.0)
        states = np.vstack([along, pert])
        np.savetxt(tmp / "states.csv", states, delimiter=",", fmt="%.17g")
        worst = 0.0
        for ct, name in CELLTYPES:
            m = get_model(name)
            for tt, amp in [(10.0, 0.0), (0.1, -80.0)]:
                _octave(tmp, f"rhs_eval({ct}, {amp}, {tt}, 'states.csv', 'out.csv')")
                theirs = np.loadtxt(tmp / "out.csv", delimiter=",")
                ours = m.rhs(tt, states, m.default_params(), np.full(len(states), -amp))
                rel = np.abs(ours - theirs).max(axis=0) / (np.abs(theirs).max(axis=0) + 1e-300)
                i = int(rel.argmax())
                worst = max(worst, rel[i])
                print(f"rhs {name:8s} I_app={-amp:5.1f}: {len(states)} states, "
                      f"max |diff|/max|ref| = {rel[i]:.1e} ({m.state_names[i]})")

        # 2. a full beat with the fast solver.
        t0 = time.perf_counter()
        tr = simulate(endo, pulse(80.0, 0.5), t_end=1000.0, t_eval=t, method="fast")
        wall = time.perf_counter() - t0
        Y = tr.states[0].T
        rng_ = Yref.max(axis=0) - Yref.min(axis=0)
        err = np.abs(Y - Yref).max(axis=0) / np.maximum(rng_, 1e-12)
        i = int(err.argmax())
        print(f"beat (fast, {wall:.2f} s): max error / range = {err[i]:.1e} ({endo.state_names[i]}); "
              f"APD90 ionfno {_apd90(t, Y[:, 0]):.2f} ms, MATLAB/Octave {_apd90(t, Yref[:, 0]):.2f} ms "
              f"(0.05 ms output grid)")
        print(f"WORST rhs mismatch {worst:.1e}")
        return 0 if worst < 1e-10 and err.max() < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
