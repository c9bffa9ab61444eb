"""A small synthetic city with booked flights, shared by the live-operation tests."""

from __future__ import annotations

import functools

import numpy as np

T0 = 1_000_000.0


@functools.lru_cache(maxsize=1)
def small_twin():
    from skytwin.airspace.twin import build_twin
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    frame = synthetic_frame()
    return build_twin(generate_city(size_m=800.0, n_buildings=200, seed=3, frame=frame),
                      frame=frame)


def book(twin, zones, n, seed, t0=T0, spread_s=60.0, min_len_m=300.0):
    """Plan ``n`` random flights and deconflict them first-come-first-served (as the
    service books them); returns the accepted trajectories."""
    from skytwin.planner.deconflict import AcceptedIndex, place
    from skytwin.planner.route import PlanError, Planner, RouteRequest
    rng = np.random.default_rng(seed)
    planner = Planner(twin, zones)
    index = AcceptedIndex()
    g = twin.grid
    out = []
    tries = 0
    while len(out) < n and tries < 20 * n:
        tries += 1
        a = rng.uniform([g.x0_m + 60, g.y0_m + 60], [g.x1_m - 60, g.y1_m - 60])
        b = rng.uniform([g.x0_m + 60, g.y0_m + 60], [g.x1_m - 60, g.y1_m - 60])
        if np.hypot(*(a - b)) < min_len_m:
            continue
        la = tuple(float(v) for v in twin.frame.to_wgs84(*a))
        lb = tuple(float(v) for v in twin.frame.to_wgs84(*b))
        try:
            r = planner.plan(RouteRequest(la, lb, depart_s=t0 + rng.uniform(0, spread_s),
                                          flight_id=f"f{len(out):03d}"))
        except PlanError:
            continue
        p = place(r.trajectory, index)
        if p.trajectory is None:
            continue
        index.accept(p.trajectory)
        out.append(p.trajectory)
    return out
