"""The app's API (Starlette test client, no browser): the numbers it returns are the library's."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")

from ionfno.app import STATIC, create_app  # noqa: E402
from ionfno.evaluation.compare import biomarkers_of  # noqa: E402
from ionfno.stimulus import pulse  # noqa: E402
from ionfno.surrogate import Surrogate  # noqa: E402

from .conftest import NAME  # noqa: E402

pytestmark = pytest.mark.timeout(300)


class _Client:
    """GET/POST JSON against a running server with the standard library."""

    def __init__(self, url: str):
        self.url = url

    def _call(self, req: urllib.request.Request) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, path: str, **params: str) -> tuple[int, Any]:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        status, body = self._call(urllib.request.Request(self.url + path + query))
        return status, (json.loads(body) if path.startswith("/api/") else body)

    def post(self, path: str, payload: dict) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        status, body = self._call(req)
        return status, json.loads(body)


@pytest.fixture(scope="module")
def client(built_root):
    """The app served by uvicorn in a thread of this process, on a free port of 127.0.0.1."""
    import uvicorn

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IONFNO_PRETRAINED_PATH", str(built_root))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the server did not start"
        yield _Client(f"http://127.0.0.1:{sock.getsockname()[1]}")
        server.should_exit = True
        thread.join(timeout=10)


def test_page_and_scripts_are_served_locally(client):
    status, page = client.get("/")
    page = page.decode()
    assert status == 200 and 'id="amplitude"' in page
    # Every script and style is ours or plotly's, from this server: no other host is named.
    for text in (page, (STATIC / "app.js").read_text(), (STATIC / "app.css").read_text()):
        assert not re.search(r"(src|href)=\"(https?:)?//", text) and "fetch(\"http" not in text
    assert set(re.findall(r'(?:src|href)="([^"]+)"', page)) == {
        "/static/app.css", "/vendor/plotly.min.js", "/static/app.js"}
    status, js = client.get("/vendor/plotly.min.js")
    assert status == 200 and len(js) > 1_000_000
    assert client.get("/static/app.js")[0] == 200


def test_surrogates_and_describe(client, built_root):
    card = json.loads((built_root / NAME / "card.json").read_text())
    listed = client.get("/api/surrogates")[1]["surrogates"]
    assert {"id": NAME, "label": f"{NAME} (pretrained)", "kind": "pretrained"} in listed
    d = client.get("/api/describe", id=NAME)[1]
    assert d["states"] == ["V", "w"] and d["n_points"] == 128 and d["input_encoding"] == "cell_average"
    assert d["trained_range"] == card["input"]["trained_range"]
    assert client.get("/api/describe", id="nope")[0] == 400


def test_run_returns_the_library_numbers(client):
    body = {"surrogate": NAME, "states": ["V"],
            "stimulus": {"kind": "pulse", "amplitude": 1.2, "duration": 15.0, "onset": 0.0, "n_beats": 1}}
    status, res = client.post("/api/run", body)
    assert status == 200, res
    sur = Surrogate.load(NAME)
    pred = sur.predict(sur.encode(pulse(1.2, 15.0)))
    np.testing.assert_array_equal(res["states"]["V"]["surrogate"], pred["V"][0])
    np.testing.assert_array_equal(res["t"], sur.t)
    assert list(res["states"]) == ["V"] and set(res["errors"]) == {"V", "w"}
    assert res["biomarkers"]["surrogate"] == biomarkers_of(pred["V"][0], sur.t, "fhn")
    assert res["seconds"]["surrogate"] > 0 and res["seconds"]["solver"] > 0


def test_run_with_a_train_and_an_uploaded_waveform(client):
    train = {"kind": "pulse", "amplitude": 1.0, "duration": 5.0, "onset": 10.0, "n_beats": 2, "period": 40.0}
    res = client.post("/api/run", {"surrogate": NAME, "stimulus": train, "states": ["w"]})[1]
    i = np.asarray(res["i_app"])
    t = np.asarray(res["t"])
    assert i[np.searchsorted(t, 52.0)] == 1.0 and i[np.searchsorted(t, 30.0)] == 0.0
    csv = base64.b64encode(b"t,i_app\n0,1.5\n20,0\n100,0\n").decode()
    wf = {"kind": "waveform", "content": csv, "filename": "w.csv", "interp": "hold"}
    res = client.post("/api/run", {"surrogate": NAME, "stimulus": wf, "states": ["V"]})[1]
    sur = Surrogate.load(NAME)
    expected = sur.predict(sur.encode(pulse(1.5, 20.0)))["V"][0]
    np.testing.assert_allclose(res["states"]["V"]["surrogate"], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "stimulus, states, message",
    [
        ({"kind": "pulse", "amplitude": "x", "duration": 1}, ["V"], "amplitude must be a number"),
        ({"kind": "pulse", "amplitude": 1, "duration": -1}, ["V"], "duration must be >= 0"),
        ({"kind": "pulse", "amplitude": 1, "duration": 1}, ["Ca_i"], "Unknown state"),
        ({"kind": "waveform", "content": "%%%"}, ["V"], "not valid base64"),
        ({"kind": "waveform", "content": base64.b64encode(b"t,i_app\n0,1\n5,1\n").decode()}, ["V"], "covers"),
        ({"kind": "sine"}, ["V"], "Unknown stimulus kind"),
    ],
    ids=["not-a-number", "negative", "state", "base64", "window", "kind"],
)
def test_bad_requests_get_a_message(client, stimulus, states, message):
    status, res = client.post("/api/run", {"surrogate": NAME, "stimulus": stimulus, "states": states})
    assert status == 400 and message in res["error"]


def test_a_run_folder_can_be_added(client, run_dir, tmp_path):
    status, entry = client.post("/api/surrogates", {"path": str(run_dir)})
    assert status == 200 and entry["id"] == str(run_dir.resolve())
    assert entry in client.get("/api/surrogates")[1]["surrogates"]
    assert client.post("/api/surrogates", {"path": str(tmp_path / "none")})[0] == 400
    (tmp_path / "empty").mkdir()
    status, res = client.post("/api/surrogates", {"path": str(tmp_path / "empty")})
    assert status == 400 and "no best.pt" in res["error"]
    assert str((tmp_path / "empty").resolve()) not in str(client.get("/api/surrogates")[1])


def test_inputs_outside_the_trained_range_are_flagged(client):
    body = {"surrogate": NAME, "states": ["V"],
            "stimulus": {"kind": "pulse", "amplitude": 50.0, "duration": 5.0, "onset": 0.0, "n_beats": 1}}
    status, res = client.post("/api/run", body)
    assert status == 200
    assert any("amplitude" in w and "trained" in w for w in res["warnings"]), res["warnings"]
