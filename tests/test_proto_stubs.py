"""The checked-in stubs match the .proto files, and every generated module imports."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_generate():
    spec = importlib.util.spec_from_file_location("_proto_generate", REPO / "proto" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_checked_in_stubs_are_fresh(tmp_path):
    gen = _load_generate()
    fresh = gen.generate(tmp_path)
    assert fresh, "generator produced nothing"
    checked_in = REPO / "skytwin" / "v1"
    fresh_names = {f.name for f in fresh}
    have = {f.name for f in checked_in.iterdir() if f.name.endswith(gen.GENERATED_SUFFIXES)}
    assert have == fresh_names, f"stale stub set: run python proto/generate.py ({have ^ fresh_names})"
    for f in fresh:
        assert (checked_in / f.name).read_text() == f.read_text(), (
            f"skytwin/v1/{f.name} is stale: run python proto/generate.py")
    for rel in ("skytwin/__init__.py", "skytwin/v1/__init__.py"):
        assert (REPO / rel).read_text() == (tmp_path / rel).read_text()


def test_stale_stub_is_detected(tmp_path):
    """The comparison above can fail: a changed .proto gives different output."""
    gen = _load_generate()
    gen.generate(tmp_path)
    f = tmp_path / "skytwin" / "v1" / "flights_pb2.py"
    assert f.read_text() == (REPO / "skytwin" / "v1" / "flights_pb2.py").read_text()
    (tmp_path / "skytwin" / "v1" / "old_pb2.py").write_text("# left over\n")
    gen.generate(tmp_path)   # deletes old outputs first
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
    import subprocess
    out = subprocess.run([sys.executable, "-c", "import skytwin.v1.changes_pb2_grpc as m; print('ok')"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
