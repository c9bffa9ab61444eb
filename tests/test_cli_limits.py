"""``serve --limits FILE`` serves another limits file (checked before any work), and
``client cancel --reason`` carries the regulator's reason."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from skytwin.server.cli import main
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import airspace_pb2_grpc as arpc
from tests.serve_process import start_serve

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "fixtures" / "limits" / "default_limits.json"


def test_bad_limits_file_is_one_line_before_any_work(tmp_path, capsys):
    bad = tmp_path / "limits.json"
    bad.write_text("{not json")
    db = tmp_path / "s.db"
    assert main(["serve", "--port", "0", "--db", str(db), "--limits", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not valid JSON" in err and "Traceback" not in err
    assert not db.exists()


def test_serve_uses_the_given_limits(tmp_path):
    doc = json.loads(DEFAULT.read_text())
    doc["limits"]["max_batch"] = 7
    lim = tmp_path / "tight.json"
    lim.write_text(json.dumps(doc))
    p, target = start_serve("--db", str(tmp_path / "s.db"), "--workers", "1", "--limits",
                            str(lim))
    try:
        with grpc.insecure_channel(target) as ch:
            info = arpc.AirspaceServiceStub(ch).GetTwinInfo(
                apb.GetTwinInfoRequest(),
                metadata=[("authorization", "Bearer dev-operator-a-NOT-SECRET")], timeout=30)
        assert info.limits.max_batch == 7
    finally:
        p.terminate()
        p.wait(timeout=30)
