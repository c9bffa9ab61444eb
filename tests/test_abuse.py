"""Abuse cases of issue 9 against a real server on a real port (bundled city, real SQLite).

Every case under the issue's "Why" gets a typed answer (status code AND message) within
``BOUND_S``, and the server keeps answering health and a PlanRoute afterwards. The issue
asks for under 1 s, which is measured, not asserted (benchmarks/bench_abuse.py; figures in
benchmarks/RESULTS.md, "Abuse and limits": at most 18 ms per refusal); the assertion is a
generous ``BOUND_S`` = 10 s that catches a hang or unbounded work without failing on a
loaded 2-core machine (3 s failed at a load average of 7). A second server
with tight limits (one planning thread, no waiting room, tiny kept workspace, short
deadlines) exercises capacity, server-side deadlines and the duration limit
deterministically. Then every request message is fuzzed with Hypothesis (random and
boundary values), asserting that nothing is INTERNAL or UNKNOWN, answers are bounded in
time and messages in length.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import descriptor as gdesc
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skytwin.server.convert import duration, timestamp
from skytwin.server.limits import load_limits
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import airspace_pb2_grpc as arpc
from skytwin.v1 import changes_pb2 as cpb
from skytwin.v1 import changes_pb2_grpc as crpc
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import zones_pb2 as zpb
from skytwin.v1 import zones_pb2_grpc as zrpc
from tests.grpc_fixtures import OP_A, OP_B, REG, md, start_server

FROM = (24.94030, 60.17150)   # Railway Square
TO = (24.95240, 60.16760)     # Market Square
NEAR = (24.94300, 60.17100)   # a short hop from FROM
AGL = apb.ALTITUDE_REFERENCE_AGL
AMSL = apb.ALTITUDE_REFERENCE_AMSL
BOUND_S = 10.0                # per typed refusal: catches a hang (the < 1 s is measured)
ALIVE_BOUND_S = 60.0          # a real PlanRoute, the server's first may build its tables
LIMITS = load_limits()
T_NOW = time.time()
T0 = float(int(T_NOW) + 3 * 3600)
MB = "x" * (1 << 20)


def ll(p):
    return apb.LonLat(lon_deg=p[0], lat_deg=p[1])


def route_req(a=FROM, b=TO, depart_s=T0, **kw):
    return fpb.RouteRequest(start=ll(a), goal=ll(b), departure_time=timestamp(depart_s), **kw)


def circle_zone(zid, centre, radius_m, lo=(0.0, AGL), hi=(200.0, AGL), **kw):
    return zpb.Zone(id=zid, circle=zpb.Circle(centre=ll(centre), radius_m=radius_m),
                    lower=apb.Altitude(value_m=lo[0], reference=lo[1]),
                    upper=apb.Altitude(value_m=hi[0], reference=hi[1]), **kw)


def timed(fn, req, token, timeout=60.0):
    """``(code, details, seconds)`` of one call."""
    t = time.perf_counter()
    try:
        fn(req, metadata=md(token), timeout=timeout)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        code, details = e.code(), e.details() or ""
    return code, details, time.perf_counter() - t


def refused(code, fragments, fn, req, token, bound_s=BOUND_S):
    """Assert a typed refusal: status, message fragments, a short message, the time."""
    got, details, dt = timed(fn, req, token)
    assert got == code, (got, details[:300])
    for frag in fragments:
        assert frag in details, (frag, details[:300])
    assert len(details) <= 400, len(details)
    assert dt < bound_s, (dt, details[:200])
    return details


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("abuse") / "store.db")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stubs(srv):
    ch = srv.channel()
    yield (arpc.AirspaceServiceStub(ch), zrpc.ZoneServiceStub(ch),
           frpc.FlightServiceStub(ch), crpc.ChangeServiceStub(ch))
    ch.close()


def assert_alive(srv):
    """Health is SERVING and a normal PlanRoute succeeds within the bound."""
    with grpc.insecure_channel(srv.target) as ch:
        h = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert h.status == health_pb2.HealthCheckResponse.SERVING
        t = time.perf_counter()
        r = frpc.FlightServiceStub(ch).PlanRoute(
            fpb.PlanRouteRequest(route=route_req()), metadata=md(OP_A), timeout=30)
        assert len(r.route.waypoints) >= 2
        assert time.perf_counter() - t < ALIVE_BOUND_S


# ------------------------------------------------------------------ the "Why" list
def test_absurd_speeds_are_refused(stubs, srv):
    f = stubs[2]
    for v in (1e-6, 1e-9):
        refused(grpc.StatusCode.INVALID_ARGUMENT,
                ["route.cruise_speed_mps must be within", f"{LIMITS.min_cruise_speed_mps:g}"],
                f.SubmitFlight, fpb.SubmitFlightRequest(
                    request_id=f"slow-{v}", route=route_req(cruise_speed_mps=v)), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["route.cruise_speed_mps", "1e+06"],
            f.PlanRoute, fpb.PlanRouteRequest(route=route_req(cruise_speed_mps=1e6)), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["route.climb_speed_mps must be within"],
            f.SubmitFlight, fpb.SubmitFlightRequest(
                request_id="climb", route=route_req(climb_speed_mps=1e-6)), OP_A)
    assert srv.core.store.count_flights() == 0
    assert_alive(srv)


def test_departure_horizon(stubs, srv):
    f = stubs[2]
    thirty_years = T_NOW + 30 * 365.25 * 86400
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["departure_time is", "days ahead",
                                               "limit is 30 days"],
            f.SubmitFlight, fpb.SubmitFlightRequest(
                request_id="far", route=route_req(depart_s=thirty_years)), OP_A)
    y9999 = 253402300799.0                    # 9999-12-31T23:59:59Z
    msg = refused(grpc.StatusCode.INVALID_ARGUMENT, ["departure_time is", "days ahead"],
                  f.SubmitFlight, fpb.SubmitFlightRequest(
                      request_id="y9999", route=route_req(depart_s=y9999)), OP_A)
    assert "speed" not in msg
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["days ahead"], f.PlanRoute,
            fpb.PlanRouteRequest(route=route_req(depart_s=y9999)), OP_A)


def test_blocked_codes_query_is_bounded_before_work(stubs, srv):
    a = stubs[0]
    box = apb.LonLatBox(min_lon_deg=24.9400, min_lat_deg=60.1690, max_lon_deg=24.9420,
                        max_lat_deg=60.1700)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["clearance_m must be within 0..20 m",
                                               "1e+06"],
            a.QueryBlockedCodes, apb.QueryBlockedCodesRequest(
                box=box, z_lo_amsl_m=0, z_hi_amsl_m=120, clearance_m=1e6), OP_A)
    b = srv.core.twin.bounds_wgs84()
    whole = apb.LonLatBox(min_lon_deg=b[0], min_lat_deg=b[1], max_lon_deg=b[2],
                          max_lat_deg=b[3])
    refused(grpc.StatusCode.RESOURCE_EXHAUSTED, ["more than the limit of 5000",
                                                 "narrow the box"],
            a.QueryBlockedCodes, apb.QueryBlockedCodesRequest(
                box=whole, z_lo_amsl_m=0, z_hi_amsl_m=120, clearance_m=20), OP_A)
    refused(grpc.StatusCode.RESOURCE_EXHAUSTED, ["layers", "narrow it"], a.QueryBlockedCodes,
            apb.QueryBlockedCodesRequest(box=box, z_lo_amsl_m=-9e4, z_hi_amsl_m=9e4,
                                         layer_m=0.1), OP_A)
    # the largest allowed box (just under the cell limit) with the largest clearance
    side = 0.00155
    biggest = apb.LonLatBox(min_lon_deg=24.9400, min_lat_deg=60.1690,
                            max_lon_deg=24.9400 + 2 * side, max_lat_deg=60.1690 + side)
    code, details, dt = timed(a.QueryBlockedCodes, apb.QueryBlockedCodesRequest(
        box=biggest, z_lo_amsl_m=0, z_hi_amsl_m=120, clearance_m=20), OP_A)
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED), details
    assert dt < BOUND_S, dt
    assert_alive(srv)


def test_deeply_nested_ed269_is_invalid_argument(stubs, srv):
    z = stubs[1]
    for depth in (1000, 100_000):
        refused(grpc.StatusCode.INVALID_ARGUMENT, [f"nests {depth} levels deep",
                                                   f"limit of {LIMITS.max_json_depth}"],
                z.ImportEd269, zpb.ImportEd269Request(
                    ed269_json="[" * depth + "]" * depth), REG)
    nested: list = []
    for _ in range(60):                       # a plausible document, 60 levels deep
        nested = [nested]
    doc = {"features": [{"identifier": "N1", "geometry": [{"nest": nested}]}]}
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["levels deep"], z.ImportEd269,
            zpb.ImportEd269Request(ed269_json=json.dumps(doc)), REG)


def test_huge_ids_and_strings(stubs, srv):
    a, z, f, c = stubs
    long_ = refused(grpc.StatusCode.INVALID_ARGUMENT,
                    ["request_id: 1048576 characters, over the limit of 128"],
                    f.SubmitFlight, fpb.SubmitFlightRequest(request_id=MB, route=route_req()),
                    OP_A)
    assert long_.count("x") <= LIMITS.echo_chars
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["request_id: only letters"], f.SubmitFlight,
            fpb.SubmitFlightRequest(request_id="a b\n", route=route_req()), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["zone.id: 1048576 characters"],
            z.CreateZone, zpb.CreateZoneRequest(zone=circle_zone(MB, NEAR, 20)), REG)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["zone.reason: 1048576 characters",
                                               "limit of 1024"],
            z.CreateZone, zpb.CreateZoneRequest(
                zone=circle_zone("Z-R", NEAR, 20, reason=MB)), REG)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["flight_id: 1048576 characters"],
            f.GetFlight, fpb.GetFlightRequest(flight_id=MB), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["flight_id: 1048576 characters"],
            f.CancelFlight, fpb.CancelFlightRequest(flight_id=MB), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["zone_id: 1048576"], z.GetZone,
            zpb.GetZoneRequest(zone_id=MB), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["zone_id: 1048576"], z.DeleteZone,
            zpb.DeleteZoneRequest(zone_id=MB), REG)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["page_token: 1048576"], f.ListFlights,
            fpb.ListFlightsRequest(page_token=MB), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["code: 1048576 characters"], a.DecodeGridCode,
            apb.DecodeGridCodeRequest(code=MB), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["country must be an ISO 3166-1 alpha-3"],
            z.ExportEd269, zpb.ExportEd269Request(country=MB), OP_A)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["reason: 1048576 characters"],
            f.CancelFlight, fpb.CancelFlightRequest(flight_id="F-000000000000", reason=MB),
            REG)
    assert srv.core.store.count_flights() == 0 and len(srv.core.zones) == 0


def test_absurd_zones(stubs, srv):
    z = stubs[1]
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["lower limit 100 m AGL is not below upper "
                                               "limit 5 m AMSL", "the band is empty"],
            z.CreateZone, zpb.CreateZoneRequest(
                zone=circle_zone("Z-BAND", NEAR, 30, lo=(100, AGL), hi=(5, AMSL))), REG)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["circle.radius_m must be within 0..50000 m",
                                               "1e+300"],
            z.CreateZone, zpb.CreateZoneRequest(zone=circle_zone("Z-HUGE", NEAR, 1e300)),
            REG)
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["lower.value_m must be within"],
            z.CreateZone, zpb.CreateZoneRequest(
                zone=circle_zone("Z-LOW", NEAR, 30, lo=(-1e300, AMSL))), REG)
    doc = {"features": [{"identifier": "E-BAND", "geometry": [{
        "uomDimensions": "M", "lowerLimit": 100, "lowerVerticalReference": "AGL",
        "upperLimit": 5, "upperVerticalReference": "AMSL",
        "horizontalProjection": {"type": "Circle", "center": list(NEAR), "radius": 30}}]}]}
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["zone E-BAND", "the band is empty"],
            z.ImportEd269, zpb.ImportEd269Request(ed269_json=json.dumps(doc)), REG)
    # an honest mixed-reference band is fine
    ok = z.CreateZone(zpb.CreateZoneRequest(zone=circle_zone(
        "Z-MIXED", NEAR, 30, lo=(0, AGL), hi=(300, AMSL))), metadata=md(REG), timeout=10)
    assert ok.zone.id == "Z-MIXED"
    z.DeleteZone(zpb.DeleteZoneRequest(zone_id="Z-MIXED"), metadata=md(REG), timeout=10)
    assert len(srv.core.zones) == 0


def test_reused_request_id_with_another_request(stubs, srv):
    f = stubs[2]
    first = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="same-key", route=route_req(
        depart_s=T0 + 10_000)), metadata=md(OP_A), timeout=60)
    again = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="same-key", route=route_req(
        depart_s=T0 + 10_000)), metadata=md(OP_A), timeout=60)
    assert again.replayed and again.flight.flight_id == first.flight.flight_id
    refused(grpc.StatusCode.FAILED_PRECONDITION,
            ["request_id 'same-key' was already used for a different request"],
            f.SubmitFlight, fpb.SubmitFlightRequest(request_id="same-key", route=route_req(
                a=NEAR, depart_s=T0 + 10_000)), OP_A)
    # another operator may use the same key for its own request
    other = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="same-key", route=route_req(
        a=NEAR, depart_s=T0 + 20_000)), metadata=md(OP_B), timeout=60)
    assert not other.replayed
    batch = fpb.SubmitBatchRequest(request_id="same-batch", routes=[
        route_req(depart_s=T0 + 30_000), route_req(a=NEAR, depart_s=T0 + 30_000)])
    f.SubmitBatch(batch, metadata=md(OP_A), timeout=60)
    batch.routes[1].cruise_speed_mps = 7.0
    refused(grpc.StatusCode.FAILED_PRECONDITION, ["'same-batch' was already used"],
            f.SubmitBatch, batch, OP_A)
    for fl in (first.flight, other.flight):
        tok = OP_A if fl.operator_id == "op-a" else OP_B
        f.CancelFlight(fpb.CancelFlightRequest(flight_id=fl.flight_id), metadata=md(tok))


def test_page_size_message_says_the_value(stubs):
    f = stubs[2]
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["page_size must be within 0..1000", "got -5"],
            f.ListFlights, fpb.ListFlightsRequest(page_size=-5), OP_A)
    refused(grpc.StatusCode.RESOURCE_EXHAUSTED, ["page_size 5000 is over the limit of 1000"],
            f.ListFlights, fpb.ListFlightsRequest(page_size=5000), OP_A)


def test_low_ceiling_does_not_keep_large_workspaces(stubs, srv):
    """A low ceiling across the twin forces the finest search level; its workspace is
    larger than what a thread keeps, so it is released after the call."""
    f = stubs[2]
    b = srv.core.twin.bounds_wgs84()
    a, z = (b[0] + 0.001, b[1] + 0.001), (b[2] - 0.001, b[3] - 0.001)
    cap = srv.core.limits.keep_workspace_voxels * 16 + 64 * (1 << 20)
    before = sum(p.large_searches for p in srv.core._planners)
    for ceiling in (12.0, 14.0):
        code, details, dt = timed(f.PlanRoute, fpb.PlanRouteRequest(
            route=route_req(a, z, ceiling_agl_m=ceiling, min_agl_m=10.0)), OP_A)
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION), details
        assert dt < LIMITS.deadline_plan_s + 5
    assert sum(p.large_searches for p in srv.core._planners) > before   # path taken
    threads = srv.server.skytwin_executor._max_workers
    assert srv.core.workspace_bytes() <= threads * cap
    assert srv.core._large_search.acquire(blocking=False)     # no slot left taken
    srv.core._large_search.release()


def _watch(stub, token, region=None):
    req = cpb.WatchRequest(region=region) if region else cpb.WatchRequest()
    call = stub.Watch(req, metadata=md(token), timeout=60)
    q: queue.Queue = queue.Queue()

    def pump():
        try:
            for ch in call:
                q.put(ch)
        except grpc.RpcError:
            pass
    threading.Thread(target=pump, daemon=True).start()
    assert q.get(timeout=10).kind == cpb.CHANGE_KIND_UNSPECIFIED
    return q, call


def _next_zone_event(q, zone_id):
    while True:
        ch = q.get(timeout=20)
        if ch.HasField("zone") and ch.zone.id == zone_id:
            return ch


def test_watch_and_errors_show_only_own_flight_ids(stubs, srv):
    a, z, f, c = stubs
    fa = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="leak-a", route=route_req(
        depart_s=T0 + 40_000)), metadata=md(OP_A), timeout=60).flight
    fb = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="leak-b", route=route_req(
        depart_s=T0 + 40_000)), metadata=md(OP_B), timeout=60).flight
    # a zone on A's route (a cruise waypoint), long and wide enough to meet B's as well
    wp = fa.route.waypoints[len(fa.route.waypoints) // 2].position
    qa, ca = _watch(c, OP_A)
    qb, cb = _watch(c, OP_B)
    qr, cr = _watch(c, REG)
    try:
        made = z.CreateZone(zpb.CreateZoneRequest(zone=circle_zone(
            "Z-LEAK", (wp.lon_deg, wp.lat_deg), 60.0, hi=(300, AGL))),
            metadata=md(REG), timeout=30)
        everyone = set(made.affected_flight_ids)
        assert {fa.flight_id, fb.flight_id} <= everyone          # the regulator sees all
        ev_a = _next_zone_event(qa, "Z-LEAK")
        ev_b = _next_zone_event(qb, "Z-LEAK")
        ev_r = _next_zone_event(qr, "Z-LEAK")
        store = srv.core.store
        for ev, mine, other, op in ((ev_a, fa, fb, "op-a"), (ev_b, fb, fa, "op-b")):
            ids = set(ev.affected_flight_ids)
            assert mine.flight_id in ids and other.flight_id not in ids
            assert {store.get_flight(i).operator_id for i in ids} == {op}
        assert set(ev_r.affected_flight_ids) == everyone
    finally:
        for call in (ca, cb, cr):
            call.cancel()
        z.DeleteZone(zpb.DeleteZoneRequest(zone_id="Z-LEAK"), metadata=md(REG), timeout=10)
    # listings and gets: only own flights
    listed = f.ListFlights(fpb.ListFlightsRequest(page_size=1000), metadata=md(OP_A))
    assert fb.flight_id not in {x.flight_id for x in listed.flights}
    refused(grpc.StatusCode.PERMISSION_DENIED, ["belongs to another operator"], f.GetFlight,
            fpb.GetFlightRequest(flight_id=fb.flight_id), OP_A)
    # a refused booking never names another operator's flight
    core = srv.core
    from skytwin.server.service import Caller
    a_caller, b_caller = Caller("a", "operator", "op-a"), Caller("b", "operator", "op-b")
    text = f"conflict between F-00000000000a and {fb.flight_id} near t=5 s"
    assert fb.flight_id not in core.redact(text, a_caller)
    assert "another operator's flight" in core.redact(text, a_caller)
    assert fb.flight_id in core.redact(text, b_caller)
    assert fa.flight_id not in core.redact(f"blocked by ['{fa.flight_id}']", b_caller)
    # ... but it names the caller's own flight being booked (not accepted, so unowned)
    from skytwin.server.service import BookingRejectedError
    new = "F-00000000abcd"
    out = core._redacted(BookingRejectedError(
        f"flight {new}: no conflict-free option; blocked by ['{fa.flight_id}']", [new]),
        b_caller)
    assert out.reason.startswith(f"flight {new}:") and fa.flight_id not in out.reason
    # the regulator cancels B's flight: only with a reason, which is recorded and sent
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["reason is required"], f.CancelFlight,
            fpb.CancelFlightRequest(flight_id=fb.flight_id), REG)
    qb, cb = _watch(c, OP_B)
    try:
        gone = f.CancelFlight(fpb.CancelFlightRequest(
            flight_id=fb.flight_id, reason="police operation"), metadata=md(REG)).flight
        assert gone.cancel_reason == "police operation"
        while True:
            ev = qb.get(timeout=20)
            if ev.kind == cpb.CHANGE_KIND_FLIGHT_CANCELLED:
                break
        assert ev.flight.flight_id == fb.flight_id and ev.reason == "police operation"
        assert srv.core.store.get_flight(fb.flight_id).cancel_reason == "police operation"
    finally:
        cb.cancel()
    f.CancelFlight(fpb.CancelFlightRequest(flight_id=fa.flight_id), metadata=md(OP_A))
    assert_alive(srv)


def test_abuse_does_not_delay_another_operators_booking(stubs, srv):
    """While operator A sends abusive requests, operator B's booking goes through."""
    a, z, f, c = stubs
    stop = threading.Event()

    def abuse():
        reqs = [(f.PlanRoute, fpb.PlanRouteRequest(route=route_req(cruise_speed_mps=1e-6))),
                (a.QueryBlockedCodes, apb.QueryBlockedCodesRequest(
                    box=apb.LonLatBox(min_lon_deg=24.94, min_lat_deg=60.169,
                                      max_lon_deg=24.942, max_lat_deg=60.170),
                    z_lo_amsl_m=0, z_hi_amsl_m=120, clearance_m=1e6)),
                (f.PlanRoute, fpb.PlanRouteRequest(route=route_req(ceiling_agl_m=14.0))),
                (z.ImportEd269, zpb.ImportEd269Request(ed269_json="[" * 50_000))]
        n = 0
        while not stop.is_set():
            fn, req = reqs[n % len(reqs)]
            timed(fn, req, OP_A if fn is not z.ImportEd269 else REG)
            n += 1

    with ThreadPoolExecutor(3) as pool:
        futs = [pool.submit(abuse) for _ in range(3)]
        time.sleep(0.5)
        t = time.perf_counter()
        r = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="calm-b", route=route_req(
            depart_s=T0 + 50_000)), metadata=md(OP_B), timeout=60)
        waited = time.perf_counter() - t
        stop.set()
        for fu in futs:
            fu.result()
    assert not r.replayed and waited < 2 * BOUND_S, waited
    f.CancelFlight(fpb.CancelFlightRequest(flight_id=r.flight.flight_id), metadata=md(OP_B))


