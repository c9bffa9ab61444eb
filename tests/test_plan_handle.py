"""Plan once, book that plan (issue 14, item 1): PlanRoute's plan_id through SubmitFlight.

A real server on port 0. The booking of a held plan must not plan again (counted on
the service core), must book exactly the previewed geometry, must still be
deconflicted against flights accepted since the preview (independent verifier) and
re-planned around a zone created since; handles are bound to their operator and their
request, used once, and expire.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from skytwin.server.convert import seconds
from skytwin.server.plans import PlanCache, PlanExpiredError
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import zones_pb2 as zpb
from skytwin.v1 import zones_pb2_grpc as zrpc
from tests.grpc_fixtures import OP_A, OP_B, REG, helsinki_twin, md, start_server
from tests.test_grpc_service import FROM, MID, TO, circle_zone, expect, route_req

T0 = float(int(time.time()) + 3 * 86400)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("plans") / "store.db")
    yield s
    s.stop()


@pytest.fixture
def stubs(srv):
    ch = srv.channel()
    yield frpc.FlightServiceStub(ch), zrpc.ZoneServiceStub(ch)
    ch.close()


@pytest.fixture
def plan_calls(srv, monkeypatch):
    """Count the service core's planning calls."""
    calls = []
    real = srv.core.plan

    def counted(req, *caller):
        calls.append(req)
        return real(req, *caller)
    monkeypatch.setattr(srv.core, "plan", counted)
    return calls


def _pts(route):
    return np.array([[w.position.lon_deg, w.position.lat_deg, w.alt_amsl_m]
                     for w in route.waypoints])


def test_book_the_previewed_plan_without_planning_again(stubs, srv, plan_calls):
    f, _ = stubs
    pr = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=T0)), metadata=md(OP_A))
    assert pr.plan_id.startswith("P-") and len(plan_calls) == 1
    hold = seconds(pr.plan_expire_time) - time.time()
    assert 0 < hold <= srv.core.limits.plan_hold_s + 1
    # route unset: the held request is booked
    r = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="ph-1", plan_id=pr.plan_id),
                       metadata=md(OP_A))
    assert len(plan_calls) == 1 and not r.replanned and not r.replayed
    assert r.flight.delay.seconds == 0 and r.flight.layer_shift == 0
    np.testing.assert_array_equal(_pts(r.flight.route), _pts(pr.route))
    np.testing.assert_allclose([seconds(w.time) for w in r.flight.route.waypoints],
                               [seconds(w.time) for w in pr.route.waypoints], atol=2e-6)
    # a retry of the same request replays (the handle is used up, the store answers)
    again = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="ph-1", plan_id=pr.plan_id),
                           metadata=md(OP_A))
    assert again.replayed and again.flight.flight_id == r.flight.flight_id
    # used once: a new request id with the consumed handle and no route is refused ...
    expect(grpc.StatusCode.FAILED_PRECONDITION, "unknown or expired", f.SubmitFlight,
           fpb.SubmitFlightRequest(request_id="ph-2", plan_id=pr.plan_id),
           metadata=md(OP_A))
    # ... and with its route it is planned anew and placed after the first flight
    r2 = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="ph-3", plan_id=pr.plan_id,
                                                route=route_req(depart_s=T0)),
                        metadata=md(OP_A))
    assert r2.replanned and len(plan_calls) == 2
    assert r2.flight.flight_id != r.flight.flight_id


def test_held_plan_is_deconflicted_against_flights_booked_since(stubs, srv, plan_calls):
    from skytwin.planner.verify import verify
    f, _ = stubs
    t = T0 + 20_000
    a = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=t)), metadata=md(OP_A))
    b = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=t)), metadata=md(OP_B))
    np.testing.assert_array_equal(_pts(a.route), _pts(b.route))   # the same slot
    ra = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="dc-a", plan_id=a.plan_id,
                                                route=route_req(depart_s=t)),
                        metadata=md(OP_A))
    rb = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="dc-b", plan_id=b.plan_id),
                        metadata=md(OP_B))
    assert not ra.replanned and not rb.replanned and len(plan_calls) == 2
    assert seconds(rb.flight.route.waypoints[0].time) > \
        seconds(ra.flight.route.waypoints[0].time) or rb.flight.layer_shift > 0
    assert verify(srv.core.index.trajectories).ok


def test_handle_bound_to_operator_and_request(stubs, srv):
    f, _ = stubs
    t = T0 + 40_000
    pr = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=t)), metadata=md(OP_A))
    expect(grpc.StatusCode.PERMISSION_DENIED, "another operator", f.SubmitFlight,
           fpb.SubmitFlightRequest(request_id="own-b", plan_id=pr.plan_id),
           metadata=md(OP_B))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "route differs", f.SubmitFlight,
           fpb.SubmitFlightRequest(request_id="own-a", plan_id=pr.plan_id,
                                   route=route_req(depart_s=t + 60)), metadata=md(OP_A))
    # neither refusal used the handle up: its owner books it as planned
    ok = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="own-a2", plan_id=pr.plan_id,
                                                route=route_req(depart_s=t)),
                        metadata=md(OP_A))
    assert not ok.replanned
    # a regulator previews without a handle (regulators do not book)
    reg = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=t)), metadata=md(REG))
    assert reg.plan_id == "" and len(reg.route.waypoints) >= 2


