"""Conflict detection: hand-computed cases, the brute-force oracle, dense sampling."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.planner.conflicts import Conflict, ConflictInputError, Separation, detect
from skytwin.planner.trajectory import Trajectory
from tests.naive.conflicts import detect_pairs, sampled_pairs

NO_BUF = Separation(30.0, 10.0, 0.0)


def level(fid, p0, p1, t0, t1, z=50.0):
    return Trajectory(fid, [[*p0, z], [*p1, z]], [t0, t1])


def random_fleet(seed, n=12, box_m=400.0):
    """Small crowded fleets: climbs, hovers, layer-crossing legs, shared starts."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(2, 6))
        xy = rng.uniform(0, box_m, (k, 2))
        z = rng.choice([40.0, 50.0, 60.0], k)
        if rng.random() < 0.5:
            z = z + rng.uniform(-8, 8, k)
        if rng.random() < 0.2:
            xy[1] = xy[0]  # vertical leg
        if rng.random() < 0.1 and k > 2:
            xy[2], z[2] = xy[1], z[1]  # hover
        t = np.concatenate([[rng.uniform(0, 60)], rng.uniform(5, 40, k - 1)]).cumsum()
        out.append(Trajectory(f"f{i}", np.column_stack([xy, z]), t))
    return out


def test_head_on_window_is_exact():
    # closing speed 24 m/s, meet at t=50: |dx| < 30 for 1.25 s either side
    a = level("a", (0, 0), (1200, 0), 0, 100)
    b = level("b", (1200, 0), (0, 0), 0, 100)
    [c] = detect([a, b], NO_BUF)
    assert (c.flight_a, c.flight_b) == ("a", "b")
    assert c.t_start_s == pytest.approx(48.75)
    assert c.t_end_s == pytest.approx(51.25)
    assert c.min_h_m == pytest.approx(0.0, abs=1e-9)
    assert c.shift_s == 0.0


def test_right_angle_crossing_at_known_time():
    # a east along y=0, b north along x=600, both at the crossing at t=50
    a = level("a", (0, 0), (1200, 0), 0, 100)
    b = level("b", (600, -600), (600, 600), 0, 100)
    [c] = detect([a, b], NO_BUF)
    # relative speed 12*sqrt(2): |d| < 30 while |t-50| < 30/(12*sqrt(2))
    half = 30.0 / (12.0 * np.sqrt(2.0))
    assert c.t_start_s == pytest.approx(50 - half)
    assert c.t_end_s == pytest.approx(50 + half)
    # b late by s seconds: closest approach 12 s / sqrt(2): 25.5 m at 3 s, 33.9 m at 4 s
    assert len(detect([a, level("b", (600, -600), (600, 600), 3, 103)], NO_BUF)) == 1
    assert detect([a, level("b", (600, -600), (600, 600), 4, 104)], NO_BUF) == []


def test_parallel_exactly_at_minimum_is_not_a_conflict():
    a = level("a", (0, 0), (1000, 0), 0, 100)
    b = level("b", (0, 30), (1000, 30), 0, 100)
    assert detect([a, b], NO_BUF) == []
    # different speeds, still exactly 30 m abeam when passing
    c = level("c", (0, 30), (1000, 30), 0, 60)
    assert detect([a, c], Separation(30, 10, 5)) == []
    # a hair inside: conflict for the whole common time
    d = level("d", (0, 29.9), (1000, 29.9), 0, 100)
    [k] = detect([a, d], NO_BUF)
    assert (k.t_start_s, k.t_end_s) == pytest.approx((0.0, 100.0))


def test_vertical_separation_only():
    a = level("a", (0, 0), (1200, 0), 0, 100, z=50.0)
    b = level("b", (1200, 0), (0, 0), 0, 100, z=60.0)   # exactly V apart
    c = level("c", (1200, 0), (0, 0), 0, 100, z=59.0)   # 9 m apart
    assert detect([a, b], NO_BUF) == []
    assert [(k.flight_a, k.flight_b) for k in detect([a, b, c], NO_BUF)] == [("a", "c"),
                                                                            ("b", "c")]


