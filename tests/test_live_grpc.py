"""LiveService over a real gRPC server: telemetry stream, statuses, durable lifecycle
events on the stream, in the store and on Watch; kill -9 and resume; the simulator."""

from __future__ import annotations

import queue
import signal
import threading
import time

import grpc
import pytest

from skytwin.server.convert import seconds, timestamp
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import changes_pb2 as cpb
from skytwin.v1 import changes_pb2_grpc as crpc
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import flights_pb2_grpc as frpc
from skytwin.v1 import live_pb2 as lpb
from skytwin.v1 import live_pb2_grpc as lrpc
from tests.grpc_fixtures import OP_A, OP_B, REG, md, start_server
from tests.serve_process import start_serve

FROM = (24.94030, 60.17150)
TO = (24.95240, 60.16760)
S = lpb.ReportStatus


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("live") / "live.db")
    yield srv
    srv.stop()


def book(channel, token, depart_s, request_id):
    resp = frpc.FlightServiceStub(channel).SubmitFlight(fpb.SubmitFlightRequest(
        request_id=request_id, route=fpb.RouteRequest(
            start=apb.LonLat(lon_deg=FROM[0], lat_deg=FROM[1]),
            goal=apb.LonLat(lon_deg=TO[0], lat_deg=TO[1]),
            departure_time=timestamp(depart_s))), metadata=md(token), timeout=60)
    return resp.flight


def report(rid, fid, t_s, lon, lat, alt):
    r = lpb.PositionReport(report_id=rid, flight_id=fid, time=timestamp(t_s), alt_amsl_m=alt)
    r.position.lon_deg = lon
    r.position.lat_deg = lat
    return r


class Stream:
    """A StreamTelemetry call driven from the test thread."""

    def __init__(self, channel, token):
        self.q = queue.Queue()
        self.call = lrpc.LiveServiceStub(channel).StreamTelemetry(iter(self.q.get, None),
                                                                  metadata=md(token))
        self.events = []
        self.advisories = []

    def send(self, *reports, answers=()):
        self.q.put(lpb.TelemetryRequest(reports=list(reports), answers=list(answers)))
        while True:
            resp = next(self.call)
            self.events += list(resp.events)
            self.advisories += list(resp.advisories)
            if resp.acks or resp.answer_acks:
                return resp

    def close(self):
        self.q.put(None)
        self.call.cancel()


def states(events):
    return [(e.flight_id, lpb.LifecycleState.Name(e.to_state), e.reason) for e in events]


