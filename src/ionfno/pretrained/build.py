"""Package a trained run as a pretrained surrogate: stripped weights plus a model card.

:func:`build_pretrained` is what ``ionfno pretrained build RUN --name NAME --report REPORT``
calls. From the run folder it takes the checkpoint (``best`` by default), from the evaluation
report (``ionfno evaluate RUN --data D.h5 --out REPORT``) the test errors, and from the
dataset the run was trained on its provenance and the input range of its training split.
It then

1. writes ``surrogate.pt``: the checkpoint without optimiser state or history, the FNO's
   parameters cast to ``weights_dtype`` (float16 halves the file; buffers and normalisers stay
   float32: ORd's Ca_i is ~1e-4 mM, close to float16's smallest normal number);
2. re-measures the test error of the stored file and of the float32 checkpoint on the
   dataset's test split, in the study's metric (the float32 number must equal the report's,
   which checks that report, run and data belong together), so the card states what the
   stored precision costs;
3. writes ``card.json`` and ``card.md`` (:func:`render_card_markdown`).

A builder inside the package rather than a script in ``benchmarks/``: the writer of the format
sits beside its reader (``ionfno.pretrained``, ``Surrogate.load``) and is tested with it, and a
user packages their own runs with the same command.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from . import CARD_FILE, CARD_MARKDOWN, PACKAGE_DIR, WEIGHTS_FILE, check_name

__all__ = ["WEIGHTS_DTYPES", "build_pretrained", "render_card_markdown", "trained_input_range"]

CARD_FORMAT = "ionfno-model-card"
CARD_VERSION = 1
WEIGHTS_DTYPES = ("float16", "float32")
# The stored file's test error may differ from the float32 checkpoint's by at most this much
# (absolute, in the study's metric) before the build refuses. Measured with float16 weights
# (375 test samples each): an ORd run (510 k parameters) 2.9362 % -> 2.9362 %, largest
# per-variable change 0.0024 points, file 2.48 -> 1.46 MB; an HH run (578 k) 5.6965 % ->
# 5.6980 %, file 2.37 -> 1.22 MB. A larger change means the cast broke something.
MAX_PRECISION_CHANGE = 2e-3


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _strip(ck: dict[str, Any], weights_dtype: str, name: str) -> dict[str, Any]:
    """The payload of ``surrogate.pt``: what :class:`Surrogate` needs, parameters cast.

    The FNO registers no buffers, so every floating tensor of its state dict is a parameter;
    the normalisers are left as they are.
    """
    import torch

    dtype = getattr(torch, weights_dtype)
    model = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in ck["model"].items()}
    info = ck["data_info"]
    data_info = dict(info)
    data_info["dataset"] = Path(str(info.get("dataset", ""))).name  # no path of the builder's machine
    return {
        "config": ck["config"],
        "model": model,
        "normalizers": ck["normalizers"],
        "epoch": int(ck["epoch"]),
        "best_epoch": ck.get("best_epoch"),
        "best_val": ck.get("best_val"),
        "n_parameters": ck.get("n_parameters"),
        "data_info": data_info,
        "pretrained": {"name": name, "weights_dtype": weights_dtype},
    }


def trained_input_range(
    data_path: str | os.PathLike, *, n_train: int | None = None, only_ok: bool = True
) -> dict[str, Any]:
    """Range of the pulse parameters the run was trained on (its training split), overall and per part.

    Returns
    -------
    dict
        ``trained_range``: ``amplitude`` (of every pulse), ``duration``, ``onset`` (of the
        first pulse) and ``n_pulses`` as ``[min, max]`` (``n_pulses`` ``[1, 1]`` for the
        study's single pulses, 0 for a waveform), and ``current``, the values the applied
        current took, when the split holds waveforms (smooth random currents may be negative);
        ``parts``: the same per mixture part with its sample count ``n``.
    """
    from ..data.storage import open_dataset

    with open_dataset(data_path) as f:
        g = f["train"]
        n = g["amplitude"].shape[0] if n_train is None else min(int(n_train), g["amplitude"].shape[0])
        arr = {k: np.asarray(g[k][:n]) for k in ("amplitude", "duration", "onset", "status")}
        parts = np.asarray([p.decode() if isinstance(p, bytes) else str(p) for p in g["part"][:n]])
        # Format 3: every pulse's amplitude, the pulse counts, and the waveforms' current range.
        arr["n_pulses"] = np.asarray(g["n_pulses"][:n]) if "n_pulses" in g else np.ones(n, dtype=np.int64)
        pulse_amp = np.asarray(g["pulse_amplitude"][:n]) if "pulse_amplitude" in g else arr["amplitude"][:, None]
        real = np.arange(pulse_amp.shape[1])[None, :] < arr["n_pulses"][:, None]
        arr["amp_lo"] = np.where(real, pulse_amp, np.inf).min(axis=1, initial=np.inf)
        arr["amp_hi"] = np.where(real, pulse_amp, -np.inf).max(axis=1, initial=-np.inf)
        waves = np.flatnonzero(np.asarray(g["protocol"].asstr()[:n]) == "waveform") if "protocol" in g and n else []
        arr["cur_lo"], arr["cur_hi"] = np.full(n, np.inf), np.full(n, -np.inf)
        for i in waves:
            knots = g["i_app"][int(i)]
            arr["cur_lo"][i], arr["cur_hi"][i] = float(knots.min()), float(knots.max())
    keep = arr["status"] == 0 if only_ok else np.ones(n, dtype=bool)

    def span(mask: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: [float(arr[k][mask].min()), float(arr[k][mask].max())] for k in ("duration", "onset")
        }
        pulses = mask & (arr["n_pulses"] > 0)
        amp = arr["amplitude"][mask]  # a waveform's: its largest deviation
        out["amplitude"] = [float(min(amp.min(), arr["amp_lo"][pulses].min(initial=np.inf))),
                            float(max(amp.max(), arr["amp_hi"][pulses].max(initial=-np.inf)))]
        out["n_pulses"] = [int(arr["n_pulses"][mask].min()), int(arr["n_pulses"][mask].max())]
        if np.isfinite(arr["cur_lo"][mask]).any():
            out["current"] = [float(min(0.0, out["amplitude"][0], arr["cur_lo"][mask].min())),
                              float(max(out["amplitude"][1], arr["cur_hi"][mask].max()))]
        return {k: out[k] for k in ("amplitude", "duration", "onset", "n_pulses", "current") if k in out}

    if not keep.any():
        raise ValueError(f"The training split of {str(data_path)!r} has no usable samples")
    per_part = {}
    for p in dict.fromkeys(parts[keep].tolist()):
        m = keep & (parts == p)
        per_part[p] = {"n": int(m.sum()), **span(m)}
    return {"trained_range": span(keep), "parts": per_part}


def _flag(value: Any) -> str:
    return shlex.quote(str(value))


def _generate_command(info: dict[str, Any], data_path: Path) -> str:
    """An ``ionfno generate`` command equivalent to the one that wrote the dataset."""
    cfg = info.get("config") or {}
    counts = cfg.get("counts") or info.get("sizes") or {}
    mix = cfg.get("mixture") or {}
    cmd = [f"ionfno generate {_flag(info['model'])}"]
    for split in ("train", "val", "test"):
        if split in counts:
            cmd.append(f"--n-{split} {int(counts[split])}")
    cmd.append(f"--seed {int(info.get('seed', cfg.get('seed', 0)))}")
    if info.get("mixture"):
        cmd.append(f"--mixture {_flag(info['mixture'])}")
    solver = cfg.get("solver") or {}
    mix_rtol = (mix.get("solver") or {}).get("rtol")
    if solver.get("method") and solver.get("method") != (mix.get("solver") or {}).get("method", "fast"):
        cmd.append(f"--solver {_flag(solver['method'])}")
    if solver.get("rtol") is not None and solver.get("rtol") != mix_rtol:
        cmd.append(f"--rtol {solver['rtol']:g}")
    if cfg.get("t_end") is not None and mix.get("t_end") is not None and cfg["t_end"] != mix["t_end"]:
        cmd.append(f"--t-end {cfg['t_end']:g}")
    if info.get("n_points") and mix.get("n_points") and int(info["n_points"]) != int(mix["n_points"]):
        cmd.append(f"--n-points {int(info['n_points'])}")
    cmd.append(f"--out {_flag(data_path.name)}")
    return " ".join(cmd)


def _train_command(config: dict[str, Any], data_path: Path, run_dir: Path, planned: int | None) -> str:
    """``ionfno train`` with the shipped preset whose config equals the run's, else with ``--config``.

    A run planned to a wall-clock budget (``train.time_limit_s``) trains as many epochs as fit
    on its machine: the comment names the planned count that repeats it exactly elsewhere.
    """
    from ..training import list_presets, load_preset

    ran = {k: v for k, v in config.items() if k != "description"}
    cmd = f"ionfno train {_flag(data_path.name)} --config config.json --out {_flag(run_dir.name)}"
    note = "  # config.json: this card's architecture.config"
    for preset in list_presets():
        p = asdict(load_preset(preset))
        if {k: v for k, v in p.items() if k != "description"} == ran:
            cmd = f"ionfno train {_flag(data_path.name)} --preset {preset} --out {_flag(run_dir.name)}"
            note = ""
            break
    if config.get("train", {}).get("time_limit_s") is not None and planned is not None:
        note += (f"  # time-limited: {planned} epochs were planned; elsewhere repeat with "
                 f"--set train.epochs={planned} --set train.time_limit_s=none")
    return cmd + note


def _test_errors(sur: Any, data_path: Path, mean: np.ndarray, std: np.ndarray) -> dict[str, Any]:
    """The study's metric on the test split for one surrogate: overall and per variable."""
    from ..data.encoding import stored_stimulus
    from ..data.storage import read_split
    from ..evaluation.metrics import compute_errors

    sub = int(sur.info["subsample"])
    d = read_split(data_path, "test", dtype=np.float64, time_stride=sub)
    stim = stored_stimulus(d)
    x = d["i_app"] if sur.input_encoding == "point" else sur.encode(stim)
    pred = sur.predict_array(x)
    s = compute_errors(pred, d["states"], mean=mean, std=std, state_names=sur.state_names).summary()["all"]
    return {
        "overall": s["rel_l2"]["overall"],
        "per_variable": s["rel_l2"]["per_variable"],
        "pred": pred,
        "n": int(pred.shape[0]),
    }


def _precision_effect(
    run_sur: Any, stored_sur: Any, data_path: Path, weights_dtype: str, report_overall: float | None
) -> dict[str, Any]:
    from ..evaluation.pipeline import training_statistics

    # The study's normaliser is the training split's point-wise statistics: a point-wise model
    # carries them (its output normaliser, float32); otherwise they are read from the data.
    stats = run_sur.output_statistics()
    if stats is None:
        cfg = run_sur.config
        stats = training_statistics(
            data_path,
            subsample=int(run_sur.info["subsample"]),
            n_train=cfg.data.n_train,
            only_ok=cfg.data.only_ok,
        )
    mean, std = stats
    full = _test_errors(run_sur, data_path, mean, std)
    stored = _test_errors(stored_sur, data_path, mean, std)
    if report_overall is not None and not np.isclose(full["overall"], report_overall, rtol=1e-3, atol=1e-6):
        raise ValueError(
            f"The run's test error re-measured on {data_path.name} is {100 * full['overall']:.4f} %, the "
            f"report says {100 * report_overall:.4f} %: the report, the run and the dataset do not belong "
            "together (or the report used another checkpoint)"
        )
    change = abs(stored["overall"] - full["overall"])
    if change > MAX_PRECISION_CHANGE:
        raise ValueError(
            f"Storing the weights as {weights_dtype} changes the test error by {100 * change:.3f} points "
            f"({100 * full['overall']:.3f} % -> {100 * stored['overall']:.3f} %); use float32"
        )
    names = list(run_sur.state_names)
    diff = np.abs(stored["pred"] - full["pred"]).max(axis=(0, 2))
    return {
        "weights_dtype": weights_dtype,
        "test_error_float32": full["overall"],
        "test_error_stored": stored["overall"],
        "change": stored["overall"] - full["overall"],
        "per_variable_float32": full["per_variable"],
        "per_variable_stored": stored["per_variable"],
        "max_abs_prediction_change": dict(zip(names, diff.tolist(), strict=True)),
        "n_test": full["n"],
        "note": "Study metric on the dataset's test split with the training statistics (a point-wise "
        "model's output normaliser), recomputed at build time for the float32 checkpoint and for the "
        "stored file (parameters in weights_dtype, computed in float32).",
    }


def _report_section(results: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(test_error, physical) sections of the card from an evaluation's results.json."""
    m = results["metrics"]
    test_error = {
        "metric": "relative L2 error over time in the point-wise normalised space (the study's), mean over "
        "variables then samples",
        "split": results.get("split", "test"),
        "n": m["all"]["n"],
        "overall": m["all"]["rel_l2"]["overall"],
        "median": m["all"]["rel_l2"].get("median"),
        "p95": m["all"]["rel_l2"].get("p95"),
        "per_variable": m["all"]["rel_l2"]["per_variable"],
        "per_part": {p: {"n": e["n"], "overall": e["rel_l2"]["overall"]} for p, e in m.items() if p != "all"},
    }
    bm = (results.get("biomarkers") or {}).get("comparison") or {}
    physical = {
        "units": dict(zip(results["state_names"], results["state_units"], strict=True)),
        "rmse": m["all"]["rmse"]["per_variable"],
        "max_abs": m["all"]["max_abs"]["per_variable"],
        "rmse_over_range": m["all"]["rmse_over_range"]["per_variable"],
        "ranges": results.get("ranges"),
        "biomarkers": {
            k: bm[k]
            for k in (
                "fire_agreement",
                "both_fire",
                "false_fire",
                "missed_fire",
                "v_peak",
                "t_upstroke",
                "apd50",
                "apd90",
            )
            if k in bm
        },
    }
    return test_error, physical


def build_pretrained(
    run_dir: str | os.PathLike,
    name: str,
    *,
    report_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    which: str = "best",
    weights_dtype: str = "float16",
    data_path: str | os.PathLike | None = None,
    description: str = "",
    train_command: str | None = None,
    generate_command: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``out_dir/name/{surrogate.pt, card.json, card.md}`` from a run and its report.

    Parameters
    ----------
    run_dir : path-like
        Training run folder (``best.pt``/``last.pt``).
    name : str
        Name users load it by (``Surrogate.load(name)``); one folder name.
    report_dir : path-like
        Its ``ionfno evaluate`` report folder (``results.json``) for the same checkpoint.
    out_dir : path-like, optional
        Where the ``name`` folder goes (default: the package's own folder, i.e. shipped with
        the next release when the package is installed from this source tree).
    which : {"best", "last"}
        Checkpoint packaged; must be the one the report evaluated.
    weights_dtype : {"float16", "float32"}
        Storage type of the FNO parameters (computation stays float32).
    data_path : path-like, optional
        The dataset the run was trained on (default: the report's ``data_path``).
    description : str
        One paragraph for the card (default: the run config's description).
    train_command, generate_command : str, optional
        The exact commands used; by default equivalent ones are reconstructed from the
        config and the dataset's stored generation settings.
    overwrite : bool
        Replace an existing ``name`` folder.

    Returns
    -------
    dict
        The card.

    Raises
    ------
    FileNotFoundError
        Missing run, checkpoint, report or dataset.
    ValueError
        Bad name or dtype; report, run and data that do not belong together; a precision
        change above :data:`MAX_PRECISION_CHANGE`.
    """
    from .. import __version__
    from .._io import atomic_path, write_json_atomic
    from ..data.storage import dataset_info
    from ..surrogate import Surrogate
    from ..training.checkpoint import load_checkpoint, save_checkpoint

    check_name(name)
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"Unknown weights dtype {weights_dtype!r}; expected one of {list(WEIGHTS_DTYPES)}")
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    run_dir, report_dir = Path(run_dir), Path(report_dir)
    ck_path = run_dir / f"{which}.pt"
    if not ck_path.is_file():
        raise FileNotFoundError(f"Run folder {str(run_dir)!r} has no {which}.pt")
    results_path = report_dir / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(
            f"No evaluation report in {str(report_dir)!r} (results.json); make one with "
            f"`ionfno evaluate {run_dir} --data DATA.h5 --out {report_dir}`"
        )
    results = json.loads(results_path.read_text(encoding="utf-8"))
    ck = load_checkpoint(ck_path)
    if results.get("checkpoint", "best") != which or int(results.get("epoch", -1)) != int(ck["epoch"]):
        raise ValueError(
            f"The report in {str(report_dir)!r} evaluated the {results.get('checkpoint')!r} checkpoint at "
            f"epoch {results.get('epoch')}, but {ck_path} is epoch {ck['epoch']}: evaluate this checkpoint "
            "again"
        )
    data_path = Path(data_path if data_path is not None else results.get("data_path", ""))
    if not data_path.is_file():
        raise FileNotFoundError(
            f"The dataset the run was trained on is needed (provenance, input range, precision check); "
            f"{str(data_path)!r} does not exist: pass its path"
        )
    info = dataset_info(data_path)
    if str(info.get("model")) != ck["data_info"]["model"]:
        raise ValueError(
            f"Dataset {data_path} is of model {info.get('model')!r}, the run of {ck['data_info']['model']!r}"
        )

    dest = (Path(out_dir) if out_dir is not None else PACKAGE_DIR) / name
    if dest.exists() and not overwrite and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists; pass overwrite=True to replace it")
    # The stored weights are checked (precision, report) from a temporary file beside their
    # destination and renamed onto it only when they pass: a refused build leaves an existing
    # surrogate as it was, and a new name no folder.
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / WEIGHTS_FILE
    try:
        with atomic_path(weights, suffix=".pt") as staged:
            save_checkpoint(staged, _strip(ck, weights_dtype, name))
            # The epoch plan of a time-limited run is kept in last.pt only.
            last = run_dir / "last.pt"
            planned = load_checkpoint(last).get("planned_epochs") if last.is_file() else ck.get("planned_epochs")
            run_sur = Surrogate.load(ck_path)
            stored_sur = Surrogate.load(staged)
            test_error, physical = _report_section(results)
            precision = _precision_effect(run_sur, stored_sur, data_path, weights_dtype, test_error["overall"])
    except BaseException:
        if created:
            dest.rmdir()
        raise

    cfg = run_sur.config
    di = ck["data_info"]
    gen_cfg = info.get("config") or {}
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "name": name,
        "model": di["model"],
        "model_variant": info.get("model_variant"),
        "description": description or cfg.description,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "ionfno_version": __version__,
        "files": {
            "weights": WEIGHTS_FILE,
            "bytes": weights.stat().st_size,
            "sha256": _sha256(weights),
            "weights_dtype": weights_dtype,
        },
        "source": {
            "run": run_dir.name,
            "checkpoint": which,
            "epoch": int(ck["epoch"]),
            "best_epoch": ck.get("best_epoch"),
            "planned_epochs": planned,
            "checkpoint_sha256": _sha256(ck_path),
            "report": report_dir.name,
        },
        "commands": {
            "generate": generate_command or _generate_command(info, data_path),
            "train": train_command or _train_command(ck["config"], data_path, run_dir, planned),
            "evaluate": f"ionfno evaluate {_flag(run_dir.name)} --data {_flag(data_path.name)} "
            f"--out {_flag(report_dir.name)}" + ("" if which == "best" else f" --which {which}"),
            "package": f"ionfno pretrained build {_flag(run_dir.name)} --name {name} --report "
            f"{_flag(report_dir.name)} --dtype {weights_dtype}",
        },
        "data": {
            "file": data_path.name,
            "mixture": info.get("mixture"),
            "mixture_spec": gen_cfg.get("mixture"),
            "seed": info.get("seed"),
            "sizes": info.get("sizes"),
            "composition": gen_cfg.get("composition"),
            "solver": gen_cfg.get("solver"),
            "grid": {
                "t_end": float(di["t_end"]),
                "n_points_stored": int(di["n_points_stored"]),
                "subsample": int(di["subsample"]),
                "n_points": int(di["n_points"]),
                "time_unit": di.get("time_unit", "ms"),
            },
        },
        "input": {
            "encoding": cfg.data.input_encoding,
            "current_unit": di.get("current_unit", ""),
            **trained_input_range(data_path, n_train=cfg.data.n_train, only_ok=cfg.data.only_ok),
        },
        "architecture": {
            "n_parameters": ck.get("n_parameters"),
            "normalization": cfg.data.normalization,
            "config": ck["config"],
        },
        "test_error": test_error,
        "physical": physical,
        "precision": precision,
        "speed": results.get("speed"),
        "out_of_distribution": {
            k: {kk: v.get(kk) for kk in ("description", "n", "rel_l2", "rel_l2_V", "rmse_V", "n_beats",
                                         "beat_fire_agreement", "apd90_mae", "apd90_n")}
            for k, v in ((results.get("ood") or {}).get("cases") or {}).items()
        },
        "usage": {
            "predict": f"ionfno predict {name} --amplitude A --duration T --out p.npz",
            "compare": f"ionfno compare {name} --amplitude A --duration T",
            "python": f"from ionfno.surrogate import Surrogate; sur = Surrogate.load({name!r})",
        },
    }
    write_json_atomic(dest / CARD_FILE, card)
    with atomic_path(dest / CARD_MARKDOWN) as tmp:
        tmp.write_text(render_card_markdown(card), encoding="utf-8")
    return card


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.3f} %"


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.4g}"


def _span(r: Any) -> str:
    return f"{r[0]:.4g} - {r[1]:.4g}"


def _protocol_sentence(rng: dict[str, Any]) -> str:
    """What kind of inputs the training split held, from its overall range."""
    n_lo, n_hi = rng.get("n_pulses", [1, 1])
    if n_lo == n_hi == 1 and rng["onset"][1] == 0:
        return "One rectangular pulse from t = 0 per sample."
    kinds = []
    if n_hi >= 1:
        kinds.append(f"rectangular pulses ({max(n_lo, 1)} to {n_hi} per sample, first onset "
                     f"{rng['onset'][0]:.4g} to {rng['onset'][1]:.4g})")
    if "current" in rng:
        kinds.append("smooth random currents (the 'current' column: the values they took)")
    return "Trained on " + " and ".join(kinds) + "; an input outside these ranges gets a warning."


def render_card_markdown(card: dict[str, Any]) -> str:
    """The model card as Markdown (what ``card.md`` holds)."""
    from .._text import quantity

    d, inp, te, ph, pr = card["data"], card["input"], card["test_error"], card["physical"], card["precision"]
    g, arch = d["grid"], card["architecture"]
    rng = inp["trained_range"]
    tu, cu = g["time_unit"], inp["current_unit"]
    lines = [
        f"# Pretrained surrogate `{card['name']}` ({card['model']})",
        "",
        card.get("description") or "",
        "",
        "```bash",
        card["usage"]["predict"],
        card["usage"]["compare"],
        "```",
        "",
        "## Data",
        f"- mixture `{d.get('mixture')}`, seed {d.get('seed')}, sizes {d.get('sizes')}",
        f"- grid: T = {quantity(g['t_end'], tu)}, {g['n_points_stored']} stored points, subsample "
        f"{g['subsample']}: N = {g['n_points']} points",
        f"- solver: {d.get('solver', {}).get('method') if d.get('solver') else 'n/a'}, "
        f"rtol {d.get('solver', {}).get('rtol') if d.get('solver') else 'n/a'}",
        "",
        "## Input range it was trained on",
        _protocol_sentence(rng) + f" Input encoding `{inp['encoding']}`.",
        "",
        f"| part | n | amplitude [{cu}] | duration [{tu}] | onset [{tu}] | pulses | current [{cu}] |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [("all", {"n": sum(p["n"] for p in inp["parts"].values()), **rng}), *inp["parts"].items()]
    for p, r in rows:
        n_p = r.get("n_pulses", [1, 1])
        cur = r.get("current")
        lines.append(
            f"| {p} | {r['n']} | {_span(r['amplitude'])} | {_span(r['duration'])} | {_span(r['onset'])} | "
            f"{n_p[0]}" + (f" - {n_p[1]}" if n_p[1] != n_p[0] else "") + f" | {_span(cur) if cur else '-'} |"
        )
    lines += [
        "",
        "## Commands",
        "```bash",
        *(card["commands"][k] for k in ("generate", "train", "evaluate", "package")),
        "```",
        "",
        f"Source: run `{card['source']['run']}`, checkpoint `{card['source']['checkpoint']}` (epoch "
        f"{card['source']['epoch']}), report `{card['source']['report']}`. "
        f"{arch['n_parameters']} parameters, normaliser `{arch['normalization']}`.",
        "",
        "## Test error",
        f"{te['metric']}: **{_pct(te['overall'])}** on {te['n']} test samples "
        f"(median {_pct(te.get('median'))}, 95th percentile {_pct(te.get('p95'))}).",
        "",
        "| part | n | error |",
        "|---|---|---|",
        *(f"| {p} | {e['n']} | {_pct(e['overall'])} |" for p, e in te["per_part"].items()),
        "",
        "| variable | unit | study metric | RMSE | RMSE / range | max abs |",
        "|---|---|---|---|---|---|",
    ]
    for v, e in te["per_variable"].items():
        lines.append(
            f"| {v} | {ph['units'].get(v, '')} | {_pct(e)} | {_num(ph['rmse'].get(v))} | "
            f"{_pct(ph['rmse_over_range'].get(v))} | {_num(ph['max_abs'].get(v))} |"
        )
    bm = ph.get("biomarkers") or {}
    if bm:
        lines += [
            "",
            "## Biomarkers (samples where solver and surrogate both fire)",
            f"Firing agreement {_pct(bm.get('fire_agreement'))} ({bm.get('false_fire')} false, "
            f"{bm.get('missed_fire')} missed).",
            "",
            "| biomarker | mean abs error | max abs error | n |",
            "|---|---|---|---|",
        ]
        for k in ("v_peak", "t_upstroke", "apd50", "apd90"):
            if isinstance(bm.get(k), dict):
                lines.append(
                    f"| {k} | {_num(bm[k].get('mean_abs'))} | {_num(bm[k].get('max_abs'))} | "
                    f"{bm[k].get('n')} |"
                )
    ood = card.get("out_of_distribution") or {}
    if ood:
        lines += [
            "",
            "## Held-out protocols (`ionfno heldout`, fixed seed; from the evaluation report)",
            "| kind | n | study metric | V RMSE | beats | firing agreement per beat | APD90 mean abs error |",
            "|---|---|---|---|---|---|---|",
        ]
        for k, c in ood.items():
            beats = c.get("n_beats")
            lines.append(
                f"| {k} | {c.get('n')} | {_pct(c.get('rel_l2'))} | {_num(c.get('rmse_V'))} | "
                f"{beats if beats is not None else ''} | {_pct(c.get('beat_fire_agreement')) if beats else ''} | "
                f"{_num(c.get('apd90_mae')) if c.get('apd90_n') else ''} |"
            )
    lines += [
        "",
        "## Stored precision",
        f"Parameters stored as {pr['weights_dtype']} ({card['files']['bytes'] / 1e6:.2f} MB): test error "
        f"{_pct(pr['test_error_stored'])} against {_pct(pr['test_error_float32'])} with float32 weights "
        f"(change {100 * pr['change']:+.4f} points, {pr['n_test']} test samples).",
        "",
    ]
    return "\n".join(lines)
