"""The reference study's published trained FNOs, scored on our generated test splits.

The authors of Pellegrini et al. 2025 (arXiv:2505.14039) published their trained
constrained-case FNOs and the point-wise normalisation statistics of their training sets in
their demo app, MaxGhi8/stiffODE_streamlit (``models/model_FNO_1D_<Model>_best_samedofs_state_dict``,
``data/<model>_stats_n_points_<N>.mat``). This script loads such a state dict into our
:class:`ionfno.fno.FNO1d` (:func:`ionfno.fno.from_hypernos_state_dict`; activation and
padding from our preset of the same published configuration), applies *their* normalisation,
and scores the model on a split of *our* dataset in the study's metric: relative L2 over time
in the normalised space, per sample and variable, averaged over variables then samples. If
our data follow the study's distribution, the scores come out near the published test errors
(FHN 0.82 %, HH 2.67 %).

Printed: the metric in their normalised space (the study's number) and in ours (our training
split's statistics, the space our own runs are scored in), per part and per variable; RMSE in
model units (mV for V); and how far our training split's statistics are from theirs.

The weights are not part of this repository. Fetch them from the app's repository, e.g.::

    git clone https://github.com/MaxGhi8/stiffODE_streamlit /tmp/stiffODE_streamlit   # 2025-03-24: de98085f

ORd: the app's ORd statistics file is stored with Git LFS and was not retrievable here, so
``--stats`` may be omitted for ORd; the script then normalises with our training split's
statistics instead (stated in the output), which measures the model *and* the distance of our
ORd mixture from theirs together. Their ORd model was trained on 10080 points over 1000 ms
(every stored point); ``--refine 4`` evaluates it on a grid 4x finer than our stored one
(inputs re-sampled exactly from the pulse parameters, our statistics interpolated linearly)
and scores it back on our stored points.

Usage::

    nice -n 19 python benchmarks/bench_authors_weights.py --model fhn --data /tmp/fhn.h5 \\
        --weights /tmp/stiffODE_streamlit/models/model_FNO_1D_FitzHughNagumo_best_samedofs_state_dict \\
        --stats /tmp/stiffODE_streamlit/data/fhn_stats_n_points_1260.mat
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch start their thread pools

import numpy as np  # noqa: E402

# Per model: our preset of the published constrained configuration (activation, padding,
# architecture) and the authors' names of the output channels, in their channel order.
PRESETS = {"fhn": "fhn-constrained", "hh": "hh-constrained", "ord": "ord-constrained"}
# ORd: the fields of their dataset files, sorted (HyperNOs datasets.py, class OHaraRudy),
# without the "_dataset" suffix; two differ from our state names.
_ORD_THEIRS = (
    "CaMK_trap Ca_i Ca_jsr Ca_nsr Ca_ss J_rel_CaMK J_rel_NP K_i K_ss Na_i Na_ss V a_CaMK a d "
    "f_CaMK_fast f_Ca_CaMK_fast f_Ca_fast f_Ca_slow f_fast f_slow h_CaMK_slow h_L_CaMK h_L "
    "h_fast h_slow i_CaMK_fast i_CaMK_slow i_fast i_slow j_CaMK j_Ca j m_L m n x_k1 x_r_fast "
    "x_r_slow x_s1 x_s2"
).split()
_ORD_RENAME = {"CaMK_trap": "CaMK_trapped", "n": "n_Ca"}
THEIR_CHANNELS = {"fhn": ("V", "w"), "hh": ("V", "m", "h", "n"), "ord": tuple(_ORD_THEIRS)}
STATS_KEY = {"fhn": "{}", "hh": "{}", "ord": "{}_dataset"}
EPS = 1e-5  # their normaliser: (x - mean) / (std + 1e-5)


def our_name(model: str, theirs: str) -> str:
    return _ORD_RENAME.get(theirs, theirs) if model == "ord" else theirs


def load_their_stats(path: str, model: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Their per-time-point mean/std: ``input`` (N,) and each state (N,), float64."""
    from scipy.io import loadmat

    d = loadmat(path)
    key = STATS_KEY[model]

    def get(kind: str, name: str) -> np.ndarray:
        return np.asarray(d[f"{kind}_{name}"], dtype=np.float64).reshape(-1)

    out = {"mean_input": get("mean", "input"), "std_input": get("std", "input")}
    out["mean"] = np.stack([get("mean", key.format(n)) for n in names])
    out["std"] = np.stack([get("std", key.format(n)) for n in names])
    return out


def fit_our_stats(data: str, subsample: int, order: list[int]) -> dict[str, np.ndarray]:
    """Point-wise mean/std of our training split (unbiased std, as theirs), in their channel order."""
    from ionfno.data.dataset import read_split_tensors

    tr = read_split_tensors(data, "train", subsample=subsample)
    i_app = tr.i_app.double().numpy()
    states = tr.states.double().numpy()[:, order]
    return {
        "mean_input": i_app.mean(0),
        "std_input": i_app.std(0, ddof=1),
        "mean": states.mean(0),
        "std": states.std(0, ddof=1),
    }