def test_stream_statuses_events_store_and_watch(server):
    ch = server.channel()
    now = time.time()
    a = book(ch, OP_A, now + 1.0, "live-a")
    b = book(ch, OP_B, now + 1.0, "live-b")
    pad = a.route.waypoints[0]
    lon, lat, alt = pad.position.lon_deg, pad.position.lat_deg, pad.alt_amsl_m
    watch = crpc.ChangeServiceStub(ch).Watch(cpb.WatchRequest(), metadata=md(REG))
    assert next(watch).kind == cpb.CHANGE_KIND_UNSPECIFIED
    st = Stream(ch, OP_A)
    t = time.time()
    resp = st.send(report(1, a.flight_id, t, lon, lat, alt),
                   report(2, b.flight_id, t, lon, lat, alt),
                   report(3, "no-such-flight", t, lon, lat, alt),
                   report(4, a.flight_id, t + 60, lon, lat, alt),
                   report(5, a.flight_id, t, float("nan"), lat, alt),
                   report(6, a.flight_id, t - 3600, lon, lat, alt))
    assert [(k.report_id, S.Name(k.status)) for k in resp.acks] == [
        (1, "REPORT_STATUS_OK"), (2, "REPORT_STATUS_FOREIGN_FLIGHT"),
        (3, "REPORT_STATUS_UNKNOWN_FLIGHT"), (4, "REPORT_STATUS_IN_FUTURE"),
        (5, "REPORT_STATUS_NON_FINITE"), (6, "REPORT_STATUS_TOO_OLD")]
    # the activation travels with (or before) the ack of the report that caused it
    assert states(st.events) == [(a.flight_id, "LIFECYCLE_STATE_ACTIVATED",
                                  "first_telemetry")]
    # 25 m east of the pad, twice, 0.6 s apart: out of the 8 m tube -> nonconforming
    dlon = 25.0 / (111_320.0 * 0.4985)
    for rid in (7, 8):
        time.sleep(0.6)
        resp = st.send(report(rid, a.flight_id, time.time(), lon + dlon, lat, alt))
        assert S.Name(resp.acks[0].status) == "REPORT_STATUS_OK"
    assert states(st.events)[-1] == (a.flight_id, "LIFECYCLE_STATE_NONCONFORMING",
                                     "out_of_volume")
    assert "deviation" in st.events[-1].detail
    live = lrpc.LiveServiceStub(ch)
    hist = live.GetFlightState(lpb.GetFlightStateRequest(flight_id=a.flight_id),
                               metadata=md(OP_A))
    assert hist.state == lpb.LIFECYCLE_STATE_NONCONFORMING
    assert [e.reason for e in hist.events] == ["first_telemetry", "out_of_volume"]
    assert [e.sequence for e in hist.events] == [e.sequence for e in st.events]
    # the regulator's Watch saw both transitions
    seen = []
    while len(seen) < 2:
        c = next(watch)
        if c.kind == cpb.CHANGE_KIND_FLIGHT_STATE_CHANGED:
            seen.append((c.flight.flight_id, c.flight_state))
    assert seen == [(a.flight_id, "activated"), (a.flight_id, "nonconforming")]
    watch.cancel()
    # commands: another operator may not touch it; its operator ends it
    with pytest.raises(grpc.RpcError) as e:
        live.SetFlightState(lpb.SetFlightStateRequest(
            flight_id=a.flight_id, state=lpb.LIFECYCLE_STATE_ENDED), metadata=md(OP_B))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        live.SetFlightState(lpb.SetFlightStateRequest(
            flight_id=b.flight_id, state=lpb.LIFECYCLE_STATE_ENDED), metadata=md(OP_B))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION   # never flew
    assert "accepted to ended" in e.value.details()
    r = live.SetFlightState(lpb.SetFlightStateRequest(
        flight_id=a.flight_id, state=lpb.LIFECYCLE_STATE_ENDED, reason="landed"),
        metadata=md(OP_A))
    assert (r.event.actor, r.event.to_state) == (lpb.ACTOR_OPERATOR,
                                                 lpb.LIFECYCLE_STATE_ENDED)
    resp = st.send(report(9, a.flight_id, time.time(), lon, lat, alt))
    assert S.Name(resp.acks[0].status) == "REPORT_STATUS_NOT_ACTIVE"
    st.close()
    # the unary variant, and who may send telemetry at all
    rb = live.ReportBatch(lpb.ReportBatchRequest(reports=[
        report(1, b.flight_id, time.time(), lon, lat, alt)]), metadata=md(OP_B))
    assert S.Name(rb.acks[0].status) == "REPORT_STATUS_OK"
    assert states(rb.events) == [(b.flight_id, "LIFECYCLE_STATE_ACTIVATED",
                                  "first_telemetry")]
    with pytest.raises(grpc.RpcError) as e:
        live.ReportBatch(lpb.ReportBatchRequest(), metadata=md(REG))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    tracks = server.core.store.track_points(a.flight_id)
    deadline = time.time() + 5
    while len(tracks) < 3 and time.time() < deadline:   # batched persistence
        time.sleep(0.2)
        tracks = server.core.store.track_points(a.flight_id)
    assert len(tracks) == 3


def _start(db):
    return start_serve("--db", str(db), "--workers", "2")


def test_requests_queued_on_a_stream_are_answered_one_response_each_in_order(server):
    """Requests that arrive while the previous ingestion runs are ingested together
    (one hub call per group): each still gets its own response with exactly its acks,
    in order, and an answer keeps its place between the reports around it."""
    ch = server.channel()
    a = book(ch, OP_A, time.time() + 1.0, "live-batch")
    pad = a.route.waypoints[0]
    lon, lat, alt = pad.position.lon_deg, pad.position.lat_deg, pad.alt_amsl_m
    q = queue.Queue()
    call = lrpc.LiveServiceStub(ch).StreamTelemetry(iter(q.get, None), metadata=md(OP_A))
    t = time.time()
    sizes = [3, 1, 20, 7, 1]
    rid = 0
    for k, n in enumerate(sizes):
        reps = []
        for _ in range(n):
            rid += 1
            # one drone on its pad, each report 10 ms after the previous one
            reps.append(report(rid, a.flight_id, t + 0.01 * rid, lon, lat, alt))
        answers = [lpb.AdvisoryAnswer(advisory_id=f"no-such-{k}", accept=True)] \
            if k == 3 else []
        q.put(lpb.TelemetryRequest(reports=reps, answers=answers))
    got = []
    while len(got) < len(sizes):
        resp = next(call)
        if resp.acks or resp.answer_acks:
            got.append(resp)
    q.put(None)
    call.cancel()
    want, rid = [], 0
    for n in sizes:
        want.append(list(range(rid + 1, rid + n + 1)))
        rid += n
    assert [[k.report_id for k in r.acks] for r in got] == want
    assert all(S.Name(k.status) == "REPORT_STATUS_OK" for r in got for k in r.acks)
    assert [[x.advisory_id for x in r.answer_acks] for r in got] == [
        [], [], [], ["no-such-3"], []]
    assert not got[3].answer_acks[0].ok
    ch.close()


