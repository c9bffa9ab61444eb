"""The gRPC service end to end: a real server on port 0, synchronous stubs.

Covers every RPC, each error status with its message, the auth matrix (operator A
cannot see or cancel B's flight: PERMISSION_DENIED, the documented choice), idempotent
submits, Watch + a zone created mid-stream that blocks new routes, PlanRoute ==
Planner.plan (STYLE 3.5), health checking and reflection.
"""

from __future__ import annotations

import json
import queue
import threading
import time

import grpc
import numpy as np
import pytest

from skytwin.server.convert import seconds, timestamp
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import airspace_pb2_grpc as arpc
from skytwin.v1 import changes_pb2 as cpb
from skytwin.v1 import changes_pb2_grpc as crpc
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import zones_pb2 as zpb
from skytwin.v1 import zones_pb2_grpc as zrpc
from tests.grpc_fixtures import OP_A, OP_B, REG, helsinki_twin, md, start_server

FROM = (24.94030, 60.17150)   # Railway Square
TO = (24.95240, 60.16760)     # Market Square
MID = (24.94828, 60.17026)    # half-way along the planned route between them
T0 = float(int(time.time()) + 7200)
AGL = apb.ALTITUDE_REFERENCE_AGL


def ll(p):
    return apb.LonLat(lon_deg=p[0], lat_deg=p[1])


def route_req(a=FROM, b=TO, depart_s=T0, **kw):
    return fpb.RouteRequest(start=ll(a), goal=ll(b), departure_time=timestamp(depart_s), **kw)


def circle_zone(zid, centre, radius_m, lo=0.0, hi=200.0):
    return zpb.Zone(id=zid, circle=zpb.Circle(centre=ll(centre), radius_m=radius_m),
                    lower=apb.Altitude(value_m=lo, reference=AGL),
                    upper=apb.Altitude(value_m=hi, reference=AGL), reason="test")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("grpc") / "store.db")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stubs(srv):
    ch = srv.channel()
    yield (arpc.AirspaceServiceStub(ch), zrpc.ZoneServiceStub(ch),
           frpc.FlightServiceStub(ch), crpc.ChangeServiceStub(ch))
    ch.close()


