"""A wheel built from the repository installs only ``skytwin`` (issue 10).

The repository keeps its top-level folders (``airspace/``, ``planner/``, ``server/``,
``fixtures/``); ``pyproject.toml`` maps them under ``skytwin``. This test builds the wheel
(with the running environment's setuptools, no download), installs it into an empty
target folder and checks what lands on the top level, and that the bundled data ships.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    wheels, target, src = tmp / "wheels", tmp / "site", tmp / "src"
    # build from a copy, so setuptools' build/ and egg-info never land in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("skytwin", "airspace", "planner", "server", "fixtures", "live"):
        shutil.copytree(REPO / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("skytwin-*.whl")
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]
    return target


def test_wheel_installs_only_the_skytwin_namespace(installed):
    top = {p.name for p in installed.iterdir()}
    # (pip --target also writes the console script into bin/, which is not a module)
    extra = {n for n in top if n not in ("skytwin", "bin") and not n.startswith("skytwin-")}
    assert extra == set(), f"the wheel puts {sorted(extra)} on the top level of site-packages"
    assert "skytwin" in top


def test_wheel_holds_every_subpackage_and_the_bundled_data(installed):
    root = installed / "skytwin"
    for sub in ("airspace/io", "planner", "server/services", "fixtures", "v1", "live"):
        assert (root / sub / "__init__.py").is_file(), sub
    assert (root / "fixtures" / "city" / "helsinki_centre.geojson").is_file()
    assert (root / "fixtures" / "city" / "ATTRIBUTION.md").is_file()
    assert (root / "fixtures" / "auth" / "dev_tokens.toml").is_file()
    assert (root / "fixtures" / "rules" / "default_rules.json").is_file()


def test_installed_wheel_imports_from_its_own_files(installed, tmp_path):
    code = ("import skytwin.server.cli, skytwin.airspace.twin, skytwin.fixtures as f; "
            "print(f.__file__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120,
                       env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin",
                            "PYTHONNOUSERSITE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().startswith(str(installed))