def test_a_25_year_flight_from_an_old_store_does_not_slow_bookings(stubs, srv):
    """A store written before the limits may hold a 25-year flight; bookings through
    its corridor stay fast (the verifier costs the overlap, not the duration)."""
    from types import SimpleNamespace

    from skytwin.planner.route import RouteRequest
    from skytwin.planner.trajectory import Trajectory
    from skytwin.server.service import Caller
    core = srv.core
    route = core.plan(RouteRequest(FROM, TO, depart_s=T0 + 80_000))
    tr = route.trajectory
    t0 = float(tr.t_s[0])
    years = 25 * 365 * 86400 / float(tr.t_s[-1] - t0)
    slow = Trajectory("F-0000000025ee", tr.xyz_m, t0 + (tr.t_s - t0) * years)
    caller = Caller("old", "operator", "op-old")
    rec = core._record(caller, "from-an-old-store", SimpleNamespace(
        trajectory=slow, choice=SimpleNamespace(delay_s=0.0, layer_shift=0)),
        None, {"speeds": {}})
    core.store.add_flight(rec)
    with core._book:
        core.index.accept(slow)
        core._owner[slow.flight_id] = "op-old"
    try:
        f = stubs[2]
        for k in range(3):
            code, details, dt = timed(f.SubmitFlight, fpb.SubmitFlightRequest(
                request_id=f"through-{k}", route=route_req(
                    depart_s=T0 + 80_000 + 86400 * (k + 1))), OP_B)
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION), details
            assert "F-0000000025ee" not in details          # another operator's flight
            assert dt < BOUND_S, dt
    finally:
        with core._book:
            core.index.cancel(slow.flight_id)
        core.store.cancel_flight(slow.flight_id, time.time(), actor="test")