def test_kill_9_keeps_acknowledged_transitions_and_ingestion_resumes(tmp_path):
    db = tmp_path / "kill.db"
    p, target = _start(db)
    try:
        ch = grpc.insecure_channel(target)
        f = book(ch, OP_A, time.time() + 1.0, "kill-a")
        pad = f.route.waypoints[0]
        lon, lat, alt = pad.position.lon_deg, pad.position.lat_deg, pad.alt_amsl_m
        st = Stream(ch, OP_A)
        st.send(report(1, f.flight_id, time.time(), lon, lat, alt))
        dlon = 25.0 / (111_320.0 * 0.4985)
        for rid in (2, 3):
            time.sleep(0.6)
            st.send(report(rid, f.flight_id, time.time(), lon + dlon, lat, alt))
        acked = [(e.sequence, lpb.LifecycleState.Name(e.to_state)) for e in st.events]
        assert acked[-1][1] == "LIFECYCLE_STATE_NONCONFORMING"
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        ch.close()
    finally:
        if p.poll() is None:
            p.kill()
    p, target = _start(db)
    try:
        ch = grpc.insecure_channel(target)
        live = lrpc.LiveServiceStub(ch)
        hist = live.GetFlightState(lpb.GetFlightStateRequest(flight_id=f.flight_id),
                                   metadata=md(OP_A))
        assert [(e.sequence, lpb.LifecycleState.Name(e.to_state))
                for e in hist.events] == acked
        assert hist.state == lpb.LIFECYCLE_STATE_NONCONFORMING
        st = Stream(ch, OP_A)
        resp = st.send(report(4, f.flight_id, time.time(), lon, lat, alt))
        assert S.Name(resp.acks[0].status) == "REPORT_STATUS_OK"
        st.close()
        ch.close()
    finally:
        p.kill()
        p.wait(10)


def test_simulate_small_fleet(server):
    from skytwin.server.simulate import SimConfig, run_simulation
    # functional run on a shared machine: the latency bounds here only catch a hang
    # (the benchmark, benchmarks/bench_live.py grpc, measures them against the issue's
    # 200 ms and 5 s); everything else is checked as the issue states it
    rep = run_simulation(SimConfig(target=server.target, drones=8, duration_s=24.0,
                                   fault_share=0.25, seed=3, lead_s=4.0, spread_s=2.0,
                                   min_trip_m=300.0, max_ingest_p99_ms=5000.0,
                                   max_detect_p99_s=20.0))
    for key in ("drones", "positions_sent", "positions_accepted", "positions_per_s",
                "ingest_p50_ms", "ingest_p99_ms", "faults_injected", "faults_detected",
                "false_alarms", "detect_p50_s", "detect_p99_s", "conflicts_predicted",
                "advisories_issued", "advisories_accepted", "losses_of_separation",
                "checks", "result"):
        assert key in rep, key
    # two faults drawn; one whose drone accepted an advisory (e.g. a later departure)
    # that leaves it no time in the air for the onset inside the run is withdrawn, and
    # listed: it never happened
    assert rep["faults_injected"] + rep["faults_withdrawn_count"] == 2
    assert rep["faults_detected"] == rep["faults_injected"], rep["faults_missed_detail"]
    assert all(w[1] in ("drift", "climb", "hold", "late", "lost_link")
               for w in rep["faults_withdrawn"])
    assert rep["false_alarms"] == 0 and rep["losses_of_separation"] == 0
    assert rep["positions_accepted"] == rep["positions_sent"] > 0
    assert rep["result"] == "PASS", ({k: v for k, v in rep["checks"].items() if v != "PASS"}, rep["report_statuses"], rep["ingest_p99_ms"], rep["popup_zone"], rep["loss_pairs"])
    _ = (seconds, threading)
