"""Several instances on PostgreSQL (issue 14, item 4): a real PostgreSQL server.

One throw-away PostgreSQL server per module (``tests/pg_server.py``: Debian's package,
run as the ``postgres`` user); the module skips with one line when it cannot run.

* the PostgreSQL store keeps the SQLite store's semantics (records bit for bit,
  idempotent request ids, events in order, live-operations tables, schema version);
* two ``skytwin serve`` processes on one database, traffic split between them (the
  same route at the same time from both, so that every booking competes for the same
  airspace): zero conflicts among all accepted flights by the independent verifier
  (``planner.verify`` on the trajectories read back from the database), every change
  seen on both Watch streams, and SIGKILL of one instance loses no acknowledged booking.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import uuid

import grpc
import numpy as np
import pytest

from tests.pg_server import start_postgres, why_not
from tests.serve_process import start_serve

_WHY = why_not()
pytestmark = pytest.mark.skipif(bool(_WHY), reason=f"PostgreSQL cannot run here: {_WHY}")

FROM = (24.94030, 60.17150)
TO = (24.95240, 60.16760)


@pytest.fixture(scope="module")
def pg():
    srv = start_postgres()
    yield srv
    srv.stop()


def _db(pg) -> str:
    return pg.new_database("t_" + uuid.uuid4().hex[:10])


# --------------------------------------------------------------------- store semantics
def test_store_semantics_match_sqlite(pg, tmp_path):
    from skytwin.airspace.zones import Altitude, Circle, Zone
    from skytwin.planner.trajectory import Trajectory
    from skytwin.server.pgstore import PgStore
    from skytwin.server.store import (SCHEMA_VERSION, FlightRecord, Store,
                                      StoreConflictError, StoreVersionError)
    dsn = _db(pg)
    xyz = np.array([[0.0, 0.0, 10.0], [100.0, -0.0, 40.5], [200.0, 50.0, 40.5]])
    t = np.array([1000.0, 1010.0, 1020.0])

    def rec(fid, rid):
        return FlightRecord(flight_id=fid, operator_id="op", request_id=rid,
                            status="accepted", trajectory=Trajectory(fid, xyz, t, 1.0, 60.0,
                                                                     {"k": 1}),
                            lonlat_deg=np.column_stack([xyz[:, 0] / 1e5, xyz[:, 1] / 1e5]),
                            alt_amsl_m=xyz[:, 2].copy(), alt_agl_m=xyz[:, 2] - 1.0,
                            priority=1.0, created_s=999.5, meta={"delay_s": 0.1})
    zone = Zone(id="Z-1", circle=Circle(24.94, 60.17, 30.0), lower=Altitude(0.0, "AGL"),
                upper=Altitude(100.0, "AGL"), reason="test")
    results = {}
    for name, st in (("pg", PgStore(dsn)), ("sqlite", Store(tmp_path / "s.db"))):
        with st:
            a = st.add_flight(rec("F-000000000001", "r1"))
            again = st.add_flight(rec("F-000000000002", "r1"))     # retried request
            with pytest.raises(StoreConflictError):
                st.add_flight(rec("F-000000000001", "r2"))          # id reused
            st.add_flights([rec("F-000000000003", "r3"), rec("F-000000000004", "r4")])
            st.cancel_flight("F-000000000003", 2000.0, actor="reg", reason="why")
            st.put_zone(zone, "reg", 1500.0)
            st.add_lifecycle_events([("F-000000000001", "accepted", "airborne", "op",
                                      1001.0, "took off", "")])
            st.add_track_points([("F-000000000001", 1001.0, 24.94, 60.17, 12.0)] * 2)
            got = st.get_flight("F-000000000001")
            results[name] = dict(
                same=got == a and again == a and np.array_equal(got.trajectory.xyz_m, xyz),
                listed=[r.flight_id for r in st.list_flights()],
                accepted=[r.flight_id for r in st.accepted_flights(t_from_s=0)],
                page=[r.flight_id for r in st.list_flights(limit=1,
                                                           after_flight_id="F-000000000001")],
                events=[(e["kind"], e["id"], e["reason"]) for e in st.events_since(0)],
                zones=[z.id for z in st.list_zones()],
                states=st.lifecycle_states(),
                tracks=st.track_points("F-000000000001"),
                problems=st.integrity_check())
    assert results["pg"] == results["sqlite"], results
    assert results["pg"]["same"] and results["pg"]["problems"] == []
    kinds = [k for k, _, _ in results["pg"]["events"]]
    assert kinds == ["flight_accepted", "flight_accepted", "flight_accepted",
                     "flight_cancelled", "zone_put", "flight_state"]
    # reopening keeps everything; a newer schema version is refused, as with SQLite
    with PgStore(dsn) as st:
        assert st.count_flights() == 3 and st.last_event_seq() >= 6
        st._conn().execute("UPDATE skytwin_meta SET value = %s WHERE key = "
                           "'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreVersionError, match="newer"):
        PgStore(dsn)


# --------------------------------------------------------------------- two instances
def _start(dsn):
    return start_serve("--db", dsn, "--workers", "2", "--web", "off", timeout_s=180)


def _watch(target, token):
    from skytwin.v1 import changes_pb2 as cpb
    from skytwin.v1 import changes_pb2_grpc as crpc
    from tests.grpc_fixtures import md
    ch = grpc.insecure_channel(target)
    call = crpc.ChangeServiceStub(ch).Watch(cpb.WatchRequest(), metadata=md(token))
    q: queue.Queue = queue.Queue()

    def pump():
        try:
            for m in call:
                q.put(m)
        except grpc.RpcError:
            pass
    threading.Thread(target=pump, daemon=True).start()
    first = q.get(timeout=30)              # the live marker
    assert first.kind == cpb.CHANGE_KIND_UNSPECIFIED
    return q, call, ch


def _drain(q, want, timeout_s=20.0):
    """Changes from ``q`` until every (kind, id) in ``want`` arrived; the seen set."""
    seen = set()
    end = time.monotonic() + timeout_s
    while not want <= seen and time.monotonic() < end:
        try:
            m = q.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            break
        seen.add((m.kind, m.flight.flight_id or m.zone.id))
    return seen


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def test_two_instances_share_one_airspace(pg, procs):
    from skytwin.planner.verify import verify
    from skytwin.server.convert import timestamp
    from skytwin.server.pgstore import PgStore
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import changes_pb2 as cpb
    from skytwin.v1 import flights_pb2 as fpb
    from skytwin.v1 import flights_pb2_grpc as frpc
    from skytwin.v1 import zones_pb2 as zpb
    from skytwin.v1 import zones_pb2_grpc as zrpc
    from tests.grpc_fixtures import OP_A, OP_B, REG, md
    dsn = _db(pg)
    (pa, ta) = _start(dsn)
    procs.append(pa)
    (pb, tb) = _start(dsn)
    procs.append(pb)
    qa, call_a, cha = _watch(ta, REG)
    qb, call_b, chb = _watch(tb, REG)
    chans = [grpc.insecure_channel(t) for t in (ta, tb)]
    stubs = [frpc.FlightServiceStub(c) for c in chans]
    depart = float(int(time.time()) + 3 * 86400)
    route = fpb.RouteRequest(start=apb.LonLat(lon_deg=FROM[0], lat_deg=FROM[1]),
                             goal=apb.LonLat(lon_deg=TO[0], lat_deg=TO[1]),
                             departure_time=timestamp(depart))
    acked: dict = {}
    errors: list = []

    def client(k):
        # the same route at the same time from both instances: every booking competes
        tok = (OP_A, OP_B)[k % 2]
        for n in range(4):
            inst = (k + n) % 2
            try:
                pr = stubs[inst].PlanRoute(fpb.PlanRouteRequest(route=route),
                                           metadata=md(tok))
                r = stubs[inst].SubmitFlight(fpb.SubmitFlightRequest(
                    request_id=f"c{k}-{n}", route=route, plan_id=pr.plan_id),
                    metadata=md(tok), timeout=60)
                acked[r.flight.flight_id] = inst
            except grpc.RpcError as e:
                errors.append((e.code(), e.details()))
    th = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in th:
        t.start()
    for t in th:
        t.join(180)
    assert not errors, errors
    assert len(acked) == 16 and set(acked.values()) == {0, 1}
    # a zone created on A is seen on B's stream, and every flight on both
    zone = zpb.Zone(id="PG-Z1", circle=zpb.Circle(centre=apb.LonLat(lon_deg=24.9362,
                                                                    lat_deg=60.1770),
                                                  radius_m=10.0),
                    lower=apb.Altitude(value_m=0, reference=apb.ALTITUDE_REFERENCE_AGL),
                    upper=apb.Altitude(value_m=200, reference=apb.ALTITUDE_REFERENCE_AGL))
    zrpc.ZoneServiceStub(chans[0]).CreateZone(zpb.CreateZoneRequest(zone=zone),
                                              metadata=md(REG))
    want = {(cpb.CHANGE_KIND_FLIGHT_ACCEPTED, f) for f in acked} | \
        {(cpb.CHANGE_KIND_ZONE_ADDED, "PG-Z1")}
    for q in (qa, qb):
        seen = _drain(q, want)
        assert want <= seen, sorted(want - seen)[:5]
    assert zrpc.ZoneServiceStub(chans[1]).GetZone(zpb.GetZoneRequest(zone_id="PG-Z1"),
                                                  metadata=md(REG)).zone.id == "PG-Z1"
    # SIGKILL B right after it acknowledged a booking: nothing acknowledged is lost, and
    # A (which never saw B's process again) places on top of nothing
    r = stubs[1].SubmitFlight(fpb.SubmitFlightRequest(request_id="last-b", route=route),
                              metadata=md(OP_B), timeout=60)
    acked[r.flight.flight_id] = 1
    os.kill(pb.pid, signal.SIGKILL)
    pb.wait(10)
    r2 = stubs[0].SubmitFlight(fpb.SubmitFlightRequest(request_id="after-kill",
                                                       route=route),
                               metadata=md(OP_A), timeout=60)
    acked[r2.flight.flight_id] = 0
    with PgStore(dsn) as st:
        recs = st.accepted_flights()
        assert set(acked) <= {x.flight_id for x in recs}
        rep = verify([x.trajectory for x in recs])
        assert len(recs) == 18 and rep.ok, rep.residual_conflicts[:3]
    # one flight per request id, never twice
    for c in (call_a, call_b):
        c.cancel()
    for c in (*chans, cha, chb):
        c.close()


# ------------------------------------------------------------ partition locks (part 3)
def test_partition_locks_across_instances(pg):
    """Two stores (two instances' sessions) on one database: a booking in other
    partitions goes ahead while one holds its partitions; one in the same partition,
    and an exclusive (zone change) lock, wait until it is released."""
    from skytwin.server.pgstore import PgStore
    dsn = _db(pg)
    a, b = PgStore(dsn), PgStore(dsn)
    held, release, log = threading.Event(), threading.Event(), []

    def holder():
        with a.booking_lock([(0, 0, 7), (1, 0, 7)]):
            held.set()
            release.wait(20)
            log.append("a out")

    def taker(name, **kw):
        with b.booking_lock(**kw):
            log.append(name)
    try:
        t = threading.Thread(target=holder)
        t.start()
        assert held.wait(20)
        taker("b other", keys=[(5, 5, 7), (0, 0, 8)])   # disjoint partitions: at once
        others = [threading.Thread(target=taker, args=("b same",),
                                   kwargs={"keys": [(1, 0, 7)]}),
                  threading.Thread(target=taker, args=("b zone",))]
        for o in others:
            o.start()
        time.sleep(0.5)
        assert log == ["b other"]              # both wait for a's partitions
        release.set()
        for o in (t, *others):
            o.join(20)
        assert log[:2] == ["b other", "a out"] and set(log[2:]) == {"b same", "b zone"}
    finally:
        release.set()
        a.close()
        b.close()


def test_a_failed_commit_is_uncertain_and_keeps_the_reservation(pg):
    """PostgreSQL's COMMIT fails (a deferred trigger raises at commit time, as a lost
    connection or a full disk would): the store says the outcome is uncertain
    (CommitUncertainError, 'retry'), not that nothing was written, and the service
    keeps the flight's space reserved; a write failing before COMMIT frees it."""
    import psycopg

    from skytwin.planner.route import RouteRequest
    from skytwin.server.pgstore import PgStore
    from skytwin.server.service import Caller, ServiceCore
    from skytwin.server.store import CommitUncertainError, StoreWriteError
    from tests.grpc_fixtures import helsinki_twin
    dsn = _db(pg)
    twin, ref = helsinki_twin()
    core = ServiceCore(twin, PgStore(dsn), twin_ref=ref)
    try:
        def fail_insert(request_id, at_commit):
            """Inserting ``request_id`` into flights raises: at COMMIT (a deferred
            constraint trigger) or at once."""
            kind, when, defer = (("CONSTRAINT ", "AFTER", "DEFERRABLE INITIALLY DEFERRED")
                                 if at_commit else ("", "BEFORE", ""))
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute(f"""CREATE FUNCTION {request_id}() RETURNS trigger AS $$ BEGIN
                               IF NEW.request_id = '{request_id}' THEN
                                 RAISE EXCEPTION 'failed'; END IF;
                               RETURN NEW; END $$ LANGUAGE plpgsql""")
                c.execute(f"CREATE {kind}TRIGGER {request_id} {when} INSERT ON flights "
                          f"{defer} FOR EACH ROW EXECUTE FUNCTION {request_id}()")
        fail_insert("boom", at_commit=True)
        op = Caller("a", "operator", "op-a")
        meta = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {}}
        t0 = float(int(time.time()) + 7200)
        with pytest.raises(CommitUncertainError, match="retry"):
            core.submit_flight(op, "boom", RouteRequest(FROM, TO, depart_s=t0), meta)
        assert core.store.count_flights() == 0 and len(core.index) == 1
        rec, _ = core.submit_flight(op, "ok-1", RouteRequest(FROM, TO, depart_s=t0), meta)
        assert rec.meta["delay_s"] > 0            # placed around the kept reservation
        fail_insert("early", at_commit=False)
        n = len(core.index)
        with pytest.raises(StoreWriteError, match="nothing was written") as err:
            core.submit_flight(op, "early", RouteRequest(TO, FROM, depart_s=t0), meta)
        assert not isinstance(err.value, CommitUncertainError)
        assert len(core.index) == n and core.store.count_flights() == 1
    finally:
        core.close()
