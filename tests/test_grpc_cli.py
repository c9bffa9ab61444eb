"""`skytwin client ...` against a real server: JSON out, one route format, errors on stderr.

Every route and flight the client prints is validated against the one route format
(``docs/route.schema.json``), and so is ``skytwin route --json`` for the same trip: the
command line and the client use the same names and units.
"""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from skytwin.server.cli import main
from tests.conftest import ROOT
from tests.grpc_fixtures import OP_A, REG, helsinki_twin, start_server

FROM = "24.94030,60.17150"
TO = "24.95240,60.16760"
DEPART = str(int(time.time()) + 7200)
SCHEMA = json.loads((ROOT / "docs" / "route.schema.json").read_text())


def check(kind: str, obj) -> None:
    """Validate ``obj`` against ``$defs/kind`` of the route schema."""
    jsonschema.validate(obj, {"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{kind}"},
                        cls=jsonschema.Draft202012Validator)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("cli") / "store.db")
    yield s.target
    s.stop()


def run(capsys, target, token, *argv):
    rc = main(["client", "--target", target, "--token", token, *argv])
    cap = capsys.readouterr()
    if rc == 2:
        assert cap.out == "", cap.out          # errors never go to stdout
        assert len(cap.err.splitlines()) == 1, cap.err
        err = json.loads(cap.err)
        check("error", err)
        return rc, err
    return rc, cap.out


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
    plan = json.loads(out)["route"]
    assert rc == 0 and len(plan["waypoints"]) >= 4
    check("route", plan)
    assert plan["depart_unix_s"] == pytest.approx(float(DEPART), abs=1e-3)
    rc, out = run(capsys, target, OP_A, "submit", "--request-id", "cli-1", "--from", FROM,
                  "--to", TO, "--depart", DEPART)
    flight = json.loads(out)["flight"]
    check("flight", flight)
    fid = flight["flight_id"]
    assert flight["status"] == "accepted" and flight["cancelled_unix_s"] is None
    rc, out = run(capsys, target, OP_A, "batch", "--request-id", "cli-b", "--depart", DEPART,
                  "--pair", f"{FROM}/{TO}", "--pair", f"{TO}/{FROM}")
    batch = json.loads(out)["flights"]
    assert rc == 0 and len(batch) == 2
    for f in batch:
        check("flight", f)
    rc, out = run(capsys, target, OP_A, "get", fid)
    got = json.loads(out)["flight"]
    check("flight", got)
    assert got == flight
    rc, out = run(capsys, target, OP_A, "list")
    assert len(json.loads(out)["flights"]) == 3
    rc, out = run(capsys, target, OP_A, "cancel", fid)
    cancelled = json.loads(out)["flight"]
    check("flight", cancelled)
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_unix_s"] > 0
    # a regulator cancels an operator's flight only with a reason, which is kept
    other = batch[0]["flight_id"]
    rc, err = run(capsys, target, REG, "cancel", other)
    assert rc == 2 and err["error"]["code"] == "INVALID_ARGUMENT"
    assert "reason" in err["error"]["message"]
    rc, out = run(capsys, target, REG, "cancel", other, "--reason", "police operation")
    assert rc == 0 and json.loads(out)["flight"]["status"] == "cancelled"
    # zones: an operator is refused with the status name and the reason, on stderr
    rc, err = run(capsys, target, OP_A, "zones", "add", "--id", "C1", "--circle",
                  "24.937,60.176,20")
    assert rc == 2 and err["error"]["code"] == "PERMISSION_DENIED"
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
    rc, err = run(capsys, target, "wrong-token", "info")
    assert rc == 2 and err["error"]["code"] == "UNAUTHENTICATED"
    rc, err = run(capsys, target, OP_A, "get", "no-such-flight")
    assert rc == 2 and err["error"]["code"] == "NOT_FOUND"
    rc, err = run(capsys, target, OP_A, "plan", "--from", "24.94", "--to", TO)
    assert rc == 2 and err["error"]["code"] == "INVALID_ARGUMENT"


def test_watch_replays_since_and_prints_no_marker(capsys, target):
    """``--since N`` replays the retained changes after N; no placeholder line."""
    rc, out = run(capsys, target, REG, "zones", "add", "--id", "W1", "--circle",
                  "24.937,60.176,15")
    assert rc == 0
    rc, out = run(capsys, target, REG, "zones", "delete", "W1")
    assert rc == 0
    rc, out = run(capsys, target, REG, "watch", "--since", "0", "--timeout", "3")
    assert rc == 0
    changes = [json.loads(line) for line in out.splitlines()]
    assert changes and all(c["kind"] != "unspecified" for c in changes)
    seqs = [c["sequence"] for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    w1 = [(c["kind"], c["sequence"]) for c in changes if c.get("zone", {}).get("id") == "W1"]
    assert [k for k, _ in w1] == ["zone_added", "zone_removed"]
    for c in changes:
        if "flight" in c:
            check("flight", c["flight"])
    # after the sequence of W1's creation only its removal (and later changes) remain
    added_seq = w1[0][1]
    rc, out = run(capsys, target, REG, "watch", "--since", str(added_seq), "--count", "1",
                  "--timeout", "3")
    first = json.loads(out.splitlines()[0])
    assert rc == 0 and first["sequence"] == added_seq + 1 and first["kind"] == "zone_removed"
    # live only (no --since): nothing old is replayed, and --count 1 does not print the
    # server's marker
    rc, out = run(capsys, target, REG, "watch", "--count", "1", "--timeout", "1.5")
    assert rc == 0 and out == ""


def test_cli_route_json_matches_the_client_format(capsys, tmp_path, target):
    twin, _ = helsinki_twin()
    path = twin.save(tmp_path / "hel.npz")
    assert main(["route", "--twin", str(path), "--from", FROM, "--to", TO, "--depart",
                 DEPART, "--json", "--geojson", str(tmp_path / "r.geojson")]) == 0
    cli = json.loads(capsys.readouterr().out)
    check("route", cli)
    rc, out = run(capsys, target, OP_A, "plan", "--from", FROM, "--to", TO, "--depart", DEPART)
    srv = json.loads(out)["route"]
    # same trip, same twin: same waypoints in the same names and units
    assert len(cli["waypoints"]) == len(srv["waypoints"])
    for a, b in zip(cli["waypoints"], srv["waypoints"], strict=True):
        assert a.keys() == b.keys()
        assert a["lon_deg"] == pytest.approx(b["lon_deg"], abs=1e-7)
        assert a["alt_amsl_m"] == pytest.approx(b["alt_amsl_m"], abs=0.02)
        assert a["time_unix_s"] == pytest.approx(b["time_unix_s"], abs=0.01)
    assert cli["length_m"] == pytest.approx(srv["length_m"], abs=0.05)
    assert cli["duration_s"] == pytest.approx(srv["duration_s"], abs=0.05)
    # GeoJSON: the line's properties are the route without waypoints, each Point's a
    # waypoint
    gj = json.loads((tmp_path / "r.geojson").read_text())
    kinds = [f["properties"].get("kind") for f in gj["features"]]
    line = gj["features"][kinds.index("route")]["properties"]
    jsonschema.validate(line, {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/route_fields",
                               "unevaluatedProperties": False},
                        cls=jsonschema.Draft202012Validator)
    points = [f["properties"] for f in gj["features"] if f["properties"].get("kind") ==
              "waypoint"]
    assert len(points) == len(cli["waypoints"])
    for p, w in zip(points, cli["waypoints"], strict=True):
        check("waypoint", p)
        assert {k: v for k, v in p.items() if k not in ("kind", "index")} == w
