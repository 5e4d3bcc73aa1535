"""A built wheel carries the pretrained surrogates, and an install of it predicts without training."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ionfno.pretrained import PACKAGE_DIR

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def _build_backend_ok() -> bool:
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77  # pyproject's build requirement


@pytest.mark.skipif(not _build_backend_ok(), reason="needs setuptools>=77 and wheel in this environment "
                    "(the build runs without isolation: no network)")
def test_a_wheel_ships_every_pretrained_surrogate_and_its_install_predicts_ord(tmp_path):
    # Build from a copy so that the checkout gets no build/ folder.
    src = tmp_path / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)]
    subprocess.run(build, check=True, capture_output=True, text=True)
    wheel = next((tmp_path / "dist").glob("ionfno-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [d.name for d in PACKAGE_DIR.iterdir() if (d / "surrogate.pt").is_file()]
    assert "ord" in shipped
    for name in shipped:
        for f in ("surrogate.pt", "card.json", "card.md"):
            assert f"ionfno/pretrained/{name}/{f}" in names

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, text=True)
    code = (
        "import ionfno, numpy as np\n"
        "from ionfno.surrogate import Surrogate\n"
        "s = Surrogate.load('ord')\n"
        "v = s.predict(s.pulse_input(60.0, 1.5))['V'][0]\n"
        "print(ionfno.__file__)\n"
        "print(float(v.max()), float(v[-1]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[0].startswith(str(site))  # the installed wheel, not the checkout
    peak, end = map(float, out[1].split())
    assert 20.0 < peak < 60.0 and -95.0 < end < -80.0  # an ORd action potential, back at rest