def test_limits_are_in_twin_info(stubs):
    info = stubs[0].GetTwinInfo(apb.GetTwinInfoRequest(), metadata=md(OP_A))
    lim = info.limits
    assert lim.max_flight_duration_s == LIMITS.max_flight_duration_s
    assert lim.min_cruise_speed_mps == LIMITS.min_cruise_speed_mps
    assert lim.max_departure_ahead_s == LIMITS.max_departure_ahead_s
    assert lim.max_id_chars == LIMITS.max_id_chars
    assert lim.max_json_depth == LIMITS.max_json_depth
    assert lim.max_batch == LIMITS.max_batch and lim.max_radius_m == LIMITS.max_radius_m


# ------------------------------------------------------------------ tight limits
@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    lim = LIMITS.replace(max_waiting_plan=0, keep_workspace_voxels=1_000,
                         large_search_slots=1, deadline_plan_s=1.0,
                         max_flight_duration_s=60.0, max_watchers=1)
    s = start_server(tmp_path_factory.mktemp("tight") / "store.db", limits=lim, workers=1)
    yield s
    s.stop()


def test_capacity_and_server_deadline(tight):
    """One planning thread, no waiting room: a second planning call is refused at once;
    a call that cannot finish gets the server-side deadline, not a long wait."""
    f = frpc.FlightServiceStub(tight.channel())
    slot = tight.core._large_search
    slot.acquire()                     # every search here is "large": it must wait
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(timed, f.PlanRoute, fpb.PlanRouteRequest(
                route=route_req(b=NEAR)), OP_A)
            time.sleep(0.3)            # the first call is in, waiting for the slot
            refused(grpc.StatusCode.RESOURCE_EXHAUSTED, ["server busy", "limit is 1"],
                    f.PlanRoute, fpb.PlanRouteRequest(route=route_req(b=NEAR)), OP_B,
                    bound_s=1.0)
            code, details, dt = first.result()
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, details
        assert dt < 1.0 + BOUND_S
    finally:
        slot.release()
    time.sleep(0.5)                    # the first call's thread finishes and leaves
    r = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(b=NEAR)), metadata=md(OP_A),
                    timeout=30)
    assert len(r.route.waypoints) >= 2


