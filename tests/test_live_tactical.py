"""Tactical prediction: the spatial-hash kernel against the brute-force twin."""

from __future__ import annotations

import time

import numpy as np
import pytest

from skytwin.live.errors import LiveInputError
from skytwin.live.tactical import PREDICT_BOOKED, PREDICT_MEASURED, detect_losses, \
    loss_arrays, predict
from skytwin.planner.trajectory import Trajectory

from tests.naive.tactical import losses as naive_losses


def random_scene(rng, n, k, area_m, speed=12.0):
    """n drones, K+1 samples, random walks in a box (dense enough to collide)."""
    p0 = np.column_stack([rng.uniform(0, area_m, n), rng.uniform(0, area_m, n),
                          rng.uniform(20, 60, n)])
    v = rng.normal(0, speed / 1.5, (n, 3)) * [1, 1, 0.2]
    steps = v[:, None, :] + rng.normal(0, 2.0, (n, k, 3))
    xyz = np.concatenate([p0[:, None, :], p0[:, None, :] + np.cumsum(steps, axis=1)], axis=1)
    valid = rng.uniform(size=(n, k + 1)) > 0.05
    return xyz, valid


@pytest.mark.parametrize("seed", range(6))
def test_kernel_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 90))
    xyz, valid = random_scene(rng, n, 12, area_m=400.0)
    cell = [None, 30.0, 200.0][seed % 3]
    i, j, k, u, h, v = loss_arrays(xyz, valid, 30.0, 10.0, cell_m=cell)
    got = {(a, b): kk + uu for a, b, kk, uu in zip(i.tolist(), j.tolist(), k.tolist(),
                                                    u.tolist(), strict=True)}
    want = naive_losses(xyz, valid, 30.0, 10.0)
    assert len(want) > 5                     # the scenario really has losses
    assert set(got) == set(want)
    for key, t in want.items():
        assert got[key] == pytest.approx(t, abs=1e-6)
    assert np.all(h <= 30.0) and np.all(v <= 10.0)


def test_head_on_time_and_vertical_separation():
    a = Trajectory("a", [[0, 0, 50], [600, 0, 50]], [0, 50])
    b = Trajectory("b", [[600, 0, 55], [0, 0, 55]], [0, 50])
    c = Trajectory("c", [[600, 0, 65], [0, 0, 65]], [0, 50])   # exactly 15 m above a
    d = Trajectory("d", [[600, 40, 50], [0, 40, 50]], [0, 50])  # parallel, 40 m aside
    p = predict(10.0, plan_ids="abcd", plan_trajs=[a, b, c, d], horizon_s=30)
    got = [(x.flight_a, x.flight_b, round(x.t_s, 3)) for x in detect_losses(p)]
    # a-b close at 24 m/s from 30 m apart: 25 - 30/24; b-c 10 m apart vertically: no loss
    assert got == [("a", "b", 23.75)]
    # beyond the horizon: nothing
    assert detect_losses(predict(0.0, plan_ids="ab", plan_trajs=[a, b], horizon_s=20)) == []


def test_booked_flights_take_part_from_departure_and_measured_state_extrapolates():
    a = Trajectory("a", [[0, 0, 40], [1200, 0, 40]], [0, 100])
    booked = Trajectory("late", [[750, 0, 40], [750, 0, 45]], [62, 80])  # climbing slowly
    p = predict(40.0, plan_ids=["a"], plan_trajs=[a], booked_ids=["late"],
                booked_trajs=[booked], horizon_s=30)
    assert p.mode.tolist() == [0, PREDICT_BOOKED]
    assert not p.valid[1, :22].any() and p.valid[1, 22:].all()
    (loss,) = detect_losses(p)
    assert loss.t_s == pytest.approx(62.0)   # a is already within 30 m when it departs
    # measured: at (300, 0, 40) at t=39.5 flying west at 10 m/s meets a (east 12 m/s)
    p = predict(40.0, plan_ids=["a"], plan_trajs=[a], measured_ids=["m"],
                measured_t_s=[39.5], measured_xyz_m=[[700, 0, 40]],
                measured_vel_mps=[[-10, 0, 0]], horizon_s=30)
    assert p.mode[1] == PREDICT_MEASURED
    assert p.xyz_m[1, 0, 0] == pytest.approx(695.0)
    (loss,) = detect_losses(p)
    # a at 480 + 12 s', m at 695 - 10 s': gap 215 - 22 s' = 30 -> s' = 8.41
    assert loss.t_s == pytest.approx(40 + 185 / 22, abs=1e-6)


def test_inputs_are_checked():
    with pytest.raises(LiveInputError):
        predict(0.0, horizon_s=10, step_s=0)
    with pytest.raises(LiveInputError):
        loss_arrays(np.zeros((3, 4, 2)), np.ones((3, 4), bool))
    with pytest.raises(LiveInputError):
        loss_arrays(np.zeros((3, 4, 3)), np.ones((3, 4), bool), 30, 10, cell_m=10)


def test_scales_as_a_hash_not_n_squared():
    """5000 drones over a city-sized area, 30 s ahead: well under a second once compiled;
    the brute force on the same input would test 12.5 M pairs x 30 steps."""
    rng = np.random.default_rng(3)
    xyz, valid = random_scene(rng, 5000, 30, area_m=10_000.0)
    loss_arrays(xyz[:50], valid[:50])        # compile / load outside the timing
    t = time.perf_counter()
    i, j, *_ = loss_arrays(xyz, valid)
    dt = time.perf_counter() - t
    assert dt < 3.0, dt
    assert len(i) > 0
    sub = naive_losses(xyz[:100], valid[:100])
    mask = (i < 100) & (j < 100)
    assert set(zip(i[mask].tolist(), j[mask].tolist(), strict=True)) == set(sub)
