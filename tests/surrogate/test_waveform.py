"""Waveform files: CSV and .npz readers, their errors, the window check, and the model's encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ionfno.stimulus import pulse
from ionfno.surrogate import Surrogate
from ionfno.waveform import WaveformError, check_window, read_waveform


def _csv(path, rows, header="t,i_app"):
    path.write_text(header + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return path


def test_csv_and_npz_give_the_same_protocol(tmp_path):
    t = np.linspace(0.0, 100.0, 11)
    i = np.sin(t / 10.0)
    a = read_waveform(_csv(tmp_path / "w.csv", zip(t, i, strict=True)))
    np.savez(tmp_path / "w.npz", t=t, i_app=i)
    b = read_waveform(tmp_path / "w.npz", kind="hold")
    np.testing.assert_array_equal(a.t, t)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.kind == "linear" and b.kind == "hold" and a.batch_size == 1
    # Column order, extra columns, comments and a BOM do not matter; bytes are read too.
    text = "\ufeff# my stimulus\ni_app,other,t\n" + "\n".join(f"{v},0,{s}" for s, v in zip(t, i, strict=True))
    c = read_waveform(text.encode("utf-8"), name="upload.csv")
    np.testing.assert_array_equal(c.values, a.values)
    buf = io.BytesIO()
    np.savez(buf, t=t, i_app=i)
    np.testing.assert_array_equal(read_waveform(buf.getvalue()).values, a.values)


@pytest.mark.parametrize(
    "content, message",
    [
        ("time,current\n0,1\n1,2\n", "needs a header with columns 't' and 'i_app'"),
        ("t,i_app\n0,1\n1,x\n", "data row 3"),
        ("t,i_app\n0,1\n", "at least 2 are needed"),
        ("t,i_app\n0,1\n2,1\n1,1\n", "strictly increasing"),
        ("t,i_app\n0,1\n1,nan\n", "NaN or inf"),
        ("", "is empty"),
    ],
    ids=["columns", "not-a-number", "one-sample", "decreasing", "nan", "empty"],
)
def test_bad_csv_files_name_the_problem(tmp_path, content, message):
    (tmp_path / "w.csv").write_text(content)
    with pytest.raises(WaveformError, match=message):
        read_waveform(tmp_path / "w.csv")


def test_bad_files_and_kinds(tmp_path):
    with pytest.raises(WaveformError, match="No waveform file"):
        read_waveform(tmp_path / "none.csv")
    (tmp_path / "w.json").write_text("{}")
    with pytest.raises(WaveformError, match=r"\.csv or \.npz"):
        read_waveform(tmp_path / "w.json")
    np.savez(tmp_path / "w.npz", time=np.arange(3.0))
    with pytest.raises(WaveformError, match="needs arrays 't' and 'i_app'"):
        read_waveform(tmp_path / "w.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(WaveformError, match="Cannot read"):
        read_waveform(tmp_path / "bad.npz")
    with pytest.raises(WaveformError, match="Unknown waveform kind"):
        read_waveform(_csv(tmp_path / "w.csv", [(0, 1), (1, 1)]), kind="cubic")


def test_the_window_must_be_covered():
    wf = read_waveform(b"t,i_app\n0,1\n50,1\n")
    with pytest.raises(WaveformError, match=r"covers \[0, 50\] ms; .* \[0, 100\] ms"):
        check_window(wf, 100.0)
    check_window(wf, 50.0)
    with pytest.raises(WaveformError, match="covers"):
        check_window(read_waveform(b"t,i_app\n1,0\n200,0\n"), 100.0)


def test_a_held_waveform_of_a_pulse_is_the_pulse_for_the_surrogate(run_dir):
    sur = Surrogate.load(run_dir)
    assert sur.input_encoding == "cell_average"
    wf = read_waveform(b"t,i_app\n0,1.5\n20,0\n100,0\n", kind="hold")
    x_wf, x_pulse = sur.encode(wf), sur.encode(pulse(1.5, 20.0))
    np.testing.assert_allclose(x_wf, x_pulse, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sur.predict_array(x_wf), sur.predict_array(x_pulse), rtol=0, atol=1e-6)
