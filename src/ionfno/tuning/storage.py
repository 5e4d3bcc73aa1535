"""Where a study lives, which process runs which trial, and what happens to trials left behind.

* Default store: an SQLite file ``DIR/study.db`` (no server; several processes on one machine
  share it through SQLite's file locks). ``--storage postgresql://user@host/db`` (password from
  ``~/.pgpass`` or ``PGPASSWORD``, so that no command line shows it) lets
  processes on many machines join one study.
* Every running trial records its worker (host, process id, process start time). A trial whose
  worker process on this host is gone is failed at once by the next tuner that starts or asks
  for a trial; on other hosts the heartbeat (every ``heartbeat_interval`` seconds, stale after
  ``grace_period``) does the same. A trial failed this way is retried once with the same
  parameters (enqueued), and its retry resumes from the dead trial's checkpoint when that
  folder is reachable.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "check_study_name",
    "safe_file_stem",
    "default_storage_url",
    "redact_url",
    "open_storage",
    "worker_identity",
    "worker_alive",
    "heartbeat",
]

STUDY_DB = "study.db"

# A study name becomes part of file names (tune-report's presets): letters, digits, ".", "_"
# and "-", starting with a letter or digit; no path separators, no "..", nothing absolute.
_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_study_name(name: str) -> str:
    """Return ``name`` if it is a valid study name, else raise.

    Raises
    ------
    ValueError
        The name is empty, longer than 100 characters, or has characters other than letters,
        digits, ``.``, ``_`` and ``-`` (the message says which rule it breaks).
    """
    if not isinstance(name, str) or not _STUDY_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"Invalid study name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (it becomes part of file names, so no '/', '..' or spaces)"
        )
    return name


def safe_file_stem(name: str) -> str:
    """A file-name stem for a study name: the name itself when valid, else a sanitised form.

    Names read from a shared database were chosen by other users and are not trusted: a name
    that :func:`check_study_name` refuses becomes its allowed characters plus a hash of the
    whole name (so two different names never share a stem), e.g. ``"../../x"`` -> ``"x-1b4f0e98"``.
    """
    try:
        return check_study_name(name)
    except ValueError:
        kept = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).replace("..", "_").strip("._-")[:80]
        digest = hashlib.sha256(str(name).encode()).hexdigest()[:8]
        return f"{kept}-{digest}" if kept else f"study-{digest}"


def default_storage_url(out_dir: str | os.PathLike) -> str:
    """The embedded store of a tuning folder: ``sqlite:///<abs DIR>/study.db``."""
    return f"sqlite:///{Path(out_dir).resolve() / STUDY_DB}"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs, reports and saved files)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL: nothing to hide that we can parse
        return url


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 30,
    grace_period: int | None = None,
    on_stale: Callable[[Any, Any], None] | None = None,
) -> Any:
    """An optuna ``RDBStorage`` for ``url`` with the heartbeat switched on.

    Parameters
    ----------
    url : str
        SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``).
    heartbeat_interval : int or None
        Seconds between heartbeats of a running trial (None: no heartbeat).
    grace_period : int or None
        Seconds without a heartbeat after which a running trial is failed (default 2 intervals).
    on_stale : callable(study, frozen_trial), optional
        Called for each trial this process fails for lack of heartbeat.

    Raises
    ------
    ValueError
        If the URL cannot be opened (bad scheme, missing driver, unreachable server).
    """
    import optuna

    url = _with_driver(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several processes share the file; wait for a lock rather than failing at once.
        engine_kwargs["connect_args"] = {"timeout": 120}
    else:
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = heartbeat_interval
        kwargs["grace_period"] = grace_period
        if on_stale is not None:
            # optuna >= 4.5 renamed the argument; accept both.
            params = inspect.signature(optuna.storages.RDBStorage).parameters
            name = (
                "heartbeat_stale_trial_callback"
                if "heartbeat_stale_trial_callback" in params
                else "failed_trial_callback"
            )
            kwargs[name] = on_stale
    try:
        return _create_rdb_storage(url, kwargs)
    except ModuleNotFoundError as e:
        hint = " (pip install 'ionfno[postgres]')" if "psycopg" in str(e) else ""
        raise ValueError(
            f"Cannot open storage {redact_url(url)!r}: missing driver {e.name!r}{hint}"
        ) from None
    except ImportError:  # optuna's wording for a missing database driver
        hint = " (pip install 'ionfno[postgres]')" if url.startswith("postgres") else ""
        raise ValueError(
            f"Cannot open storage {redact_url(url)!r}: no database driver for it{hint}"
        ) from None
    except Exception as e:  # sqlalchemy errors: bad URL, server down, permissions
        raise ValueError(f"Cannot open storage {redact_url(url)!r}: {type(e).__name__}: {e}") from None


def _create_rdb_storage(url: str, kwargs: dict[str, Any], retries: int = 5) -> Any:
    """``RDBStorage(url, **kwargs)``, retried when another process creates the schema meanwhile.

    Workers started together against an empty database all try to create optuna's tables; the
    losers get an ``IntegrityError`` (PostgreSQL: duplicate ``pg_type`` row) or a
    ``ProgrammingError`` (table exists). The schema is complete once the winner commits, so a
    retry after a short wait opens it normally; the last attempt's error propagates.
    """
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(retries):
        try:
            with warnings_quiet():
                return optuna.storages.RDBStorage(url, **kwargs)
        except (IntegrityError, ProgrammingError):
            time.sleep(0.5 * (attempt + 1))
    with warnings_quiet():
        return optuna.storages.RDBStorage(url, **kwargs)


def _with_driver(url: str) -> str:
    """Name an installed PostgreSQL driver in a bare ``postgresql://`` URL.

    SQLAlchemy >= 2.1 reads ``postgresql://`` as psycopg 3; our ``postgres`` extra installs
    psycopg2. Use whichever is importable (psycopg 3 first), so users can write plain URLs.
    """
    import importlib.util

    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            rest = url[len(bare) :]
            if importlib.util.find_spec("psycopg") is not None:
                return "postgresql+psycopg://" + rest
            if importlib.util.find_spec("psycopg2") is not None:
                return "postgresql+psycopg2://" + rest
            return url
    return url


@contextlib.contextmanager
def warnings_quiet() -> Iterator[None]:
    """Silence optuna's 'experimental feature' warnings (heartbeat) for one call."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _process_start(pid: int) -> str | None:
    # Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; it tells a live
    # process from a new one that reused the id. None where /proc does not exist.
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def worker_identity() -> dict[str, Any]:
    """This process, as recorded on the trials it runs: host name, pid and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def worker_alive(worker: dict[str, Any]) -> bool | None:
    """Whether the process that ran a trial still runs: True/False on this host, None elsewhere."""
    if worker.get("host") != socket.gethostname():
        return None
    pid = int(worker.get("pid", -1))
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that id: not ours
        return False
    start = worker.get("start")
    return start is None or _process_start(pid) == start


@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int, interval: int | None) -> Iterator[None]:
    """Record a heartbeat for ``trial_id`` every ``interval`` seconds while the block runs."""
    if not interval or not hasattr(storage, "record_heartbeat"):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is harmless; the next one counts
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
