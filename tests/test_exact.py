"""The exact clearance checker against a brute-force loop over every building."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, Point, box

from skytwin.planner.exact import ExactChecker


def _naive_violates(p0, p1, footprints, tops, c):
    """True when some point of the segment is horizontally closer than c to a footprint
    while lower than its roof + c: every building, no index, plain clipping."""
    for fp, top in zip(footprints, tops, strict=True):
        lim = top + c
        z0, z1 = p0[2], p1[2]
        if min(z0, z1) >= lim:
            continue
        if z0 < lim and z1 < lim:
            t0, t1 = 0.0, 1.0
        else:  # exactly one end is at or above the limit: one crossing
            t = (lim - z0) / (z1 - z0)
            t0, t1 = (0.0, t) if z0 < lim else (t, 1.0)
        a = p0[:2] + t0 * (p1[:2] - p0[:2])
        b = p0[:2] + t1 * (p1[:2] - p0[:2])
        g = Point(a) if np.allclose(a, b) else LineString([a, b])
        if shapely.distance(g, fp) < c:
            return True
    return False


def test_banded_checker_equals_brute_force():
    rng = np.random.default_rng(3)
    fps, tops = [], []
    for _ in range(300):  # > 64 buildings, so the height bands are in use
        x, y = rng.uniform(0, 1000, 2)
        w, d = rng.uniform(5, 40, 2)
        fps.append(box(x, y, x + w, y + d))
        tops.append(float(rng.choice([rng.uniform(3, 20), rng.uniform(20, 150)])))
    chk = ExactChecker(fps, tops, [f"b{i}" for i in range(len(fps))], clearance_m=5.0)
    assert len(chk._band_tree) > 1
    hits = 0
    for _ in range(1500):
        p0 = np.array([*rng.uniform(-50, 1050, 2), rng.uniform(0, 170)])
        p1 = p0 + np.array([*rng.uniform(-300, 300, 2), rng.uniform(-60, 60)])
        got = chk.segment_violation(p0, p1) is not None
        want = _naive_violates(p0, p1, fps, tops, 5.0)
        assert got == want, (p0, p1)
        hits += got
    assert 100 < hits < 1400  # both outcomes well represented
