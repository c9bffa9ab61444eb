"""The independent verifier agrees with the oracle and catches limit violations."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.planner.conflicts import Separation
from skytwin.planner.trajectory import Trajectory
from skytwin.planner.verify import Report, verify
from tests.naive.conflicts import detect_pairs
from tests.test_conflicts import level, random_fleet


@pytest.mark.parametrize("buffer_s", [0.0, 5.0])
def test_verifier_equals_oracle_on_random_fleets(buffer_s):
    sep = Separation(30.0, 10.0, buffer_s)
    for seed in range(15):
        fleet = random_fleet(200 + seed)
        got = {(c.flight_a, c.flight_b) for c in verify(fleet, sep).residual_conflicts}
        assert got == detect_pairs(fleet, 30.0, 10.0, buffer_s), seed


def test_residual_conflict_carries_evidence():
    a = level("a", (0, 0), (1200, 0), 0, 100)
    b = level("b", (600, -600), (600, 600), 0, 100)
    rep = verify([a, b], Separation(30, 10, 0))
    [c] = rep.residual_conflicts
    assert (c.flight_a, c.flight_b) == ("a", "b")
    assert abs(c.near_t_s - 50) <= 5
    # right-angle crossing at 12 m/s: a lateness s passes 12 s / sqrt(2) apart
    lim = 30 * 2**0.5 / 12
    assert (c.shift_lo_s, c.shift_hi_s) == pytest.approx((-lim, lim))
    assert not rep.ok
    # head-on on one line: every shift that keeps both airborne together meets
    h = verify([a, level("h", (1200, 0), (0, 0), 0, 100)], Separation(30, 10, 0))
    assert (h.residual_conflicts[0].shift_lo_s,
            h.residual_conflicts[0].shift_hi_s) == pytest.approx((-100, 100))


def test_buffer_sampling_beyond_flight_end():
    # b starts 4 s after a has landed at b's take-off point: only the buffer joins them
    a = Trajectory("a", [[0, 0, 30], [0, 0, 0]], [0, 15])
    b = Trajectory("b", [[0, 0, 0], [0, 0, 30]], [19, 29])
    assert verify([a, b], Separation(30, 10, 0)).ok
    assert not verify([a, b], Separation(30, 10, 5)).ok


def test_limits():
    a = level("a", (0, 0), (100, 0), 0, 10)
    cruise = Trajectory("c", [[0, 0, 0], [0, 0, 130], [900, 0, 130], [900, 0, 0]],
                        [0, 50, 130, 200])
    rep = verify([a, cruise], delays_s={"a": 700.0, "c": -10.0},
                 max_delay_s={"a": 600.0, "c": 600.0}, cruise_band_m=(30, 120))
    assert rep.violations == ["a: delay 700 s outside 0..600 s",
                              "c: delay -10 s outside 0..600 s",
                              "c: cruise altitude 130..130 m outside 30..120 m"]
    assert not rep.ok and rep.residual_conflicts == []


def test_empty():
    assert verify([]).ok
    assert isinstance(verify([level("a", (0, 0), (1, 0), 0, 1)]), Report)


@pytest.mark.parametrize("buffer_s", [0.0, 5.0])
def test_focus_equals_oracle_restricted_to_focus_pairs(buffer_s):
    """With ``focus`` only pairs with a focus flight are reported, and all of them."""
    sep = Separation(30.0, 10.0, buffer_s)
    for seed in range(8):
        fleet = random_fleet(300 + seed)
        focus = {t.flight_id for t in fleet[::7]}
        got = {(c.flight_a, c.flight_b)
               for c in verify(fleet, sep, focus=focus).residual_conflicts}
        want = {p for p in detect_pairs(fleet, 30.0, 10.0, buffer_s)
                if p[0] in focus or p[1] in focus}
        assert got == want, seed


def test_cost_follows_overlap_not_duration():
    """A flight lasting 25 years costs the verifier only the time it overlaps others
    (before: one sample per second of its whole duration, i.e. 7.9e8 samples)."""
    import time
    years_s = 25 * 365 * 86_400.0
    slow = Trajectory("slow", [[0, 0, 50], [1200, 0, 50]], [0.0, years_s])
    t_meet = 600.0 / 1200.0 * years_s          # when it passes x = 600
    fast = level("fast", (600, -600), (600, 600), t_meet - 50, t_meet + 50)
    away = level("away", (5000, 5000), (6000, 5000), 1000.0, 1100.0)
    t0 = time.perf_counter()
    rep = verify([fast, slow, away], Separation(30, 10, 5), focus=["fast"])
    rep_all = verify([fast, slow, away], Separation(30, 10, 5))
    elapsed = time.perf_counter() - t0
    assert [(c.flight_a, c.flight_b) for c in rep.residual_conflicts] == [("fast", "slow")]
    assert [(c.flight_a, c.flight_b) for c in rep_all.residual_conflicts] == [
        ("fast", "slow")]
    assert elapsed < 2.0


EPOCH_S = 1.8e9   # Unix seconds in 2027: the times the server books with


def _shifted(fleet, dt_s):
    return [Trajectory(t.flight_id, t.xyz_m, t.t_s + dt_s) for t in fleet]


@pytest.mark.parametrize("buffer_s", [0.0, 5.0])
def test_epoch_times_find_the_same_conflicts(buffer_s):
    """Conflicts depend on time differences only: at Unix epoch seconds the verifier and
    the oracle find exactly the pairs they find near t = 0 (absolute tolerances once
    fell under the spacing of doubles at 1.8e9 s and lost real conflicts)."""
    from skytwin.planner.conflicts import detect
    sep = Separation(30.0, 10.0, buffer_s)
    for seed in range(15):
        fleet = random_fleet(300 + seed)
        near_zero = {(c.flight_a, c.flight_b) for c in verify(fleet, sep).residual_conflicts}
        late = _shifted(fleet, EPOCH_S + 0.123)
        at_epoch = {(c.flight_a, c.flight_b) for c in verify(late, sep).residual_conflicts}
        assert at_epoch == near_zero, seed
        assert detect_pairs(late, 30.0, 10.0, buffer_s) == near_zero, seed
        # the booking detector (another method) agrees at epoch times too
        assert {(c.flight_a, c.flight_b) for c in detect(late, sep)} == near_zero, seed


def test_epoch_time_regression_pair():
    """Two segments 10.5 m apart horizontally and 2.8 m vertically at the same moment,
    found in the live simulator at Unix times: a conflict, at any time origin."""
    pa = np.array([[24.75, -765.81, 55.0], [158.0, -526.0, 87.0]])
    pb = np.array([[16.566669472886687, -154.5668378460879, 55.0], [30.0, -974.0, 55.0]])
    ta = np.array([1.7960411478900001e9, 1.7960411707519648e9])
    tb = np.array([1.796041100890000e9, 1.796041169185272e9])
    for off in (0.0, 1.796041e9):
        rep = verify([Trajectory("a", pa, ta - off), Trajectory("b", pb, tb - off)])
        assert [(c.flight_a, c.flight_b) for c in rep.residual_conflicts] == [("a", "b")], off


def spread_fleet(seed, n=40, box_m=3000.0):
    """Fleets over a few km with long legs (the booking case): crossings, shared
    corridors, layer changes, hovers; most pairs never come near each other."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(2, 7))
        if i % 5 == 0 and out:        # follow another flight's corridor, offset in time
            o = out[int(rng.integers(len(out)))]
            xyz = o.xyz_m + rng.normal(0, 15, o.xyz_m.shape) * [1, 1, 0.3]
            t = o.t_s + rng.uniform(-40, 40)
            out.append(Trajectory(f"f{i}", xyz, t))
            continue
        xy = rng.uniform(0, box_m, (k, 2))
        z = rng.choice([40.0, 50.0, 60.0], k)
        if rng.random() < 0.5:
            z = z + rng.uniform(-8, 8, k)
        if rng.random() < 0.2:
            xy[1] = xy[0]              # vertical leg
        if rng.random() < 0.1 and k > 2:
            xy[2], z[2] = xy[1], z[1]  # hover
        legs = np.hypot(*np.diff(xy, axis=0).T) / rng.uniform(8, 15) + rng.uniform(1, 20, k - 1)
        t = np.concatenate([[rng.uniform(0, 600)], legs]).cumsum()
        out.append(Trajectory(f"f{i}", np.column_stack([xy, z]), t))
    return out


