"""Space-time partitions of the booking critical section (issue 14 part 3,
server/partitions.py).

Rules: two flights the independent conflict detector finds in conflict (at any delay
the placement may give the new one) always share a partition key; two bookings in
disjoint partitions are inside their critical sections at the same time (a barrier
that both must reach while holding it), two that could conflict never are; a zone
change waits for the bookings inside and holds new ones back.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from skytwin.planner.conflicts import Separation
from skytwin.planner.route import RouteRequest
from skytwin.planner.trajectory import Trajectory
from skytwin.planner.verify import verify
from skytwin.server.partitions import BookingGate, partition_keys
from skytwin.server.service import BookingRejectedError, Caller, ServiceCore
from skytwin.server.store import Store
from tests.grpc_fixtures import helsinki_twin

OP_A = Caller("a", "operator", "op-a")
OP_B = Caller("b", "operator", "op-b")
META = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {}}
T0 = float(int(time.time()) + 7200)


def _random_flight(rng, fid, t0, max_delay):
    n = int(rng.integers(2, 5))
    xy = rng.uniform(-700, 700, size=(n, 2))
    z = rng.uniform(40, 48)          # mostly within the vertical minimum
    pts = [[xy[0, 0], xy[0, 1], 0.0]] + [[x, y, z] for x, y in xy] + \
        [[xy[-1, 0], xy[-1, 1], 0.0]]
    d = np.linalg.norm(np.diff(np.array(pts), axis=0), axis=1)
    t = t0 + np.concatenate([[0.0], np.cumsum(d / 12.0 + 0.5)])
    return Trajectory(fid, np.array(pts), t, max_delay_s=max_delay)


@pytest.mark.parametrize("seed", range(4))
def test_flights_in_conflict_share_a_partition(seed):
    sep = Separation()
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(150):
        a = _random_flight(rng, f"a{k}", float(rng.uniform(0, 900)), 0.0)
        b = _random_flight(rng, f"b{k}", float(rng.uniform(0, 900)), 600.0)
        ka = set(partition_keys(a, sep.horizontal_m, sep.time_buffer_s))
        kb = set(partition_keys(b, sep.horizontal_m, sep.time_buffer_s))
        for delay in (0.0, 150.0, 300.0, 450.0, 600.0):
            bd = Trajectory(b.flight_id, b.xyz_m, b.t_s + delay)
            if not verify([a, bd], sep).ok:
                hits += 1
                assert ka & kb, (seed, k, delay)
    assert hits > 5      # the sample really contains conflicts


@pytest.fixture
def core(tmp_path):
    twin, ref = helsinki_twin()
    c = ServiceCore(twin, Store(tmp_path / "p.db"), twin_ref=ref)
    yield c
    c.close()


def _inside_counter(core, monkeypatch, barrier=None):
    """Wrap the placement (run inside the critical section) to count how many
    bookings are inside at once; with ``barrier``, each waits there for the other."""
    state = {"now": 0, "max": 0, "broken": 0}
    lock = threading.Lock()
    real = core._conflict_problems     # runs inside the partitions (submit and batch)

    def wrapped(traj, others=()):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            if barrier is not None:
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    state["broken"] += 1
            else:
                time.sleep(0.3)
            return real(traj, others)
        finally:
            with lock:
                state["now"] -= 1
    monkeypatch.setattr(core, "_conflict_problems", wrapped)
    return state


def _book_two(core, reqs):
    out, errs = [], []

    def go(caller, rid, req):
        try:
            out.append(core.submit_flight(caller, rid, req, META)[0])
        except Exception as exc:   # noqa: BLE001 - reported below
            errs.append(exc)
    ts = [threading.Thread(target=go, args=(c, f"p-{n}", r))
          for n, (c, r) in enumerate(zip((OP_A, OP_B), reqs, strict=True))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errs, errs
    return out


def test_bookings_in_disjoint_partitions_run_together(core, monkeypatch):
    a = RouteRequest((24.94030, 60.17150), (24.95240, 60.16760), depart_s=T0)
    b = RouteRequest((24.94030, 60.17150), (24.95240, 60.16760), depart_s=T0 + 3 * 3600)
    ka = partition_keys(core._trajectory(core.plan(a), META), 30.0, 5.0)
    kb = partition_keys(core._trajectory(core.plan(b), META), 30.0, 5.0)
    assert not set(ka) & set(kb)
    state = _inside_counter(core, monkeypatch, threading.Barrier(2, timeout=20))
    recs = _book_two(core, [a, b])
    assert len(recs) == 2 and state["max"] == 2 and state["broken"] == 0


def test_bookings_that_could_conflict_never_overlap(core, monkeypatch):
    a = RouteRequest((24.94030, 60.17150), (24.95240, 60.16760), depart_s=T0)
    state = _inside_counter(core, monkeypatch)
    recs = _book_two(core, [a, a])
    assert state["max"] == 1
    assert verify([r.trajectory for r in recs]).ok
    assert recs[0].trajectory.t_start_s != recs[1].trajectory.t_start_s


def test_zone_change_waits_for_bookings_and_holds_new_ones():
    gate = BookingGate()
    events = []
    inside = threading.Event()
    release = threading.Event()

    def booking(name, hold):
        with gate.shared():
            events.append(f"{name} in")
            if hold:
                inside.set()
                release.wait(10)
            events.append(f"{name} out")

    def zone():
        with gate:
            events.append("zone in")
            with gate:                      # reentrant for its holder
                pass
            events.append("zone out")

    t1 = threading.Thread(target=booking, args=("b1", True))
    t1.start()
    assert inside.wait(10)
    tz = threading.Thread(target=zone)
    tz.start()
    while not gate._writers_waiting:      # the zone change is queued
        time.sleep(0.01)
    t2 = threading.Thread(target=booking, args=("b2", False))
    t2.start()
    time.sleep(0.2)
    assert events == ["b1 in"]            # b2 held back behind the waiting zone change
    release.set()
    for t in (t1, tz, t2):
        t.join(10)
    assert events == ["b1 in", "b1 out", "zone in", "zone out", "b2 in", "b2 out"]


def test_concurrent_placements_stay_conflict_free(core):
    """Four threads book at once (no placement lock any more: only the validator's
    R-tree is serialised), departures spread over two hours so that most bookings
    hold disjoint partitions and place concurrently, some share a corridor and a
    slot: every booking ends (no crash), and the accepted fleet is conflict-free by
    the independent verifier."""
    rng = np.random.default_rng(5)
    pairs = [((24.94030, 60.17150), (24.95240, 60.16760)),
             ((24.95240, 60.16760), (24.94030, 60.17150))]
    errs, done = [], []

    def go(k):
        caller = OP_A if k % 2 else OP_B
        for n in range(12):
            s, g = pairs[(k + n) % len(pairs)]
            req = RouteRequest(s, g, depart_s=T0 + float(rng.uniform(0, 7200)))
            try:
                done.append(core.submit_flight(caller, f"c-{k}-{n}", req, META)[0])
            except BookingRejectedError:
                done.append(None)
            except Exception as exc:   # noqa: BLE001 - reported below
                errs.append(exc)
    ts = [threading.Thread(target=go, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errs, errs
    assert len(done) == 48
    accepted = [r.trajectory for r in done if r is not None]
    assert len(accepted) > 30
    assert verify(accepted).ok and verify(core.index.trajectories).ok


def test_a_diagonal_segment_holds_a_corridor_of_tiles_not_its_box():
    """Keys come from the tiles the segment passes within half the minimum (each tile
    grown by it on every side), not from its bounding box (RESULTS scale part 10).
    Checked against shapely distances: every tile within half the minimum of the
    segment is held; none that is not in the grown bounding box."""
    from shapely.geometry import LineString, box
    p0, p1, half, tile = (30.0, 260.0), (1970.0, 1480.0), 15.0, 500.0
    a = Trajectory("a", [[*p0, 0], [*p0, 50], [*p1, 50], [*p1, 0]], [0, 10, 200, 210],
                   max_delay_s=0.0)
    tiles = {(i, j) for i, j, _ in partition_keys(a, 2 * half, 5.0, tile_m=tile)}
    seg = LineString([p0, p1])
    near = {(i, j) for i in range(-2, 6) for j in range(-2, 6)
            if seg.distance(box(i * tile, j * tile, (i + 1) * tile, (j + 1) * tile)) <= half}
    bbox = {(i, j) for i in range(0, 4) for j in range(0, 3)}
    assert near <= tiles <= bbox
    assert len(tiles) <= 7 < len(bbox) == 12


def test_a_booking_does_not_wait_for_anothers_validator_and_places_around_it(
        core, monkeypatch):
    """Early release (SQLite): the route validator runs after the reservation, outside
    the partitions. While booking A sits in its validator, booking B of the same
    route and slot places at once, around A's reservation; then A is accepted too,
    and the two are conflict-free by the independent verifier."""
    a = RouteRequest((24.94030, 60.17150), (24.95240, 60.16760), depart_s=T0)
    real = core._rule_problems
    in_a, go_on = threading.Event(), threading.Event()

    def rules(traj, speeds, shifted=False, checked_xyz=None, **kw):
        if threading.current_thread().name == "A":
            in_a.set()
            assert go_on.wait(30)
        return real(traj, speeds, shifted, checked_xyz, **kw)
    monkeypatch.setattr(core, "_rule_problems", rules)
    out = {}
    ta = threading.Thread(name="A", target=lambda: out.__setitem__(
        "a", core.submit_flight(OP_A, "elr-a", a, META)[0]))
    ta.start()
    assert in_a.wait(60)
    out["b"] = core.submit_flight(OP_B, "elr-b", a, META)[0]    # A still validating
    assert "a" not in out
    go_on.set()
    ta.join(60)
    ra, rb = out["a"], out["b"]
    assert rb.trajectory.t_start_s != ra.trajectory.t_start_s \
        or rb.meta["layer_shift"] != ra.meta["layer_shift"]
    assert verify([ra.trajectory, rb.trajectory]).ok


def test_a_reservation_the_validator_refuses_is_released(core, monkeypatch):
    """A placement that the route validator refuses after its reservation leaves
    nothing behind: not in the reservation index, not stored; the next booking of
    the same slot gets it without delay."""
    a = RouteRequest((24.94030, 60.17150), (24.95240, 60.16760), depart_s=T0)
    calls = []

    def refuse(traj, speeds, shifted=False, checked_xyz=None, **kw):
        calls.append(shifted)
        return ["segment 1 enters no-fly volume test while it is active"]
    monkeypatch.setattr(core, "_rule_problems", refuse)
    with pytest.raises(BookingRejectedError, match="failed the final checks"):
        core.submit_flight(OP_A, "refused", a, META)
    assert calls and len(core.index) == 0 and core.store.count_flights() == 0
    monkeypatch.undo()
    rec, _ = core.submit_flight(OP_A, "after", a, META)
    assert rec.meta["delay_s"] == 0.0 and rec.meta["layer_shift"] == 0
