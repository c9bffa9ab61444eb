"""Planning in forked worker processes (issue 14 part 2, server/workers.py), against a
real `skytwin serve --plan-processes 2` child process.

Rules checked: the workers exist and are the server's children; a plan from a worker
equals the plan of an in-process Planner on the same twin (same waypoints); a zone
created or deleted through the API after the workers were forked is honoured by the
very next plan (the state travels with the jobs); errors keep their status and
message; a worker killed with SIGKILL costs no call (the call is planned again).
"""

from __future__ import annotations

import os
import signal
import time

import grpc
import numpy as np
import pytest

from skytwin.planner.route import Planner, RouteRequest
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import zones_pb2 as zpb
from skytwin.v1 import zones_pb2_grpc as zrpc
from tests.grpc_fixtures import OP_A, REG, helsinki_twin, md
from tests.serve_process import start_serve, stop_all

FROM = (24.94030, 60.17150)
TO = (24.95240, 60.16760)
DEPART_S = float(int(time.time()) + 7200)
AGL = apb.ALTITUDE_REFERENCE_AGL


def _children(pid):
    return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("workers") / "store.db"
    p, target = start_serve("--db", str(db), "--plan-processes", "2", "--web", "off")
    ch = grpc.insecure_channel(target)
    yield p, frpc.FlightServiceStub(ch), zrpc.ZoneServiceStub(ch)
    ch.close()
    stop_all([p])


def _plan(flights, start=FROM, goal=TO):
    return flights.PlanRoute(fpb.PlanRouteRequest(route=fpb.RouteRequest(
        start=apb.LonLat(lon_deg=start[0], lat_deg=start[1]),
        goal=apb.LonLat(lon_deg=goal[0], lat_deg=goal[1]),
        departure_time=__import__("skytwin.server.convert", fromlist=["x"]).timestamp(
            DEPART_S))), metadata=md(OP_A), timeout=60)


def test_two_workers_plan_what_an_in_process_planner_plans(server):
    p, flights, _ = server
    kids = _children(p.pid)
    assert len(kids) == 2
    got = _plan(flights)
    twin, _ = helsinki_twin()
    want = Planner(twin).plan(RouteRequest(FROM, TO, depart_s=DEPART_S))
    lonlat = np.array([(w.position.lon_deg, w.position.lat_deg) for w in got.route.waypoints])
    assert lonlat.shape == want.lonlat_deg.shape
    assert np.allclose(lonlat, want.lonlat_deg, atol=1e-9)
    assert got.plan_id


def test_a_zone_made_after_the_fork_is_honoured_by_the_next_plan(server):
    _, flights, zones = server
    zone = zpb.Zone(id="W-1", circle=zpb.Circle(
        centre=apb.LonLat(lon_deg=FROM[0], lat_deg=FROM[1]), radius_m=30.0),
        lower=apb.Altitude(value_m=0, reference=AGL),
        upper=apb.Altitude(value_m=300, reference=AGL))
    zones.CreateZone(zpb.CreateZoneRequest(zone=zone), metadata=md(REG))
    try:
        for _ in range(4):          # every worker, whichever takes the call
            with pytest.raises(grpc.RpcError) as e:
                _plan(flights)
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "W-1" in e.value.details()
    finally:
        zones.DeleteZone(zpb.DeleteZoneRequest(zone_id="W-1"), metadata=md(REG))
    for _ in range(4):
        assert _plan(flights).route.waypoints


def test_errors_keep_their_status_and_message(server):
    _, flights, _ = server
    with pytest.raises(grpc.RpcError) as e:
        flights.PlanRoute(fpb.PlanRouteRequest(route=fpb.RouteRequest(
            start=apb.LonLat(lon_deg=FROM[0], lat_deg=FROM[1]),
            goal=apb.LonLat(lon_deg=TO[0], lat_deg=TO[1]),
            min_agl_m=50.0, ceiling_agl_m=40.0)), metadata=md(OP_A), timeout=60)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "min_agl" in e.value.details()


def test_a_killed_worker_costs_no_call(server):
    p, flights, _ = server
    kids = _children(p.pid)
    os.kill(kids[0], signal.SIGKILL)
    for _ in range(4):
        assert _plan(flights).route.waypoints
    assert kids[0] not in _children(p.pid)


def test_a_batch_is_planned_on_the_workers_and_booked_conflict_free(server):
    from skytwin.planner.trajectory import Trajectory
    from skytwin.planner.verify import verify
    from skytwin.server.convert import seconds, timestamp
    _, flights, _ = server
    routes = [fpb.RouteRequest(start=apb.LonLat(lon_deg=FROM[0], lat_deg=FROM[1]),
                               goal=apb.LonLat(lon_deg=TO[0], lat_deg=TO[1]),
                               departure_time=timestamp(DEPART_S + 3600))
              for _ in range(4)]
    r = flights.SubmitBatch(fpb.SubmitBatchRequest(request_id="wb-1", routes=routes),
                            metadata=md(OP_A), timeout=120)
    assert len(r.flights) == 4
    twin, _ = helsinki_twin()
    trajs = []
    for f in r.flights:
        wp = f.route.waypoints
        x, y = twin.frame.to_local(np.array([w.position.lon_deg for w in wp]),
                                   np.array([w.position.lat_deg for w in wp]))
        trajs.append(Trajectory(f.flight_id, np.column_stack(
            [x, y, [w.alt_amsl_m for w in wp]]), np.array([seconds(w.time) for w in wp])))
    assert verify(trajs).ok


def test_workers_exit_when_the_server_is_killed(tmp_path):
    """SIGKILL of the server leaves no planning worker behind (they hold copies of the
    server's pipe ends, so they get no EOF: they notice they were re-parented)."""
    p, _ = start_serve("--db", str(tmp_path / "store.db"), "--plan-processes", "2",
                       "--web", "off")
    try:
        kids = _children(p.pid)
        assert len(kids) >= 2
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        deadline = time.monotonic() + 30.0      # generous: catches a leak, not a speed
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{k}")
                                                  and _state(k) != "Z" for k in kids):
            time.sleep(0.2)
        assert [k for k in kids if os.path.exists(f"/proc/{k}") and _state(k) != "Z"] == []
    finally:
        stop_all([p])


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