@pytest.fixture(scope="module")
def fair(tmp_path_factory):
    lim = LIMITS.replace(max_waiting_plan=20, keep_workspace_voxels=1_000,
                         large_search_slots=1, deadline_plan_s=20.0)
    s = start_server(tmp_path_factory.mktemp("fair") / "store.db", limits=lim, workers=1)
    yield s
    s.stop()


def _queued(server, n, timeout_s=30.0):
    """Wait until the planning gate holds ``n + 1`` calls: one running (on the only
    thread, blocked) and ``n`` waiting in its queue (not a fixed sleep: a busy machine
    may take longer to deliver them)."""
    gate = server.server.skytwin_gates[0]
    end = time.monotonic() + timeout_s
    while not (gate.inside == n + 1 and len(gate.queue) == n):
        assert time.monotonic() < end, (f"{gate.inside} calls in, {len(gate.queue)} "
                                        f"waiting; expected {n + 1} and {n}")
        time.sleep(0.01)


def test_waiting_calls_are_served_round_robin_over_callers(fair):
    """Operator A queues five plans on the one planning thread, then B one: B's plan is
    served second, not after A's whole backlog."""
    f = frpc.FlightServiceStub(fair.channel())
    done: dict = {}

    def plan(tag, token):
        code, details, _ = timed(f.PlanRoute, fpb.PlanRouteRequest(
            route=route_req(b=NEAR)), token)
        done[tag] = (time.perf_counter(), code, details)

    slot = fair.core._large_search
    slot.acquire()                       # the first call blocks the only thread
    try:
        with ThreadPoolExecutor(6) as pool:
            futs = [pool.submit(plan, f"a{k}", OP_A) for k in range(5)]
            _queued(fair, 4)             # A's five calls are in: one running, four waiting
            futs.append(pool.submit(plan, "b", OP_B))
            _queued(fair, 5)
            slot.release()
            slot = None
            for fu in futs:
                fu.result()
    finally:
        if slot is not None:
            slot.release()
    assert all(c == grpc.StatusCode.OK for _, c, _ in done.values()), done
    order = sorted(done, key=lambda k: done[k][0])
    assert order.index("b") <= 2, order  # after the running one and at most one more


