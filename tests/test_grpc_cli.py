"""`skytwin client ...` against a real server: every command prints JSON."""

from __future__ import annotations

import json
import time

import pytest

from skytwin.server.cli import main
from tests.grpc_fixtures import OP_A, REG, start_server

FROM = "24.94030,60.17150"
TO = "24.95240,60.16760"
DEPART = str(int(time.time()) + 7200)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("cli") / "store.db")
    yield s.target
    s.stop()


def run(capsys, target, token, *argv):
    rc = main(["client", "--target", target, "--token", token, *argv])
    out = capsys.readouterr().out
    return rc, out


def test_client_commands(capsys, target, tmp_path):
    rc, out = run(capsys, target, OP_A, "info")
    assert rc == 0 and json.loads(out)["building_count"] > 0
    rc, out = run(capsys, target, OP_A, "encode", "--at", FROM, "--alt", "25:AMSL")
    code = json.loads(out)["code"]["code"]
    rc, out = run(capsys, target, OP_A, "decode", code)
    assert rc == 0 and json.loads(out)["code"]["code"] == code
    rc, out = run(capsys, target, OP_A, "blocked", "--box", "24.944,60.170,24.9445,60.1705",
                  "--band", "0,40")
    assert rc == 0 and "codes" in json.loads(out)
    rc, out = run(capsys, target, OP_A, "plan", "--from", FROM, "--to", TO, "--depart", DEPART)
    assert rc == 0 and len(json.loads(out)["route"]["waypoints"]) >= 4
    rc, out = run(capsys, target, OP_A, "submit", "--request-id", "cli-1", "--from", FROM,
                  "--to", TO, "--depart", DEPART)
    fid = json.loads(out)["flight"]["flight_id"]
    rc, out = run(capsys, target, OP_A, "batch", "--request-id", "cli-b", "--depart", DEPART,
                  "--pair", f"{FROM}/{TO}", "--pair", f"{TO}/{FROM}")
    assert rc == 0 and len(json.loads(out)["flights"]) == 2
    rc, out = run(capsys, target, OP_A, "get", fid)
    assert json.loads(out)["flight"]["flight_id"] == fid
    rc, out = run(capsys, target, OP_A, "list")
    assert len(json.loads(out)["flights"]) == 3
    rc, out = run(capsys, target, OP_A, "cancel", fid)
    assert json.loads(out)["flight"]["status"] == "FLIGHT_STATUS_CANCELLED"
    # zones: an operator is refused with the status name and the reason
    rc, out = run(capsys, target, OP_A, "zones", "add", "--id", "C1", "--circle",
                  "24.937,60.176,20")
    assert rc == 2 and json.loads(out)["code"] == "PERMISSION_DENIED"
    rc, out = run(capsys, target, REG, "zones", "add", "--id", "C1", "--circle",
                  "24.937,60.176,20", "--upper", "90:AGL")
    assert rc == 0 and json.loads(out)["zone"]["upper"]["value_m"] == 90
    rc, out = run(capsys, target, REG, "zones", "update", "--id", "C1", "--polygon",
                  "24.936,60.175;24.938,60.175;24.938,60.177")
    assert rc == 0 and len(json.loads(out)["zone"]["polygon"]["vertices"]) == 3
    for cmd in (["list"], ["get", "C1"], ["query", "--box", "24.93,60.17,24.94,60.18"]):
        rc, out = run(capsys, target, OP_A, "zones", *cmd)
        assert rc == 0 and "C1" in out
    ed = tmp_path / "zones.json"
    rc, out = run(capsys, target, OP_A, "zones", "export", "--out", str(ed))
    assert rc == 0 and "C1" in ed.read_text()
    rc, out = run(capsys, target, REG, "zones", "delete", "C1")
    assert rc == 0
    rc, out = run(capsys, target, REG, "zones", "import", str(ed))
    assert rc == 0 and json.loads(out)["zones"][0]["id"] == "C1"
    rc, out = run(capsys, target, REG, "watch", "--count", "1", "--timeout", "10")
    assert rc == 0 and json.loads(out.splitlines()[0])["kind"] == "CHANGE_KIND_UNSPECIFIED"
    rc, out = run(capsys, target, "wrong-token", "info")
    assert rc == 2 and json.loads(out)["code"] == "UNAUTHENTICATED"
