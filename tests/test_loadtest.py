"""``skytwin loadtest`` against a real server on port 0, and its guards.

A tiny run (20 drones, concurrency 4, 8 s; cancellations and racing retries made more
frequent so that a few bookings exercise them): it completes, reports latency for every
RPC kind it drives, all post-run checks pass and every watcher saw the zone. The request
cap stops a run early (through the CLI with ``--json``); non-loopback targets are refused
before anything is sent; the local checks catch a conflict and a zone violation that
are planted in synthetic flights (so a passing check means something).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from skytwin.airspace.frame import Frame
from skytwin.server.cli import main
from skytwin.server.convert import timestamp
from skytwin.server.loadtest import (
    LoadConfig,
    LoopbackError,
    _LoadTest,
    check_loopback,
    run_loadtest,
)
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import zones_pb2 as zpb
from tests.grpc_fixtures import start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("loadtest") / "store.db")
    yield s
    s.stop()


def test_tiny_run(srv):
    rep = run_loadtest(LoadConfig(target=srv.target, drones=20, concurrency=4,
                                  duration_s=8.0, seed=3, p_cancel=0.3, p_dup=0.2))
    assert rep["ok"], {k: v for k, v in rep["checks"].items() if not v["ok"]}
    assert not rep["failures"]
    for rpc in ("PlanRoute", "SubmitFlight", "CancelFlight", "CreateZone"):
        s = rep["rpcs"][rpc]
        assert s["ok"] >= 1, (rpc, s)
        assert 0 < s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"], (rpc, s)
    assert rep["rpcs"]["SubmitFlight"]["ok_per_s"] > 0
    assert set(rep["errors_by_code"]) <= {"FAILED_PRECONDITION"}
    assert 7.5 < rep["issue_s"] < 10.0            # stopped by itself after --duration
    ck = rep["checks"]
    assert all(c["ok"] for c in ck.values()), ck
    assert ck["conflict_free"]["flights"] >= 5
    assert ck["bookings_listed"]["booked"] == rep["flights"]["booked"] >= 5
    assert rep["zone"]["code"] == "OK"
    assert rep["watch"] and all(w["zone_seen"] for w in rep["watch"])
    assert rep["watch"][0]["events"]["CHANGE_KIND_FLIGHT_ACCEPTED"] >= rep["flights"]["booked"]
    assert ck["zones_clear"]["accepted_before_the_zone"] <= rep["zone"]["affected_count"]
    # it cleaned up: its zone is gone and none of its flights is still accepted
    assert ck["cleanup"]["ok"] and ck["cleanup"]["zone_deleted"] == rep["zone"]["id"]
    assert rep["zone"]["id"] not in srv.core.zones
    with srv.channel() as ch:
        listed = frpc.FlightServiceStub(ch).ListFlights(
            fpb.ListFlightsRequest(status=fpb.FLIGHT_STATUS_ACCEPTED, page_size=1000),
            metadata=(("authorization", "Bearer dev-regulator-NOT-SECRET"),))
    assert not [f for f in listed.flights if f.request_id.startswith(rep["run_id"] + "-")]
    assert ck["cleanup"]["flights_cancelled"] == (rep["flights"]["booked"]
                                                 - rep["flights"]["cancelled"])


def test_request_cap_stops_early_cli_json(srv, capsys):
    t0 = time.perf_counter()
    rc = main(["loadtest", "--target", srv.target, "--drones", "5", "--concurrency", "3",
               "--duration", "30", "--max-requests", "12", "--seed", "4", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert time.perf_counter() - t0 < 25.0
    assert rc == 0, rep["checks"]
    assert rep["stopped_by_request_cap"]
    assert rep["requests"] <= 12
    assert rep["ok"], rep["checks"]


@pytest.mark.parametrize("target", ["10.0.0.1:50051", "192.168.1.5:80", "example.com:443",
                                    "[2001:db8::1]:50051", "0.0.0.0:50051",
                                    "[::ffff:10.0.0.1]:1"])
def test_non_loopback_refused(target, capsys):
    with pytest.raises(LoopbackError, match="not a loopback address"):
        check_loopback(target)
    assert check_loopback(target, allow_remote=True) == target
    assert main(["loadtest", "--target", target, "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "refusing to load-test" in err and "--allow-remote" in err
    assert "workplace" not in err and "this machine" not in err


def test_keep_leaves_flights_and_says_how_to_remove(srv):
    rep = run_loadtest(LoadConfig(target=srv.target, drones=4, concurrency=2,
                                  duration_s=2.0, seed=5, keep=True, max_requests=12))
    ck = rep["checks"]["cleanup"]
    assert ck["ok"] and ck["kept_flights"] == rep["flights"]["booked"] - rep["flights"][
        "cancelled"]
    assert rep["run_id"] in ck["how_to_remove"] and "cancel" in ck["how_to_remove"]


@pytest.mark.parametrize("target", ["127.0.0.1:5", "127.8.9.10:65535", "localhost:50051",
                                    "LOCALHOST:1", "[::1]:50051", "[::ffff:127.0.0.1]:7"])
def test_loopback_accepted(target):
    assert check_loopback(target) == target


@pytest.mark.parametrize("target, fragment", [("127.0.0.1", "must be HOST:PORT"),
                                              ("127.0.0.1:0", "must be HOST:PORT"),
                                              ("::1:50051", "[::1]:PORT"),
                                              ("[::1:50051", "unclosed")])
def test_malformed_target(target, fragment):
    with pytest.raises(LoopbackError) as e:
        check_loopback(target)
    assert fragment in str(e.value)


def test_hubs_option_reaches_the_report(srv):
    rep = run_loadtest(LoadConfig(target=srv.target, drones=12, concurrency=2, hubs=6,
                                  duration_s=2.0, seed=7, max_requests=10))
    assert rep["config"]["hubs"] == 6 and len(rep["hubs"]) == 6
    assert rep["hubs_setup_s"] > 0
    assert rep["setup_rpcs"]["PlanRoute"]["ok"] == 6     # one successful preview per hub
    frame = Frame(*rep["hubs"][0])
    xy = np.array([frame.to_local(*h) for h in rep["hubs"]], dtype=float)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert d[np.triu_indices(6, 1)].min() >= 149.0      # 150 m apart (frames differ ~1e-8)
    assert rep["ok"], {k: v for k, v in rep["checks"].items() if not v["ok"]}


def test_config_limits():
    LoadConfig(target="127.0.0.1:1", hubs=200).validate()
    with pytest.raises(ValueError, match="hubs must be within 1..200"):
        LoadConfig(target="127.0.0.1:1", hubs=201).validate()
    with pytest.raises(ValueError, match="concurrency must be within 1..1024"):
        LoadConfig(target="127.0.0.1:1", concurrency=0).validate()
    with pytest.raises(ValueError, match="p_cancel must be within 0..1"):
        LoadConfig(target="127.0.0.1:1", p_cancel=2.0).validate()


# --------------------------------------------------------- the checks catch problems
def _flight(fid, xy, z_m, t0_s, frame, rid="r"):
    """An accepted Flight message along local points ``xy`` at height ``z_m``."""
    wps = []
    for k, (x, y) in enumerate(xy):
        lon, lat = frame.to_wgs84(x, y)
        wps.append(fpb.Waypoint(position=apb.LonLat(lon_deg=float(lon), lat_deg=float(lat)),
                                alt_amsl_m=z_m, alt_agl_m=z_m, time=timestamp(t0_s + 10 * k)))
    return fpb.Flight(flight_id=fid, operator_id="op-a", request_id=rid,
                      status=fpb.FLIGHT_STATUS_ACCEPTED, route=fpb.Route(waypoints=wps))


def test_local_checks_catch_conflict_and_zone_violation():
    lt = _LoadTest(LoadConfig(target="127.0.0.1:1"))
    lt.frame = _frame = Frame(24.94, 60.17)
    t0 = 2.0e9
    line = [(-300.0 + 60 * k, 0.0) for k in range(11)]
    head_on = [(x, y) for x, y in reversed(line)]
    far = [(x, 500.0) for x, _ in line]
    a = _flight("A", line, 50.0, t0, _frame)
    b = _flight("B", head_on, 50.0, t0, _frame)         # meets A at x=0 at the same time
    c = _flight("C", far, 50.0, t0, _frame)
    lon, lat = _frame.to_wgs84(0.0, 500.0)
    zone = zpb.Zone(id="Z", circle=zpb.Circle(centre=apb.LonLat(lon_deg=float(lon),
                                                                lat_deg=float(lat)),
                                              radius_m=40.0),
                    lower=apb.Altitude(value_m=0.0, reference=apb.ALTITUDE_REFERENCE_AGL),
                    upper=apb.Altitude(value_m=500.0, reference=apb.ALTITUDE_REFERENCE_AGL))
    lt.state.bookings = {"A": ("op-a", "r"), "B": ("op-a", "r2"), "C": ("op-a", "r3")}
    lt.state.zone = {"id": "Z", "code": "OK", "affected": []}
    ck = lt._local_checks([a, b, c], [], [zone])
    assert not ck["conflict_free"]["ok"]
    assert ck["conflict_free"]["conflicts"][0].startswith("A x B")
    assert not ck["zones_clear"]["ok"]
    assert ck["zones_clear"]["violations"] == ["C crosses zone Z"]
    # listed as affected by CreateZone: accepted before the zone, not a failure
    lt.state.zone["affected"] = ["C"]
    ck = lt._local_checks([a, c], [], [zone])
    assert ck["conflict_free"]["ok"] and ck["zones_clear"]["ok"]
    assert ck["zones_clear"]["accepted_before_the_zone"] == 1
    # a zone whose window ends before the flight starts is not crossed
    zone.active_until.CopyFrom(timestamp(t0 - 100))
    lt.state.zone["affected"] = []
    assert lt._local_checks([c], [], [zone])["zones_clear"]["ok"]
    # lost and doubled bookings are caught
    lt.state.bookings["D"] = ("op-a", "r4")
    lt.state.by_request = {("op-a", "r"): {"A", "X"}}
    ck = lt._local_checks([a, c], [], [])
    assert ck["bookings_listed"]["missing_accepted"] == ["B", "D"]
    assert "2 different flights" in ck["idempotent"]["problems"][0]
    assert np.isfinite(ck["conflict_free"]["check_s"])


# ------------------- service finding of the load test (fixed: retries wait for originals)
def test_racing_retry_is_replayed(srv):
    import asyncio

    import grpc
    from google.protobuf.duration_pb2 import Duration

    from tests.grpc_fixtures import OP_A, md

    a, b = (24.94030, 60.17150), (24.95240, 60.16760)

    async def race():
        async with grpc.aio.insecure_channel(srv.target) as ch:
            stub = frpc.FlightServiceStub(ch)
            out = []
            for k in range(5):
                route = fpb.RouteRequest(
                    start=apb.LonLat(lon_deg=a[0], lat_deg=a[1]),
                    goal=apb.LonLat(lon_deg=b[0], lat_deg=b[1]),
                    departure_time=timestamp(time.time() + 20_000 + 1000 * k),
                    max_delay=Duration(seconds=0))
                req = fpb.SubmitFlightRequest(request_id=f"race-{k}-{time.time()}",
                                              route=route)

                async def one(req=req):
                    try:
                        r = await stub.SubmitFlight(req, metadata=md(OP_A))
                        return r.flight.flight_id
                    except grpc.aio.AioRpcError as exc:
                        return exc.code().name
                out.append(await asyncio.gather(one(), one()))
            return out

    for first, second in asyncio.run(race()):
        assert first == second, (first, second)