def test_flight_duration_limit(tight):
    f = frpc.FlightServiceStub(tight.channel())
    # 800 m straight at 1 m/s is over 60 s: refused before planning
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["flight duration would be at least",
                                               "over the limit of 60 s"],
            f.SubmitFlight, fpb.SubmitFlightRequest(
                request_id="long", route=route_req(cruise_speed_mps=1.0)), OP_A)
    # the planned route (climb, detours) is over 60 s although the straight line is not
    refused(grpc.StatusCode.INVALID_ARGUMENT, ["flight duration", "over the limit of 60 s"],
            f.PlanRoute, fpb.PlanRouteRequest(route=route_req(cruise_speed_mps=15.0)), OP_A,
            bound_s=LIMITS.deadline_plan_s)
    assert tight.core.store.count_flights() == 0


def test_watchers_are_capped(tight):
    c = crpc.ChangeServiceStub(tight.channel())
    q, call = _watch(c, OP_A)
    try:
        second = c.Watch(cpb.WatchRequest(), metadata=md(OP_B), timeout=5)
        with pytest.raises(grpc.RpcError) as e:
            next(second)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "Watch streams are open" in e.value.details()
    finally:
        call.cancel()


# ------------------------------------------------------------------ fuzzing
_SERVICES = (apb.DESCRIPTOR.services_by_name["AirspaceService"],
             zpb.DESCRIPTOR.services_by_name["ZoneService"],
             fpb.DESCRIPTOR.services_by_name["FlightService"],
             cpb.DESCRIPTOR.services_by_name["ChangeService"])
