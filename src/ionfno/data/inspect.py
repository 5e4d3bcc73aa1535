"""What a dataset file contains, and whether it is intact (``ionfno inspect``).

:func:`inspect_dataset` reads the whole file once, in blocks (memory stays bounded), and
returns a report with

* the composition per split and part, with the fraction of samples that fire
  (:mod:`ionfno.data.biomarkers`), and the failed samples (non-zero solver status);
* the value range of every state variable over the successful samples;
* the integrity checks: the layout and shapes; every chunk's checksum; finite values in every
  successful sample; known status codes; the grid equal to ``linspace(0, t_end, N)`` of the
  config; split sizes, part labels and each sample's ``amplitude``/``duration``/``onset``
  and protocol arrays (pulses, ``protocol``) equal to the config's deterministic draw; the
  stored ``i_app`` equal to the stimulus the config draws (without a config: the pulses the
  file describes); and ``fires`` consistent with the stored V.

A file that cannot be opened (truncated, corrupted metadata, not a dataset) gives a report
with ``ok = False`` and the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .storage import SPLITS, DatasetError, open_dataset

__all__ = ["InspectReport", "inspect_dataset", "format_report"]

_KNOWN_STATUS = (0, 1, 2, 3)
_MAX_LISTED = 20


@dataclass
class InspectReport:
    """Result of :func:`inspect_dataset`.

    Attributes
    ----------
    path : str
    ok : bool
        True when every integrity check passed.
    problems : list of str
        One line per failed check.
    info : dict
        Model, sizes, grid, seed, mixture name, shard.
    splits : dict
        Per split: ``n``, ``n_ok``, ``fraction_firing`` (over successful samples), ``parts``
        ({part: {"n", "n_ok", "fraction_firing"}}), ``failed`` (list of failed samples).
    ranges : dict
        Per state: ``{"unit", "min", "max"}`` over successful samples of every split.
    """

    path: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, Any] = field(default_factory=dict)

    def fail(self, msg: str) -> None:
        self.ok = False
        self.problems.append(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "problems": self.problems,
            "info": self.info,
            "splits": self.splits,
            "ranges": self.ranges,
        }


def inspect_dataset(path: str | os.PathLike, *, block_rows: int = 64) -> InspectReport:
    """Summarise and check a dataset file (see the module docstring).

    Parameters
    ----------
    path : path-like
    block_rows : int
        Samples decompressed at a time.

    Returns
    -------
    InspectReport

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (bad input rather than a damaged file).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"Dataset file {str(p)!r} does not exist")
    rep = InspectReport(str(p))
    try:
        f = open_dataset(p)
    except DatasetError as e:
        rep.fail(str(e))
        return rep
    try:
        with f:
            _inspect(f, rep, block_rows)
    except (OSError, RuntimeError, KeyError, ValueError) as e:  # damage found mid-way
        rep.fail(f"unreadable content: {type(e).__name__}: {e}")
    return rep


def _inspect(f: Any, rep: InspectReport, block_rows: int) -> None:
    from .biomarkers import firing_threshold

    names = json.loads(f.attrs["state_names"])
    units = json.loads(f.attrs.get("state_units", json.dumps([""] * len(names))))
    model = str(f.attrs.get("model", ""))
    t = f["t"][()]
    N, S = t.shape[0], len(names)
    cfg_text = f.attrs.get("config", "{}")
    cfg_dict = json.loads(cfg_text) if cfg_text else {}
    shard = f.attrs.get("shard")
    rep.info = {
        "model": model,
        "mixture": str(f.attrs.get("mixture", cfg_dict.get("mixture", {}).get("name", ""))),
        "n_points": N,
        "t_end": float(t[-1]) if N else None,
        "n_states": S,
        "seed": int(f.attrs.get("seed", -1)),
        "ionfno_version": str(f.attrs.get("ionfno_version", "")),
        "shard": None if shard is None else str(shard),
        "sizes": {s: int(f[s]["states"].shape[0]) for s in SPLITS},
        "solver": cfg_dict.get("solver", {}).get("method"),
    }
    config = None
    if cfg_dict.get("mixture"):
        from .generate import GenerateConfig

        try:
            config = GenerateConfig.from_dict(cfg_dict)
        except (KeyError, TypeError, ValueError) as e:
            rep.fail(f"config attribute is not a valid generation config: {e}")
    else:
        rep.problems.append("note: no generation config stored; config checks skipped")
    if len(units) != S:
        rep.fail(f"state_units has {len(units)} entries for {S} states")
    if config is not None:
        if config.model != model:
            rep.fail(f"model attribute {model!r} differs from the config's {config.model!r}")
        if N != config.n_points or not np.array_equal(t, config.grid):
            rep.fail(f"grid /t is not linspace(0, {config.t_end:g}, {config.n_points}) of the config")
    try:
        thr = firing_threshold(model)
    except ValueError:
        thr = None
    v_index = names.index("V") if "V" in names else None
    lo = np.full(S, np.inf)
    hi = np.full(S, -np.inf)
    for split in SPLITS:
        _inspect_split(f, rep, split, config, shard, names, N, S, thr, v_index, lo, hi, block_rows)
    rep.ranges = {
        nm: {
            "unit": units[k] if k < len(units) else "",
            "min": float(lo[k]) if np.isfinite(lo[k]) else None,
            "max": float(hi[k]) if np.isfinite(hi[k]) else None,
        }
        for k, nm in enumerate(names)
    }
    n_ok = sum(s["n_ok"] for s in rep.splits.values())
    n_fire = sum(s["n_firing"] for s in rep.splits.values())
    rep.info["fraction_firing"] = n_fire / n_ok if n_ok else None
    rep.info["n_failed"] = sum(len(s["failed"]) for s in rep.splits.values())


