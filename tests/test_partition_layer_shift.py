"""Partition keys cover the layer options' re-timing (regression).

A layer shift is not vertical only: ``Trajectory.shifted`` re-times the flight so it
climbs and descends the extra height at its own vertical speeds (+20 m at the default
4 / 3 m/s moves the landing 11.7 s later, more than the 5 s timing buffer). Keys made
from the unshifted trajectory missed that, so two bookings holding disjoint keys could
be placed at the same time and both accepted in loss of separation (one landing on a
pad while the other takes off from it). The oracle here is plain numpy sampling of
the trajectories (with the relative timing buffer), not planner.verify/conflicts.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from skytwin.planner.timing import segment_times_s
from skytwin.planner.trajectory import Trajectory
from skytwin.server.partitions import partition_keys
from tests.naive.conflicts import sampled_loss

H, V, BUF = 30.0, 10.0, 5.0
DZ = (0.0, 10.0, 20.0)          # the service's default options (0, +1, +2) x 10 m


def _loss(a, b):
    return sampled_loss(a, b, H, V, BUF, dt_s=0.05, dtau_s=0.25)


def _timed(fid, xyz, t0, max_delay_s=0.0):
    xyz = np.round(np.asarray(xyz, float), 2)
    return Trajectory(fid, xyz, t0 + np.concatenate([[0.0], np.cumsum(segment_times_s(xyz))]),
                      max_delay_s=max_delay_s)


def test_a_shifted_landing_and_a_take_off_from_its_pad_share_a_key():
    tb = 600.0 * 3_000_000
    a = _timed("a", [[0, 250, 0], [0, 250, 40], [1000, 250, 40], [1000, 250, 0]], 0.0)
    a = Trajectory("a", a.xyz_m, a.t_s - a.t_s[-1] + tb - 5.5, max_delay_s=0.0)
    b = _timed("b", [[1000, 250, 0], [1000, 250, 40], [1000, 1000, 40], [1000, 1000, 0]],
               a.t_s[-1] + 10.5)
    assert _loss(a.shifted(0.0, 20.0), b)            # +2 layers lands on b's take-off
    assert not _loss(a, b)
    assert set(partition_keys(a, H, BUF, layer_dz_m=DZ)) & set(partition_keys(b, H, BUF))


def _rand(rng, fid, anchor, t0):
    p = np.array(anchor) + [rng.uniform(-60, 60), rng.uniform(-60, 60)]
    pts = [p] + [None] * rng.randint(1, 2)
    for n in range(1, len(pts)):
        pts[n] = pts[n - 1] + [rng.uniform(-120, 120), rng.uniform(-120, 120)]
    z = rng.choice([30.0, 40.0])
    xyz = [[*pts[0], 0.0]] + [[*q, z] for q in pts] + [[*pts[-1], 0.0]]
    return _timed(fid, xyz, t0, 10.0 * rng.randint(0, 1))


def test_disjoint_keys_never_hide_a_loss_of_separation():
    """Random hand-overs at tile corners and bucket boundaries (negative coordinates
    too): whatever delays and layer options both placements choose, flights whose
    keys are disjoint never lose separation."""
    rng = random.Random(7)
    disjoint = 0
    for _ in range(1000):
        anchor = (500.0 * rng.randint(-2, 2), 500.0 * rng.randint(-2, 2))
        tb = 600.0 * rng.randint(-2, 2)
        a = _rand(rng, "a", anchor, 0.0)
        a = Trajectory("a", a.xyz_m, a.t_s - a.t_s[-1] + tb - rng.uniform(0, 15),
                       max_delay_s=a.max_delay_s)
        b = _rand(rng, "b", a.xyz_m[-1, :2] + [rng.uniform(-25, 25), rng.uniform(-25, 25)],
                  tb + rng.uniform(0, 15))
        ka = set(partition_keys(a, H, BUF, layer_dz_m=DZ))
        kb = set(partition_keys(b, H, BUF, layer_dz_m=DZ))
        if ka & kb:
            continue
        disjoint += 1
        for da in np.arange(0.0, a.max_delay_s + 1e-9, 10.0):
            for db in np.arange(0.0, b.max_delay_s + 1e-9, 10.0):
                for za in DZ:
                    for zb in DZ:
                        assert not _loss(a.shifted(da, za), b.shifted(db, zb)), \
                            (da, db, za, zb)
    assert disjoint > 10


@pytest.fixture
def core(tmp_path):
    from skytwin.server.service import ServiceCore
    from skytwin.server.store import Store
    from tests.grpc_fixtures import helsinki_twin
    twin, ref = helsinki_twin()
    c = ServiceCore(twin, Store(tmp_path / "k.db"), twin_ref=ref)
    yield c
    c.close()


def test_two_bookings_racing_through_disjoint_keys_are_not_both_accepted_in_conflict(core):
    """Through submit_flight (held plans, SQLite): C blocks A's own layer and +1, so A
    takes +2 and lands 11.7 s later than planned, on the pad B takes off from. A barrier
    on the index's accept lets both place and verify before either reserves (with a
    timeout: bookings that share a key simply run one after the other)."""
    from skytwin.planner.route import RouteRequest
    from skytwin.server.service import BookingRejectedError, Caller
    s_ll, g_ll = (24.94030, 60.17150), (24.95240, 60.16760)
    meta = {"priority": 1.0, "max_delay_s": 0.0, "speeds": {}}
    now = time.time()
    tb = 600.0 * math.ceil((now + 7200.0) / 600.0)
    probe = core.plan_local(RouteRequest(s_ll, g_ll, depart_s=now + 3600))
    dur = float(probe.trajectory.t_s[-1] - probe.trajectory.t_s[0])
    route = core.plan_local(RouteRequest(s_ll, g_ll, depart_s=tb - 5.5 - dur))
    xa, ta = route.trajectory.xyz_m, route.trajectory.t_s
    rev = xa[::-1].copy()
    c_xyz = rev.copy()
    c_xyz[1:-1, 2] += 5.0
    flights = {"c": _timed("c", c_xyz, ta[0]), "a": Trajectory("a", xa, ta),
               "b": _timed("b", rev, ta[-1] + 10.5)}

    def held(op, tr, tag):
        r = replace(route, xyz_m=tr.xyz_m, trajectory=Trajectory("x", tr.xyz_m, tr.t_s),
                    footprints_checked_xyz=None)
        r.ground_generation = route.ground_generation
        return core.hold_plan(op, tag, RouteRequest(s_ll, g_ll, depart_s=float(tr.t_s[0])),
                              meta, r)

    ops = {n: Caller(n, "operator", "op-" + n) for n in "abc"}
    core.submit_flight(ops["c"], "rc", None, None,
                       plan_id=held(ops["c"], flights["c"], "c").plan_id)
    plans = {n: held(ops[n], flights[n], n) for n in "ab"}
    bar, real, calls = threading.Barrier(2), core.index.accept, [0]

    def accept(tr):
        calls[0] += 1
        if calls[0] <= 2:
            try:
                bar.wait(timeout=3.0)
            except threading.BrokenBarrierError:
                pass
        return real(tr)
    core.index.accept = accept
    out = {}

    def run(n):
        try:
            out[n] = core.submit_flight(ops[n], "r" + n, None, None,
                                        plan_id=plans[n].plan_id)[0]
        except BookingRejectedError as exc:
            out[n] = exc
    th = [threading.Thread(target=run, args=(n,)) for n in "ab"]
    for t in th:
        t.start()
    for t in th:
        t.join()
    recs = [r for r in core.store.list_flights(limit=100) if r.status == "accepted"]
    assert len(recs) >= 2
    for i in range(len(recs)):
        for j in range(i + 1, len(recs)):
            assert not _loss(recs[i].trajectory, recs[j].trajectory), \
                (recs[i].flight_id, recs[j].flight_id)
