"""The route validator's piecewise R-tree selection gives the same answers as the whole box.

``RouteValidator`` picks the buildings to test exactly by querying its R-tree in short
pieces of each segment and dropping buildings whose roof + clearance is below the piece
(see ``RouteValidator._candidates``). The old selection (the segment's whole box) is kept
behind ``_whole_box=True``; here both run on the same routes and must report the same
problems: planned routes, the same routes pushed down into the buildings, long diagonal
segments across the whole twin at roof height, and segments that descend to the ground
next to buildings.
"""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.airspace.io import load_city
from skytwin.airspace.twin import build_twin
from skytwin.planner.route import PlanError, Planner, RouteRequest
from skytwin.planner.validate import RouteValidator

from tests.conftest import FIXTURES

HELSINKI = FIXTURES / "city" / "helsinki_centre.geojson"


def _synthetic():
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    frame = synthetic_frame()
    return build_twin(generate_city(size_m=1500.0, n_buildings=1200, seed=7, frame=frame),
                      frame=frame)


def _helsinki():
    if not HELSINKI.exists():
        pytest.skip(f"{HELSINKI} not found")
    return build_twin(load_city(str(HELSINKI)))


@pytest.fixture(scope="module", params=["helsinki", "synthetic"])
def twin(request):
    return _helsinki() if request.param == "helsinki" else _synthetic()


def _q(a):
    return np.round(np.asarray(a, dtype=np.float64) * 100.0) / 100.0


def _planned(twin, n, seed):
    g = twin.grid
    rng = np.random.default_rng(seed)
    planner = Planner(twin)
    out = []
    for _ in range(6 * n):
        if len(out) >= n:
            break
        xy = rng.uniform([g.x0_m, g.y0_m], [g.x1_m, g.y1_m], size=(2, 2))
        lon, lat = twin.frame.to_wgs84(xy[:, 0], xy[:, 1])
        try:
            r = planner.plan(RouteRequest((lon[0], lat[0]), (lon[1], lat[1]),
                                          depart_s=1_800_000_000.0,
                                          min_agl_m=float(rng.choice([10, 40, 70]))))
        except PlanError:
            continue
        out.append(r.xyz_m)
    return out


def _diagonals(twin, n, seed):
    """Straight low routes corner to corner (one long diagonal segment each)."""
    g = twin.grid
    rng = np.random.default_rng(seed)
    tops = np.array([b.top_m for b in twin.buildings])
    out = []
    for _ in range(n):
        x0, x1 = g.x0_m + 1.0, g.x1_m - 1.0
        y0, y1 = g.y0_m + 1.0, g.y1_m - 1.0
        if rng.random() < 0.5:
            y0, y1 = y1, y0
        za, zb = rng.uniform(0.0, 1.3 * np.quantile(tops, 0.9), size=2)
        out.append(_q([[x0, y0, 0.0], [x0, y0, za], [x1, y1, zb], [x1, y1, 0.0]]))
    return out


def _descents(twin, n, seed):
    """Segments from high up down to the ground ending beside (or on) a building."""
    rng = np.random.default_rng(seed)
    c = twin.clearance_m
    out = []
    bs = twin.buildings
    for k in rng.choice(len(bs), size=n, replace=False):
        b = bs[int(k)]
        minx, miny, maxx, maxy = b.footprint.bounds
        # end point just outside the box, inside it, or at the clearance distance
        off = float(rng.choice([-1.0, 0.5, c - 0.01, c, c + 0.01]))
        end = np.array([maxx + off, (miny + maxy) / 2.0])
        ang = rng.uniform(0, 2 * np.pi)
        L = rng.uniform(100.0, 900.0)
        start = end + L * np.array([np.cos(ang), np.sin(ang)])
        zh = b.top_m + rng.uniform(-5.0, 80.0)
        out.append(_q([[*start, 0.0], [*start, zh], [*end, 0.5], [*end, 0.0]]))
        # and the climb away, and a descent to exactly roof + clearance
        out.append(_q([[*end, 0.0], [*end, 0.5], [*start, zh], [*start, 0.0]]))
        out.append(_q([[*start, 0.0], [*start, zh], [*end, b.top_m + c], [*end, 0.0]]))
    return out


def _segment_problems(v, xyz):
    return sorted(p for p in v.check(xyz).problems if p.startswith("segment"))


def test_piecewise_selection_matches_whole_box(twin):
    new = RouteValidator(twin.buildings, twin.clearance_m)
    old = RouteValidator(twin.buildings, twin.clearance_m, _whole_box=True)
    routes = []
    for xyz in _planned(twin, 6, seed=3):
        for dz in (0.0, -20.0, -60.0, -200.0):
            r = xyz.copy()
            r[1:-1, 2] = np.maximum(r[1:-1, 2] + dz, 0.0)
            routes.append(_q(r))
    routes += _diagonals(twin, 12, seed=4) + _descents(twin, 40, seed=5)
    n_bad = 0
    for xyz in routes:
        a, b = _segment_problems(old, xyz), _segment_problems(new, xyz)
        assert a == b, (xyz.tolist(), set(a) ^ set(b))
        n_bad += bool(a)
        # the other checks are untouched: the whole reports agree
        assert sorted(old.check(xyz).problems) == sorted(new.check(xyz).problems)
    # the comparison is not vacuous: many routes violate, some are clean
    assert n_bad >= len(routes) // 4 and n_bad < len(routes)


def test_candidates_are_a_subset_and_keep_every_flagged_building(twin):
    """Per segment: the new candidates are within the whole box's, and every building the
    exact test flags among all buildings (no R-tree at all) is a candidate."""
    import shapely
    from shapely.geometry import LineString, Point

    from skytwin.planner.validate import _clip_below

    v = RouteValidator(twin.buildings, twin.clearance_m)
    c = v.clearance_m
    checked = flagged = 0
    for xyz in _diagonals(twin, 4, seed=8) + _descents(twin, 10, seed=9):
        for s in range(1, len(xyz) - 2):
            p0, p1 = xyz[s], xyz[s + 1]
            cand = set(v._candidates(p0, p1))
            e = c + v._MARGIN_M       # the pieces' boxes carry the same margin
            box = (min(p0[0], p1[0]) - e, min(p0[1], p1[1]) - e,
                   max(p0[0], p1[0]) + e, max(p0[1], p1[1]) + e)
            assert cand <= set(v.idx.intersection(box))
            for n in range(len(v.geoms)):
                part = _clip_below(p0, p1, v.tops[n] + c)
                if part is None:
                    continue
                g = LineString(part) if not np.allclose(part[0], part[1]) else Point(part[0])
                if shapely.dwithin(g, v.geoms[n], c * (1 - 1e-9)):
                    flagged += 1
                    assert n in cand, (s, v.ids[n])
            checked += 1
    assert checked and flagged


def test_validator_without_buildings_checks_segments():
    v = RouteValidator([], 10.0)
    xyz = _q([[0, 0, 0], [0, 0, 50], [3000, 2000, 50], [3000, 2000, 0]])
    assert v.check(xyz).ok