def _evidence(rep):
    return sorted((c.flight_a, c.flight_b, round(c.shift_lo_s, 6), round(c.shift_hi_s, 6))
                  for c in rep.residual_conflicts)


@pytest.mark.parametrize("origin_s", [0.0, EPOCH_S + 0.123])
@pytest.mark.parametrize("buffer_s", [0.0, 5.0])
def test_focus_prefilter_is_conservative(buffer_s, origin_s):
    """The focus prefilter samples the other flights only near the focus flights: the
    same residual conflicts (and evidence) as without it, and as the oracle, on
    crowded and on spread fleets, near t = 0 and at Unix epoch times; on spread
    fleets it samples far fewer positions."""
    sep = Separation(30.0, 10.0, buffer_s)
    saved = []
    for seed in range(6):
        for fleet in (random_fleet(400 + seed), spread_fleet(500 + seed, n=30)):
            fleet = _shifted(fleet, origin_s)
            focus = {t.flight_id for t in fleet[::9]}
            # the oracle on the pairs with a focus flight only (it is O(n^2) slow)
            want = set()
            for i, f in enumerate(fleet):
                for j in range(i + 1, len(fleet)):
                    if f.flight_id in focus or fleet[j].flight_id in focus:
                        want |= detect_pairs([f, fleet[j]], 30.0, 10.0, buffer_s)
            for foc in (focus, {fleet[0].flight_id}):
                fast = verify(fleet, sep, focus=foc)
                slow = verify(fleet, sep, focus=foc, prefilter=False)
                assert _evidence(fast) == _evidence(slow), (seed, foc)
                assert {(c.flight_a, c.flight_b) for c in fast.residual_conflicts} == \
                    {p for p in want if p[0] in foc or p[1] in foc}, (seed, foc)
                if len(fleet) == 30:
                    saved.append(fast.samples / max(1, slow.samples))
    assert np.median(saved) < 0.5


