"""Fleet-days (planner/fleetday.py) in this process and on Ray (server/fleet_ray.py).

Rules tested: the windows' reach bound (no exclusion row between windows two apart, from
rows built by planner.deconflict over the whole fleet), zero residual conflicts by the
brute-force oracle (tests/naive), Ray gives exactly the single-process routes and choices,
Ray workers load the numba kernels from the cache, and bad input fails clearly.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
import pytest

from skytwin.fixtures.traffic import city_options
from skytwin.planner import fleetday
from skytwin.planner.conflicts import ConflictInputError, Separation, detect
from skytwin.planner.deconflict import build_problem
from skytwin.planner.trajectory import Trajectory
from tests.naive.conflicts import detect_pairs

SEP = Separation(30.0, 10.0, 5.0)
# one hub of two pads and short delays: crowded pads, several windows within 30 min
SPEC = fleetday.FleetDaySpec(40, seed=1, duration_s=1800.0, delivery_radius_m=500.0,
                             n_hubs=1, pads_per_hub=2, max_delay_s=180.0, hub_share=0.9,
                             chunk_flights=8)
PARAMS = fleetday.WindowParams(min_window_s=60.0, component_deterministic_s=0.5)


@functools.lru_cache(maxsize=1)
def small_twin():
    from skytwin.airspace.twin import build_twin
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    frame = synthetic_frame()
    return build_twin(generate_city(size_m=1200.0, n_buildings=400, seed=3, frame=frame),
                      frame=frame)


@functools.lru_cache(maxsize=1)
def local_run():
    twin = small_twin()
    ex = fleetday.LocalExecutor(twin)
    flights = fleetday.plan_day(twin, ex, SPEC)
    res = fleetday.deconflict_day(flights, ex, SEP, city_options(twin), PARAMS)
    return flights, res


def _same_routes(a, b):
    return len(a) == len(b) and all(
        x.flight_id == y.flight_id and np.array_equal(x.xyz_m, y.xyz_m)
        and np.array_equal(x.t_s, y.t_s) and x.priority == y.priority for x, y in zip(a, b))


def test_windows_never_link_flights_two_windows_apart():
    flights, _ = local_run()
    opts = city_options(small_twin())
    windows, length = fleetday.window_cuts(flights, SEP, opts, PARAMS.min_window_s)
    assert len(windows) >= 3 and length > PARAMS.min_window_s   # raised to the reach
    wid = np.empty(len(flights), np.int64)
    for w, idx in windows:
        wid[idx] = w
    rows = build_problem(flights, sep=SEP, options=opts).rows   # the whole fleet at once
    assert rows.shape[0] > 0
    gap = np.abs(wid[rows[:, 0]] - wid[rows[:, 2]])
    assert gap.max() <= 1
    assert (gap == 1).any()     # flights do interact across a boundary: the odd phase matters


def test_single_process_day_has_no_residual_conflict():
    flights, res = local_run()
    assert len(flights) == SPEC.n_flights
    assert detect(flights, SEP)                 # there was something to resolve
    assert res.report.ok and not res.unplaced
    placed = set(res.choices)
    assert placed == {f.flight_id for f in flights}
    pairs = detect_pairs(res.trajectories, SEP.horizontal_m, SEP.vertical_m,
                         SEP.time_buffer_s)
    assert pairs == set() or len(pairs) == 0
    assert all(0 <= c.delay_s <= SPEC.max_delay_s for c in res.choices.values())
    assert res.objective <= res.stats["fcfs_objective"]


def test_same_seed_same_day_and_other_seed_differs():
    twin = small_twin()
    ex = fleetday.LocalExecutor(twin)
    again = fleetday.plan_day(twin, ex, SPEC)
    assert _same_routes(again, local_run()[0])
    spec2 = fleetday.FleetDaySpec(5, seed=2, duration_s=1800.0, n_hubs=1, pads_per_hub=2)
    other = fleetday.plan_day(twin, ex, spec2)
    assert not _same_routes(other, again[:len(other)])


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="n_flights"):
        fleetday.FleetDaySpec(0)
    with pytest.raises(ValueError, match="hub_share"):
        fleetday.FleetDaySpec(10, hub_share=1.5)
    with pytest.raises(ValueError, match="method"):
        fleetday.WindowParams(method="magic")
    a = Trajectory("a", [[0, 0, 0], [0, 0, 60], [600, 0, 60], [600, 0, 0]], [0, 20, 70, 100])
    with pytest.raises(ConflictInputError, match="unique"):
        fleetday.deconflict_day([a, a], fleetday.LocalExecutor())
    with pytest.raises(ConflictInputError, match="not a Trajectory"):
        fleetday.deconflict_day([a, "b"], fleetday.LocalExecutor())


def test_cruise_band_is_checked_on_relevelled_flights():
    from skytwin.planner.deconflict import Choice, DeconflictOptions, Resolution
    opts = DeconflictOptions(max_cruise_m=100.0)
    high = Trajectory("h", [[0, 0, 0], [0, 0, 110], [600, 0, 110], [600, 0, 0]],
                      [0, 40, 90, 150])
    low = Trajectory("l", [[0, 900, 0], [0, 900, 90], [600, 900, 90], [600, 900, 0]],
                     [0, 30, 80, 130])
    for shift, bad in ((0, False), (1, True)):
        res = Resolution({"h": Choice("h", 0.0, shift, 0), "l": Choice("l", 0.0, 0, 0)},
                         {}, [high, low], "FCFS", 0.0)
        rep = fleetday.verify_day(res, [high, low], SEP, opts)
        assert not rep.residual_conflicts
        assert bool(rep.violations) is bad and all("h:" in v for v in rep.violations)


# ----------------------------------------------------------------------------- Ray

@pytest.fixture(scope="module")
def ray_executor():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install "
                              "'skytwin[ray]'): Ray fleet-day tests skipped")
    from skytwin.server.fleet_ray import RayExecutor
    local_run()      # the driver has compiled (and cached) every kernel first
    ex = RayExecutor(small_twin(), "local", num_cpus=2)
    yield ex
    ex.close()
    assert not ray.is_initialized()


def test_ray_gives_the_single_process_day(ray_executor):
    twin = small_twin()
    flights, res = local_run()
    done = []
    rflights = fleetday.plan_day(twin, ray_executor, SPEC,
                                 progress=lambda d, t: done.append((d, t)))
    assert _same_routes(rflights, flights)
    assert done[-1] == (5, 5) and len(done) == 5      # progress per chunk of 8 flights
    rres = fleetday.deconflict_day(rflights, ray_executor, SEP, city_options(twin), PARAMS)
    assert rres.choices == res.choices and rres.unplaced == res.unplaced
    assert rres.report.ok
    assert detect_pairs(rres.trajectories, SEP.horizontal_m, SEP.vertical_m,
                        SEP.time_buffer_s) == detect_pairs(res.trajectories, SEP.horizontal_m,
                                                           SEP.vertical_m,
                                                           SEP.time_buffer_s) == set()


def test_ray_workers_load_kernels_from_the_cache(ray_executor):
    fleetday.plan_day(small_twin(), ray_executor, SPEC)
    stats = ray_executor.numba_cache_stats()
    assert len(stats) == 2 and len({s["pid"] for s in stats}) == 2
    # without a shared cache every kernel would be compiled (hits 0). Expected: misses 0;
    # one kernel may compile when another process on this tree, still running an older
    # source, rewrote that module's cache index meanwhile (seen once while sharing the tree)
    assert all(s["hits"] > 0 and s["hits"] >= 4 * s["misses"] for s in stats), stats


# ----------------------------------------------------------------------------- CLI

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "skytwin", "fleet", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_fleet_day_in_process_and_bad_mode():
    r = _cli("--flights", "20", "--duration", "1200", "--ray", "off", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["residual"] == 0 and out["verifier_ok"] and out["ray"] == "off"
    assert out["flights"] == 20
    r = _cli("--ray", "nowhere")
    assert r.returncode == 2 and "--ray" in r.stderr and "HOST:PORT" in r.stderr
    r = _cli("--ray", "127.0.0.1:1", "--json")     # refused at once, before any work
    assert r.returncode == 2
    assert "cannot reach Ray" in json.loads(r.stderr)["error"]["message"]
