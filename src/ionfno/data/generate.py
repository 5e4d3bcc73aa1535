"""Generate a dataset: a mixture of pulses simulated in blocks, with workers, shards and resume.

How a run proceeds (``ionfno generate`` calls :func:`generate_dataset`):

1. The :class:`GenerateConfig` fixes everything that determines the data (model, mixture,
   counts, seed, grid, solver settings, storage filters). Run settings that cannot change the
   data (workers, block size) are not part of it.
2. Samples are cut into blocks (contiguous sample ranges of one split). Each block is
   simulated with the mixture's solver (``fast``: compiled, one thread per worker) and
   written, compressed, to its own small HDF5 file in a work folder beside the target,
   ``.<name>.partial/``; a block file is renamed
   into place only once complete, so the folder is a journal of finished blocks. With
   ``workers > 1`` each worker process simulates and writes its own blocks (compression runs
   in parallel and no trajectories cross process boundaries); the parent only schedules
   and shows progress. Memory stays at one block per worker.
3. When every block is done, the blocks are assembled into ``<name>`` by copying the
   compressed chunks as they are (no second compression) into a temporary file that is
   renamed onto the target only when complete; then the work folder is removed.

Why a folder of block files rather than progress flags inside one HDF5 file: HDF5 keeps
metadata in memory and makes no promise about a file killed mid-write (a SIGKILL during a
flush can leave the whole file unreadable, and with it every finished block). Here a kill
at any moment loses at most the blocks in flight: finished block files are immutable and
temporary ones are ignored and removed. The cost is up to twice the final size on disk
while the blocks are assembled.

Resume: run the same command again. The work folder holds ``manifest.json`` with the
config; a different config (or shard) is refused with the differing keys named while the
folder holds finished blocks (a folder without any is discarded, and a run that fails before
finishing a block removes its folder). A complete target is never replaced without
``overwrite``.

Sizes and disks: before anything is simulated, the blocks in memory (one per worker), the
assembly's metadata and the files on disk (at the best compression our data reach) are
compared with the free memory and disk, and a sample must fit HDF5's 4 GiB chunk limit.
Block files are built in memory and written by Python, and the assembled file's space is
reserved before HDF5 writes into it: a full disk is a clean error naming the file (HDF5
itself crashes the process when a write fails), and the finished blocks stay for the resume.

Determinism: each sample's stimulus is a pure function of ``(seed, split, index)``
(:func:`ionfno.data.mixtures.sample_stimuli`) and the fast solver treats each sample of
a batch independently, so any block size, worker count, resume point or sharding gives the
same arrays.

Sharding: ``shard=(I, K)`` (0 <= I < K) takes, in every split with ``n`` samples, the
contiguous slice ``[floor(I n / K), floor((I+1) n / K))``. Its output is a dataset file of
that slice (with ``sample_index`` and a ``shard`` attribute); :func:`merge_shards` joins the
K files into the file a single run would have written (the same arrays and attributes; the
bytes may differ in HDF5 bookkeeping).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path, check_free_space, check_memory, check_writable, format_bytes, no_space_error
from .biomarkers import fires as _fires
from .mixtures import Mixture, load_mixture, sample_stimuli
from .storage import (
    FORMAT_VERSION,
    PROTOCOL_FIELDS,
    SAMPLE_FIELDS,
    SPLITS,
    DatasetError,
    StorageOptions,
    create_layout,
    file_image,
    open_dataset,
    protocol_arrays,
    readable_by_umask,
    reserve_space,
    write_file_image,
)

__all__ = [
    "SolverSettings",
    "GenerateConfig",
    "GenerateResult",
    "make_config",
    "config_diff",
    "parse_shard",
    "shard_range",
    "simulate_block",
    "generate_dataset",
    "merge_shards",
    "partial_dir",
    "finished_blocks",
]

_BLOCK_RE = re.compile(r"^(train|val|test)_(\d{7})_(\d{7})\.h5$")
_MANIFEST = "manifest.json"
# Target size of one block's float64 trajectories; sets the default block size. The compiled
# solver costs the same per sample at any batch size, so the block size only sets the memory
# per worker and how much a kill can lose; large blocks still amortise the HDF5 file overhead.
_BLOCK_BYTES = 256e6
# HDF5 limits one chunk to 4 GiB; a stored sample (all states, float32) is one chunk.
_MAX_CHUNK_BYTES = 2**32 - 1
# Bytes per sample and (state or current) value a block holds while simulated and written: the
# float64 trajectory, its float32 copy, a finiteness mask and the in-memory file image (17),
# and the current as float64, float32 and in the image (16); see _check_resources.
_BLOCK_BYTES_PER_VALUE = (17, 16)
# Memory per sample for the per-sample metadata gathered when the blocks are assembled.
_META_BYTES_PER_SAMPLE = 128
# Compression never shrinks the signals by more than this in our data (ORd with gzip: 2.6x;
# the all-zero t0 samples compress further): the disk check refuses only what cannot fit.
_MAX_COMPRESSION_RATIO = 10.0
# Every per-sample array a block carries into the dataset: name -> storage dtype.
_PER_SAMPLE: dict[str, str] = {**SAMPLE_FIELDS, **PROTOCOL_FIELDS}


@dataclass(frozen=True)
class SolverSettings:
    """Integrator settings recorded in the file (resolved: no ``None`` tolerances).

    Parameters
    ----------
    method : str
        Registry name in :data:`ionfno.solvers.SOLVERS` (``"fast"`` by default).
    rtol : float
        Relative tolerance.
    atol : list of float
        Absolute tolerance per state (model units).
    dt : float or None
        Fixed or initial step [ms]; None lets the solver choose.
    max_steps : int or None
        Step limit per sample; None for the solver's default.
    """

    method: str = "fast"
    rtol: float | None = None
    atol: list[float] | float | None = None
    dt: float | None = None
    max_steps: int | None = None


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that determines a dataset's contents (stored as JSON in the file).

    Parameters
    ----------
    model : str
        Registry name (``"fhn"``, ``"hh"``, ``"ord"``, ``"ord-epi"``, ``"ord-m"``).
    mixture : Mixture
        Stimulus mixture.
    counts : dict of str to int
        Samples per split.
    seed : int
        Dataset seed (>= 0).
    t_end : float
        Window [ms]; the grid is ``linspace(0, t_end, n_points)``.
    n_points : int
        Stored time points N.
    solver : SolverSettings
    storage : StorageOptions
    initial_state : str
        ``"default"``: the model's published initial state for every sample.
    """

    model: str
    mixture: Mixture
    counts: dict[str, int]
    seed: int
    t_end: float
    n_points: int
    solver: SolverSettings
    storage: StorageOptions = field(default_factory=StorageOptions)
    initial_state: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "mixture": self.mixture.to_dict(),
            "counts": {s: int(self.counts[s]) for s in SPLITS},
            "composition": {s: self.mixture.composition(s, self.counts[s]) for s in SPLITS},
            "seed": int(self.seed),
            "t_end": float(self.t_end),
            "n_points": int(self.n_points),
            "solver": dataclasses.asdict(self.solver),
            "storage": self.storage.to_dict(),
            "initial_state": self.initial_state,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenerateConfig:
        return cls(
            model=d["model"],
            mixture=load_mixture(d["mixture"]),
            counts={s: int(d["counts"][s]) for s in SPLITS},
            seed=int(d["seed"]),
            t_end=float(d["t_end"]),
            n_points=int(d["n_points"]),
            solver=SolverSettings(**d["solver"]),
            storage=StorageOptions(**d["storage"]),
            initial_state=d.get("initial_state", "default"),
        )

    @property
    def grid(self) -> np.ndarray:
        """The stored time grid, shape ``(n_points,)``."""
        return np.linspace(0.0, self.t_end, self.n_points)