def test_zone_created_since_the_plan_forces_a_new_plan(stubs, srv, plan_calls):
    from skytwin.airspace.zones import LocalZone, ground_range_from_grid
    from skytwin.planner.validate import RouteValidator
    from skytwin.server.convert import zone_from_proto
    f, z = stubs
    twin, _ = helsinki_twin()
    t = T0 + 60_000
    pr = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(FROM, TO, depart_s=t)),
                     metadata=md(OP_A))
    zone = circle_zone("PH-MID", MID, 40.0)
    z.CreateZone(zpb.CreateZoneRequest(zone=zone), metadata=md(REG))
    try:
        r = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="zone-1", plan_id=pr.plan_id),
                           metadata=md(OP_A))
        assert r.replanned and len(plan_calls) == 2
        lon = np.array([w.position.lon_deg for w in r.flight.route.waypoints])
        lat = np.array([w.position.lat_deg for w in r.flight.route.waypoints])
        x, y = twin.frame.to_local(lon, lat)
        xyz = np.column_stack([x, y, [w.alt_amsl_m for w in r.flight.route.waypoints]])
        ts = np.array([seconds(w.time) for w in r.flight.route.waypoints])
        v = RouteValidator(twin.buildings, twin.clearance_m)
        lz = LocalZone(zone_from_proto(zone), twin.frame)
        gr = ground_range_from_grid(twin.grid, twin.ground_m)
        assert v.check(np.round(xyz, 2), ts, zones=[lz], ground_range=gr).ok
        old = _pts(pr.route)
        x0, y0 = twin.frame.to_local(old[:, 0], old[:, 1])
        t_old = np.array([seconds(w.time) for w in pr.route.waypoints])
        assert not v.check(np.round(np.column_stack([x0, y0, old[:, 2]]), 2), t_old,
                           zones=[lz], ground_range=gr).ok   # the preview crossed it
    finally:
        z.DeleteZone(zpb.DeleteZoneRequest(zone_id="PH-MID"), metadata=md(REG))


def test_cache_expiry_and_bounds():
    c = PlanCache(hold_s=0.2, max_plans=5, max_per_operator=3)
    a = [c.put("A", "d", None, {}, None, 0) for _ in range(4)]
    assert len(c) == 3 and c.evicted == 1          # A's oldest made room
    with pytest.raises(PlanExpiredError):
        c.take(a[0].plan_id, "A")
    b = [c.put("B", "d", None, {}, None, 0) for _ in range(3)]
    assert len(c) == 5                              # global bound: A's oldest left
    with pytest.raises(PlanExpiredError):
        c.take(a[1].plan_id, "A")
    with pytest.raises(PermissionError):
        c.take(b[0].plan_id, "A")
    with pytest.raises(ValueError):
        c.take(b[0].plan_id, "B", route_digest="other")
    assert c.take(b[0].plan_id, "B") is b[0]
    time.sleep(0.25)
    with pytest.raises(PlanExpiredError):
        c.take(b[1].plan_id, "B")
    assert len(c) == 0


def test_single_booking_interleaves_with_a_large_batch(stubs, srv, monkeypatch):
    """Fair booking: the batch's placement releases the booking lock between chunks, so
    another operator's booking completes while the batch is still placing (each
    placement is slowed to 30 ms here: 48 members hold the lock 1.4 s in one go)."""
    import threading

    from skytwin.planner.verify import verify
    from skytwin.server.service import BATCH_CHUNK
    f, _ = stubs
    t = T0 + 80_000
    real = srv.core._place_checked
    batch_started = threading.Event()
    in_batch = threading.local()

    def slow(traj, speeds, others=(), **kw):
        if getattr(in_batch, "on", False):
            batch_started.set()
            time.sleep(0.03)
        return real(traj, speeds, others, **kw)
    monkeypatch.setattr(srv.core, "_place_checked", slow)
    real_batch = srv.core._submit_batch

    def marked(*a, **kw):
        in_batch.on = True
        try:
            return real_batch(*a, **kw)
        finally:
            in_batch.on = False
    monkeypatch.setattr(srv.core, "_submit_batch", marked)
    n = 3 * BATCH_CHUNK
    routes = [route_req(FROM, TO, depart_s=t + 40.0 * k) for k in range(n)]
    done = {}

    def batch():
        r = f.SubmitBatch(fpb.SubmitBatchRequest(request_id="fair-batch", routes=routes),
                          metadata=md(OP_A), timeout=120)
        done["batch"] = (time.monotonic(), len(r.flights))
    th = threading.Thread(target=batch)
    th.start()
    assert batch_started.wait(120)
    single = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=t + 7.0)),
                         metadata=md(OP_B))
    t_sub = time.monotonic()
    r = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="fair-single",
                                               plan_id=single.plan_id), metadata=md(OP_B))
    done["single"] = time.monotonic()
    th.join(120)
    assert done["batch"][1] == n
    wait_s = done["single"] - t_sub
    assert done["single"] < done["batch"][0], "the single booking waited for the batch"
    assert wait_s < 0.03 * n * 0.75, wait_s
    assert r.flight.flight_id and verify(srv.core.index.trajectories).ok
