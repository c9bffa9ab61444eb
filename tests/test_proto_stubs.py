"""The checked-in stubs match the .proto files, and every generated module imports.

The generator runs in a subprocess: grpc_tools' protoc extension and ortools both carry
their own copy of the C++ protobuf runtime, and loading both into one process aborts it
(seen here when the CP-SAT tests ran after this file), so protoc never enters the test
process.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")


def _generate(out):
    """Run proto/generate.py into ``out`` (a subprocess, see module docstring)."""
    r = subprocess.run([sys.executable, str(REPO / "proto" / "generate.py"), "--out",
                        str(out)], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    return sorted(f for f in (Path(out) / "skytwin" / "v1").iterdir()
                  if f.name.endswith(SUFFIXES))


def test_checked_in_stubs_are_fresh(tmp_path):
    fresh = _generate(tmp_path)
    assert fresh, "generator produced nothing"
    checked_in = REPO / "skytwin" / "v1"
    fresh_names = {f.name for f in fresh}
    have = {f.name for f in checked_in.iterdir() if f.name.endswith(SUFFIXES)}
    assert have == fresh_names, f"stale stub set: run python proto/generate.py ({have ^ fresh_names})"
    for f in fresh:
        assert (checked_in / f.name).read_text() == f.read_text(), (
            f"skytwin/v1/{f.name} is stale: run python proto/generate.py")
    for rel in ("skytwin/v1/__init__.py",):  # skytwin/__init__.py is hand-written
        assert (REPO / rel).read_text() == (tmp_path / rel).read_text()


def test_stale_stub_is_detected(tmp_path):
    """The comparison above can fail: a changed .proto gives different output."""
    _generate(tmp_path)
    f = tmp_path / "skytwin" / "v1" / "flights_pb2.py"
    assert f.read_text() == (REPO / "skytwin" / "v1" / "flights_pb2.py").read_text()
    (tmp_path / "skytwin" / "v1" / "old_pb2.py").write_text("# left over\n")
    _generate(tmp_path)   # deletes old outputs first
    assert not (tmp_path / "skytwin" / "v1" / "old_pb2.py").exists()


@pytest.mark.parametrize("name", ["airspace", "zones", "flights", "changes"])
def test_every_module_imports(name):
    pb2 = importlib.import_module(f"skytwin.v1.{name}_pb2")
    grpc_mod = importlib.import_module(f"skytwin.v1.{name}_pb2_grpc")
    assert pb2.DESCRIPTOR.package == "skytwin.v1"
    services = list(pb2.DESCRIPTOR.services_by_name)
    assert len(services) == 1 and services[0].endswith("Service")
    assert hasattr(grpc_mod, f"{services[0]}Stub")
    assert hasattr(grpc_mod, f"add_{services[0]}Servicer_to_server")


def test_enums_have_unspecified_zero():
    from skytwin.v1 import airspace_pb2, changes_pb2, flights_pb2
    for enum in (airspace_pb2.AltitudeReference, flights_pb2.FlightStatus,
                 changes_pb2.ChangeKind, airspace_pb2.Blocker.Kind):
        assert enum.Name(0).endswith("_UNSPECIFIED")


def test_imports_from_a_clean_interpreter():
    out = subprocess.run([sys.executable, "-c", "import skytwin.v1.changes_pb2_grpc as m; print('ok')"],
                         cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.stdout.strip() == "ok", out.stderr