@dataclass
class GenerateResult:
    """What a run did."""

    path: Path
    n_samples: int  # samples in the output file
    n_simulated: int  # samples simulated by this run (the rest were resumed)
    n_failed: int  # samples with a non-zero solver status in the output
    seconds: float  # wall time of this run


def make_config(
    model: str,
    *,
    mixture: str | os.PathLike | Mapping[str, Any] | Mixture | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    t_end: float | None = None,
    n_points: int | None = None,
    method: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dt: float | None = None,
    max_steps: int | None = None,
    storage: StorageOptions | None = None,
) -> GenerateConfig:
    """Build and validate a :class:`GenerateConfig`; defaults come from the mixture preset.

    Parameters
    ----------
    model : str
        Registry name.
    mixture : preset name, JSON path, dict or Mixture, optional
        Default: the preset of the model family (``ionfno/presets/mixtures/<family>.json``).
    n_train, n_val, n_test : int, optional
        Split sizes; parts are scaled by the largest-remainder rule (default: preset counts).
    seed : int
    t_end, n_points : optional
        Grid; default the mixture's, then the model's.
    method, rtol, atol, dt, max_steps
        Solver settings; None takes the mixture's ``solver`` entry, then the solver's default
        (``method="fast"``); an ``rtol`` without ``atol`` sets ``atol = rtol`` x each unit's
        floor. The resolved values are recorded.
    storage : StorageOptions, optional

    Raises
    ------
    ValueError
        Unknown model/solver/mixture, or invalid numbers (each named).
    """
    from ..ionic import get_model
    from ..solvers import SOLVERS

    m = get_model(model)
    if isinstance(mixture, Mixture):
        mix = mixture
    else:
        mix = load_mixture(mixture if mixture is not None else model.split("-")[0])
    mix.check_model(model)
    ms = mix.solver
    method = method if method is not None else ms.get("method", "fast")
    rtol = rtol if rtol is not None else ms.get("rtol")
    atol = atol if atol is not None else ms.get("atol")
    dt = dt if dt is not None else ms.get("dt")
    max_steps = max_steps if max_steps is not None else ms.get("max_steps")
    if method not in SOLVERS:
        raise ValueError(f"Unknown solver {method!r}; expected one of {sorted(SOLVERS)}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed}")
    t_end = float(t_end if t_end is not None else mix.t_end if mix.t_end is not None else m.t_end_default)
    n_points = int(
        n_points if n_points is not None else mix.n_points if mix.n_points is not None else m.n_points_default
    )
    if not (math.isfinite(t_end) and t_end > 0):
        raise ValueError(f"t_end must be a finite number > 0, got {t_end}")
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    sample_bytes = 4 * m.n_states * n_points
    if sample_bytes > _MAX_CHUNK_BYTES:
        raise ValueError(
            f"n_points={n_points} makes one stored {model} sample ({m.n_states} states, float32) "
            f"{format_bytes(sample_bytes)}, over HDF5's 4 GiB chunk limit; at most "
            f"{_MAX_CHUNK_BYTES // (4 * m.n_states)} points"
        )
    counts = {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test), strict=True):
        if n is not None and (int(n) != n or n < 0):
            raise ValueError(f"--n-{split} must be a whole number >= 0, got {n}")
        counts[split] = mix.default_count(split) if n is None else int(n)
        mix.composition(split, counts[split])  # fails early if a split cannot be scaled
    if sum(counts.values()) == 0:
        raise ValueError("The dataset would have no samples (all split sizes are 0)")
    solver = SOLVERS[method]
    d_rtol, d_atol = solver.default_tolerances(m)
    r = float(d_rtol if rtol is None else rtol)
    # atol follows rtol (x each unit's floor, the solvers' convention) unless given
    a = np.broadcast_to(np.asarray(d_atol * (r / d_rtol) if atol is None else atol, dtype=np.float64),
                        (m.n_states,))
    if not (r > 0 and np.all(a > 0)):
        raise ValueError("rtol and atol must be > 0")
    settings = SolverSettings(
        method=method,
        rtol=r,
        atol=[float(x) for x in a],
        dt=None if dt is None else float(dt),
        max_steps=None if max_steps is None else int(max_steps),
    )
    return GenerateConfig(
        model=model,
        mixture=mix,
        counts=counts,
        seed=int(seed),
        t_end=t_end,
        n_points=n_points,
        solver=settings,
        storage=storage or StorageOptions(),
    )


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, list) and d and isinstance(d[0], Mapping):
        out = {}
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: d}


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Keys (dotted paths) whose values differ between two config dicts, with both values."""
    fa, fb = _flatten(a), _flatten(b)
    out = []
    for k in sorted(set(fa) | set(fb)):
        va, vb = fa.get(k, "<absent>"), fb.get(k, "<absent>")
        if va != vb:
            sa, sb = (json.dumps(v)[:60] if not isinstance(v, str) else repr(v)[:60] for v in (va, vb))
            out.append(f"{k}: {sa} -> {sb}")
    return out


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``"I/K"`` (0 <= I < K) into ``(I, K)``; None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise ValueError(f"--shard must look like I/K with 0 <= I < K (e.g. 0/4), got {text!r}")
    i, k = int(m.group(1)), int(m.group(2))
    if k < 1 or i >= k:
        raise ValueError(f"--shard {text}: need K >= 1 and 0 <= I <= K-1 (shards are numbered from 0)")
    return i, k


def shard_range(n: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Samples ``[lo, hi)`` of a split of ``n`` samples that belong to ``shard``."""
    if shard is None:
        return 0, n
    i, k = shard
    return (i * n) // k, ((i + 1) * n) // k