def expect(code, fragment, fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    assert e.value.code() == code, (e.value.code(), e.value.details())
    assert fragment in e.value.details(), e.value.details()
    return e.value.details()


# ------------------------------------------------------------------ airspace
def test_twin_info(stubs):
    a = stubs[0]
    r = a.GetTwinInfo(apb.GetTwinInfoRequest(), metadata=md(OP_A))
    twin, _ = helsinki_twin()
    assert r.building_count == len(twin.buildings)
    assert r.resolution_m == twin.resolution_m and r.clearance_m == twin.clearance_m
    assert r.ceiling_agl_m == 120.0
    assert r.bounds.min_lon_deg < FROM[0] < r.bounds.max_lon_deg
    assert (r.column_count_x, r.column_count_y, r.layer_count) == twin.grid.shape
    # the build's audit: every obstacle's height source, the unknown-height policy
    (a_,) = r.audit
    assert a_.file == "helsinki_centre.geojson" and "/" not in a_.file
    assert a_.obstacles == len(twin.buildings) == sum(a_.heights.values())
    unknown = sum(b.height_source == "unknown" for b in twin.buildings)
    assert a_.unknown_heights == a_.heights["unknown"] == unknown > 0
    assert "ceiling" in a_.unknown_height_policy


def test_grid_code_round_trip(stubs):
    a = stubs[0]
    enc = a.EncodeGridCode(apb.EncodeGridCodeRequest(
        position=ll(FROM), altitude=apb.Altitude(value_m=25.0,
                                                 reference=apb.ALTITUDE_REFERENCE_AMSL)),
        metadata=md(OP_B)).code
    assert enc.code.endswith("-A+0012-2") and enc.resolution == 14
    assert (enc.z_lo_m, enc.z_hi_m) == (24.0, 26.0)
    dec = a.DecodeGridCode(apb.DecodeGridCodeRequest(code=enc.code), metadata=md(REG)).code
    assert dec == enc
    assert len(dec.boundary) == 6 and abs(dec.centre.lon_deg - FROM[0]) < 1e-4


def test_blocked_codes_name_building(stubs):
    twin, _ = helsinki_twin()
    b = twin.buildings[10]
    p = b.footprint.representative_point()
    lon, lat = (float(v) for v in twin.frame.to_wgs84(p.x, p.y))
    r = stubs[0].QueryBlockedCodes(apb.QueryBlockedCodesRequest(
        box=apb.LonLatBox(min_lon_deg=lon - 1e-5, min_lat_deg=lat - 1e-5,
                          max_lon_deg=lon + 1e-5, max_lat_deg=lat + 1e-5),
        z_lo_amsl_m=b.top_m - 1.0, z_hi_amsl_m=b.top_m), metadata=md(OP_A))
    assert r.codes
    ids = {(k.kind, k.id) for c in r.codes for k in c.blockers}
    assert (apb.Blocker.KIND_BUILDING, str(b.id)) in ids


# ------------------------------------------------------------------ flights
def test_plan_route_equals_planner(stubs, srv):
    """The transport changes nothing: same waypoints and times as Planner.plan."""
    from skytwin.airspace.zones import ZoneLayer
    from skytwin.planner.route import Planner, RouteRequest
    twin, _ = helsinki_twin()
    got = stubs[2].PlanRoute(fpb.PlanRouteRequest(route=route_req()), metadata=md(OP_A)).route
    want = Planner(twin, ZoneLayer(twin.frame, srv.core.zones.list())).plan(
        RouteRequest(FROM, TO, depart_s=T0))
    lonlat = np.array([[w.position.lon_deg, w.position.lat_deg] for w in got.waypoints])
    np.testing.assert_array_equal(lonlat, want.lonlat_deg)
    np.testing.assert_array_equal([w.alt_amsl_m for w in got.waypoints], want.alt_amsl_m)
    np.testing.assert_array_equal([w.alt_agl_m for w in got.waypoints], want.alt_agl_m)
    np.testing.assert_allclose([seconds(w.time) for w in got.waypoints],
                               want.trajectory.t_s, rtol=0, atol=2e-6)
    assert got.length_m == pytest.approx(want.length_m, abs=1e-9)


def test_submit_is_idempotent_and_deconflicted(stubs, srv):
    f = stubs[2]
    r1 = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="idem-1", route=route_req(
        depart_s=T0 + 100_000)), metadata=md(OP_A))
    again = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="idem-1", route=route_req(
        depart_s=T0 + 100_000)), metadata=md(OP_A))
    assert again.replayed and not r1.replayed
    assert again.flight.flight_id == r1.flight.flight_id
    n = len(f.ListFlights(fpb.ListFlightsRequest(page_size=1000), metadata=md(OP_A)).flights)
    # the same key with a different request is refused, not silently replayed
    expect(grpc.StatusCode.FAILED_PRECONDITION, "'idem-1' was already used for a different "
           "request", f.SubmitFlight,
           fpb.SubmitFlightRequest(request_id="idem-1", route=route_req()), metadata=md(OP_A))
    assert len(f.ListFlights(fpb.ListFlightsRequest(page_size=1000),
                             metadata=md(OP_A)).flights) == n      # never booked twice
    # the same route at the same time is placed later, not on top
    r2 = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="idem-2", route=route_req(
        depart_s=T0 + 100_000)), metadata=md(OP_A))
    assert r2.flight.flight_id != r1.flight.flight_id
    d1 = seconds(r1.flight.route.waypoints[0].time)
    d2 = seconds(r2.flight.route.waypoints[0].time)
    assert d2 > d1 and r2.flight.delay.seconds > 0
    from skytwin.planner.verify import verify
    assert verify(srv.core.index.trajectories).ok