def _inspect_split(f, rep, split, config, shard, names, N, S, thr, v_index, lo, hi, block_rows) -> None:
    from .encoding import stored_stimulus
    from .generate import parse_shard, shard_range
    from .mixtures import sample_parameters, sample_stimuli
    from .storage import PROTOCOL_FIELDS

    g = f[split]
    n = g["states"].shape[0]
    where = f"/{split}"
    if g["states"].shape != (n, S, N):
        rep.fail(f"{where}/states has shape {g['states'].shape}, expected {(n, S, N)}")
        return
    if g["i_app"].shape != (n, N):
        rep.fail(f"{where}/i_app has shape {g['i_app'].shape}, expected {(n, N)}")
        return
    fields = {}
    for name in ("amplitude", "duration", "onset", "part", "status", "fires"):
        ds = g[name]
        if ds.shape != (n,):
            rep.fail(f"{where}/{name} has shape {ds.shape}, expected {(n,)}")
            return
        fields[name] = np.array(ds.asstr()[()], dtype=str) if name == "part" else ds[()]
    if "protocol" in g:  # format 3
        for name in PROTOCOL_FIELDS:
            fields[name] = np.array(g[name].asstr()[()], dtype=str) if name == "protocol" and n else g[name][()]
    status = fields["status"].astype(np.int64)
    bad_status = sorted(set(np.unique(status).tolist()) - set(_KNOWN_STATUS))
    if bad_status:
        rep.fail(f"{where}/status has unknown codes {bad_status} (known: {list(_KNOWN_STATUS)})")
    ok = status == 0

    index = np.arange(n)
    drawn = False  # the config's draw is comparable to the stored samples
    if config is not None:
        sh = parse_shard(str(shard)) if shard is not None else None
        a, b = shard_range(config.counts[split], sh)
        if n != b - a:
            rep.fail(f"{where} has {n} samples; the config says {b - a}")
        else:
            index = np.arange(a, b)
            drawn = True
            if "sample_index" in g and not np.array_equal(g["sample_index"][()], index):
                rep.fail(f"{where}/sample_index is not [{a}, {b})")
            ref = sample_parameters(
                config.mixture,
                seed=config.seed,
                split=split,
                n=config.counts[split],
                t_end=config.t_end,
                indices=index,
            )
            for name in ("part", "amplitude", "duration", "onset", *(PROTOCOL_FIELDS if "protocol" in fields else ())):
                wrong = np.flatnonzero(_differs(fields[name], ref[name]))
                if wrong.size:
                    rep.fail(
                        f"{where}/{name} differs from the config's draw at {wrong.size} sample(s), "
                        f"first {wrong[:5].tolist()}"
                    )
    # Bounded memory: one block of decompressed samples at a time.
    n_nonfinite, iapp_wrong, fires_wrong = [], [], []
    t = f["t"][()]
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        try:
            X = g["states"][start:stop]
            I = g["i_app"][start:stop]
        except (OSError, RuntimeError) as e:
            rep.fail(f"{where}: samples [{start}, {stop}) cannot be read (corrupted chunk?): {e}")
            continue
        okb = ok[start:stop]
        fin = np.isfinite(X).all(axis=(1, 2))
        n_nonfinite.extend((start + np.flatnonzero(okb & ~fin)).tolist())
        good = okb & fin
        if good.any():
            Xg = X[good]
            lo[:] = np.minimum(lo, Xg.min(axis=(0, 2)))
            hi[:] = np.maximum(hi, Xg.max(axis=(0, 2)))
        if drawn:
            stim = sample_stimuli(config.mixture, seed=config.seed, split=split, t=config.grid,
                                  n=config.counts[split], t_end=config.t_end, indices=index[start:stop])[1]
        else:  # the protocol the file describes (a waveform's knots are i_app itself)
            arrays = {k: v[start:stop] for k, v in fields.items()}
            if "protocol" in arrays:
                arrays |= {"t_stored": t, "waveform": I[arrays["protocol"] == "waveform"]}
            stim = stored_stimulus(arrays)
        expect = stim.sample(t).astype(np.float32)
        iapp_wrong.extend((start + np.flatnonzero(~(expect == I).all(axis=1))).tolist())
        if thr is not None and v_index is not None:
            V = X[:, v_index]
            with np.errstate(invalid="ignore"):
                fires = (V > thr).any(axis=1) & okb
                # float32 storage may round a peak that grazes the threshold across it
                near = np.abs(np.nanmax(np.where(np.isfinite(V), V, -np.inf), axis=1) - thr) <= 1e-6 * max(
                    1, abs(thr)
                )
            fires_wrong.extend(
                (start + np.flatnonzero((fires != fields["fires"][start:stop]) & ~near)).tolist()
            )
    if n_nonfinite:
        rep.fail(
            f"{where}: {len(n_nonfinite)} sample(s) with status 0 have non-finite values, "
            f"first {n_nonfinite[:5]}"
        )
    if iapp_wrong:
        rep.fail(
            f"{where}/i_app disagrees with the stimulus protocol at {len(iapp_wrong)} sample(s), "
            f"first {iapp_wrong[:5]}"
        )
    if fires_wrong:
        rep.fail(
            f"{where}/fires disagrees with the stored V at {len(fires_wrong)} sample(s), "
            f"first {fires_wrong[:5]}"
        )

    fires = fields["fires"].astype(bool)
    parts = {}
    for name in sorted(
        set(fields["part"].tolist()),
        key=lambda x: (
            config.mixture.part_names.index(x)
            if config is not None and x in config.mixture.part_names
            else 99,
            x,
        ),
    ):
        m = fields["part"] == name
        n_ok = int((m & ok).sum())
        parts[name] = {
            "n": int(m.sum()),
            "n_ok": n_ok,
            "fraction_firing": float((fires & m & ok).sum() / n_ok) if n_ok else None,
        }
    failed = [
        {
            "index": int(index[i]),
            "part": str(fields["part"][i]),
            "status": int(status[i]),
            "amplitude": float(fields["amplitude"][i]),
            "duration": float(fields["duration"][i]),
        }
        for i in np.flatnonzero(~ok)
    ]
    n_ok = int(ok.sum())
    rep.splits[split] = {
        "n": int(n),
        "n_ok": n_ok,
        "n_firing": int((fires & ok).sum()),
        "fraction_firing": float((fires & ok).sum() / n_ok) if n_ok else None,
        "parts": parts,
        "failed": failed,
    }


