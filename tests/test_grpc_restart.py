"""Restart after SIGKILL loses nothing: `skytwin serve` as a subprocess.

Two client threads book flights while the server is killed with SIGKILL; every flight
whose SubmitFlight returned (acknowledged) must be there after a restart on the same
database, the zone too, and the reservation index must be rebuilt: a new submit on top
of a pre-kill flight is delayed, never accepted on top of it.
"""

from __future__ import annotations

import signal
import threading
import time

import grpc
import pytest

from skytwin.server.convert import seconds, timestamp
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import zones_pb2 as zpb
from skytwin.v1 import zones_pb2_grpc as zrpc
from tests.grpc_fixtures import OP_A, OP_B, REG, md
from tests.serve_process import start_serve, stop_all

FROM = (24.94030, 60.17150)
TO = (24.95240, 60.16760)
T0 = float(int(time.time()) + 7200)


def _start(db):
    return start_serve("--db", str(db), "--workers", "2")


def _route(depart_s):
    return fpb.RouteRequest(start=apb.LonLat(lon_deg=FROM[0], lat_deg=FROM[1]),
                            goal=apb.LonLat(lon_deg=TO[0], lat_deg=TO[1]),
                            departure_time=timestamp(depart_s))


@pytest.fixture
def procs():
    started = []
    yield started
    stop_all(started)


def test_sigkill_mid_load_loses_nothing_and_rebuilds_the_index(tmp_path, procs):
    db = tmp_path / "store.db"
    p, target = _start(db)
    procs.append(p)
    ch = grpc.insecure_channel(target)
    f = frpc.FlightServiceStub(ch)
    z = zrpc.ZoneServiceStub(ch)
    zone = zpb.Zone(id="K-1", circle=zpb.Circle(centre=apb.LonLat(lon_deg=24.9370,
                                                                  lat_deg=60.1760),
                                                radius_m=20.0),
                    lower=apb.Altitude(value_m=0, reference=apb.ALTITUDE_REFERENCE_AGL),
                    upper=apb.Altitude(value_m=100, reference=apb.ALTITUDE_REFERENCE_AGL))
    z.CreateZone(zpb.CreateZoneRequest(zone=zone), metadata=md(REG))
    first = f.SubmitFlight(fpb.SubmitFlightRequest(request_id="first", route=_route(T0)),
                           metadata=md(OP_A)).flight

    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def load(token, tag):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                r = f.SubmitFlight(fpb.SubmitFlightRequest(
                    request_id=f"{tag}-{n}", route=_route(T0 + 1000 * n)),
                    metadata=md(token), timeout=30)
            except grpc.RpcError:
                return
            with lock:
                acked[r.flight.flight_id] = tag

    threads = [threading.Thread(target=load, args=(t, g)) for t, g in
               ((OP_A, "a"), (OP_B, "b"))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)       # mid-load: requests are in flight
    p.wait(10)
    stop.set()
    for t in threads:
        t.join(30)
    ch.close()
    assert len(acked) >= 8

    p2, target2 = _start(db)
    procs.append(p2)
    with grpc.insecure_channel(target2) as ch2:
        f2 = frpc.FlightServiceStub(ch2)
        z2 = zrpc.ZoneServiceStub(ch2)
        ids, token = set(), ""
        while True:
            page = f2.ListFlights(fpb.ListFlightsRequest(page_size=1000, page_token=token),
                                  metadata=md(REG))
            ids |= {x.flight_id for x in page.flights}
            token = page.next_page_token
            if not token:
                break
        assert set(acked) | {first.flight_id} <= ids            # nothing acknowledged lost
        assert z2.GetZone(zpb.GetZoneRequest(zone_id="K-1"), metadata=md(OP_A)).zone == zone
        # retried request ids are answered from the store, not booked again
        again = f2.SubmitFlight(fpb.SubmitFlightRequest(request_id="first", route=_route(T0)),
                                metadata=md(OP_A))
        assert again.replayed and again.flight.flight_id == first.flight_id
        # the index is rebuilt: the same route at the same time is delayed
        new = f2.SubmitFlight(fpb.SubmitFlightRequest(request_id="after", route=_route(T0)),
                              metadata=md(OP_B)).flight
        assert new.delay.seconds > 0
        assert seconds(new.route.waypoints[0].time) > seconds(first.route.waypoints[0].time)
    p2.send_signal(signal.SIGTERM)     # clean stop
    assert p2.wait(30) == 0

    from skytwin.planner.verify import verify
    from skytwin.server.store import Store
    st = Store(db)
    try:
        assert st.integrity_check() == []
        trajs = [r.trajectory for r in st.accepted_flights()]
        assert verify(trajs).ok                                   # mutually conflict-free
    finally:
        st.close()