def refine_grid(t: np.ndarray, factor: int) -> np.ndarray:
    """A uniform grid ``factor`` times finer that contains ``t`` (every ``factor``-th point)."""
    return np.linspace(t[0], t[-1], factor * (t.size - 1) + 1)


def interp_rows(a: np.ndarray, t: np.ndarray, t_fine: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(t_fine, t, row) for row in np.atleast_2d(a)]).reshape(
        a.shape[:-1] + (t_fine.size,)
    )


def predict(model, i_app: np.ndarray, stats: dict[str, np.ndarray], batch: int, keep: int = 1) -> np.ndarray:
    """Their pipeline: encode the current, append the grid linspace(0, 1, n), decode the states.

    Returns the states in model units, ``(B, C, N)``, at every ``keep``-th point.
    """
    import torch

    enc = (i_app - stats["mean_input"]) / (stats["std_input"] + EPS)  # (B, N)
    grid = np.broadcast_to(np.linspace(0.0, 1.0, enc.shape[1]), enc.shape)
    out = []
    with torch.no_grad():
        for s in range(0, enc.shape[0], batch):
            x = torch.as_tensor(
                np.stack([enc[s : s + batch], grid[s : s + batch]], axis=1), dtype=torch.float32
            )
            z = model(x).double().numpy()  # (b, C, N), their normalised space
            out.append((z * (stats["std"] + EPS) + stats["mean"])[:, :, ::keep])
    return np.concatenate(out)


def score(pred, true, stats, names, units, parts):
    from ionfno.evaluation.metrics import compute_errors

    return compute_errors(
        pred, true, mean=stats["mean"], std=stats["std"], state_names=names, state_units=units, parts=parts
    ).summary()


