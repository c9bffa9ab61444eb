"""Rasterization kernels against the shapely per-cell oracle (tests/naive/raster.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from skytwin.airspace.building import Building
from skytwin.airspace.frame import Frame
from skytwin.airspace.raster import flatten_footprints, floor_layers, rasterize_footprints
from skytwin.airspace.twin import build_twin
from tests.naive import raster as naive

TIE_M = 1e-6  # cells the kernel adds beyond the oracle must be this close (ties)
FRAME = Frame(4.30, 52.08)


# -- random polygons ------------------------------------------------------------------
def convex(rng, cx, cy, r):
    pts = rng.uniform(-r, r, (rng.integers(3, 12), 2)) + (cx, cy)
    return shapely.convex_hull(shapely.MultiPoint(pts))


def star(rng, cx, cy, r):
    n = int(rng.integers(5, 14))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.3 * r, r, n)
    return Polygon(np.column_stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)]))


def holed(rng, cx, cy, r):
    outer = box(cx - r, cy - r, cx + r, cy + r)
    holes = [box(cx - 0.6 * r, cy - 0.6 * r, cx - 0.1 * r, cy + 0.5 * r),
             star(rng, cx + 0.45 * r, cy, 0.35 * r)]
    return outer.difference(shapely.union_all(holes))


def multi(rng, cx, cy, r):
    a = convex(rng, cx - r / 2, cy, r / 3)
    b = star(rng, cx + r / 2, cy + r / 3, r / 3)
    c = box(cx - r, cy - r, cx - r + 0.3, cy - r + 0.2)  # a sliver part
    return MultiPolygon([a, b, c]) if shapely.disjoint(a, b) else MultiPolygon([a, c])


def sliver(rng, cx, cy, r):
    w, h = rng.uniform(0.01, 0.5, 2)
    return shapely.affinity.rotate(box(cx, cy, cx + w, cy + h), rng.uniform(0, 180))


def aligned(rng, cx, cy, r):
    # vertices exactly on cell boundaries (grid origin 0, d = 2)
    i0, j0 = int(cx // 2) * 2, int(cy // 2) * 2
    return box(i0, j0, i0 + 2 * int(rng.integers(1, 5)), j0 + 2 * int(rng.integers(1, 4)))


def on_boundary_diag(rng, cx, cy, r):
    i0, j0 = int(cx // 2) * 2, int(cy // 2) * 2
    return Polygon([(i0, j0), (i0 + 8, j0 + 8), (i0, j0 + 8)])


MAKERS = [convex, star, holed, multi, sliver, aligned, on_boundary_diag]


def random_polys(seed, n=40, span=60.0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        make = MAKERS[k % len(MAKERS)]
        cx, cy = rng.uniform(10, span - 10, 2)
        p = shapely.make_valid(make(rng, cx, cy, rng.uniform(1.0, 9.0)))
        if p.geom_type == "GeometryCollection":
            p = shapely.union_all([g for g in p.geoms if g.area > 0])
        if p.is_empty or p.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        out.append(p)
    return out


GRID = {"x0_m": 0.0, "y0_m": 0.0, "dx_m": 2.0, "nx": 32, "ny": 32}


def kernel_one(p, top=10.0, clearance=0.0, **grid):
    g = {**GRID, **grid}
    return rasterize_footprints(flatten_footprints([p]), [top], [0.0], clearance_m=clearance,
                                **g)


def f32_up(a):
    """float64 -> float32 rounded up, as the kernel stores heights."""
    a = np.asarray(a, dtype=np.float64)
    f = a.astype(np.float32)
    return np.where(f.astype(np.float64) < a, np.nextafter(f, np.float32(np.inf)), f)


def oracle_args():
    return (GRID["x0_m"], GRID["y0_m"], GRID["dx_m"], GRID["nx"], GRID["ny"])


# -- flatten --------------------------------------------------------------------------
def test_flatten_counts_rings_of_holes_and_parts():
    p = box(0, 0, 10, 10).difference(box(2, 2, 4, 4))
    mp = MultiPolygon([box(20, 0, 21, 1), box(30, 0, 31, 1)])
    f = flatten_footprints([p, mp])
    assert f.bld_ring_off.tolist() == [0, 2, 4]
    assert f.max_edges() == 8
    assert np.allclose(f.bbox_m[1], [20, 0, 31, 1])


def test_flatten_rejects_non_polygons_with_message():
    with pytest.raises(ValueError, match="footprint 1 is not a non-empty Polygon"):
        flatten_footprints([box(0, 0, 1, 1), shapely.Point(0, 0)])
    with pytest.raises(ValueError, match="footprint 0 is not a non-empty"):
        flatten_footprints([Polygon()])


def test_rasterize_validates_parameters():
    f = flatten_footprints([box(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="dx_m must be positive"):
        rasterize_footprints(f, [1.0], [0.0], x0_m=0, y0_m=0, dx_m=0.0, nx=2, ny=2,
                             clearance_m=0)
    with pytest.raises(ValueError, match="clearance_m must be >= 0"):
        rasterize_footprints(f, [1.0], [0.0], x0_m=0, y0_m=0, dx_m=1.0, nx=2, ny=2,
                             clearance_m=-1)
    with pytest.raises(ValueError, match=r"must have shape \(1,\)"):
        rasterize_footprints(f, [1.0, 2.0], [0.0], x0_m=0, y0_m=0, dx_m=1.0, nx=2, ny=2,
                             clearance_m=0)


# -- touched set vs oracle ------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_touched_equals_oracle_up_to_ties(seed):
    boxes = naive.cell_boxes(*oracle_args())
    for p in random_polys(seed):
        top, _, _ = kernel_one(p)
        got = np.isfinite(top)
        want = naive.touched_oracle(p, *oracle_args())
        missing = want & ~got
        assert not missing.any(), f"kernel lost cells {np.argwhere(missing)} of {p.wkt}"
        extra = got & ~want
        if extra.any():
            d = shapely.distance(boxes[extra], p)
            assert d.max() <= TIE_M, f"extra cells at distance {d.max()} of {p.wkt}"


def test_aligned_box_touches_both_sides_of_shared_cell_edges():
    top, _, _ = kernel_one(box(4, 4, 8, 6))
    assert np.argwhere(np.isfinite(top)).min(0).tolist() == [1, 1]
    assert np.argwhere(np.isfinite(top)).max(0).tolist() == [4, 3]


def test_sliver_inside_one_cell_marks_that_cell_only():
    top, _, _ = kernel_one(box(5.2, 5.2, 5.3, 5.25))
    assert np.argwhere(np.isfinite(top)).tolist() == [[2, 2]]


def test_hole_larger_than_cells_stays_free():
    p = box(0.5, 0.5, 30.5, 30.5).difference(box(8.5, 8.5, 20.5, 20.5))
    top, _, _ = kernel_one(p)
    assert not np.isfinite(top[5:10, 5:10]).any()   # cells [10, 20] inside the hole
    assert np.isfinite(top[4, 4]) and np.isfinite(top[10, 10])  # cells meeting the hole edge


def test_geometry_outside_grid_is_clipped():
    top, ctop, _ = kernel_one(box(-50, -50, 1, 1), clearance=3.0)
    assert np.isfinite(top[0, 0]) and not np.isfinite(top[1, 1])
    assert np.isfinite(ctop[2, 0]) and not np.isfinite(ctop[3, 3])
    top, _, _ = kernel_one(box(500, 500, 501, 501), clearance=3.0)
    assert not np.isfinite(top).any()


# -- heights and clearance vs oracle --------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_top_field_is_max_over_touching_buildings(seed):
    rng = np.random.default_rng(100 + seed)
    polys = random_polys(seed, n=25)
    tops = rng.uniform(5, 80, len(polys))
    top, _, _ = rasterize_footprints(flatten_footprints(polys), tops, np.zeros(len(tops)),
                                     clearance_m=0.0, **GRID)
    want = naive.top_oracle(polys, tops, *oracle_args())
    assert np.all(top >= f32_up(want))   # conservative
    boxes = naive.cell_boxes(*oracle_args())
    higher = top > f32_up(want)
    for i, j in np.argwhere(higher):   # only through boundary ties
        touching = [t for p, t in zip(polys, tops, strict=True)
                    if shapely.distance(boxes[i, j], p) <= TIE_M]
        assert max(touching) <= top[i, j] <= max(touching) + 1e-5


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("clearance", [0.7, 5.0])
def test_clearance_field_equals_exact_distance_oracle(seed, clearance):
    boxes = naive.cell_boxes(*oracle_args())
    for p in random_polys(seed, n=14):
        _, ctop, _ = kernel_one(p, top=20.0, clearance=clearance)
        got = np.isfinite(ctop)
        d = shapely.distance(boxes, p)
        want = d <= clearance
        assert not (want & ~got).any(), f"kernel missed cells within {clearance} m"
        extra = got & ~want
        assert (d[extra] <= clearance + TIE_M).all()
        assert np.all(ctop[got] == np.float32(20.0 + clearance))


def test_clearance_corner_uses_true_circle_not_buffer_chords():
    # a cell whose nearest point is 4.95 m from a square's corner, at 22.5 degrees
    p = box(0.0, 0.0, 10.0, 10.0)
    a = math.radians(22.5)
    cx, cy = 10.0 + 4.95 * math.cos(a), 10.0 + 4.95 * math.sin(a)
    g = {"x0_m": cx, "y0_m": cy, "dx_m": 1.0, "nx": 2, "ny": 2}
    _, ctop, _ = kernel_one(p, top=10.0, clearance=5.0, **g)
    assert np.isfinite(ctop[0, 0]) and not np.isfinite(ctop[1, 1])
    # a polygonal buffer (chords inside the circle) would miss that cell
    assert shapely.distance(shapely.buffer(p, 5.0, quad_segs=2), shapely.Point(cx, cy)) > 0


def test_multi_building_clearance_field_matches_oracle():
    rng = np.random.default_rng(7)
    polys = random_polys(11, n=30)
    tops = rng.uniform(5, 80, len(polys))
    _, ctop, _ = rasterize_footprints(flatten_footprints(polys), tops, np.zeros(len(tops)),
                                      clearance_m=3.0, chunk=7, **GRID)
    want = naive.clear_top_oracle(polys, tops, 3.0, *oracle_args())
    loose = naive.clear_top_oracle(polys, tops + 0 * tops, 3.0 + TIE_M, *oracle_args())
    assert np.all(ctop >= f32_up(want))
    assert np.all(ctop <= f32_up(loose))


def test_heights_are_rounded_up_to_float32():
    from skytwin.airspace.raster import _f32_up

    v = np.random.default_rng(0).uniform(-500, 9000, 20000)
    up = np.array([_f32_up(x) for x in v], dtype=np.float32)
    assert np.all(up.astype(np.float64) >= v)
    down = np.nextafter(up, np.float32(-np.inf))
    assert np.all(down.astype(np.float64) < v)   # and it is the smallest such float32


# -- floor layers ---------------------------------------------------------------------
def test_floor_layers_blocks_voxel_touching_top_exactly():
    ct = np.array([[0.0, 1.999, 2.0, 2.001, -5.0, 1e6]], dtype=np.float32)
    assert floor_layers(ct, z0_m=0.0, dz_m=2.0, nz=50).tolist() == [[1, 1, 2, 2, 0, 50]]


def test_floor_layers_rejects_int16_overflow():
    with pytest.raises(ValueError, match="int16"):
        floor_layers(np.zeros((1, 1)), z0_m=0.0, dz_m=1.0, nz=40000)


# -- conservativeness of the whole twin: sampled points and blocked volume ------------
def _buildings(polys, tops, ground=0.0):
    return [Building(f"b{k}", shapely.orient_polygons(p), base_m=ground, top_m=float(t),
                     ground_m=ground) for k, (p, t) in enumerate(zip(polys, tops,
                                                                      strict=True))]


@pytest.mark.parametrize("seed", range(3))
def test_points_in_buildings_plus_clearance_fall_in_blocked_voxels(seed):
    rng = np.random.default_rng(seed)
    polys = random_polys(20 + seed, n=30)
    tops = rng.uniform(3, 60, len(polys))
    c = 5.0
    twin = build_twin(_buildings(polys, tops), frame=FRAME, resolution_m=2.0,
                      layer_m=2.0, clearance_m=c)
    g = twin.grid
    n_checked = 0
    for p, t in zip(polys, tops, strict=True):
        minx, miny, maxx, maxy = p.bounds
        xy = rng.uniform((minx - c, miny - c), (maxx + c, maxy + c), (400, 2))
        d = shapely.distance(shapely.points(xy), p)
        xy = xy[d <= c]
        # heights from the ground up to exactly top + clearance, endpoints included
        z = rng.uniform(0.0, t + c, len(xy))
        z[::7] = t + c
        i = np.floor((xy[:, 0] - g.x0_m) / g.dx_m).astype(int)
        j = np.floor((xy[:, 1] - g.y0_m) / g.dx_m).astype(int)
        k = np.floor((z - g.z0_m) / g.dz_m).astype(int)
        assert np.all(k < twin.floor_k[i, j]), f"a point near {p.wkt} is in a free voxel"
        inside = shapely.contains_xy(p, xy[:, 0], xy[:, 1])
        assert np.all(twin.top_m[i[inside], j[inside]] >= np.float32(t))
        n_checked += len(xy)
    assert n_checked > 3000


@pytest.mark.parametrize("seed", range(3))
def test_blocked_volume_exceeds_exact_by_at_most_one_voxel_rim(seed):
    rng = np.random.default_rng(50 + seed)
    d, dz = 2.0, 2.0
    for p in random_polys(30 + seed, n=14):
        t = float(rng.uniform(3, 60))
        twin = build_twin(_buildings([p], [t]), frame=FRAME, resolution_m=d,
                          layer_m=dz, clearance_m=0.0)
        # ground at 0 = z0: columns without the building hold only the ground layer
        touched = twin.top_m > 0.0
        assert np.all(twin.floor_k[~touched] == 1)
        blocked = float(np.sum(twin.floor_k[touched], dtype=np.int64)) * d * d * dz
        exact = p.area * t
        rim = (p.length * math.sqrt(2.0) * d + 4 * d * d) * (t + dz) + p.area * dz
        assert exact <= blocked + 1e-6
        assert blocked - exact <= rim, (p.wkt, blocked, exact, rim)


def test_shapely_baseline_agrees_with_kernel():
    polys = random_polys(3, n=20)
    tops = np.linspace(5, 50, len(polys))
    top, ctop, _ = rasterize_footprints(flatten_footprints(polys), tops,
                                        np.zeros(len(tops)), clearance_m=2.5, **GRID)
    btop, bctop = naive.shapely_rasterize(polys, tops, 2.5, *oracle_args())
    assert np.all(top >= btop) and np.all(ctop >= bctop)
    same = np.isclose(top, btop, rtol=1e-6, atol=0) | (np.isinf(top) & np.isinf(btop))
    csame = np.isclose(ctop, bctop, rtol=1e-6, atol=0) | (np.isinf(ctop) & np.isinf(bctop))
    assert np.mean(same) > 0.97 and np.mean(csame) > 0.97