METHODS = [(s, m) for s in _SERVICES for m in s.methods]
_FD = gdesc.FieldDescriptor
_INT_RANGE = {_FD.TYPE_INT32: (-(2**31), 2**31 - 1), _FD.TYPE_INT64: (-(2**63), 2**63 - 1),
              _FD.TYPE_UINT32: (0, 2**32 - 1), _FD.TYPE_UINT64: (0, 2**64 - 1)}
_DOUBLES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-9, 1e-6, 5e-324, 1e300, -1e300, 1e6, 120.0, 100_000.0]),
    st.floats(24.93, 24.96), st.floats(60.16, 60.18))          # inside the twin, often
_STRINGS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "F-000000000000", "Z-1", "../../etc/passwd", "a" * 129,
                     "\x00\x01", "[" * 200, '{"features": []}', MB]))


def _strategy(desc, depth=0):
    fields = {}
    for fd in desc.fields:
        if fd.message_type is not None:
            if depth >= 3:
                continue
            if fd.message_type.full_name == "google.protobuf.Timestamp":
                elem = st.sampled_from([0.0, -1e10, T_NOW, T0, T_NOW + 40 * 86400,
                                        253402300799.0, 1e15]).map(timestamp)
            elif fd.message_type.full_name == "google.protobuf.Duration":
                elem = st.sampled_from([0.0, -5.0, 1.0, 1e6, 3e11]).map(duration)
            else:
                elem = _strategy(fd.message_type, depth + 1)
        elif fd.type == _FD.TYPE_STRING:
            elem = _STRINGS
        elif fd.type in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
            elem = _DOUBLES
        elif fd.type == _FD.TYPE_BOOL:
            elem = st.booleans()
        elif fd.type == _FD.TYPE_ENUM:
            elem = st.sampled_from([v.number for v in fd.enum_type.values] + [99])
        elif fd.type in _INT_RANGE:
            lo, hi = _INT_RANGE[fd.type]
            elem = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, -1, 1, 15, 16]
                                                                  if lo < 0 else
                                                                  [lo, hi, 0, 1, 15, 16]))
        else:  # pragma: no cover - no other field types in the API
            continue
        if fd.is_repeated:
            elem = st.lists(elem, max_size=3)
        fields[fd.name] = elem
    cls = message_factory.GetMessageClass(desc)

    def build(values):
        m = cls()
        for name, v in values.items():
            fd = desc.fields_by_name[name]
            if fd.is_repeated:
                if fd.message_type is not None:
                    for x in v:
                        getattr(m, name).add().CopyFrom(x)
                else:
                    getattr(m, name).extend(v)
            elif fd.message_type is not None:
                getattr(m, name).CopyFrom(v)
            else:
                setattr(m, name, v)
        return m
    return st.fixed_dictionaries({}, optional=fields).map(build)


