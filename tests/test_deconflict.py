"""Deconfliction: CP-SAT and FCFS both verified conflict-free, optimality on tiny cases,
unplaced flights, alternates, and the incremental mode."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from skytwin.fixtures.traffic import generate
from skytwin.planner.conflicts import ConflictInputError, Separation, detect
from skytwin.planner.deconflict import (
    AcceptedIndex,
    DeconflictOptions,
    SolveParams,
    build_problem,
    deconflict,
    fcfs,
    place,
)
from skytwin.planner.trajectory import Trajectory
from tests.naive.conflicts import detect_pairs

SEP = Separation(30.0, 10.0, 5.0)
FAST = SolveParams(max_time_in_seconds=20.0, num_workers=1, random_seed=1)


def crowded(n=60, seed=3, alternates=0):
    return generate(n, seed, area_m=2500.0, duration_s=600.0, n_hubs=2, pads_per_hub=3,
                    delivery_radius_m=1000.0, max_delay_s=300.0, n_alternates=alternates)


def pad_flight(fid, t0=0.0, z=60.0, prio=1.0, max_delay_s=300.0, dx=600.0):
    xyz = [[0, 0, 0], [0, 0, z], [dx, 0, z], [dx, 0, 0]]
    return Trajectory(fid, xyz, [t0, t0 + z / 3, t0 + z / 3 + dx / 12,
                                 t0 + z / 3 + dx / 12 + z / 2], prio, max_delay_s)


def test_crowded_fleet_resolved_by_both_and_checked_three_ways():
    flights, alts = crowded()
    assert len(detect(flights, SEP)) > 8
    problem = build_problem(flights, alts, SEP)
    base = fcfs(flights, problem=problem)
    best = deconflict(flights, problem=problem, params=FAST)
    for res in (base, best):
        assert res.report.ok, res.report
        assert not res.unplaced
        assert detect(res.trajectories, SEP) == []
    assert detect_pairs(best.trajectories, 30.0, 10.0, 5.0) == set()
    assert best.status in ("OPTIMAL", "FEASIBLE")
    assert best.objective <= base.objective
    for c in best.choices.values():
        assert 0 <= c.delay_s <= 300.0 and c.delay_s % 10 == 0


def _brute_force_optimum(flights, opts, sep):
    steps = range(int(flights[0].max_delay_s // opts.delay_step_s) + 1)
    best = np.inf
    per = [[(d * opts.delay_step_s, s) for d in steps for s in opts.layer_shifts]
           for _ in flights]
    for combo in itertools.product(*per):
        trs = [f.shifted(d, s * opts.layer_spacing_m) for f, (d, s) in zip(flights, combo)]
        if detect(trs, sep):
            continue
        cost = sum(f.priority * (d + opts.layer_penalty_s * (s != 0))
                   for f, (d, s) in zip(flights, combo))
        best = min(best, cost)
    return best


def test_cpsat_matches_brute_force_optimum_on_tiny_case():
    opts = DeconflictOptions(layer_shifts=(0, 1))
    flights = [pad_flight("a", 0.0, prio=1.0, max_delay_s=30.0),
               pad_flight("b", 4.0, prio=3.0, max_delay_s=30.0),
               Trajectory("c", [[300, -300, 0], [300, -300, 60], [300, 300, 60],
                                [300, 300, 0]], [0, 20, 70, 100], 2.0, 30.0)]
    res = deconflict(flights, sep=SEP, options=opts, params=FAST)
    assert res.status == "OPTIMAL" and res.report.ok
    assert res.objective == pytest.approx(_brute_force_optimum(flights, opts, SEP))
    # FCFS serves a first; the priority-3 flight b pays for it
    base = fcfs(flights, sep=SEP, options=opts)
    assert base.objective >= res.objective


def test_unplaced_flight_has_a_reason():
    opts = DeconflictOptions(layer_shifts=(0,))
    a = pad_flight("a", 0.0)
    b = pad_flight("b", 0.0, max_delay_s=0.0)
    assert list(fcfs([a, b], sep=SEP, options=opts).unplaced) == ["b"]
    # CP-SAT delays a instead and places both
    res = deconflict([a, b], sep=SEP, options=opts, params=FAST)
    assert not res.unplaced and res.choices["a"].delay_s > 0 and res.report.ok
    a0 = pad_flight("a", 0.0, max_delay_s=0.0)
    for res in (fcfs([a0, b], sep=SEP, options=opts),
                deconflict([a0, b], sep=SEP, options=opts, params=FAST)):
        assert list(res.unplaced) in (["b"], ["a"])
        (fid, why), = res.unplaced.items()
        assert "no conflict-free option" in why
        assert ("'a'" if fid == "b" else "'b'") in why
        assert res.report.ok


def test_alternate_route_is_a_choice():
    opts = DeconflictOptions(layer_shifts=(0,))
    a = Trajectory("a", [[0, 0, 60], [1200, 0, 60]], [0, 100], max_delay_s=0.0)
    b = Trajectory("b", [[600, -600, 60], [600, 600, 60]], [0, 100], max_delay_s=0.0)
    dogleg = Trajectory("b", [[600, -600, 60], [900, 0, 60], [600, 600, 60]],
                        [0, 50, 100], max_delay_s=0.0)
    res = deconflict([a, b], {"b": [dogleg]}, sep=SEP, options=opts, params=FAST)
    assert res.choices["b"].route == 1 and res.choices["a"].route == 0
    assert res.report.ok and not res.unplaced


def test_incremental_place_equals_fcfs_and_cancel_frees_space():
    flights, _ = crowded(40, seed=5)
    base = fcfs(flights, sep=SEP)
    idx = AcceptedIndex(SEP)
    for f in flights:
        p = place(f, idx)
        assert p.choice == base.choices[f.flight_id]
        idx.accept(p.trajectory)
    assert len(idx) == len(flights)
    assert detect(idx.trajectories, SEP) == []
    # a copy of a delayed flight's nominal plan conflicts; cancel its blocker and retry
    delayed = [f for f in flights if base.choices[f.flight_id].delay_s > 0]
    f = delayed[0]
    twin = Trajectory("twin", f.xyz_m, f.t_s, f.priority, 0.0)
    blocked = place(twin, idx)
    assert blocked.choice is None and "blocked by" in blocked.reason
    for fid in blocked.reason.split("[")[1].rstrip("]").replace("'", "").split(", "):
        idx.cancel(fid)
    assert place(twin, idx).choice is not None


def test_bad_input():
    a = pad_flight("a")
    with pytest.raises(ConflictInputError, match="unique"):
        build_problem([a, a])
    with pytest.raises(ConflictInputError, match="must contain 0"):
        DeconflictOptions(layer_shifts=(1, 2))
    with pytest.raises(ConflictInputError, match="max_delay_s must be"):
        build_problem([pad_flight("x", max_delay_s=-1.0)])
    idx = AcceptedIndex()
    idx.accept(a)
    with pytest.raises(ConflictInputError, match="already accepted"):
        place(a, idx)
    with pytest.raises(KeyError, match="not accepted"):
        idx.cancel("zzz")


def test_own_layer_outside_the_band_keeps_the_cpsat_plan():
    """A flight filed above the band (its route held to the ceiling over high ground)
    keeps its own layer: the band rules layer changes only, so the CP-SAT plan is
    verified and kept, not replaced by FCFS."""
    opts = DeconflictOptions(layer_shifts=(0, 1), max_cruise_m=120.0)
    flights = [pad_flight("a", 0.0, z=130.0, prio=1.0, max_delay_s=30.0),
               pad_flight("b", 4.0, z=130.0, prio=3.0, max_delay_s=30.0)]
    res = deconflict(flights, sep=SEP, options=opts, params=FAST)
    assert res.status == "OPTIMAL", res.status
    assert res.report.ok and not res.unplaced
    assert all(c.layer_shift == 0 for c in res.choices.values())
    assert detect_pairs(res.trajectories, 30.0, 10.0, 5.0) == set()


class _WholeFleet(AcceptedIndex):
    """The reference: every accepted segment is near (no space-time buckets)."""

    def near_segments(self, trajs, max_delay_s=None):
        from skytwin.planner.conflicts import pack_segments
        flights = sorted(self._traj.values(), key=lambda t: t.flight_id)
        return flights, pack_segments(flights)


def _long_legs(seed, n=40, origin_s=0.0):
    """Flights over 3 km with long legs, climbs and shared corridors, some delay
    budget (the booking case: most pairs never meet)."""
    from tests.test_verify import spread_fleet
    rng = np.random.default_rng(seed)
    return [Trajectory(t.flight_id, t.xyz_m, t.t_s + origin_s,
                       max_delay_s=float(rng.choice([0.0, 60.0, 120.0, 300.0])))
            for t in spread_fleet(seed, n=n)]


@pytest.mark.parametrize("origin_s", [0.0, 1.8e9 + 0.123])
@pytest.mark.parametrize("bucket_s", [120.0, 7.0])
def test_space_time_index_places_as_against_the_whole_fleet(origin_s, bucket_s):
    """Placing against the accepted segments in the new flight's space-time buckets
    gives the same choice as placing against every accepted flight, for every flight
    of fleets with long legs (near t = 0 and at Unix epoch times, coarse and fine
    time buckets); the result is conflict-free by the detector and the verifier."""
    from skytwin.planner.verify import verify
    opts = DeconflictOptions(layer_shifts=(0, 1, 2), min_cruise_m=0.0, max_cruise_m=200.0)
    for seed in range(4):
        fleet = _long_legs(600 + seed, origin_s=origin_s)
        idx = AcceptedIndex(SEP, opts, bucket_s=bucket_s)
        ref = _WholeFleet(SEP, opts)
        looked = []
        for f in fleet:
            p, q = place(f, idx), place(f, ref)
            assert p.choice == q.choice, (seed, f.flight_id)
            if p.trajectory is not None:
                looked.append(len(idx.near_segments([f])[0]) / max(1, len(idx)))
                idx.accept(p.trajectory)
                ref.accept(q.trajectory)
        assert detect(idx.trajectories, SEP) == []
        assert verify(idx.trajectories, SEP).ok
        assert len(idx) > 20 and np.mean(looked[10:]) < 0.6   # not the whole fleet


@pytest.mark.parametrize("origin_s", [0.0, 1.8e9 + 0.123])
def test_near_holds_every_flight_in_conflict(origin_s):
    """``near`` (the flights the final verifier is given) holds every accepted flight
    the oracle finds in conflict with the new one, as given or delayed within the
    budget; and a cancelled flight is gone from it."""
    from tests.test_conflicts import random_fleet
    crowded_ = [[Trajectory(t.flight_id, t.xyz_m, t.t_s + origin_s)
                 for t in random_fleet(800 + seed)] for seed in range(6)]
    positives = 0
    for fleet in [_long_legs(700 + seed, n=30, origin_s=origin_s)
                  for seed in range(3)] + crowded_:
        idx = AcceptedIndex(SEP)
        for f in fleet[1:]:
            idx.accept(f)
        new = fleet[0]
        for d in (0.0, 37.0, 120.0):
            moved = Trajectory(new.flight_id, new.xyz_m, new.t_s + d)
            want = {g.flight_id for g in fleet[1:]
                    if detect_pairs([moved, g], 30.0, 10.0, 5.0)}
            near0 = {t.flight_id for t in idx.near([moved], max_delay_s=0.0)}
            near = {t.flight_id for t in idx.near([new], max_delay_s=120.0)}
            assert want <= near0 and want <= near, (d, want - near0, want - near)
            positives += len(want)
        gone = next(iter(idx.near([new], max_delay_s=120.0)), None)
        if gone is not None:
            idx.cancel(gone.flight_id)
            assert gone.flight_id not in {t.flight_id for t in idx.near([new], 120.0)}
    assert positives >= 20


def test_a_flight_lasting_years_is_indexed_by_its_cells():
    """A piece whose window spans years is kept under its cell alone: it is near a
    new flight crossing it at any time, a new flight that long finds the accepted
    flights in its cells, and both cost a handful of entries, not millions."""
    years = 25 * 365 * 86_400.0
    slow = Trajectory("slow", [[0, 0, 50], [1200, 0, 50]], [0.0, years])
    idx = AcceptedIndex(SEP)
    idx.accept(slow)
    assert sum(len(s) for s in idx._bucket.values()) + len(idx._long) < 100
    t_meet = 0.5 * years
    fast = Trajectory("fast", [[600, -600, 50], [600, 600, 50]], [t_meet - 50, t_meet + 50])
    far = Trajectory("far", [[600, 3000, 50], [600, 4000, 50]], [t_meet - 50, t_meet + 50])
    assert [t.flight_id for t in idx.near([fast], 0.0)] == ["slow"]
    assert idx.near([far], 0.0) == []
    idx.accept(fast)
    long2 = Trajectory("long2", [[600, -600, 50], [600, 600, 50]], [0.0, years])
    assert {t.flight_id for t in idx.near([long2], 0.0)} == {"slow", "fast"}
    # the slow one sits at the crossing for months: no delay or layer frees it
    p = place(Trajectory("again", fast.xyz_m, fast.t_s, max_delay_s=120.0), idx)
    assert p.choice is None and "'fast', 'slow'" in p.reason
    idx.cancel("slow")
    assert [t.flight_id for t in idx.near([long2], 0.0)] == ["fast"]
    assert not idx._long