def test_submit_batch_all_or_nothing(stubs, srv):
    f = stubs[2]
    routes = [route_req(depart_s=T0 + 200_000) for _ in range(3)]
    r = f.SubmitBatch(fpb.SubmitBatchRequest(request_id="batch-1", routes=routes),
                      metadata=md(OP_B))
    assert len(r.flights) == 3 and r.solver_status in ("OPTIMAL", "FEASIBLE")
    starts = sorted(seconds(fl.route.waypoints[0].time) for fl in r.flights)
    assert len(set(starts)) == 3
    again = f.SubmitBatch(fpb.SubmitBatchRequest(request_id="batch-1", routes=routes),
                          metadata=md(OP_B))
    assert again.replayed and [x.flight_id for x in again.flights] == \
        [x.flight_id for x in r.flights]
    # one bad route: nothing of the batch is booked
    before = srv.core.store.count_flights()
    bad = routes[:2] + [route_req(a=(25.5, 60.17))]
    expect(grpc.StatusCode.INVALID_ARGUMENT, "outside the twin", f.SubmitBatch,
           fpb.SubmitBatchRequest(request_id="batch-2", routes=bad), metadata=md(OP_B))
    assert srv.core.store.count_flights() == before
    from skytwin.planner.verify import verify
    assert verify(srv.core.index.trajectories).ok


def test_get_list_cancel_and_auth_matrix(stubs, srv):
    f = stubs[2]
    a = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="own-1", route=route_req(
        depart_s=T0 + 300_000)), metadata=md(OP_A)).flight
    assert f.GetFlight(fpb.GetFlightRequest(flight_id=a.flight_id),
                       metadata=md(OP_A)).flight == a
    # B cannot see or cancel A's flight; the regulator can see it
    expect(grpc.StatusCode.PERMISSION_DENIED, "another operator", f.GetFlight,
           fpb.GetFlightRequest(flight_id=a.flight_id), metadata=md(OP_B))
    expect(grpc.StatusCode.PERMISSION_DENIED, "another operator", f.CancelFlight,
           fpb.CancelFlightRequest(flight_id=a.flight_id), metadata=md(OP_B))
    expect(grpc.StatusCode.PERMISSION_DENIED, "may not list", f.ListFlights,
           fpb.ListFlightsRequest(operator_id="op-a"), metadata=md(OP_B))
    assert f.GetFlight(fpb.GetFlightRequest(flight_id=a.flight_id),
                       metadata=md(REG)).flight.operator_id == "op-a"
    b_list = f.ListFlights(fpb.ListFlightsRequest(page_size=1000), metadata=md(OP_B)).flights
    assert a.flight_id not in {x.flight_id for x in b_list}
    assert all(x.operator_id == "op-b" for x in b_list)
    # regulators list everybody's, with paging
    seen, token = [], ""
    while True:
        page = f.ListFlights(fpb.ListFlightsRequest(page_size=2, page_token=token),
                             metadata=md(REG))
        assert len(page.flights) <= 2
        seen += [x.flight_id for x in page.flights]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == srv.core.store.count_flights()
    assert a.flight_id in seen
    # cancel frees the index; cancelling twice is a no-op
    c = f.CancelFlight(fpb.CancelFlightRequest(flight_id=a.flight_id), metadata=md(OP_A))
    assert c.flight.status == fpb.FLIGHT_STATUS_CANCELLED and c.flight.HasField(
        "cancelled_time")
    assert a.flight_id not in srv.core.index
    c2 = f.CancelFlight(fpb.CancelFlightRequest(flight_id=a.flight_id), metadata=md(OP_A))
    assert c2.flight.cancelled_time == c.flight.cancelled_time
    st = f.ListFlights(fpb.ListFlightsRequest(status=fpb.FLIGHT_STATUS_CANCELLED),
                       metadata=md(OP_A)).flights
    assert a.flight_id in {x.flight_id for x in st}
    # regulators do not book flights
    expect(grpc.StatusCode.PERMISSION_DENIED, "only operators", f.SubmitFlight,
           fpb.SubmitFlightRequest(request_id="r", route=route_req()), metadata=md(REG))