def print_table(title: str, summ: dict, names: list[str], max_vars: int) -> None:
    parts = [p for p in summ if p != "all"]
    print(f"\n{title}")
    print("  part        n   rel L2 (mean)  median    p95")
    for p in ["all", *parts]:
        r = summ[p]["rel_l2"]
        mean, med, p95 = (100 * r[k] for k in ("overall", "median", "p95"))
        print(f"  {p:<10} {summ[p]['n']:>4}   {mean:8.3f} %  {med:6.3f} %  {p95:6.2f} %")
    shown = names[:max_vars]
    print("  per variable (rel L2 %), rows: parts")
    head = "  " + "part".ljust(10) + "".join(f"{n[:10]:>11}" for n in shown)
    print(head)
    for p in ["all", *parts]:
        pv = summ[p]["rel_l2"]["per_variable"]
        print("  " + p[:10].ljust(10) + "".join(f"{100 * pv[n]:>10.3f}%" for n in shown))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, choices=sorted(PRESETS))
    ap.add_argument(
        "--weights", required=True, help="the authors' state dict file (torch.save of a state_dict)"
    )
    ap.add_argument(
        "--stats", help="their normalisation statistics (.mat with mean_input, std_input, mean_<var>, ...)"
    )
    ap.add_argument("--data", required=True, help="our dataset (.h5) of the same model")
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument(
        "--subsample", type=int, help="keep every k-th stored point (default: to match --stats, else 1)"
    )
    ap.add_argument(
        "--refine", type=int, default=1, help="evaluate on a grid this many times finer (no --stats only)"
    )
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--max-vars", type=int, default=41, help="variables shown per table row")
    ap.add_argument("--json", type=Path, help="write every number to this file")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ionfno.data.storage import dataset_info, read_split
    from ionfno.fno import from_hypernos_state_dict, hypernos_architecture
    from ionfno.stimulus import PulseTrain
    from ionfno.training import load_preset

    model_name = args.model
    theirs = THEIR_CHANNELS[model_name]
    info = dataset_info(args.data)
    ours_names = list(info["state_names"])
    units = dict(zip(ours_names, info.get("state_units", [""] * len(ours_names)), strict=True))
    order = [ours_names.index(our_name(model_name, n)) for n in theirs]  # their channel -> our index
    names = [our_name(model_name, n) for n in theirs]
    n_stored = int(info["n_points"])

    # ---- the model: their weights in our FNO1d, with the published activation and padding
    state = torch.load(args.weights, weights_only=True, map_location="cpu")
    preset = load_preset(PRESETS[model_name]).model
    arch = hypernos_architecture(state)
    model = from_hypernos_state_dict(state, activation=preset.activation, padding=preset.padding)
    same = (arch["hidden_channels"], arch["n_layers"], arch["n_modes"], arch["block"]) == (
        preset.hidden_channels,
        preset.n_layers,
        preset.n_modes,
        preset.block,
    )
    print(
        f"weights {args.weights}: width {arch['hidden_channels']}, "
        f"{arch['n_layers']} {arch['block']} layers, "
        f"{arch['n_modes']} modes, {arch['out_channels']} outputs, {model.n_parameters()} parameters; "
        f"preset {PRESETS[model_name]} {'matches' if same else 'DIFFERS'} "
        f"(activation {preset.activation}, padding {preset.padding})"
    )
    if arch["out_channels"] != len(theirs):
        raise SystemExit(f"the weights have {arch['out_channels']} outputs, {model_name} has {len(theirs)}")

    # ---- grids and statistics
    if args.stats:
        if args.refine != 1:
            raise SystemExit("--refine needs their statistics on their grid; it applies without --stats only")
        their = load_their_stats(args.stats, model_name, theirs)
        n_theirs = their["mean"].shape[1]
        sub = args.subsample or max(1, n_stored // n_theirs)
        if len(range(0, n_stored, sub)) != n_theirs:
            raise SystemExit(
                f"our {n_stored} stored points every {sub} give {len(range(0, n_stored, sub))}, "
                f"their statistics have {n_theirs}"
            )
    else:
        their = None
        sub = args.subsample or 1
    ours = fit_our_stats(args.data, sub, order)
    arrays = read_split(args.data, args.split, dtype=np.float64)
    t = np.asarray(arrays["t"], dtype=np.float64)[::sub]
    true = np.asarray(arrays["states"])[:, order][:, :, ::sub]  # (B, C, N), their channel order
    i_app = np.asarray(arrays["i_app"])[:, ::sub]
    parts = np.asarray(arrays["part"]).astype(str)
    print(
        f"data {args.data} ({args.split}): {true.shape[0]} samples, {t.size} points "
        f"(every {sub} of {n_stored}) over {t[-1] - t[0]:.4g} {info.get('time_unit', '')}"
    )

    if args.refine > 1:
        t_f = refine_grid(t, args.refine)
        stim = PulseTrain(
            arrays["amplitude"],
            arrays["duration"],
            arrays["onset"],
            np.zeros_like(arrays["onset"]),
            np.ones(arrays["onset"].shape, dtype=np.int64),
        )
        i_f = stim.sample(t_f)
        gap = float(np.abs(i_f[:, :: args.refine] - i_app).max())
        print(
            f"evaluated on {t_f.size} points (refined {args.refine}x; re-sampled input differs from the "
            f"stored one by at most {gap:.3g} at the stored points), statistics interpolated linearly"
        )
        st_f = {k: interp_rows(v, t, t_f) for k, v in ours.items()}
        pred = predict(model, i_f, st_f, args.batch, keep=args.refine)
    else:
        pred = predict(model, i_app, their if their is not None else ours, args.batch)

    results: dict = {
        "model": model_name,
        "weights": str(args.weights),
        "data": str(args.data),
        "split": args.split,
        "subsample": sub,
        "refine": args.refine,
        "n_points": int(t.size),
    }
    unit_list = [units.get(n, "") for n in names]
    if their is not None:
        results["their_space"] = score(pred, true, their, names, unit_list, parts)
        print_table(
            "study metric, THEIR normalisation (their training statistics)",
            results["their_space"],
            names,
            args.max_vars,
        )
        # How far our training split is from theirs, per channel, in their standard deviations.
        drift = {}
        for c, n in enumerate(["input", *names]):
            mu_o = ours["mean_input"] if n == "input" else ours["mean"][c - 1]
            mu_t = their["mean_input"] if n == "input" else their["mean"][c - 1]
            sd_t = their["std_input"] if n == "input" else their["std"][c - 1]
            sd_o = ours["std_input"] if n == "input" else ours["std"][c - 1]
            drift[n] = {
                "max_mean_gap_in_their_std": float(np.max(np.abs(mu_o - mu_t)) / np.mean(sd_t)),
                "median_std_ratio": float(np.median((sd_o + EPS) / (sd_t + EPS))),
            }
        results["stats_gap"] = drift
        print(
            "\nour training split vs theirs: max |mean_ours - mean_theirs| / mean std_theirs; "
            "median std ratio"
        )
        for n, d in drift.items():
            print(f"  {n:<14} {d['max_mean_gap_in_their_std']:8.4f}   {d['median_std_ratio']:7.4f}")
    results["our_space"] = score(pred, true, ours, names, unit_list, parts)
    print_table(
        "study metric, OUR normalisation (our training split's statistics"
        + ("; their ORd statistics are not available" if their is None else "")
        + ")",
        results["our_space"],
        names,
        args.max_vars,
    )
    rm = results["our_space"]["all"]["rmse"]["per_variable"]
    print(
        "\nRMSE (model units): "
        + ", ".join(f"{n} {rm[n]:.4g} {units.get(n, '')}" for n in names[:6])
        + (" ..." if len(names) > 6 else "")
    )
    if args.json:
        from ionfno.evaluation.metrics import summary_to_jsonable

        args.json.write_text(json.dumps(summary_to_jsonable(results), indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
