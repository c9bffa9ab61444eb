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


# --------------------------------------------------------------------- fast screen


def _screen_agrees(chk, p0, p1, c):
    """The screen may only err on the safe side, within its margin of the clearance."""
    from skytwin.planner.exact import FAST_MARGIN_M
    fast = chk.segment_blocked_fast(p0, p1)
    exact = chk.segment_violation(p0, p1) is not None
    if fast == exact:
        return fast
    assert fast and not exact, ("the screen passed a segment the exact test refuses",
                                p0, p1)
    # refused by the screen only: some building is within c + margin
    near = _naive_violates(p0, p1, chk.footprints, chk.tops_m, c + 2 * FAST_MARGIN_M)
    assert near, ("the screen refused a segment clear by more than its margin", p0, p1)
    return fast


def test_fast_screen_agrees_with_the_exact_test_on_random_segments():
    """Polygons with holes, multipolygons and plain boxes; segments of every length,
    vertical ones, and ones grazing the clearance."""
    from shapely.geometry import MultiPolygon, Polygon
    rng = np.random.default_rng(17)
    fps, tops = [], []
    for k in range(200):
        x, y = rng.uniform(0, 800, 2)
        w, d = rng.uniform(6, 50, 2)
        if k % 5 == 0:   # a courtyard
            fps.append(Polygon([(x, y), (x + w, y), (x + w, y + d), (x, y + d)],
                               [[(x + w / 4, y + d / 4), (x + 3 * w / 4, y + d / 4),
                                 (x + 3 * w / 4, y + 3 * d / 4), (x + w / 4, y + 3 * d / 4)]]))
        elif k % 5 == 1:   # two parts
            fps.append(MultiPolygon([box(x, y, x + w / 3, y + d),
                                     box(x + 2 * w / 3, y, x + w, y + d)]))
        elif k % 5 == 2:   # a rotated triangle
            a = rng.uniform(0, np.pi)
            pts = [(x + r * np.cos(a + t), y + r * np.sin(a + t))
                   for r, t in ((w, 0.0), (d, 2.1), (w, 4.2))]
            fps.append(Polygon(pts))
        else:
            fps.append(box(x, y, x + w, y + d))
        tops.append(float(rng.uniform(3, 120)))
    c = 5.0
    chk = ExactChecker(fps, tops, [f"b{i}" for i in range(len(fps))], clearance_m=c)
    hits = 0
    for n in range(3000):
        p0 = np.array([*rng.uniform(-50, 850, 2), rng.uniform(0, 140)])
        span = float(rng.choice([2.0, 20.0, 200.0, 900.0]))
        p1 = p0 + np.array([*rng.uniform(-span, span, 2), rng.uniform(-50, 50)])
        if n % 10 == 0:
            p1[:2] = p0[:2]                      # vertical
        hits += _screen_agrees(chk, p0, p1, c)
    assert 300 < hits < 2700
    # grazing: parallel to a box side at the clearance, just inside and just outside
    b = np.array(fps[3].bounds)
    for off, want in ((c - 1e-4, True), (c + 1e-4, False)):
        y = b[3] + off
        p0, p1 = np.array([b[0] - 1.0, y, 1.0]), np.array([b[2] + 1.0, y, 1.0])
        assert _screen_agrees(chk, p0, p1, c) == want


def test_fast_screen_leaves_other_footprints_to_geos():
    """An invalid (bow-tie) footprint is not read by the kernel: GEOS decides."""
    from shapely.geometry import Polygon
    bow = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    chk = ExactChecker([bow, box(100, 100, 110, 110)], [50.0, 50.0], ["bow", "box"], 5.0)
    assert chk._fast.kind.tolist() == [0, 1]
    for p0, p1 in (([5, -3, 10], [5, 13, 10]), ([-20, -20, 10], [-20, 30, 10]),
                   ([5, 5, 60], [200, 5, 60])):
        p0, p1 = np.array(p0, float), np.array(p1, float)
        assert chk.segment_blocked_fast(p0, p1) == (chk.segment_violation(p0, p1)
                                                    is not None)


def test_fast_screen_on_the_bundled_city():
    from skytwin.airspace.io import load_city
    from skytwin.airspace.twin import build_twin
    from tests.conftest import FIXTURES
    twin = build_twin(load_city(str(FIXTURES / "city" / "helsinki_centre.geojson")))
    chk = ExactChecker.for_twin(twin)
    rng = np.random.default_rng(4)
    g = twin.grid
    hits = 0
    for _ in range(2000):
        p0 = np.array([rng.uniform(g.x0_m, g.x1_m), rng.uniform(g.y0_m, g.y1_m),
                       rng.uniform(0, 140)])
        span = float(rng.choice([10.0, 100.0, 1000.0]))
        p1 = p0 + np.array([*rng.uniform(-span, span, 2), rng.uniform(-40, 40)])
        hits += _screen_agrees(chk, p0, p1, twin.clearance_m)
    assert 200 < hits < 1800