def format_report(rep: InspectReport) -> str:
    """Human-readable text of a report."""
    lines = [f"{rep.path}"]
    i = rep.info
    if i:
        lines.append(
            f"  model {i.get('model')}, mixture {i.get('mixture')!r}, seed {i.get('seed')}, "
            f"{i.get('n_states')} states on {i.get('n_points')} points over [0, {i.get('t_end')}], "
            f"solver {i.get('solver')}, ionfno {i.get('ionfno_version')}"
            + (f", shard {i['shard']}" if i.get("shard") else "")
        )
        ff = i.get("fraction_firing")
        lines.append(
            f"  samples {i.get('sizes')}; failed {i.get('n_failed')}; "
            f"fraction firing {'n/a' if ff is None else f'{ff:.3f}'}"
        )
    for split, s in rep.splits.items():
        lines.append(f"  {split}: {s['n']} samples, {s['n_ok']} ok")
        for name, pinfo in s["parts"].items():
            ff = pinfo["fraction_firing"]
            lines.append(f"    {name:<16} {pinfo['n']:>6}   firing {'  n/a' if ff is None else f'{ff:5.3f}'}")
        for fl in s["failed"][:_MAX_LISTED]:
            lines.append(
                f"    FAILED #{fl['index']} ({fl['part']}, A={fl['amplitude']:.4g}, "
                f"T={fl['duration']:.4g}): status {fl['status']}"
            )
        if len(s["failed"]) > _MAX_LISTED:
            lines.append(f"    ... {len(s['failed']) - _MAX_LISTED} more failed")
    if rep.ranges:
        lines.append("  ranges (successful samples):")
        for nm, r in rep.ranges.items():
            if r["min"] is None:
                lines.append(f"    {nm:<16} (no data)")
            else:
                lines.append(f"    {nm:<16} [{r['min']:.6g}, {r['max']:.6g}] {r['unit']}")
    notes = [p for p in rep.problems if p.startswith("note:")]
    errs = [p for p in rep.problems if not p.startswith("note:")]
    lines.extend(f"  {p}" for p in notes)
    if rep.ok:
        lines.append("  integrity: OK")
    else:
        lines.append("  integrity: FAILED")
        lines.extend(f"    - {p}" for p in errs)
    return "\n".join(lines)


def _differs(stored: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Per sample: do a stored per-sample array and the config's draw differ? Shape ``(n,)``."""
    stored, drawn = np.asarray(stored), np.asarray(drawn)
    if stored.shape != drawn.shape:
        return np.ones(stored.shape[0], dtype=bool)
    return (stored != drawn).reshape(stored.shape[0], -1).any(axis=1)
