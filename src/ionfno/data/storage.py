"""The dataset file: one self-describing HDF5 file per dataset, and its reader.

Layout (``format = "ionfno-dataset"``, ``format_version = 3``; docs/dataset-format.md is the
full description, the contract with the training code and with other tools)::

    /                      attrs: format, format_version, model, model_version, model_variant,
                                  state_names (JSON list), state_units (JSON list), time_unit,
                                  current_unit, config (JSON of the generation config), seed,
                                  ionfno_version, counts (JSON {split: n}), coordinates
    /t                     (t,) float64                 the grid linspace(0, t_end, N) [time_unit]
    /state                 (state,) str                 state names, model order
    /state_units           (state,) str                 unit of each state
    /{split}/sample        (sample,) int64              0 .. n-1, position in the split
    /{split}/i_app         (sample, t) float32          sampled applied current [current_unit]
    /{split}/states        (sample, state, t) float32   every state, model order and units
    /pulse                 (pulse,) int64               0 .. K-1, position of a pulse in its sample
    /{split}/amplitude     (sample,) float64            (first) pulse amplitude A [current_unit]
    /{split}/duration      (sample,) float64            (first) pulse length T_stim [time_unit]
    /{split}/onset         (sample,) float64            (first) pulse start [time_unit]
    /{split}/part          (sample,) str                mixture part label ("t0", "general", ...)
    /{split}/status        (sample,) int8               solver status (0 ok; see ionfno.solvers.Status)
    /{split}/fires         (sample,) bool               V crossed the model's firing threshold
    /{split}/protocol      (sample,) str                "pulses" or "waveform" (the stimulus's form)
    /{split}/n_pulses      (sample,) int64              pulses of the sample (0 for a waveform)
    /{split}/pulse_amplitude (sample, pulse) float64    every pulse's amplitude, padded with 0
    /{split}/pulse_duration  (sample, pulse) float64    every pulse's length, padded with 0
    /{split}/pulse_onset     (sample, pulse) float64    every pulse's start, padded with 0

The stimulus of every sample can be rebuilt exactly from the file: ``"pulses"`` samples are
the sum of their ``n_pulses`` rectangular pulses; a ``"waveform"`` sample (smooth random
currents) is the piecewise-linear current whose knots are its ``i_app`` on ``t`` (the
generator rounds the knots to float32, so the stored values are the waveform itself). For a
waveform sample, ``amplitude`` is its largest deviation from its mean level, ``duration`` the
window and ``onset`` 0.

Splits are ``"train"``, ``"val"`` and ``"test"``. ``t``, ``state`` and each split's ``sample``
are HDF5 dimension scales attached to every array (the netCDF-4 convention), and every array
has ``long_name`` and, where it has one, ``units``: xarray opens the file without arguments
(``xarray.open_datatree(path, engine="h5netcdf")``), with the state names as a coordinate.
The two large arrays are chunked one sample per chunk (a sample is read without touching its
neighbours), compressed, and carry a Fletcher-32 checksum per chunk, so a flipped bit is
reported on read instead of being trained on. A shard file (``ionfno generate --shard I/K``)
has the same layout for its slice of samples plus ``/{split}/sample_index`` (global sample
numbers) and a root ``shard`` attribute.

Version 1 files (before the dimension scales, ``/state``, ``/state_units`` and
``/{split}/sample``) are read as before; xarray sees them with anonymous dimensions.
Versions 1 and 2 (before the per-pulse protocol arrays) hold one pulse per sample, and
:func:`read_split` gives them the arrays of version 3 (``n_pulses = 1``, one column).

Storage is float32 (the simulation is float64); :func:`read_split` casts once, to the
``dtype`` it is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SPLITS",
    "SAMPLE_FIELDS",
    "DatasetError",
    "StorageOptions",
    "dataset_info",
    "read_split",
    "split_sizes",
    "write_arrays",
    "create_layout",
    "open_dataset",
    "reserve_space",
    "write_file_image",
    "file_image",
    "dataset_fingerprint",
    "PROTOCOL_FIELDS",
    "protocol_arrays",
]

FORMAT = "ionfno-dataset"
FORMAT_VERSION = 3
# Versions this reader opens: 1 has no dimension scales (not xarray-readable); 1 and 2 have no
# per-pulse protocol (one pulse per sample, given by amplitude, duration and onset).
READABLE_VERSIONS = (1, 2, 3)
SPLITS: tuple[str, ...] = ("train", "val", "test")
# Per-sample metadata arrays, each (n,): name -> storage dtype ("str" = UTF-8 variable length).
SAMPLE_FIELDS: dict[str, str] = {
    "amplitude": "float64",
    "duration": "float64",
    "onset": "float64",
    "part": "str",
    "status": "int8",
    "fires": "bool",
}
# The stimulus protocol of every sample (version 3): name -> storage dtype; the pulse_* arrays
# are (sample, pulse), the others (sample,).
PROTOCOL_FIELDS: dict[str, str] = {
    "protocol": "str",
    "n_pulses": "int64",
    "pulse_amplitude": "float64",
    "pulse_duration": "float64",
    "pulse_onset": "float64",
}
_PULSE_ARRAYS = ("pulse_amplitude", "pulse_duration", "pulse_onset")
_JSON_ATTRS = ("state_names", "state_units", "config", "counts")
# CF flag_values/flag_meanings of /{split}/status: the codes of ionfno.solvers.Status
# (tests/data/test_storage.py checks they agree).
STATUS_FLAGS: dict[int, str] = {0: "ok", 1: "nonfinite", 2: "max_steps", 3: "solver_error"}


class DatasetError(ValueError):
    """A file is missing, truncated, corrupted, or not an ionfno dataset."""


@dataclass(frozen=True)
class StorageOptions:
    """How the large arrays are stored (does not change their values).

    Parameters
    ----------
    compression : {"gzip", "lzf", "none"}
        HDF5 filter for ``i_app`` and ``states``; gzip is portable (any HDF5 reader), lzf is
        faster but h5py-specific.
    compression_opts : int or None
        gzip level 0-9 (ignored for lzf/none). Level 1 is the default: on ORd trajectories
        (float32, with shuffle) it kept 97 % of level 4's ratio (2.64 vs 2.72) and wrote
        1.3x and read 1.6x faster; without shuffle the ratio was only 1.66.
    shuffle : bool
        Byte-shuffle filter before compression (groups the float32 exponent bytes).
    fletcher32 : bool
        Per-chunk checksum, so corrupted data fails loudly on read.
    """

    compression: Literal["gzip", "lzf", "none"] = "gzip"
    compression_opts: int | None = 1
    shuffle: bool = True
    fletcher32: bool = True

    def __post_init__(self) -> None:
        if self.compression not in ("gzip", "lzf", "none"):
            raise ValueError(
                f"Unknown compression {self.compression!r}; expected one of ['gzip', 'lzf', 'none']"
            )
        if self.compression == "gzip" and not (
            self.compression_opts is None or 0 <= int(self.compression_opts) <= 9
        ):
            raise ValueError(f"gzip level must be 0..9, got {self.compression_opts}")

    def h5_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"shuffle": self.shuffle, "fletcher32": self.fletcher32}
        if self.compression != "none":
            kw["compression"] = self.compression
            if self.compression == "gzip":
                kw["compression_opts"] = 1 if self.compression_opts is None else int(self.compression_opts)
        return kw

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------- writing
def create_layout(
    f: Any,
    *,
    t: np.ndarray,
    n_states: int,
    counts: Mapping[str, int],
    attrs: Mapping[str, Any],
    storage: StorageOptions | None = None,
    sample_index: bool = False,
    n_pulses: int = 1,
) -> None:
    """Create every dataset of the layout in an open, empty ``h5py.File``.

    Parameters
    ----------
    f : h5py.File
        Open for writing.
    t : ndarray, shape (N,)
        Time grid [time_unit].
    n_states : int
        Number of state channels.
    counts : mapping of str to int
        Samples per split (every split in :data:`SPLITS`; 0 allowed).
    attrs : mapping
        Root attributes; lists/dicts under ``state_names``, ``state_units``, ``config`` and
        ``counts`` are stored as JSON strings.
    storage : StorageOptions, optional
        Compression settings (default gzip 1 + shuffle + Fletcher-32).
    sample_index : bool
        Also create ``/{split}/sample_index`` (shard files).
    n_pulses : int
        Width ``K`` of the per-pulse arrays (the most pulses a sample holds), >= 1.
    """
    import h5py

    storage = storage or StorageOptions()
    t = np.asarray(t, dtype=np.float64)
    N = t.shape[0]
    root = dict(attrs)
    names = _as_list(root.get("state_names", [f"state{i}" for i in range(n_states)]))
    units = _as_list(root.get("state_units", [""] * n_states))
    if len(names) != n_states or len(units) != n_states:
        raise ValueError(f"{n_states} states but {len(names)} state_names and {len(units)} state_units")
    time_unit, current_unit = str(root.get("time_unit", "ms")), str(root.get("current_unit", ""))
    text = h5py.string_dtype()
    # The dimension scales (netCDF-4 dimensions): t, state, and each split's sample.
    dim_t = f.create_dataset("t", data=t)
    dim_t.make_scale("t")
    _describe(dim_t, "time", time_unit)
    dim_state = f.create_dataset("state", data=np.array(names, dtype=object), dtype=text)
    dim_state.make_scale("state")
    _describe(dim_state, "state variable of the ionic model (model order)")
    su = f.create_dataset("state_units", data=np.array(units, dtype=object), dtype=text)
    _describe(su, "unit of each state variable")
    su.dims[0].attach_scale(dim_state)
    if int(n_pulses) < 1:
        raise ValueError(f"n_pulses must be >= 1, got {n_pulses}")
    dim_pulse = f.create_dataset("pulse", data=np.arange(int(n_pulses), dtype=np.int64))
    dim_pulse.make_scale("pulse")
    _describe(dim_pulse, "position of a pulse in its sample's protocol")
    kw = storage.h5_kwargs()
    for split in SPLITS:
        n = int(counts.get(split, 0))
        g = f.create_group(split)
        dim_sample = g.create_dataset("sample", data=np.arange(n, dtype=np.int64))
        dim_sample.make_scale("sample")
        _describe(dim_sample, f"position of the sample in the {split} split")
        # h5py refuses zero-sized chunks: empty splits are stored unchunked.
        ckw = kw if n > 0 else {}
        ds = g.create_dataset("i_app", shape=(n, N), dtype="float32", chunks=(1, N) if n else None, **ckw)
        _describe(ds, "applied current sampled on t", current_unit, dims=(dim_sample, dim_t))
        ds = g.create_dataset(
            "states", shape=(n, n_states, N), dtype="float32", chunks=(1, n_states, N) if n else None, **ckw
        )
        # One array for every state: the units differ per state, so they are the state_units
        # coordinate rather than one `units` attribute.
        _describe(ds, "state variables (units in state_units)", dims=(dim_sample, dim_state, dim_t))
        for name, dt in SAMPLE_FIELDS.items():
            ds = g.create_dataset(name, shape=(n,), dtype=text if dt == "str" else dt)
            long_name, unit = _FIELD_DESCRIPTIONS[name]
            unit = {"current": current_unit, "time": time_unit}.get(unit, unit)
            _describe(ds, long_name, unit, dims=(dim_sample,))
        for name, dt in PROTOCOL_FIELDS.items():
            wide = name in _PULSE_ARRAYS
            ds = g.create_dataset(
                name, shape=(n, int(n_pulses)) if wide else (n,), dtype=text if dt == "str" else dt
            )
            long_name, unit = _FIELD_DESCRIPTIONS[name]
            unit = {"current": current_unit, "time": time_unit}.get(unit, unit)
            _describe(ds, long_name, unit, dims=(dim_sample, dim_pulse) if wide else (dim_sample,))
        g["status"].attrs["flag_values"] = np.array(sorted(STATUS_FLAGS), dtype=np.int8)
        g["status"].attrs["flag_meanings"] = " ".join(STATUS_FLAGS[k] for k in sorted(STATUS_FLAGS))
        if sample_index:
            ds = g.create_dataset("sample_index", shape=(n,), dtype="int64")
            _describe(ds, "sample number in the whole dataset (this file is one shard)", dims=(dim_sample,))
    root["format"] = FORMAT
    root["format_version"] = FORMAT_VERSION
    root.setdefault("counts", {s: int(counts.get(s, 0)) for s in SPLITS})
    root["coordinates"] = "state_units"  # CF: state_units is a coordinate of the state dimension
    for k, v in root.items():
        f.attrs[k] = json.dumps(v, sort_keys=True) if k in _JSON_ATTRS and not isinstance(v, str) else v


# Per-sample arrays: long_name and unit ("current"/"time" = the file's units, else literal).
_FIELD_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "amplitude": ("pulse amplitude A", "current"),
    "duration": ("pulse duration T_stim", "time"),
    "onset": ("pulse start", "time"),
    "part": ("mixture part the sample was drawn from", ""),
    "status": ("solver status (0 = ok)", ""),
    "fires": ("the membrane potential crossed the model's firing threshold", ""),
    "protocol": ("form of the stimulus: pulses, or a waveform whose knots are i_app on t", ""),
    "n_pulses": ("number of pulses of the stimulus (0 for a waveform)", ""),
    "pulse_amplitude": ("amplitude of each pulse (0 past n_pulses)", "current"),
    "pulse_duration": ("duration of each pulse (0 past n_pulses)", "time"),
    "pulse_onset": ("start of each pulse (0 past n_pulses)", "time"),
}


def _as_list(v: Any) -> list[str]:
    return [str(x) for x in (json.loads(v) if isinstance(v, str) else v)]


def _describe(ds: Any, long_name: str, units: str = "", dims: Sequence[Any] = ()) -> None:
    ds.attrs["long_name"] = long_name
    if units:
        ds.attrs["units"] = units
    for axis, scale in enumerate(dims):
        ds.dims[axis].attach_scale(scale)


def write_arrays(
    path: str | os.PathLike,
    t: np.ndarray,
    splits: Mapping[str, Mapping[str, Any]],
    attrs: Mapping[str, Any],
    *,
    storage: StorageOptions | None = None,
) -> Path:
    """Write a complete dataset file from in-memory arrays, atomically (tests, small sets).

    Parameters
    ----------
    path : path-like
        Output ``.h5`` file (replaced if it exists).
    t : ndarray, shape (N,)
        Time grid.
    splits : mapping of split -> mapping of array name -> array
        Per split: ``states`` (n, n_states, N) and ``i_app`` (n, N) (any float dtype; stored
        as float32), and optionally ``amplitude``, ``duration``, ``onset`` (default 0),
        ``part`` (default ""), ``status`` (default 0), ``fires`` (default False) and the
        protocol arrays (:data:`PROTOCOL_FIELDS`; default one pulse per sample, the
        ``amplitude``, ``duration`` and ``onset`` given). Missing splits are written empty.
    attrs : mapping
        Root attributes; at least ``model`` and ``state_names`` (a list).
    storage : StorageOptions, optional

    Returns
    -------
    Path
        The written file.
    """
    import h5py

    from .._io import atomic_path

    missing = [k for k in ("model", "state_names") if k not in attrs]
    if missing:
        raise ValueError(f"write_arrays needs root attributes {missing}")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"Unknown split(s) {unknown}; expected some of {list(SPLITS)}")
    n_states = len(attrs["state_names"])
    counts = {s: int(np.asarray(splits[s]["states"]).shape[0]) if s in splits else 0 for s in SPLITS}
    width = max([1] + [np.asarray(a["pulse_amplitude"]).shape[1] for a in splits.values() if "pulse_amplitude" in a])
    attrs = dict(attrs)
    attrs.setdefault("state_units", [""] * n_states)
    attrs.setdefault("config", {})
    for k, v in (
        ("time_unit", "ms"),
        ("current_unit", ""),
        ("model_version", ""),
        ("model_variant", ""),
        ("seed", -1),
        ("ionfno_version", _version()),
    ):
        attrs.setdefault(k, v)
    with atomic_path(path) as tmp:
        readable_by_umask(tmp)
        with h5py.File(tmp, "w") as f:
            create_layout(f, t=t, n_states=n_states, counts=counts, attrs=attrs, storage=storage, n_pulses=width)
            for s, arrays in splits.items():
                n = counts[s]
                states = np.asarray(arrays["states"])
                if states.shape != (n, n_states, len(t)):
                    raise ValueError(f"{s}/states has shape {states.shape}, expected {(n, n_states, len(t))}")
                f[s]["states"][...] = states.astype(np.float32)
                f[s]["i_app"][...] = np.asarray(arrays["i_app"], dtype=np.float32).reshape(n, len(t))
                defaults = {
                    "amplitude": 0.0,
                    "duration": 0.0,
                    "onset": 0.0,
                    "part": "",
                    "status": 0,
                    "fires": False,
                }
                for name, dflt in defaults.items():
                    v = arrays.get(name)
                    v = np.full(n, dflt) if v is None else np.asarray(v)
                    f[s][name][...] = v.astype(object) if name == "part" else v
                one = {k: f[s][k][()] for k in ("amplitude", "duration", "onset")}
                for name, v in protocol_arrays(arrays, n, width, default=one).items():
                    f[s][name][...] = v.astype(object) if name == "protocol" else v
    return Path(path)


def protocol_arrays(
    arrays: Mapping[str, Any], n: int, width: int, *, default: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """The protocol arrays (:data:`PROTOCOL_FIELDS`) of ``n`` samples, ``width`` pulses wide.

    Arrays given in ``arrays`` are used (pulse arrays narrower than ``width`` are padded with
    empty pulses); missing ones describe one pulse per sample, ``default``'s ``amplitude``,
    ``duration`` and ``onset`` (zeros if not given).
    """
    out: dict[str, np.ndarray] = {}
    one = {k: np.asarray((default or {}).get(k, np.zeros(n)), dtype=np.float64) for k in ("amplitude", "duration", "onset")}
    out["protocol"] = np.asarray(arrays["protocol"], dtype=str) if "protocol" in arrays else np.full(n, "pulses")
    out["n_pulses"] = np.asarray(arrays.get("n_pulses", np.ones(n)), dtype=np.int64)
    for name in _PULSE_ARRAYS:
        v = np.asarray(arrays[name], dtype=np.float64) if name in arrays else one[name.removeprefix("pulse_")][:, None]
        v = v.reshape(n, v.shape[-1] if v.ndim == 2 else 1)
        out[name] = np.pad(v, ((0, 0), (0, width - v.shape[1])))
    return out


def readable_by_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the permissions a plain ``open()`` would (temporary files start at 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def reserve_space(path: str | os.PathLike, nbytes: int) -> None:
    """Allocate ``nbytes`` on disk past the end of the closed HDF5 file ``path`` before writing it.

    HDF5 does not survive a full disk: a failed write leaves the file handle in a state where
    closing it crashes the process (a segmentation fault in h5py 3.16 / HDF5 1.14). Reserving
    the space first turns a full disk into a clean ``OSError`` here, before HDF5 writes
    anything; HDF5 then writes into the reserved blocks and trims the unused tail when the
    file is closed. On a file system without ``fallocate`` the reservation is skipped.

    Raises
    ------
    OSError
        ``ENOSPC`` naming the file, the size and the free space.
    """
    import errno

    from .._io import format_bytes, no_space_error

    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, os.fstat(fd).st_size, max(1, int(nbytes)))
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise no_space_error(path, f"it needs about {format_bytes(nbytes)}") from None
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def write_file_image(path: str | os.PathLike, build: Any) -> None:
    """Build a small HDF5 file in memory with ``build(h5py.File)`` and write it atomically.

    The file reaches the disk through Python's own writes, so a full disk is an ``OSError``
    (ENOSPC, naming ``path``) and never a failed HDF5 write (see :func:`reserve_space`).
    """
    from .._io import atomic_path

    image = file_image(build)
    with atomic_path(path) as tmp:
        readable_by_umask(tmp)
        tmp.write_bytes(image)


def file_image(build: Any) -> bytes:
    """The bytes of an HDF5 file built in memory by ``build(h5py.File)``."""
    import h5py

    with h5py.File("in-memory.h5", "w", driver="core", backing_store=False) as f:
        build(f)
        f.flush()
        return f.id.get_file_image()


def _version() -> str:
    from .. import __version__

    return __version__


# ---------------------------------------------------------------------------------- reading
def open_dataset(path: str | os.PathLike) -> Any:
    """Open a dataset file read-only, turning low-level failures into a :class:`DatasetError`.

    Checks that the file exists, is a readable HDF5 file, carries ``format =
    "ionfno-dataset"`` with a supported version, and has every split's arrays.

    Returns
    -------
    h5py.File
        Open read-only; close it (or use it as a context manager).

    Raises
    ------
    DatasetError
        Missing, truncated, corrupted, or not an ionfno dataset (the message says which).
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise DatasetError(f"Dataset file {str(p)!r} does not exist")
    if p.is_dir():
        raise DatasetError(f"Dataset path {str(p)!r} is a directory, expected an .h5 file")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        hint = " (the file is truncated: an interrupted copy or write?)" if "truncated" in str(e) else ""
        raise DatasetError(f"Cannot open {str(p)!r} as HDF5{hint}: {e}") from None
    try:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise DatasetError(
                f"{str(p)!r} is an HDF5 file but not an ionfno dataset (format attribute {fmt!r})"
            )
        ver = int(f.attrs.get("format_version", -1))
        if ver not in READABLE_VERSIONS:
            raise DatasetError(
                f"{str(p)!r} has dataset format version {ver}; this ionfno reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        required = ("i_app", "states", *SAMPLE_FIELDS, *(PROTOCOL_FIELDS if ver >= 3 else ()))
        missing = [f"/{s}/{a}" for s in SPLITS for a in required if f"{s}/{a}" not in f]
        if "t" not in f:
            missing.insert(0, "/t")
        if missing:
            raise DatasetError(f"{str(p)!r} is incomplete: missing {missing}")
    except DatasetError:
        f.close()
        raise
    except (OSError, RuntimeError, KeyError) as e:  # damaged metadata
        f.close()
        raise DatasetError(f"{str(p)!r} is corrupted: {e}") from None
    return f


def _decode_attrs(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in f.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, np.generic):
            v = v.item()
        if k in _JSON_ATTRS and isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError as e:
                raise DatasetError(f"Attribute {k!r} is not valid JSON: {e}") from None
        out[k] = v
    return out


def dataset_info(path: str | os.PathLike) -> dict[str, Any]:
    """Root attributes of a dataset file, decoded, plus its sizes.

    Returns
    -------
    dict
        Every root attribute (``state_names``, ``state_units`` lists; ``config`` and
        ``counts`` dicts; ``model``, ``seed``, ...), plus ``n_points`` (N), ``n_states`` and
        ``sizes`` ({split: n} as stored in the file).
    """
    with open_dataset(path) as f:
        info = _decode_attrs(f)
        info["n_points"] = int(f["t"].shape[0])
        info["n_states"] = int(f["train"]["states"].shape[1])
        info["sizes"] = {s: int(f[s]["states"].shape[0]) for s in SPLITS}
    return info


def split_sizes(path: str | os.PathLike) -> dict[str, int]:
    """Number of stored samples per split."""
    return dataset_info(path)["sizes"]


def read_split(
    path: str | os.PathLike,
    split: str,
    *,
    dtype: Any = np.float32,
    only_ok: bool = True,
    indices: Sequence[int] | np.ndarray | None = None,
    states: Sequence[str] | None = None,
    time_stride: int = 1,
    block_rows: int = 256,
) -> dict[str, np.ndarray]:
    """Read one split into memory, casting the signals to ``dtype`` (the one cast of the pipeline).

    Parameters
    ----------
    path : path-like
        Dataset file.
    split : {"train", "val", "test"}
    dtype : numpy dtype, default float32
        Dtype of ``t``, ``i_app`` and ``states`` in the result. Per-sample parameters stay
        float64.
    only_ok : bool, default True
        Drop samples whose solver status is not 0 (failed simulations).
    indices : sequence of int, optional
        Read only these samples (positions in the split, before ``only_ok`` filtering).
    states : sequence of str, optional
        Read only these state channels (names from ``state_names``), in this order.
    time_stride : int, default 1
        Keep time points ``0, time_stride, 2*time_stride, ...`` (of ``t``, ``i_app`` and
        ``states``); the result then needs ``1/time_stride`` of the memory.
    block_rows : int
        Rows read per HDF5 call; memory stays at the result plus one block.

    Returns
    -------
    dict of str to ndarray
        ``t`` (N,), ``i_app`` (n, N), ``states`` (n, n_states, N), ``amplitude``,
        ``duration``, ``onset`` (n,) float64, ``part`` (n,) str, ``status`` (n,) int8,
        ``fires`` (n,) bool, ``index`` (n,) int64 (positions in the stored split), and
        ``state_names`` (n_states,) str; the protocol: ``protocol`` (n,) str, ``n_pulses``
        (n,) int64, ``pulse_amplitude``, ``pulse_duration``, ``pulse_onset`` (n, K) float64
        (a version 1-2 file: one pulse per sample), and the waveform samples' knots at full
        resolution whatever ``time_stride``: ``t_stored`` (M,) float64 (the stored grid),
        ``waveform`` (w, M) float64 and ``waveform_rows`` (w,) int64, their positions in the
        result.

    Raises
    ------
    DatasetError
        Unreadable or corrupted file (including a failed chunk checksum).
    ValueError
        Unknown split or state name (the message lists the valid ones).
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {list(SPLITS)}")
    with open_dataset(path) as f:
        g = f[split]
        try:
            names = json.loads(f.attrs["state_names"])
            n = g["states"].shape[0]
            status = g["status"][()]
            idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise ValueError(f"indices out of range for split {split!r} with {n} samples")
            idx = np.where(idx < 0, idx + n, idx)
            if only_ok:
                idx = idx[status[idx] == 0]
            if states is None:
                chan = np.arange(len(names))
            else:
                unknown = [s for s in states if s not in names]
                if unknown:
                    raise ValueError(f"Unknown state(s) {unknown}; expected some of {names}")
                chan = np.array([names.index(s) for s in states], dtype=np.int64)
            if isinstance(time_stride, bool) or int(time_stride) != time_stride or time_stride < 1:
                raise ValueError(f"time_stride must be a whole number >= 1, got {time_stride!r}")
            ts = slice(None, None, int(time_stride))
            N = f["t"][ts].shape[0]
            out_states = np.empty((idx.size, chan.size, N), dtype=dtype)
            out_iapp = np.empty((idx.size, N), dtype=dtype)
            # Contiguous runs are read as slices (fast); h5py fancy indexing is slow.
            for start in range(0, idx.size, block_rows):
                sel = idx[start : start + block_rows]
                lo, hi = int(sel.min()), int(sel.max()) + 1
                dst = slice(start, start + sel.size)
                if hi - lo <= 2 * sel.size:
                    rows = sel - lo
                    out_states[dst] = g["states"][lo:hi][rows][:, chan][..., ts]
                    out_iapp[dst] = g["i_app"][lo:hi][rows][:, ts]
                else:  # scattered rows: one chunk each, never the whole span
                    for j, r in enumerate(sel):
                        out_states[start + j] = g["states"][int(r)][chan][:, ts]
                        out_iapp[start + j] = g["i_app"][int(r)][ts]
            result = {
                "t": f["t"][ts].astype(dtype),
                "i_app": out_iapp,
                "states": out_states,
                "amplitude": g["amplitude"][()][idx],
                "duration": g["duration"][()][idx],
                "onset": g["onset"][()][idx],
                "part": np.array(g["part"].asstr()[()], dtype=str)[idx] if n else np.array([], dtype=str),
                "status": status[idx],
                "fires": g["fires"][()][idx],
                "index": idx,
                "state_names": np.array([names[c] for c in chan], dtype=str),
            }
            result.update(_read_protocol(f, g, idx, n, result))
        except (OSError, RuntimeError) as e:
            raise DatasetError(f"{str(path)!r}: cannot read split {split!r} (corrupted data?): {e}") from None
    return result



def _read_protocol(f: Any, g: Any, idx: np.ndarray, n: int, result: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The protocol arrays of the samples ``idx`` (read_split's), and their waveforms' knots."""
    if "protocol" in g:
        arrays: dict[str, Any] = {k: g[k][()][idx] for k in PROTOCOL_FIELDS if k != "protocol"}
        arrays["protocol"] = np.array(g["protocol"].asstr()[()], dtype=str)[idx] if n else np.array([], dtype=str)
        out = protocol_arrays(arrays, idx.size, arrays["pulse_amplitude"].shape[1])
    else:  # format 1-2: one pulse per sample
        out = protocol_arrays({}, idx.size, 1, default=result)
    t = np.asarray(f["t"][()], dtype=np.float64)
    rows = np.flatnonzero(out["protocol"] == "waveform")
    knots = np.empty((rows.size, t.shape[0]))
    for j, r in enumerate(rows):
        knots[j] = g["i_app"][int(idx[r])]
    return {**out, "t_stored": t, "waveform": knots, "waveform_rows": rows.astype(np.int64)}


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """A short hash that identifies a dataset's contents, for a run to recognise its data.

    It covers the model, state names, the time grid, the split sizes, the generation config and
    every sample's pulse parameters, part and status (small arrays, read in full), not the
    trajectories: two files with the same fingerprint were made by the same configuration (or
    hold the same samples), and a different dataset of the same model and grid (another seed,
    mixture or size) gets another one. Copies and moves keep it; HDF5 bookkeeping and
    compression settings do not enter.

    Returns
    -------
    str
        16 hexadecimal digits (64 bits of SHA-256).
    """
    import hashlib

    h = hashlib.sha256()
    with open_dataset(path) as f:
        attrs = _decode_attrs(f)
        config = dict(attrs.get("config") or {})
        config.pop("storage", None)  # compression does not change the data
        config.pop("format_version", None)
        head = {k: attrs.get(k) for k in ("model", "state_names", "time_unit", "current_unit")}
        h.update(json.dumps([head, config], sort_keys=True, default=str).encode())
        h.update(np.ascontiguousarray(f["t"][()], dtype=np.float64).tobytes())
        for s in SPLITS:
            g = f[s]
            h.update(f"{s}:{g['states'].shape}".encode())
            for name in ("amplitude", "duration", "onset", "status"):
                h.update(np.ascontiguousarray(g[name][()]).tobytes())
            h.update("\0".join(g["part"].asstr()[()].tolist() if g["part"].shape[0] else []).encode())
            protocol = g["protocol"].asstr()[()] if "protocol" in g and g["protocol"].shape[0] else np.array([], dtype=str)
            if np.any(protocol != "pulses") or ("n_pulses" in g and np.any(g["n_pulses"][()] != 1)):
                # Trains and waveforms (format 3); single pulses hash as in formats 1-2.
                for name in ("n_pulses", *_PULSE_ARRAYS):
                    h.update(np.ascontiguousarray(g[name][()]).tobytes())
                h.update("\0".join(protocol.tolist()).encode())
    return h.hexdigest()[:16]