def test_unauthenticated(stubs):
    a = stubs[0]
    expect(grpc.StatusCode.UNAUTHENTICATED, "missing credentials", a.GetTwinInfo,
           apb.GetTwinInfoRequest())
    expect(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked token", a.GetTwinInfo,
           apb.GetTwinInfoRequest(), metadata=md("not-a-real-token"))
    expect(grpc.StatusCode.UNAUTHENTICATED, "Bearer <token>", a.GetTwinInfo,
           apb.GetTwinInfoRequest(), metadata=(("authorization", f"Basic {OP_A}"),))
    w = stubs[3].Watch(cpb.WatchRequest(), timeout=5)
    expect(grpc.StatusCode.UNAUTHENTICATED, "missing credentials", next, w)


# ------------------------------------------------------------------ zones
def test_zone_crud_and_operator_cannot_write(stubs):
    z = stubs[1]
    zone = circle_zone("T-CRUD", (24.9370, 60.1760), 30.0)
    expect(grpc.StatusCode.PERMISSION_DENIED, "only regulators", z.CreateZone,
           zpb.CreateZoneRequest(zone=zone), metadata=md(OP_A))
    made = z.CreateZone(zpb.CreateZoneRequest(zone=zone), metadata=md(REG)).zone
    assert made == zone
    expect(grpc.StatusCode.INVALID_ARGUMENT, "already exists", z.CreateZone,
           zpb.CreateZoneRequest(zone=zone), metadata=md(REG))
    assert z.GetZone(zpb.GetZoneRequest(zone_id="T-CRUD"), metadata=md(OP_B)).zone == zone
    zone2 = circle_zone("T-CRUD", (24.9370, 60.1760), 35.0)
    zone2.active_from.CopyFrom(timestamp(T0))
    zone2.active_until.CopyFrom(timestamp(T0 + 600))
    assert z.UpdateZone(zpb.UpdateZoneRequest(zone=zone2), metadata=md(REG)).zone == zone2
    ids = [x.id for x in z.ListZones(zpb.ListZonesRequest(), metadata=md(OP_A)).zones]
    assert "T-CRUD" in ids
    box = apb.LonLatBox(min_lon_deg=24.9365, min_lat_deg=60.1755, max_lon_deg=24.9375,
                        max_lat_deg=60.1765)
    q = z.QueryZones(zpb.QueryZonesRequest(box=box, start_time=timestamp(T0 + 100),
                                           end_time=timestamp(T0 + 200)), metadata=md(OP_A))
    assert [x.id for x in q.zones] == ["T-CRUD"]
    q = z.QueryZones(zpb.QueryZonesRequest(box=box, start_time=timestamp(T0 + 700)),
                     metadata=md(OP_A))
    assert q.zones == []           # inactive then
    q = z.QueryZones(zpb.QueryZonesRequest(box=box, has_band=True, z_lo_amsl_m=900,
                                           z_hi_amsl_m=1000), metadata=md(OP_A))
    assert q.zones == []           # above it
    exported = z.ExportEd269(zpb.ExportEd269Request(country="FIN"), metadata=md(OP_A))
    doc = json.loads(exported.ed269_json)
    assert "T-CRUD" in [f["identifier"] for f in doc["features"]]
    expect(grpc.StatusCode.PERMISSION_DENIED, "only regulators", z.DeleteZone,
           zpb.DeleteZoneRequest(zone_id="T-CRUD"), metadata=md(OP_B))
    gone = z.DeleteZone(zpb.DeleteZoneRequest(zone_id="T-CRUD"), metadata=md(REG)).zone
    assert gone == zone2
    expect(grpc.StatusCode.NOT_FOUND, "no zone with id 'T-CRUD'", z.GetZone,
           zpb.GetZoneRequest(zone_id="T-CRUD"), metadata=md(REG))
    expect(grpc.StatusCode.NOT_FOUND, "no zone with id", z.UpdateZone,
           zpb.UpdateZoneRequest(zone=zone), metadata=md(REG))