def test_one_hovering():
    hover = Trajectory("h", [[500, 10, 50], [500, 10, 50]], [0, 200])
    a = level("a", (0, 0), (1200, 0), 0, 100)
    [c] = detect([hover, a], NO_BUF)
    # a passes 10 m from the hover point at t=500/12; |d|<30 for sqrt(800)/12 s each side
    half = np.sqrt(30**2 - 10**2) / 12.0
    assert (c.t_start_s, c.t_end_s) == pytest.approx((500 / 12 - half, 500 / 12 + half))
    assert c.min_h_m == pytest.approx(10.0)


def test_time_buffer_is_a_relative_timing_error():
    # crossing at right angles; b is 4 s late: no conflict as planned (shift 4 s,
    # the pass is at 12*4/sqrt(2) = 33.9 m), but a timing error of >= 0.46 s closes it
    a = level("a", (0, 0), (1200, 0), 0, 100)
    b = level("b", (600, -600), (600, 600), 4, 104)
    assert detect([a, b], NO_BUF) == []
    [c] = detect([a, b], Separation(30, 10, 5))
    # conflicting shifts: |sigma| < 30*sqrt(2)/12 = 3.54 s; b is +4 s, so the nearest
    # conflicting timing error is 4 - 3.54 = 0.46 s early
    assert c.shift_s == pytest.approx(30 * np.sqrt(2) / 12 - 4, abs=1e-5)
    assert detect([a, level("b", (600, -600), (600, 600), 9, 109)],
                  Separation(30, 10, 5)) == []


@pytest.mark.parametrize("buffer_s", [0.0, 5.0])
def test_detector_equals_bruteforce_oracle(buffer_s):
    sep = Separation(30.0, 10.0, buffer_s)
    total = 0
    for seed in range(25):
        fleet = random_fleet(seed)
        got = {(c.flight_a, c.flight_b) for c in detect(fleet, sep)}
        assert got == detect_pairs(fleet, 30.0, 10.0, buffer_s), seed
        total += len(got)
    assert total > 50  # the fleets do conflict


def test_detector_agrees_with_dense_sampling():
    for seed in range(10):
        fleet = random_fleet(100 + seed)
        got = {(c.flight_a, c.flight_b) for c in detect(fleet, NO_BUF)}
        sure, possible = sampled_pairs(fleet, 30.0, 10.0)
        assert sure <= got <= possible


def test_windows_match_sampling():
    fleet = random_fleet(7)
    for c in detect(fleet, NO_BUF):
        a = next(t for t in fleet if t.flight_id == c.flight_a)
        b = next(t for t in fleet if t.flight_id == c.flight_b)
        ts = np.linspace(c.t_start_s, c.t_end_s, 2001)
        pa = np.stack([np.interp(ts, a.t_s, a.xyz_m[:, k]) for k in range(3)], 1)
        pb = np.stack([np.interp(ts, b.t_s, b.xyz_m[:, k]) for k in range(3)], 1)
        dh = np.hypot(pa[:, 0] - pb[:, 0], pa[:, 1] - pb[:, 1])
        dv = np.abs(pa[:, 2] - pb[:, 2])
        assert np.min(np.maximum(dh / 30.0, dv / 10.0)) < 1.0 + 1e-3
        inside = (dh < 30.0) & (dv < 10.0)
        assert np.min(dh[inside]) >= c.min_h_m - 1e-6


def test_bad_input_raises_typed_errors():
    with pytest.raises(ConflictInputError, match="horizontal_m=-1"):
        Separation(-1, 10, 5)
    with pytest.raises(ConflictInputError, match="time_buffer_s must be >= 0"):
        Separation(30, 10, -1)
    with pytest.raises(ValueError, match="not a Trajectory"):
        detect([level("a", (0, 0), (1, 0), 0, 1), "b"])
    with pytest.raises(ConflictInputError, match="unique"):
        detect([level("a", (0, 0), (1, 0), 0, 1)] * 2)


def test_empty_and_single():
    assert detect([]) == []
    assert detect([level("a", (0, 0), (1, 0), 0, 1)]) == []
    assert isinstance(Conflict("a", "b", 0, 1, 0, 0), Conflict)
