"""``ionfno app``: a local page to try a surrogate against the solver (extra ``app``).

A small ASGI application (Starlette, served by uvicorn) with one static page that draws with
plotly.js, the file shipped inside the ``plotly`` wheel: nothing is fetched from the internet.
The page calls a JSON API; the numbers it shows come from the same functions as
``ionfno compare`` (:func:`ionfno.evaluation.compare.compare_with_solver`).

Routes
------
``GET /``                  the page (``static/index.html``, ``app.js``, ``app.css``)
``GET /vendor/plotly.min.js``  plotly.js from the installed ``plotly`` package
``GET /api/surrogates``    the surrogates offered: pretrained names and the run folders given
``POST /api/surrogates``   ``{"path": RUN}``: offer one more run folder or checkpoint
``GET /api/describe?id=``  states, units, grid, trained input range of one surrogate
``POST /api/run``          ``{"surrogate", "stimulus", "states"}`` -> trajectories of the chosen
                           states (surrogate, solver), point-wise errors, biomarkers, run times

``stimulus`` is ``{"kind": "pulse", "amplitude", "duration", "onset", "n_beats", "period"}`` or
``{"kind": "waveform", "content": base64 of a CSV/.npz file, "filename", "interp"}``.
Computations run one at a time (a lock) on ``threads`` torch threads.

Why this stack rather than Streamlit (the authors' choice), Panel or Gradio: three small pure
Python packages instead of a framework with its own front-end build (Streamlit brings
pyarrow, pandas, tornado and protobuf, reruns the whole script on every input, draws tables
on a canvas, and reports usage unless configured not to); the page is plain HTML whose
elements carry stable ids, so a headless browser test can read the very numbers shown; and
the API is the page's only dependency, so it is tested without a browser too.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["create_app", "serve", "EXAMPLE_PULSES"]

STATIC = Path(__file__).resolve().parent / "static"

#: A supra-threshold pulse per model family (amplitude [current unit], duration [ms]): the
#: page's starting input.
EXAMPLE_PULSES: dict[str, tuple[float, float]] = {"fhn": (1.0, 5.0), "hh": (10.0, 1.0), "ord": (60.0, 1.5)}


def _plotly_js() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


class _Catalogue:
    """Surrogates offered by the page: id -> label; loaded on first use and kept."""

    def __init__(self, runs: list[str]):
        from ..pretrained import list_pretrained

        self.entries: dict[str, dict[str, str]] = {}
        self._loaded: dict[str, Any] = {}
        for name in list_pretrained():
            self.entries[name] = {"id": name, "label": f"{name} (pretrained)", "kind": "pretrained"}
        for r in runs:
            self.add_run(r)

    def add_run(self, path: str) -> dict[str, str]:
        """Offer a run folder or checkpoint; it is loaded first, so one that does not load is refused."""
        from ..surrogate import Surrogate

        p = Path(path).expanduser()
        if not str(path) or not p.exists():
            raise ValueError(f"No run folder or checkpoint {path!r}")
        key = str(p.resolve())
        if key not in self.entries:
            self._loaded[key] = Surrogate.load(p)
            self.entries[key] = {"id": key, "label": f"run: {p}", "kind": "run"}
        return self.entries[key]

    def get(self, key: str) -> Any:
        from ..surrogate import Surrogate

        if key not in self.entries:
            raise ValueError(f"Unknown surrogate {key!r}; offered: {sorted(self.entries)}")
        if key not in self._loaded:
            self._loaded[key] = Surrogate.load(key)
        return self._loaded[key]


def _describe(key: str, sur: Any) -> dict[str, Any]:
    from ..evaluation.compare import default_states
    from ..pretrained import find_pretrained, load_card

    card = load_card(key) if find_pretrained(key) is not None else None
    amp, dur = EXAMPLE_PULSES.get(sur.model_name.split("-")[0], (1.0, 1.0))
    return {
        "id": key,
        "model": sur.model_name,
        "states": list(sur.state_names),
        "units": dict(sur.units),
        "default_states": default_states(sur.state_names),
        "t_end": sur.t_end,
        "n_points": int(sur.t.shape[0]),
        "time_unit": sur.time_unit,
        "current_unit": sur.current_unit,
        "input_encoding": sur.input_encoding,
        "trained_range": (card or {}).get("input", {}).get("trained_range"),
        "test_error": (card or {}).get("test_error", {}).get("overall"),
        "example": {"amplitude": amp, "duration": dur},
    }


def _number(spec: dict[str, Any], key: str, default: float | None = None) -> float:
    v = spec.get(key, default)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{key} must be finite, got {v!r}")
    return f


def stimulus_from_spec(spec: dict[str, Any], t_end: float, time_unit: str = "ms") -> Any:
    """The protocol of a ``/api/run`` request's ``stimulus`` (module docstring)."""
    from ..stimulus import pulse
    from ..waveform import check_window, read_waveform

    kind = spec.get("kind", "pulse")
    if kind == "waveform":
        try:
            raw = base64.b64decode(str(spec.get("content", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the uploaded waveform is not valid base64") from None
        wf = read_waveform(
            raw, kind=str(spec.get("interp", "linear")), name=str(spec.get("filename") or "upload")
        )
        check_window(wf, t_end, time_unit=time_unit)
        return wf
    if kind != "pulse":
        raise ValueError(f"Unknown stimulus kind {kind!r}; expected 'pulse' or 'waveform'")
    n_beats = int(_number(spec, "n_beats", 1))
    period = _number(spec, "period", t_end) if n_beats > 1 else math.inf
    return pulse(
        _number(spec, "amplitude"),
        _number(spec, "duration"),
        _number(spec, "onset", 0.0),
        period=period,
        n_beats=n_beats,
    )


def create_app(runs: list[str] | tuple[str, ...] = (), threads: int = 1) -> Starlette:
    """The ASGI application (see the module docstring).

    Parameters
    ----------
    runs : list of str
        Run folders or checkpoints offered beside the pretrained surrogates.
    threads : int
        torch threads for the predictions.
    """
    import torch

    torch.set_num_threads(threads)
    catalogue = _Catalogue(list(runs))
    lock = threading.Lock()

    def error(msg: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": msg}, status_code=status)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def plotly_js(request: Request) -> Response:
        return FileResponse(_plotly_js(), media_type="text/javascript")

    async def surrogates(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await request.json()
                entry = await run_in_threadpool(catalogue.add_run, str(body.get("path", "")))
            except (ValueError, OSError) as e:
                return error(str(e))
            return JSONResponse(entry)
        return JSONResponse({"surrogates": list(catalogue.entries.values())})

    def describe(request: Request) -> Response:
        key = request.query_params.get("id", "")
        try:
            with lock:
                return JSONResponse(_describe(key, catalogue.get(key)))
        except (ValueError, OSError) as e:
            return error(str(e))

    async def run(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error("the request body is not JSON")
        return await run_in_threadpool(_run, body)

    def _run(body: dict[str, Any]) -> Response:
        from ..evaluation.compare import compare_with_solver

        try:
            with lock:
                sur = catalogue.get(str(body.get("surrogate", "")))
                stim = stimulus_from_spec(body.get("stimulus") or {}, sur.t_end, sur.time_unit)
                states = [str(s) for s in body.get("states") or []] or list(sur.state_names[:1])
                unknown = [s for s in states if s not in sur.state_names]
                if unknown:
                    raise ValueError(f"Unknown state(s) {unknown}; {sur.model_name} has {sur.state_names}")
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    cmp = compare_with_solver(sur, stim)
        except (ValueError, OSError) as e:
            return error(str(e))
        out = cmp.to_dict(states, trajectories=True)
        out["warnings"] += [str(w.message) for w in caught]
        if cmp.solver_status != 0:
            out["warnings"].append(
                f"the solver failed (status {cmp.solver_status}); its trajectory stops there"
            )
        return JSONResponse(out)

    routes = [
        Route("/", index),
        Route("/vendor/plotly.min.js", plotly_js),
        Route("/api/surrogates", surrogates, methods=["GET", "POST"]),
        Route("/api/describe", describe),
        Route("/api/run", run, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    runs: list[str] | tuple[str, ...] = (),
    threads: int = 1,
    open_browser: bool = False,
) -> None:
    """Serve the page until interrupted; prints its address first (port 0 picks a free one)."""
    import socket

    import uvicorn

    app = create_app(runs, threads)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if family == socket.AF_INET6 else host}:{bound}/"
    print(f"ionfno app: serving on {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