def test_import_ed269(stubs):
    from pathlib import Path
    z = stubs[1]
    text = (Path(__file__).resolve().parents[1] / "fixtures" / "zones" /
            "example_ed269.json").read_text()
    expect(grpc.StatusCode.PERMISSION_DENIED, "only regulators", z.ImportEd269,
           zpb.ImportEd269Request(ed269_json=text), metadata=md(OP_A))
    r = z.ImportEd269(zpb.ImportEd269Request(ed269_json=text), metadata=md(REG))
    ids = [x.id for x in r.zones]
    assert ids and "XHEL001" in ids
    expect(grpc.StatusCode.INVALID_ARGUMENT, "already exists", z.ImportEd269,
           zpb.ImportEd269Request(ed269_json=text), metadata=md(REG))
    z.ImportEd269(zpb.ImportEd269Request(ed269_json=text, replace_existing=True),
                  metadata=md(REG))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "not valid JSON", z.ImportEd269,
           zpb.ImportEd269Request(ed269_json="{nope"), metadata=md(REG))
    for zid in ids:
        z.DeleteZone(zpb.DeleteZoneRequest(zone_id=zid), metadata=md(REG))


def _watch(stub, token, region=None):
    """Start Watch in a thread; returns (queue of Change, call)."""
    req = cpb.WatchRequest()
    if region is not None:
        req.region.CopyFrom(region)
    call = stub.Watch(req, metadata=md(token), timeout=60)
    q: queue.Queue = queue.Queue()

    def pump():
        try:
            for ch in call:
                q.put(ch)
        except grpc.RpcError:
            pass
    threading.Thread(target=pump, daemon=True).start()
    first = q.get(timeout=10)
    assert first.kind == cpb.CHANGE_KIND_UNSPECIFIED   # the "live now" marker
    return q, call