def test_focus_prefilter_keeps_a_buffer_only_meeting():
    """The other flight passes the focus flight's path 4 s after it (5 s buffer): kept;
    9 s after: not a conflict, and a flight far away is not sampled at all."""
    a = level("a", (0, 0), (1200, 0), 0, 100)                 # at x = 600 at t = 50
    late4 = level("b", (600, -600), (600, 600), 4, 104)       # at y = 0 at t = 54
    late9 = level("c", (600, -600), (600, 600), 9, 109)
    far = level("d", (5000, 5000), (6000, 5000), 0, 100)
    sep = Separation(30, 10, 5)
    assert [(c.flight_a, c.flight_b) for c in
            verify([a, late4, far], sep, focus=["a"]).residual_conflicts] == [("a", "b")]
    lim = 30 * 2**0.5 / 12           # right-angle crossing: |shift| < 3.54 s loses it
    assert lim + 5 < 9
    assert verify([a, late9, far], sep, focus=["a"]).ok
    alone = verify([a, far], sep, focus=["a"])
    assert alone.ok and alone.samples <= 101 + 2 * 7 + 1   # a's own (100 s + pads)


def _with_time_steps(fleet, rng):
    """Some flights get a record repeated at the same time (a zero-duration segment,
    even with a jump in position) and one flight lasts no time at all."""
    out = []
    for i, t in enumerate(fleet):
        if i % 4 == 1:
            k = int(rng.integers(1, t.t_s.size))
            xyz = np.insert(t.xyz_m, k, t.xyz_m[k] + rng.normal(0, 20, 3), axis=0)
            out.append(Trajectory(t.flight_id, xyz, np.insert(t.t_s, k, t.t_s[k])))
        else:
            out.append(t)
    mid = float(np.median([t.t_start_s for t in fleet]))
    out.append(Trajectory("instant", [[100, 100, 50], [110, 100, 50]], [mid, mid]))
    return out


@pytest.mark.parametrize("origin_s", [0.0, EPOCH_S + 0.123])
@pytest.mark.parametrize("buffer_s", [0.0, 5.0])
def test_compiled_focus_verifier_equals_the_numpy_one(buffer_s, origin_s):
    """``verify(..., focus=...)`` runs compiled (:mod:`planner.verify_jit`); the numpy
    code (``jit=False``) is its reference: the same residual conflicts with the same
    shift intervals to the last bit, the same samples and screened pairs, on crowded
    and spread fleets with hovers and zero-duration records, near t = 0 and at epoch
    times. Its ``near_t_s`` is the earliest tick the screen found, so never later than
    the numpy path's (whichever tick the k-d tree returned first)."""
    sep = Separation(30.0, 10.0, buffer_s)
    rng = np.random.default_rng(7)
    found = 0
    for seed in range(10):
        for fleet in (random_fleet(600 + seed), spread_fleet(700 + seed, n=30)):
            fleet = _shifted(_with_time_steps(fleet, rng), origin_s)
            for foc in ({t.flight_id for t in fleet[::9]}, {fleet[0].flight_id},
                        {"instant"}, {t.flight_id for t in fleet}):
                fast = verify(fleet, sep, focus=foc)
                ref = verify(fleet, sep, focus=foc, jit=False)
                got = [(c.flight_a, c.flight_b, c.shift_lo_s, c.shift_hi_s)
                       for c in fast.residual_conflicts]
                assert got == [(c.flight_a, c.flight_b, c.shift_lo_s, c.shift_hi_s)
                               for c in ref.residual_conflicts], (seed, foc)
                assert (fast.samples, fast.screened_pairs) == \
                    (ref.samples, ref.screened_pairs), (seed, foc)
                for c, r in zip(fast.residual_conflicts, ref.residual_conflicts):
                    assert c.near_t_s <= r.near_t_s
                found += len(got)
    assert found > 100        # the fleets do conflict: the comparison has substance


def test_compiled_verifier_on_a_segment_that_vanishes_once_rebased():
    """A segment 2^-51 s long at t = 3 s, checked against one starting at 2^-52 s: re-based
    on the pair's earlier start it lasts no time at all. The numpy code divides by zero
    quietly; the compiled one does the same (it raised ZeroDivisionError) and answers
    the same."""
    import warnings
    a = Trajectory("a", [[0, 0, 50], [0.5, 0, 50], [100, 0, 50]], [3.0, 3.0 + 2**-51, 10.0])
    b = Trajectory("b", [[0, 5, 50], [100, 5, 50]], [2**-52, 10.0])
    for foc in (["a"], ["b"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = verify([a, b], Separation(30, 10, 5), focus=foc, jit=False)
        fast = verify([a, b], Separation(30, 10, 5), focus=foc)
        assert _evidence(fast) == _evidence(ref) and len(ref.residual_conflicts) == 1
