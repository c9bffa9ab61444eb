"""`skytwin client plan` shows the plan_id; `client submit --plan-id` books that plan
without planning again (issue 14 part 1), against a real server."""

from __future__ import annotations

import json
import time

import pytest

from skytwin.server.cli import main
from tests.grpc_fixtures import OP_A, OP_B, start_server

FROM = "24.94030,60.17150"
TO = "24.95240,60.16760"
DEPART = str(int(time.time()) + 7200)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("cliplan") / "store.db")
    yield s
    s.stop()


def run(capsys, target, token, *argv):
    rc = main(["client", "--target", target, "--token", token, *argv])
    cap = capsys.readouterr()
    return rc, json.loads(cap.out if rc == 0 else cap.err)


def test_plan_then_submit_by_plan_id(capsys, srv, monkeypatch):
    rc, plan = run(capsys, srv.target, OP_A, "plan", "--from", FROM, "--to", TO,
                   "--depart", DEPART)
    assert rc == 0 and plan["plan_id"]
    calls = []
    real = srv.core.plan

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(srv.core, "plan", counted)
    # another operator cannot book it
    rc, err = run(capsys, srv.target, OP_B, "submit", "--request-id", "p-b",
                  "--plan-id", plan["plan_id"])
    assert rc == 2 and err["error"]["code"] == "PERMISSION_DENIED"
    rc, out = run(capsys, srv.target, OP_A, "submit", "--request-id", "p-1",
                  "--plan-id", plan["plan_id"])
    assert rc == 0 and calls == []           # booked without planning again
    assert out["replanned"] is False
    got = [(w["lon_deg"], w["lat_deg"], w["alt_amsl_m"])
           for w in out["flight"]["route"]["waypoints"]]
    want = [(w["lon_deg"], w["lat_deg"], w["alt_amsl_m"])
            for w in plan["route"]["waypoints"]]
    assert got == want
    # used once: a second booking of the same handle is refused with what to do
    rc, err = run(capsys, srv.target, OP_A, "submit", "--request-id", "p-2",
                  "--plan-id", plan["plan_id"])
    assert rc == 2 and err["error"]["code"] == "FAILED_PRECONDITION"
    assert "plan again" in err["error"]["message"]


def test_submit_needs_a_route_or_a_plan_id(capsys, srv):
    rc, err = run(capsys, srv.target, OP_A, "submit", "--request-id", "p-3")
    assert rc == 2 and "--plan-id" in err["error"]["message"]
    rc, err = run(capsys, srv.target, OP_A, "submit", "--request-id", "p-4", "--from", FROM)
    assert rc == 2 and "--to" in err["error"]["message"]