def test_zone_mid_stream_reaches_watchers_and_blocks_routes(stubs):
    from skytwin.airspace.zones import LocalZone
    from skytwin.planner.validate import RouteValidator
    from skytwin.server.convert import zone_from_proto
    _, z, f, c = stubs
    twin, _ = helsinki_twin()
    depart = T0 + 400_000
    booked = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="pre-zone", route=route_req(
        depart_s=depart)), metadata=md(OP_A)).flight
    before = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=depart)),
                         metadata=md(OP_A)).route
    near_box = apb.LonLatBox(min_lon_deg=MID[0] - 0.002, min_lat_deg=MID[1] - 0.001,
                             max_lon_deg=MID[0] + 0.002, max_lat_deg=MID[1] + 0.001)
    far_box = apb.LonLatBox(min_lon_deg=24.9352, min_lat_deg=60.1765, max_lon_deg=24.9372,
                            max_lat_deg=60.1775)
    q_op, call_op = _watch(c, OP_A, near_box)
    q_far, call_far = _watch(c, REG, far_box)
    zone = circle_zone("T-MID", MID, 40.0)
    try:
        made = z.CreateZone(zpb.CreateZoneRequest(zone=zone), metadata=md(REG))
        assert booked.flight_id in made.affected_flight_ids   # reported, not cancelled
        ch = q_op.get(timeout=10)
        assert ch.kind == cpb.CHANGE_KIND_ZONE_ADDED and ch.zone.id == "T-MID"
        assert booked.flight_id in ch.affected_flight_ids
        # the far watcher does not get it: its next change is a zone in its region
        far = circle_zone("T-FAR", (24.9362, 60.1770), 10.0)
        z.CreateZone(zpb.CreateZoneRequest(zone=far), metadata=md(REG))
        ch = q_far.get(timeout=10)
        assert ch.zone.id == "T-FAR"
        # new routes avoid it: the validator with the zone accepts the new route and
        # refuses the old one
        after = f.PlanRoute(fpb.PlanRouteRequest(route=route_req(depart_s=depart)),
                            metadata=md(OP_A)).route
        lz = LocalZone(zone_from_proto(zone), twin.frame)
        v = RouteValidator(twin.buildings, twin.clearance_m)

        def xyz_t(route):
            lon = [w.position.lon_deg for w in route.waypoints]
            lat = [w.position.lat_deg for w in route.waypoints]
            x, y = twin.frame.to_local(np.array(lon), np.array(lat))
            return (np.column_stack([x, y, [w.alt_amsl_m for w in route.waypoints]]),
                    np.array([seconds(w.time) for w in route.waypoints]))
        from skytwin.airspace.zones import ground_range_from_grid
        gr = ground_range_from_grid(twin.grid, twin.ground_m)
        xyz, t = xyz_t(after)
        assert v.check(np.round(xyz, 2), t, zones=[lz], ground_range=gr).ok
        xyz, t = xyz_t(before)
        assert not v.check(np.round(xyz, 2), t, zones=[lz], ground_range=gr).ok
        # a submit now is routed around it too, and the operator's watcher sees it
        s = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="post-zone",
                                                   route=route_req(depart_s=depart)),
                           metadata=md(OP_A)).flight
        ch = q_op.get(timeout=10)
        assert ch.kind == cpb.CHANGE_KIND_FLIGHT_ACCEPTED and ch.flight.flight_id == s.flight_id
        xyz, t = xyz_t(s.route)
        assert v.check(np.round(xyz, 2), t, zones=[lz], ground_range=gr).ok
        f.CancelFlight(fpb.CancelFlightRequest(flight_id=s.flight_id), metadata=md(OP_A))
        ch = q_op.get(timeout=10)
        assert ch.kind == cpb.CHANGE_KIND_FLIGHT_CANCELLED
    finally:
        z.DeleteZone(zpb.DeleteZoneRequest(zone_id="T-MID"), metadata=md(REG))
        z.DeleteZone(zpb.DeleteZoneRequest(zone_id="T-FAR"), metadata=md(REG))
        call_op.cancel()
        call_far.cancel()


def test_watch_replays_since_sequence(stubs, srv):
    z, c = stubs[1], stubs[3]
    start = srv.core.sequence
    z.CreateZone(zpb.CreateZoneRequest(zone=circle_zone("T-R1", (24.9370, 60.1760), 10.0)),
                 metadata=md(REG))
    z.DeleteZone(zpb.DeleteZoneRequest(zone_id="T-R1"), metadata=md(REG))
    call = c.Watch(cpb.WatchRequest(since_sequence=start), metadata=md(OP_A), timeout=10)
    try:
        marker = next(call)
        assert marker.kind == cpb.CHANGE_KIND_UNSPECIFIED and marker.sequence == start + 2
        got = [next(call), next(call)]
        assert [(g.kind, g.zone.id, g.sequence) for g in got] == [
            (cpb.CHANGE_KIND_ZONE_ADDED, "T-R1", start + 1),
            (cpb.CHANGE_KIND_ZONE_REMOVED, "T-R1", start + 2)]
    finally:
        call.cancel()


def test_operator_watch_sees_only_own_flights(stubs):
    f, c = stubs[2], stubs[3]
    q_b, call = _watch(c, OP_B)
    try:
        f.SubmitFlight(fpb.SubmitFlightRequest(request_id="w-a", route=route_req(
            depart_s=T0 + 500_000)), metadata=md(OP_A))
        mine = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="w-b", route=route_req(
            depart_s=T0 + 500_000)), metadata=md(OP_B)).flight
        ch = q_b.get(timeout=10)
        assert ch.flight.flight_id == mine.flight_id
    finally:
        call.cancel()