def _invoke(channel, svc, method, msg, token):
    path = f"/{svc.full_name}/{method.name}"
    out = message_factory.GetMessageClass(method.output_type)
    if method.server_streaming:
        call = channel.unary_stream(path, request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=out.FromString)(
            msg, metadata=md(token), timeout=5)
        try:
            next(call)
        finally:
            call.cancel()
        return
    channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                        response_deserializer=out.FromString)(
        msg, metadata=md(token), timeout=60)


_PLANNING = {"PlanRoute", "SubmitFlight", "SubmitBatch"}
FUZZ_EXAMPLES = 25
FUZZ_SEEN: dict = {}          # method -> {status code name: count} (evidence, see below)


@pytest.mark.parametrize("svc,method", METHODS, ids=[m.name for _, m in METHODS])
def test_fuzz_every_request_message(srv, svc, method):
    channel = srv.channel()
    bound = LIMITS.deadline_plan_s + 5 if method.name in _PLANNING else BOUND_S

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(msg=_strategy(method.input_type), token=st.sampled_from([OP_A, OP_B, REG]))
    def check(msg, token):
        t = time.perf_counter()
        seen = FUZZ_SEEN.setdefault(method.name, {})
        try:
            _invoke(channel, svc, method, msg, token)
            seen["OK"] = seen.get("OK", 0) + 1
        except grpc.RpcError as e:
            seen[e.code().name] = seen.get(e.code().name, 0) + 1
            assert e.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), \
                (method.name, e.code(), (e.details() or "")[:300])
            if e.code() != grpc.StatusCode.CANCELLED:
                assert len(e.details() or "") <= 1000
        assert time.perf_counter() - t < bound, method.name

    try:
        check()
    finally:
        channel.close()


def _templates():
    """A valid request (and caller) per RPC whose fields the mutation fuzzing changes one
    at a time, so that the values reach the checks behind the first field's."""
    box = apb.LonLatBox(min_lon_deg=24.9400, min_lat_deg=60.1690, max_lon_deg=24.9410,
                        max_lat_deg=60.1695)
    zone = circle_zone("Z-FUZZ", NEAR, 20.0, reason="fuzz")
    return {
        "PlanRoute": (fpb.PlanRouteRequest(route=route_req(b=NEAR)), OP_A),
        "SubmitFlight": (fpb.SubmitFlightRequest(request_id="fuzz", route=route_req(
            b=NEAR, depart_s=T0 + 60_000)), OP_A),
        "SubmitBatch": (fpb.SubmitBatchRequest(request_id="fuzzb", routes=[route_req(
            b=NEAR, depart_s=T0 + 70_000)]), OP_B),
        "CreateZone": (zpb.CreateZoneRequest(zone=zone), REG),
        "QueryBlockedCodes": (apb.QueryBlockedCodesRequest(
            box=box, z_lo_amsl_m=0, z_hi_amsl_m=40, clearance_m=5), OP_A),
        "EncodeGridCode": (apb.EncodeGridCodeRequest(position=ll(NEAR), altitude=apb.Altitude(
            value_m=30, reference=AGL)), OP_A),
        "QueryZones": (zpb.QueryZonesRequest(box=box, has_band=True, z_hi_amsl_m=100), OP_B),
        "ListFlights": (fpb.ListFlightsRequest(page_size=10), OP_A),
        "Watch": (cpb.WatchRequest(region=box), OP_B),
    }