def partial_dir(out: str | os.PathLike) -> Path:
    """The work folder of an unfinished run writing ``out``."""
    p = Path(out)
    return p.parent / f".{p.name}.partial"


def default_block_size(n_states: int, n_points: int) -> int:
    """Samples per block: about 256 MB of float64 trajectories, between 16 and 512.

    ORd on 2520 points: 309 samples; FHN and HH on 5040 points: 512.
    """
    return int(min(512, max(16, _BLOCK_BYTES // (8 * n_states * n_points))))


# ------------------------------------------------------------------------------ one block
_MODEL_CACHE: dict[str, Any] = {}


def simulate_block(config: GenerateConfig, split: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """Simulate samples ``[start, stop)`` of ``split``; float64 trajectories and metadata.

    A sample the solver reports as successful but whose states are not finite, or do not
    fit float32 (|x| > 3.4e38), gets status ``NONFINITE``: the file never holds a status-0
    sample that a reader cannot use.

    Returns
    -------
    dict
        ``states`` (b, n_states, N) float64, ``states32`` the same as float32 (what is
        stored), ``i_app`` (b, N) float64, ``amplitude``,
        ``duration``, ``onset`` (b,), ``part`` (b,) str, ``status`` (b,) int8, ``fires`` (b,)
        bool (False for failed samples), ``index`` (b,) int64, and the protocol arrays
        (:data:`~ionfno.data.storage.PROTOCOL_FIELDS`: ``protocol``, ``n_pulses``, ``pulse_*``).
    """
    from ..ionic import get_model
    from ..solvers import simulate

    model = _MODEL_CACHE.get(config.model)
    if model is None:
        model = _MODEL_CACHE.setdefault(config.model, get_model(config.model))
    p, stim = sample_stimuli(
        config.mixture,
        seed=config.seed,
        split=split,
        t=config.grid,
        n=config.counts[split],
        t_end=config.t_end,
        indices=np.arange(start, stop),
    )
    s = config.solver
    traj = simulate(
        model,
        stim,
        t_end=config.t_end,
        t_eval=config.grid,
        method=s.method,
        rtol=s.rtol,
        atol=None if s.atol is None else np.asarray(s.atol),
        dt=s.dt,
        max_steps=s.max_steps,
        threads=1,  # one core per block: parallelism comes from the workers (``generate_dataset``)
    )
    from ..solvers import Status

    status = np.asarray(traj.status, dtype=np.int8).copy()
    with np.errstate(over="ignore", invalid="ignore"):
        states32 = traj.states.astype(np.float32)
    unusable = (status == Status.OK) & ~np.isfinite(states32).all(axis=(1, 2))
    if unusable.any():
        status[unusable] = Status.NONFINITE
        import warnings

        warnings.warn(
            f"{int(unusable.sum())} sample(s) of {split} [{start}, {stop}) reported success but hold "
            f"non-finite or float32-overflowing values; flagged NONFINITE",
            stacklevel=2,
        )
    V = traj.states[:, model.state_index("V"), :]
    return {
        "states": traj.states,
        "states32": states32,
        "i_app": traj.i_app,
        "amplitude": p["amplitude"],
        "duration": p["duration"],
        "onset": p["onset"],
        "part": p["part"],
        "status": status,
        "fires": _fires(config.model, V) & (status == 0),
        "index": p["index"],
        **{name: p[name] for name in PROTOCOL_FIELDS},
    }


def _write_block_file(
    path: Path, config: GenerateConfig, split: str, start: int, data: Mapping[str, Any]
) -> None:
    import h5py

    b, S, N = data["states"].shape
    kw = config.storage.h5_kwargs()

    def build(f: Any) -> None:
        f.create_dataset("states", data=data["states32"], chunks=(1, S, N), **kw)
        f.create_dataset("i_app", data=data["i_app"].astype(np.float32), chunks=(1, N), **kw)
        for name, dt in _PER_SAMPLE.items():
            v = np.asarray(data[name])
            f.create_dataset(
                name,
                data=v.astype(object) if dt == "str" else v.astype(dt),
                dtype=h5py.string_dtype() if dt == "str" else dt,
            )
        f.attrs["split"] = split
        f.attrs["start"] = start

    # Built in memory, written by Python: a full disk is an OSError naming the file, never a
    # failed HDF5 write (which crashed the process, see storage.reserve_space).
    write_file_image(path, build)


def _run_block(
    config_json: str, workdir: str, split: str, start: int, stop: int
) -> tuple[str, int, int, int]:
    """Worker entry point: simulate one block and write its file; returns (split, start, stop, n_failed)."""
    config = _config_from_json(config_json)
    data = simulate_block(config, split, start, stop)
    _write_block_file(Path(workdir) / _block_name(split, start, stop), config, split, start, data)
    return split, start, stop, int(np.count_nonzero(data["status"]))


def _run_block_star(job: tuple[str, str, str, int, int]) -> tuple[str, int, int, int]:
    return _run_block(*job)


_CONFIG_CACHE: dict[str, GenerateConfig] = {}


def _config_from_json(text: str) -> GenerateConfig:
    c = _CONFIG_CACHE.get(text)
    if c is None:
        c = _CONFIG_CACHE.setdefault(text, GenerateConfig.from_dict(json.loads(text)))
    return c


def _block_name(split: str, start: int, stop: int) -> str:
    return f"{split}_{start:07d}_{stop:07d}.h5"


def _worker_init() -> None:
    # Die with the parent: a killed `ionfno generate` must not leave workers simulating.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() == 1:  # the parent died before prctl
                os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C


# ------------------------------------------------------------------------------ the run
def _root_attrs(config: GenerateConfig) -> dict[str, Any]:
    from .. import __version__
    from ..ionic import get_model

    m = get_model(config.model)
    return {
        "model": config.model,
        "model_version": str(getattr(m, "version", "")),
        "model_variant": str(getattr(m, "celltype", "")),
        "state_names": list(m.state_names),
        "state_units": list(m.state_units),
        "time_unit": m.time_unit,
        "current_unit": m.current_unit,
        "config": config.to_json(),
        "seed": int(config.seed),
        "ionfno_version": __version__,
        "mixture": config.mixture.name,
        "counts": {s: int(config.counts[s]) for s in SPLITS},
    }


def _is_complete_dataset(path: Path) -> dict[str, Any] | None:
    try:
        with open_dataset(path) as f:
            return json.loads(f.attrs["config"])
    except (DatasetError, KeyError, json.JSONDecodeError):
        return None


def _scan_blocks(workdir: Path) -> dict[str, list[tuple[int, int]]]:
    done: dict[str, list[tuple[int, int]]] = {s: [] for s in SPLITS}
    for p in workdir.iterdir():
        m = _BLOCK_RE.match(p.name)
        if m:
            done[m.group(1)].append((int(m.group(2)), int(m.group(3))))
        elif ".tmp" in p.name:  # an unfinished block of a killed run
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    for s in SPLITS:
        done[s].sort()
    return done


def _missing(lo: int, hi: int, done: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    gaps, pos = [], lo
    for a, b in done:
        if a > pos:
            gaps.append((pos, min(a, hi)))
        pos = max(pos, b)
    if pos < hi:
        gaps.append((pos, hi))
    return [(a, b) for a, b in gaps if b > a]


def _open_workdir(workdir: Path, manifest: dict[str, Any], restart: bool) -> None:
    mpath = workdir / _MANIFEST
    if workdir.exists() and restart:
        shutil.rmtree(workdir)
    if workdir.exists():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        has_blocks = any(_BLOCK_RE.match(p.name) for p in workdir.iterdir())
        diff = [] if old is None else config_diff(old, manifest)
        if old is None or (diff and not has_blocks):
            # Killed before the manifest was written, or a run that failed before finishing
            # any block (e.g. refused as too large): nothing to keep.
            shutil.rmtree(workdir)
        else:
            if diff:
                raise ValueError(
                    f"An unfinished run with a different configuration is in {str(workdir)!r}; "
                    f"refusing to mix them. Differences (unfinished -> requested): {'; '.join(diff)}. "
                    f"Rerun with the same settings to resume, or pass --restart to discard it."
                )
            return
    workdir.mkdir()
    with atomic_path(mpath) as tmp:
        tmp.write_text(json.dumps(manifest, sort_keys=True, indent=1))


def generate_dataset(
    config: GenerateConfig,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    batch_size: int | None = None,
    shard: tuple[int, int] | None = None,
    overwrite: bool = False,
    restart: bool = False,
    progress: bool = True,
) -> GenerateResult:
    """Simulate ``config`` and write the dataset file ``out`` (resuming an unfinished run).

    Parameters
    ----------
    config : GenerateConfig
    out : path-like
        Target ``.h5`` file; it appears only when complete.
    workers : int
        Processes simulating blocks (each single-threaded); 1 runs in this process.
    batch_size : int, optional
        Samples per block (the solver's batch); default :func:`default_block_size`.
        Does not change the data.
    shard : (I, K), optional
        Generate only slice ``I`` of ``K`` (see the module docstring).
    overwrite : bool
        Replace a complete existing ``out``.
    restart : bool
        Discard an unfinished run's blocks instead of resuming them.
    progress : bool
        Show a tqdm bar (samples/s, time left) on stderr.

    Raises
    ------
    FileExistsError
        ``out`` is a complete dataset and ``overwrite`` is False.
    ValueError
        An unfinished run with another config or shard exists (the differences are listed).
    """
    t0 = time.perf_counter()
    out = check_writable(out)
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    n_cpu = os.cpu_count() or 1
    if workers > n_cpu:
        raise ValueError(f"--workers {workers} exceeds the {n_cpu} CPU cores of this machine")
    from ..ionic import get_model

    n_states = get_model(config.model).n_states
    bs = default_block_size(n_states, config.n_points) if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    workdir = partial_dir(out)
    if out.exists() and not overwrite:
        existing = _is_complete_dataset(out)
        same = existing is not None and not config_diff(existing, config.to_dict())
        raise FileExistsError(
            f"{str(out)!r} already exists"
            + (" (a complete dataset with this same configuration)" if same else "")
            + "; pass --overwrite to replace it"
        )
    ranges = {s: shard_range(config.counts[s], shard) for s in SPLITS}
    n_mine = sum(hi - lo for lo, hi in ranges.values())
    _check_memory(config, n_states, n_mine, bs, workers)
    manifest = {"config": config.to_dict(), "shard": None if shard is None else f"{shard[0]}/{shard[1]}"}
    _open_workdir(workdir, manifest, restart)
    try:
        done = _scan_blocks(workdir)
        tasks = []
        for s in SPLITS:
            for a, b in _missing(*ranges[s], done[s]):
                tasks.extend((s, k, min(k + bs, b)) for k in range(a, b, bs))
        n_todo = sum(b - a for _, a, b in tasks)
        _check_disk(config, n_states, out, n_mine, n_todo)
        config_json = config.to_json()
        _execute(
            tasks,
            config_json,
            workdir,
            workers=workers,
            total=n_mine,
            initial=n_mine - n_todo,
            progress=progress,
            desc=f"{config.model} {out.name}",
        )
        n_failed = _assemble(out, config, workdir, ranges, shard)
    except BaseException as e:
        # Keep finished blocks for the next run (resume); a work folder without any holds
        # nothing worth keeping, and must not stand in the way of a corrected command.
        n_kept = finished_blocks(out)
        if not n_kept:
            shutil.rmtree(workdir, ignore_errors=True)
        elif isinstance(e, OSError) and e.errno == errno.ENOSPC and "run the same command" not in str(e):
            raise OSError(
                errno.ENOSPC,
                f"{e.strerror}; the {n_kept} finished block(s) stay in {str(workdir)!r}: "
                "free space and run the same command again to resume",
            ) from None
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    return GenerateResult(out, n_mine, n_todo, n_failed, time.perf_counter() - t0)


def finished_blocks(out: str | os.PathLike) -> int:
    """Number of finished block files in the work folder of an unfinished run writing ``out``."""
    workdir = partial_dir(out)
    if not workdir.is_dir():
        return 0
    return sum(1 for p in workdir.iterdir() if _BLOCK_RE.match(p.name))


def _raw_bytes(n_states: int, n_points: int, n_samples: int) -> float:
    """Uncompressed float32 size of ``n_samples`` stored samples (states and current)."""
    return 4.0 * n_samples * (n_states + 1) * n_points


def _check_memory(config: GenerateConfig, n_states: int, n_samples: int, block: int, workers: int) -> None:
    """Refuse, before simulating, a run whose blocks or metadata cannot fit in memory."""
    per_value_states, per_value_current = _BLOCK_BYTES_PER_VALUE
    per_block = block * config.n_points * (per_value_states * n_states + per_value_current)
    check_memory(
        workers * per_block + n_samples * _META_BYTES_PER_SAMPLE + 16 * config.n_points,
        f"simulating {workers} block(s) of {block} samples x {config.n_points} points "
        f"({n_samples} samples in all)",
        hint="use fewer points (--n-points), a smaller --batch-size, fewer --workers or fewer samples",
    )


def _check_disk(config: GenerateConfig, n_states: int, out: Path, n_samples: int, n_todo: int) -> None:
    """Refuse a run whose blocks and file cannot fit on the disk even at the best compression."""
    ratio = 1.0 if config.storage.compression == "none" else _MAX_COMPRESSION_RATIO
    raw_all = _raw_bytes(n_states, config.n_points, n_samples)
    need = (_raw_bytes(n_states, config.n_points, n_todo) + raw_all) / ratio
    check_free_space(
        out,
        need,
        f"{n_samples} samples of {config.n_points} points ({format_bytes(raw_all)} uncompressed; the "
        "blocks and the assembled file are on disk together at the end)",
        hint="use fewer samples or points, or another folder",
    )


def _execute(
    tasks: list[tuple[str, int, int]],
    config_json: str,
    workdir: Path,
    *,
    workers: int,
    total: int,
    initial: int,
    progress: bool,
    desc: str,
) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=initial,
        unit="sample",
        desc=desc,
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    try:
        if workers == 1 or len(tasks) <= 1:
            for s, a, b in tasks:
                _run_block(config_json, str(workdir), s, a, b)
                bar.update(b - a)
            return
        import multiprocessing as mp

        # Workers are single-threaded: W workers use W cores. Inherited by spawned children.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        # spawn, not fork: the parent may hold threads (tqdm's monitor) and open HDF5 handles.
        pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init)
        try:
            jobs = [(config_json, str(workdir), s, a, b) for s, a, b in tasks]
            for _, a, b, _ in pool.imap_unordered(_run_block_star, jobs, chunksize=1):
                bar.update(b - a)
            pool.close()
        except BaseException:
            # Ctrl-C or a failed block: stop now; finished blocks stay in the work folder.
            pool.terminate()
            raise
        finally:
            pool.join()
    finally:
        bar.close()


def _copy_rows(
    src: Any, dst: Any, src_rows: Iterable[int], dst_rows: Iterable[int], *, verify: bool = False
) -> None:
    """Copy whole chunks (one sample each) without recompressing them.

    A raw chunk copy skips the filters, Fletcher-32 included: with ``verify`` each chunk is
    also read through them (decompressed and checksummed) first, so a damaged chunk is a
    :class:`DatasetError` naming the file and the sample instead of a silent copy.
    """
    tail = (0,) * (len(src.shape) - 1)
    for r, q in zip(src_rows, dst_rows, strict=True):
        if verify:
            try:
                src[int(r)]
            except (OSError, RuntimeError) as e:
                raise DatasetError(
                    f"{src.file.filename!r}: {src.name} of sample {int(r)} is damaged (checksum or "
                    f"decompression failed: {str(e).splitlines()[0]}); regenerate this file"
                ) from None
        mask, data = src.id.read_direct_chunk((int(r), *tail))
        dst.id.write_direct_chunk((int(q), *tail), data, mask)


def _copy_into(out: Path, layout: Any, sources: Sequence[Path], copy: Any, keep: str) -> Any:
    """Write ``out`` atomically: the layout (built in memory), then ``copy(h5py.File)`` into it.

    The chunks are copied as they are, so the file takes about the sources' size: that much
    is reserved on disk first (:func:`storage.reserve_space`), so that a full disk is a clean
    error before HDF5 writes anything. Any failure leaves ``out`` as it was.

    Parameters
    ----------
    keep : str
        What the caller keeps for a retry, for the message ("the finished blocks stay in ...").
    """
    import h5py

    need = sum(p.stat().st_size for p in sources)
    with atomic_path(out) as tmp:
        readable_by_umask(tmp)
        tmp.write_bytes(file_image(layout))
        need = int(need * 1.02) + (1 << 20)  # + the final file's own chunk index
        try:
            reserve_space(tmp, need)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise no_space_error(out, f"it needs about {format_bytes(need)}; {keep}") from None
            raise
        try:
            with h5py.File(tmp, "r+") as f:
                return copy(f)
        except (OSError, RuntimeError) as e:
            if isinstance(e, OSError) and e.errno == errno.ENOSPC or "No space left" in str(e):
                raise no_space_error(out, keep) from None
            raise OSError(f"Writing {str(out)!r} failed: {str(e).splitlines()[0]}; {keep}") from None


def _assemble(
    out: Path,
    config: GenerateConfig,
    workdir: Path,
    ranges: Mapping[str, tuple[int, int]],
    shard: tuple[int, int] | None,
) -> int:
    done = _scan_blocks(workdir)
    sizes = {s: hi - lo for s, (lo, hi) in ranges.items()}
    attrs = _root_attrs(config)
    if shard is not None:
        attrs["shard"] = f"{shard[0]}/{shard[1]}"

    def layout(f: Any) -> None:
        create_layout(
            f,
            t=config.grid,
            n_states=len(attrs["state_names"]),
            counts=sizes,
            attrs=attrs,
            storage=config.storage,
            sample_index=shard is not None,
            n_pulses=config.mixture.max_pulses,
        )

    blocks = [workdir / _block_name(s, a, b) for s in SPLITS for a, b in done[s]]
    keep = f"the finished blocks stay in {str(workdir)!r}: free space and run the same command again"
    return _copy_into(out, layout, blocks, lambda f: _copy_blocks(f, workdir, done, ranges, shard), keep)


def _copy_blocks(
    f: Any,
    workdir: Path,
    done: Mapping[str, list[tuple[int, int]]],
    ranges: Mapping[str, tuple[int, int]],
    shard: tuple[int, int] | None,
) -> int:
    import h5py

    n_failed = 0
    for s in SPLITS:
        lo, hi = ranges[s]
        blocks = [(a, b) for a, b in done[s] if lo <= a and b <= hi]
        if _missing(lo, hi, blocks) or sum(b - a for a, b in blocks) != hi - lo:
            raise RuntimeError(f"Blocks of split {s!r} do not tile [{lo}, {hi}) in {workdir}: {blocks}")
        fields: dict[str, list] = {name: [] for name in _PER_SAMPLE}
        for a, b in blocks:
            with h5py.File(workdir / _block_name(s, a, b), "r") as bf:
                rows = range(b - a)
                _copy_rows(bf["states"], f[s]["states"], rows, range(a - lo, b - lo))
                _copy_rows(bf["i_app"], f[s]["i_app"], rows, range(a - lo, b - lo))
                for name in _PER_SAMPLE:
                    fields[name].append(_read_field(bf[name], name))
        _write_fields(f[s], fields)
        n_failed += int(np.count_nonzero(f[s]["status"][()]))
        if shard is not None:
            f[s]["sample_index"][...] = np.arange(lo, hi)
    return n_failed


def _read_field(ds: Any, name: str) -> np.ndarray:
    """A per-sample array of a block or shard file (strings decoded)."""
    return ds.asstr()[()] if _PER_SAMPLE[name] == "str" and ds.shape[0] else ds[()]


def _write_fields(g: Any, fields: Mapping[str, list]) -> None:
    """Write the per-sample arrays gathered from blocks or shards, in order, into split ``g``."""
    for name, parts in fields.items():
        if parts:
            v = np.concatenate(parts)
            if v.size:
                g[name][...] = v.astype(object) if _PER_SAMPLE[name] == "str" else v


# ------------------------------------------------------------------------------ merge
def merge_shards(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Join the K shard files of one configuration into the single-run dataset file.

    Parameters
    ----------
    paths : sequence of path-like
        Every shard file ``0/K .. K-1/K`` exactly once, in any order.
    out : path-like
        Output file (written atomically).
    overwrite : bool
        Replace an existing ``out``.

    Raises
    ------
    ValueError
        Files that are not shards, different configurations, missing/duplicated shards
        (all named).
    DatasetError
        A shard's chunk fails its checksum or cannot be decompressed (the file and sample are
        named); nothing is written.
    OSError
        Not enough disk space for the output (checked before writing).
    """
    import h5py

    out = check_writable(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{str(out)!r} already exists; pass --overwrite to replace it")
    if not paths:
        raise ValueError("merge needs at least one shard file")
    shards: dict[int, Path] = {}
    ref_cfg, ref_k, ref_attrs = None, None, None
    for p in map(Path, paths):
        if p.resolve() == out.resolve():
            raise ValueError(f"The output {str(out)!r} is also an input")
        with open_dataset(p) as f:
            attrs = {k: f.attrs[k] for k in f.attrs}
        if "shard" not in attrs:
            raise ValueError(f"{str(p)!r} is not a shard file (no 'shard' attribute)")
        i, k = parse_shard(str(attrs["shard"]))  # type: ignore[misc]
        if ref_cfg is None:
            ref_cfg, ref_k, ref_attrs = attrs["config"], k, attrs
        else:
            if attrs["config"] != ref_cfg:
                diff = config_diff(json.loads(ref_cfg), json.loads(attrs["config"]))
                raise ValueError(f"{str(p)!r} was generated with another configuration: {'; '.join(diff)}")
            if k != ref_k:
                raise ValueError(f"{str(p)!r} is shard {i}/{k} but others are out of {ref_k}")
        if i in shards:
            raise ValueError(f"Shard {i}/{k} given twice: {str(shards[i])!r} and {str(p)!r}")
        shards[i] = p
    missing = sorted(set(range(ref_k)) - set(shards))  # type: ignore[arg-type]
    if missing:
        raise ValueError(f"Missing shard(s) {[f'{i}/{ref_k}' for i in missing]}")
    config = GenerateConfig.from_dict(json.loads(ref_cfg))  # type: ignore[arg-type]
    # The layout of this ionfno (create_layout) sets format, format_version and coordinates.
    attrs = {
        k: v
        for k, v in ref_attrs.items()  # type: ignore[union-attr]
        if k not in ("shard", "format", "format_version", "coordinates")
    }
    def layout(f: Any) -> None:
        create_layout(
            f,
            t=config.grid,
            n_states=len(json.loads(attrs["state_names"])),
            counts=config.counts,
            attrs=attrs,
            storage=config.storage,
            n_pulses=config.mixture.max_pulses,
        )

    def copy(f: Any) -> None:
        for s in SPLITS:
            fields: dict[str, list] = {name: [] for name in _PER_SAMPLE}
            covered = np.zeros(config.counts[s], dtype=bool)
            for i in range(ref_k):  # type: ignore[arg-type]
                with h5py.File(shards[i], "r") as sf:
                    g = sf[s]
                    idx = g["sample_index"][()]
                    lo, hi = shard_range(config.counts[s], (i, ref_k))  # type: ignore[arg-type]
                    if not np.array_equal(idx, np.arange(lo, hi)):
                        raise ValueError(
                            f"{str(shards[i])!r}: split {s!r} does not hold samples [{lo}, {hi})"
                        )
                    covered[idx] = True
                    _copy_rows(g["states"], f[s]["states"], range(idx.size), idx, verify=True)
                    _copy_rows(g["i_app"], f[s]["i_app"], range(idx.size), idx, verify=True)
                    # A shard of format 1-2 has no protocol arrays: one pulse per sample.
                    legacy = protocol_arrays({}, idx.size, config.mixture.max_pulses,
                                             default={k: g[k][()] for k in ("amplitude", "duration", "onset")})
                    for name in _PER_SAMPLE:
                        fields[name].append(_read_field(g[name], name) if name in g else legacy[name])
            if not covered.all():
                raise ValueError(
                    f"Split {s!r}: samples {np.flatnonzero(~covered)[:10].tolist()}... not covered"
                )
            _write_fields(f[s], fields)

    _copy_into(out, layout, list(shards.values()), copy, "the shard files are unchanged")
    return out