# ------------------------------------------------------------------ errors
def test_error_statuses_carry_the_reason(stubs, srv):
    a, z, f, _ = stubs
    twin, _ = helsinki_twin()
    expect(grpc.StatusCode.INVALID_ARGUMENT, "must start with the 15 lowercase hex",
           a.DecodeGridCode, apb.DecodeGridCodeRequest(code="garbage"), metadata=md(OP_A))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "outside the twin", f.PlanRoute,
           fpb.PlanRouteRequest(route=route_req(a=(25.5, 60.17))), metadata=md(OP_A))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "route.start and route.goal are required",
           f.PlanRoute, fpb.PlanRouteRequest(), metadata=md(OP_A))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "above the 120 m AGL limit", f.PlanRoute,
           fpb.PlanRouteRequest(route=route_req(ceiling_agl_m=300)), metadata=md(OP_A))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "s in the past", f.SubmitFlight,
           fpb.SubmitFlightRequest(request_id="past", route=route_req(
               depart_s=time.time() - 3600)), metadata=md(OP_A))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "request_id is required", f.SubmitFlight,
           fpb.SubmitFlightRequest(route=route_req()), metadata=md(OP_A))
    bad = circle_zone("T-BAD", MID, 10.0, lo=80.0, hi=60.0)
    expect(grpc.StatusCode.INVALID_ARGUMENT, "must exceed", z.CreateZone,
           zpb.CreateZoneRequest(zone=bad), metadata=md(REG))
    noref = circle_zone("T-NOREF", MID, 10.0)
    noref.lower.reference = apb.ALTITUDE_REFERENCE_UNSPECIFIED
    expect(grpc.StatusCode.INVALID_ARGUMENT, "lower.reference must be", z.CreateZone,
           zpb.CreateZoneRequest(zone=noref), metadata=md(REG))
    b = twin.buildings[10]
    p = b.footprint.representative_point()
    inside = tuple(float(v) for v in twin.frame.to_wgs84(p.x, p.y))
    expect(grpc.StatusCode.FAILED_PRECONDITION, f"inside building {b.id}", f.PlanRoute,
           fpb.PlanRouteRequest(route=route_req(a=inside)), metadata=md(OP_A))
    expect(grpc.StatusCode.NOT_FOUND, "no flight with id 'F-nope'", f.GetFlight,
           fpb.GetFlightRequest(flight_id="F-nope"), metadata=md(OP_A))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "is not a token this server returned",
           f.ListFlights, fpb.ListFlightsRequest(page_token="F-nope"), metadata=md(OP_A))
    expect(grpc.StatusCode.NOT_FOUND, "no zone with id 'nope'", z.DeleteZone,
           zpb.DeleteZoneRequest(zone_id="nope"), metadata=md(REG))
    # limits
    big = zpb.Zone(id="T-BIG", lower=apb.Altitude(value_m=0, reference=AGL),
                   upper=apb.Altitude(value_m=100, reference=AGL))
    ang = np.linspace(0, 2 * np.pi, 1200, endpoint=False)
    big.polygon.vertices.extend(ll((MID[0] + 1e-3 * np.cos(t), MID[1] + 5e-4 * np.sin(t)))
                                for t in ang)
    expect(grpc.StatusCode.RESOURCE_EXHAUSTED, "more than the limit of 1000", z.CreateZone,
           zpb.CreateZoneRequest(zone=big), metadata=md(REG))
    expect(grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit of 1000", f.SubmitBatch,
           fpb.SubmitBatchRequest(request_id="huge", routes=[route_req()] * 1001),
           metadata=md(OP_A))
    expect(grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max", z.ImportEd269,
           zpb.ImportEd269Request(ed269_json=" " * (5 * 1024 * 1024)), metadata=md(REG))