def _leaves(desc, prefix=(), depth=0):
    for fd in desc.fields:
        if fd.is_repeated:
            continue
        if fd.message_type is None:
            yield (*prefix, fd.name), fd
        elif depth < 3 and not fd.message_type.full_name.startswith("google.protobuf"):
            yield from _leaves(fd.message_type, (*prefix, fd.name), depth + 1)


def _value_for(fd):
    if fd.type == _FD.TYPE_STRING:
        return _STRINGS
    if fd.type in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return _DOUBLES
    if fd.type == _FD.TYPE_BOOL:
        return st.booleans()
    if fd.type == _FD.TYPE_ENUM:
        return st.sampled_from([v.number for v in fd.enum_type.values] + [99])
    lo, hi = _INT_RANGE[fd.type]
    return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, 1, 15, 16]))


def _mutated(template):
    leaves = list(_leaves(template.DESCRIPTOR))

    def apply(pair):
        (path, _fd), value = pair
        m = type(template)()
        m.CopyFrom(template)
        target = m
        for name in path[:-1]:
            target = getattr(target, name)
        setattr(target, path[-1], value)
        return m
    return st.sampled_from(leaves).flatmap(
        lambda leaf: _value_for(leaf[1]).map(lambda v: (leaf, v))).map(apply)


@pytest.mark.parametrize("name", sorted(_templates()))
def test_fuzz_one_field_of_a_valid_request(srv, name):
    template, token = _templates()[name]
    svc, method = next((s, m) for s, m in METHODS if m.name == name)
    channel = srv.channel()
    bound = LIMITS.deadline_plan_s + 5 if name in _PLANNING else BOUND_S
    n = [0]

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(msg=_mutated(template))
    def check(msg):
        if name in ("SubmitFlight", "SubmitBatch"):
            n[0] += 1
            msg.request_id = f"{msg.request_id[:20]}-{n[0]}"    # a new key each time
        t = time.perf_counter()
        seen = FUZZ_SEEN.setdefault(f"{name}*", {})
        try:
            _invoke(channel, svc, method, msg, token)
            seen["OK"] = seen.get("OK", 0) + 1
            if name == "CreateZone":       # keep the airspace open for the next RPCs
                zrpc.ZoneServiceStub(channel).DeleteZone(
                    zpb.DeleteZoneRequest(zone_id=msg.zone.id), metadata=md(REG))
        except grpc.RpcError as e:
            seen[e.code().name] = seen.get(e.code().name, 0) + 1
            assert e.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), \
                (name, e.code(), (e.details() or "")[:300])
            if e.code() != grpc.StatusCode.CANCELLED:
                assert len(e.details() or "") <= 1000
        assert time.perf_counter() - t < bound, name

    try:
        check()
    finally:
        channel.close()


def test_server_still_answers_after_everything(stubs, srv):
    # the fuzzing reached every RPC (and not only one status): print the evidence
    print("\nfuzzed statuses per RPC:", json.dumps(FUZZ_SEEN, sort_keys=True))
    if FUZZ_SEEN:
        assert len(FUZZ_SEEN) == len(METHODS) + len(_templates())
        assert sum(sum(v.values()) for v in FUZZ_SEEN.values()) >= len(METHODS) * 10
    z = stubs[1]
    for zone in z.ListZones(zpb.ListZonesRequest(exclude_derived=True),
                            metadata=md(REG)).zones:
        z.DeleteZone(zpb.DeleteZoneRequest(zone_id=zone.id), metadata=md(REG))
    assert_alive(srv)
    # memory: the servers run in this process; after the whole suite it stays under the
    # documented cap (benchmarks/bench_abuse.py measures a server process on its own)
    from pathlib import Path
    rss_mb = next(int(line.split()[1]) / 1024 for line in
                  Path("/proc/self/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    assert rss_mb < LIMITS.rss_cap_mb, rss_mb


def test_gate_refuses_when_the_expected_queue_wait_is_too_long():
    """Admission by expected wait: fast calls may queue deep, slow ones may not, and a
    caller's wait is its own round-robin position, not the whole queue."""
    from skytwin.server.service import OverloadedError
    from skytwin.server.services._base import Gate

    def fill(g, caller, running, waiting):
        for k in range(running + waiting):
            g.enter(caller)
            if k >= running:
                g.queue.put(caller, None)

    g = Gate("planning", capacity=100, threads=4, max_wait_s=5.0)
    g.observe(0.02)                          # 20 ms calls: 100 in progress is fine
    fill(g, "a", 4, 96)
    with pytest.raises(OverloadedError, match="the limit is 100"):
        g.enter("b")
    g = Gate("planning", capacity=100, threads=4, max_wait_s=5.0)
    g.observe(2.0)                           # 2 s calls on 4 threads
    fill(g, "a", 4, 10)                      # A: 4 running, 10 waiting
    with pytest.raises(OverloadedError, match=r"about 5\.5 s of queueing"):
        g.enter("a")                         # A's next call: behind its own 10
    assert g.expected_wait_s("b") == pytest.approx(1.0)   # B's: served 2nd
    g.enter("b")
    q = Gate("heavy read", capacity=5, per_caller=1)
    q.enter("a")
    with pytest.raises(OverloadedError, match="of this caller in progress"):
        q.enter("a")
    q.enter("b")
    q.leave("a")
    q.enter("a")
