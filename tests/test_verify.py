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