def test_deadline_leaves_nothing_booked(stubs, srv):
    f = stubs[2]
    with pytest.raises(grpc.RpcError) as e:
        f.SubmitFlight(fpb.SubmitFlightRequest(request_id="late-1", route=route_req(
            depart_s=T0 + 600_000)), metadata=md(OP_A), timeout=0.001)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(1.5)   # let the server finish whatever it started
    assert srv.core.store.find_request("op-a", "late-1") is None


def test_deadline_checked_before_booking(srv):
    """The core refuses to book once the deadline has passed (nothing persisted)."""
    from skytwin.planner.route import RouteRequest
    from skytwin.server.service import Caller, DeadlineError
    caller = Caller("t", "operator", "op-a")
    meta = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {}}
    with pytest.raises(DeadlineError, match="nothing was booked"):
        srv.core.submit_flight(caller, "late-2", RouteRequest(FROM, TO, depart_s=T0),
                               meta, deadline_s=time.monotonic() - 1.0)
    assert srv.core.store.find_request("op-a", "late-2") is None


def test_unexpected_error_is_internal_and_not_leaked(stubs, srv, caplog):
    def boom():
        raise RuntimeError("secret detail /etc/passwd")
    orig = srv.core.info
    srv.core.info = boom
    try:
        d = expect(grpc.StatusCode.INTERNAL, "correlation id", stubs[0].GetTwinInfo,
                   apb.GetTwinInfoRequest(), metadata=md(OP_A))
    finally:
        srv.core.info = orig
    assert "secret" not in d
    cid = d.split("correlation id ")[1].rstrip(")")
    assert any(cid in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ health, reflection
def test_health_serving(srv):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with srv.channel() as ch:
        h = health_pb2_grpc.HealthStub(ch)
        for name in ("", "skytwin.v1.FlightService"):
            r = h.Check(health_pb2.HealthCheckRequest(service=name))   # no token needed
            assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(srv):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    with srv.channel() as ch:
        s = reflection_pb2_grpc.ServerReflectionStub(ch)
        resp = next(s.ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {x.name for x in resp.list_services_response.service}
    assert {"skytwin.v1.AirspaceService", "skytwin.v1.ZoneService",
            "skytwin.v1.FlightService", "skytwin.v1.ChangeService",
            "grpc.health.v1.Health"} <= names


def test_busy_port_fails_loudly(srv, tmp_path):
    import asyncio

    from skytwin.server.app import ServerConfig, build_server
    twin, ref = helsinki_twin()

    async def go():
        build_server(ServerConfig(db=tmp_path / "x.db", port=srv.port, warm_up=False),
                     twin=twin, twin_ref=ref)
    with pytest.raises((OSError, RuntimeError)):
        asyncio.run(go())


def test_a_failed_store_write_is_unavailable_and_retryable(stubs, srv, monkeypatch):
    """A booking whose store write fails (a disk error at BEGIN) answers UNAVAILABLE
    with what to do, not INVALID_ARGUMENT (nothing is wrong with the request); the
    retry with the same request id books it."""
    import sqlite3
    store = srv.core.store
    real = store._commit_one
    armed = [1]

    def failing(conn, fn, fut):
        if armed[0]:
            armed[0] = 0
            return store._lost(conn, sqlite3.OperationalError("disk I/O error"), [fut])
        return real(conn, fn, fut)
    monkeypatch.setattr(store, "_commit_one", failing)
    monkeypatch.setattr(store, "_commit_group", lambda conn, group: [
        failing(conn, fn, fut) for fn, fut in group])
    f = stubs[2]
    req = fpb.SubmitFlightRequest(request_id="disk-1", route=route_req(
        depart_s=T0 + 200_000))
    expect(grpc.StatusCode.UNAVAILABLE, "with the same request_id", f.SubmitFlight,
           req, metadata=md(OP_A))
    ok = f.SubmitFlight(req, metadata=md(OP_A))
    assert not ok.replayed and ok.flight.flight_id
