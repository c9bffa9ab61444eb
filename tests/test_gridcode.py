"""Airspace grid codes (airspace.gridcode): forms, hierarchy, conservative covers.

The conservative cover is checked against a brute-force oracle kept in this file: every
cell of a wide H3 disk around the polygon, tested one by one with shapely
``intersects`` on the cell's boundary polygon.
"""

from __future__ import annotations

import math
import random
import re

import h3
import h3.api.basic_int as h3i
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from skytwin.airspace.errors import GridCodeError
from skytwin.airspace.frame import Frame
from skytwin.airspace.grid import GridSpec
from skytwin.airspace.gridcode import (
    DEFAULT_RES,
    GridCode,
    cell_polygon,
    cells_for_voxels,
    cells_touching_polygon,
    codes_for_box,
    layers_overlapping,
    resolution_for_voxel,
)

M_PER_DEG = 111_320.0


# --------------------------------------------------------------------------- oracle
def brute_force_cells(poly: Polygon, res: int) -> set[int]:
    """Every cell of a disk that surely holds the polygon, kept if it intersects it."""
    c = poly.centroid
    lon0, lat0, lon1, lat1 = poly.bounds
    span_m = math.hypot((lon1 - lon0) * M_PER_DEG * math.cos(math.radians(c.y)),
                        (lat1 - lat0) * M_PER_DEG)
    edge = h3.average_hexagon_edge_length(res, "m")
    k = math.ceil(span_m / (0.5 * edge)) + 4
    seed = h3i.latlng_to_cell(c.y, c.x, res)
    disk = h3i.grid_disk(seed, k)
    hits = {cell for cell in disk if cell_polygon(cell).intersects(poly)}
    ring = set(h3i.grid_ring(seed, k))
    assert not hits & ring, "oracle disk too small"
    return hits


def random_polygon(rng: random.Random, radius_m: float, lat_range=(-60.0, 70.0)) -> Polygon:
    """A random star-shaped polygon of about ``radius_m`` around a random place."""
    lat0 = rng.uniform(*lat_range)
    lon0 = rng.uniform(-179.0, 179.0)
    n = rng.randint(3, 12)
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    pts = []
    for a in angles:
        r = radius_m * rng.uniform(0.2, 1.0)
        pts.append((lon0 + r * math.cos(a) / (M_PER_DEG * math.cos(math.radians(lat0))),
                    lat0 + r * math.sin(a) / M_PER_DEG))
    poly = Polygon(pts)
    if not poly.is_valid or poly.area == 0:
        return random_polygon(rng, radius_m, lat_range)
    return poly


def random_sliver(rng: random.Random, length_m: float, width_m: float) -> Polygon:
    """A thin rotated rectangle, ``width_m`` much smaller than a cell."""
    lat0 = rng.uniform(-60.0, 70.0)
    lon0 = rng.uniform(-179.0, 179.0)
    a = rng.uniform(0, math.pi)
    ux, uy = math.cos(a), math.sin(a)
    vx, vy = -uy, ux
    pts = []
    for s, t in ((0, 0), (length_m, 0), (length_m, width_m), (0, width_m)):
        x = s * ux + t * vx
        y = s * uy + t * vy
        pts.append((lon0 + x / (M_PER_DEG * math.cos(math.radians(lat0))),
                    lat0 + y / M_PER_DEG))
    return Polygon(pts)


# --------------------------------------------------------------------------- resolution
def test_default_resolution_matches_2m_voxels():
    # res 14 averages 6.27 m2 (ratio 1.57 to a 4 m2 voxel); res 15 0.90 m2 (ratio 4.5).
    assert resolution_for_voxel(2.0) == DEFAULT_RES == 14
    assert resolution_for_voxel(6.6) == 13  # 43.6 m2 ~ res 13's 43.9 m2
    with pytest.raises(GridCodeError, match="positive number of metres"):
        resolution_for_voxel(0.0)


# --------------------------------------------------------------------------- forms
def _random_code(rng: random.Random) -> GridCode:
    lat = rng.uniform(-89.0, 89.0)
    lon = rng.uniform(-180.0, 180.0)
    res = rng.randint(0, 15)
    cm = rng.choice([1, 5, 25, 50, 100, 150, 200, 1000, 65535, rng.randint(1, 65535)])
    layer = rng.choice([0, -1, 1, rng.randint(-9999, 9999), -(2**31), 2**31 - 1,
                        rng.randint(-(2**31), 2**31 - 1)])
    return GridCode(h3i.latlng_to_cell(lat, lon, res), layer, cm / 100.0,
                    rng.choice(["AMSL", "AGL"]))


def test_string_and_int_forms_round_trip():
    rng = random.Random(7)
    seen_str, seen_int = set(), set()
    for _ in range(2000):
        c = _random_code(rng)
        s, i = str(c), int(c)
        assert GridCode.parse(s) == c
        assert GridCode.from_int(i) == c
        assert 0 <= i < 2**113
        seen_str.add((c, s))
        seen_int.add((c, i))
    # injective: distinct codes never share a form
    assert len({s for _, s in seen_str}) == len({c for c, _ in seen_str})
    assert len({i for _, i in seen_int}) == len({c for c, _ in seen_int})


def test_string_layout():
    cell = h3i.latlng_to_cell(52.0705, 4.3007, 14)
    assert str(GridCode(cell, 12)) == f"{cell:015x}-A+0012-2"
    assert str(GridCode(cell, -3, 0.5, "AGL")) == f"{cell:015x}-G-0003-0.5"
    assert str(GridCode(cell, 123456, 1.25)) == f"{cell:015x}-A+123456-1.25"
    assert str(GridCode(cell, 0, 10.1)) == f"{cell:015x}-A+0000-10.1"
    # AMSL and AGL codes of the same numbers are different codes
    assert GridCode(cell, 1, 2.0, "AMSL") != GridCode(cell, 1, 2.0, "AGL")
    assert int(GridCode(cell, 1, 2.0, "AMSL")) != int(GridCode(cell, 1, 2.0, "AGL"))


@pytest.mark.parametrize("text, why", [
    ("", "15 lowercase hex digits"),
    ("8E196B85DB89A47-A+0012-2", "15 lowercase hex digits"),
    ("8e196b85db89a47-X+0012-2", "'-A' (AMSL) or '-G' (AGL)"),
    ("8e196b85db89a47-A0012-2", "must start with a sign"),
    ("8e196b85db89a47-A+12-2", "4 to 10 digits"),
    ("8e196b85db89a47-A+0012", "followed by '-' and the thickness"),
    ("8e196b85db89a47-A+0012-2.005", "at most 2 decimals"),
    ("8e196b85db89a47-A+0012-2.0", "not canonical, write '8e196b85db89a47-A+0012-2'"),
    ("8e196b85db89a47-A+00012-2", "not canonical, write '8e196b85db89a47-A+0012-2'"),
    ("8e196b85db89a47-A-0000-2", "not canonical, write '8e196b85db89a47-A+0000-2'"),
    ("8e196b85db89a47-A+0012-0", "thickness must be in [0.01, 655.35] m"),
    ("8e196b85db89a47-A+0012-700", "thickness must be in [0.01, 655.35] m"),
    ("8e196b85db89a40-A+0012-2", "not a valid H3 cell"),
    ("8e196b85db89a47-A+9999999999-2", "outside [-2**31, 2**31)"),
])
def test_parse_rejects_malformed_strings_with_reason(text, why):
    with pytest.raises(GridCodeError, match=re.escape(why)) as e:
        GridCode.parse(text)
    assert isinstance(e.value, ValueError)
    if text:
        assert repr(text) in str(e.value)


def test_from_int_and_constructor_reject_bad_values():
    good = int(GridCode(h3i.latlng_to_cell(52.0, 4.3, 14), 3))
    with pytest.raises(GridCodeError, match="outside \\[0, 2\\*\\*113\\)"):
        GridCode.from_int(-1)
    with pytest.raises(GridCodeError, match="outside \\[0, 2\\*\\*113\\)"):
        GridCode.from_int(1 << 113)
    with pytest.raises(GridCodeError, match="thickness must be in"):
        GridCode.from_int(good & ~(0xFFFF << 96))  # thickness 0 cm
    with pytest.raises(GridCodeError, match="not a valid H3 cell"):
        GridCode.from_int(good ^ 0x7)  # last digit 7 is invalid for a res-14 cell
    with pytest.raises(GridCodeError, match="whole number of centimetres"):
        GridCode(h3i.latlng_to_cell(52.0, 4.3, 14), 0, 0.333)
    with pytest.raises(GridCodeError, match="'AMSL' or 'AGL'"):
        GridCode(h3i.latlng_to_cell(52.0, 4.3, 14), 0, 2.0, "WGS84")
    with pytest.raises(GridCodeError, match="layer must be an integer"):
        GridCode(h3i.latlng_to_cell(52.0, 4.3, 14), 1.5)


# --------------------------------------------------------------------------- geometry
def test_from_point_and_centre_and_volume():
    rng = random.Random(3)
    for _ in range(200):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-80, 80)
        alt = rng.uniform(-50, 500)
        cm = rng.choice([50, 100, 200, 300, 1000])
        c = GridCode.from_point(lon, lat, alt, rng.randint(8, 15), cm / 100, "AGL")
        z0, z1 = c.z_range_m
        assert z0 <= alt < z1 and math.isclose(z1 - z0, cm / 100)
        assert c.polygon().buffer(1e-12).contains(Polygon([(lon, lat), (lon, lat + 1e-14),
                                                           (lon + 1e-14, lat)]).centroid)
        clon, clat, cz = c.centre()
        assert c.polygon().contains(Polygon([(clon, clat), (clon, clat + 1e-14),
                                             (clon + 1e-14, clat)]).centroid)
        assert cz == pytest.approx(0.5 * (z0 + z1))
        assert c.volume_m3 == pytest.approx(c.area_m2 * cm / 100)
        lon0, lat0, lon1, lat1, zb0, zb1 = c.bounds
        assert lon0 <= clon <= lon1 and lat0 <= clat <= lat1 and (zb0, zb1) == (z0, z1)
    # res-14 cells average H3's published 6.27 m2
    c = GridCode.from_point(4.3007, 52.0705, 25.0)
    assert 4.0 < c.area_m2 < 9.0
    assert c.volume_m3 == pytest.approx(2.0 * c.area_m2)


def test_layers_on_boundaries_are_half_open():
    assert GridCode.from_point(4.3, 52.0, 24.0).layer == 12
    assert GridCode.from_point(4.3, 52.0, 23.999999).layer == 11
    assert GridCode.from_point(4.3, 52.0, -0.0001).layer == -1
    assert GridCode.from_point(4.3, 52.0, 0.3, layer_m=0.1).layer == 2  # 0.3 < 3 * 0.1
    assert layers_overlapping(2.0, 4.0, 2.0) == range(1, 2)
    assert layers_overlapping(1.999, 4.001, 2.0) == range(3)
    with pytest.raises(GridCodeError, match="altitude band is empty"):
        layers_overlapping(5.0, 5.0, 2.0)
    with pytest.raises(GridCodeError, match="lat_deg must be a number in \\[-90, 90\\]"):
        GridCode.from_point(4.3, 95.0, 0.0)
    with pytest.raises(GridCodeError, match="alt_m must be a finite number"):
        GridCode.from_point(4.3, 52.0, float("nan"))


# --------------------------------------------------------------------------- hierarchy
def test_parent_contains_child_vertically_and_by_centre():
    rng = random.Random(11)
    for _ in range(300):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-80, 80)
        c = GridCode.from_point(lon, lat, rng.uniform(-100, 1000), rng.randint(1, 15),
                                rng.choice([0.5, 1.0, 2.0]), rng.choice(["AMSL", "AGL"]))
        res = rng.randint(0, c.res)
        factor = rng.choice([1, 2, 3, 4, 8])
        p = c.parent(res, factor)
        assert p.res == res and p.reference == c.reference
        assert p.layer_m == pytest.approx(c.layer_m * factor)
        (z0, z1), (pz0, pz1) = c.z_range_m, p.z_range_m
        assert pz0 <= z0 < z1 <= pz1  # vertical containment is exact
        if res == c.res - 1 and c.res >= 8:  # one level up the centre is inside
            clon, clat, _ = c.centre()
            assert p.polygon().buffer(1e-12).covers(Polygon(
                [(clon, clat), (clon + 1e-15, clat), (clon, clat + 1e-15)]))
        # children of the parent include the code itself (same res, same factor)
        if c.res - res <= 3:
            assert c in p.children(c.res, factor)
        # the union of the covering parents covers the whole code
        if c.res - res <= 2 and res >= 8:
            cover = shapely.union_all([q.polygon() for q in c.covering_parents(res, factor)])
            assert p in c.covering_parents(res, factor)
            assert c.polygon().difference(cover).area <= 1e-9 * c.polygon().area


def test_h3_parent_is_not_a_geometric_superset():
    # Documented limitation: some children stick out of their H3 parent; the
    # conservative covering_parents() covers them.
    rng = random.Random(5)
    sticking_out = 0
    for _ in range(50):
        c = GridCode.from_point(rng.uniform(-180, 180), rng.uniform(-70, 70), 10.0)
        p = c.parent()
        if not p.polygon().buffer(1e-12).contains(c.polygon()):
            sticking_out += 1
            assert len(c.covering_parents()) >= 2
    assert sticking_out > 0


def test_children_split_volume_and_map_back():
    p = GridCode.from_point(4.3007, 52.0705, 25.0, res=12, layer_m=4.0)
    kids = p.children(13, 2)
    assert len(kids) == 7 * 2
    assert all(k.parent(12, 2) == p for k in kids)
    assert sum(k.volume_m3 for k in kids) == pytest.approx(p.volume_m3, rel=0.02)
    with pytest.raises(GridCodeError, match="does not split into 3"):
        GridCode.from_point(4.3, 52.0, 1.0, layer_m=0.01).children(layer_factor=3)
    with pytest.raises(GridCodeError, match="child resolution must be in 14..15"):
        GridCode.from_point(4.3, 52.0, 1.0).children(13)
    with pytest.raises(GridCodeError, match="parent resolution must be in 0..14"):
        GridCode.from_point(4.3, 52.0, 1.0).parent(15)
    with pytest.raises(GridCodeError, match="more than 655.35 m"):
        GridCode.from_point(4.3, 52.0, 1.0, layer_m=400).parent()


# --------------------------------------------------------------------------- covers
@pytest.mark.parametrize("res, radii_m", [(14, (0.3, 1.0, 3.0, 10.0, 40.0)),
                                          (13, (1.0, 8.0, 60.0)),
                                          (11, (5.0, 40.0, 300.0))])
def test_cover_equals_brute_force_on_random_polygons(res, radii_m):
    rng = random.Random(1000 + res)
    for radius in radii_m:
        for _ in range(4):
            poly = random_polygon(rng, radius)
            assert set(cells_touching_polygon(poly, res)) == brute_force_cells(poly, res)


def test_cover_equals_brute_force_on_slivers():
    rng = random.Random(42)
    edge = h3.average_hexagon_edge_length(14, "m")
    for _ in range(16):
        sliver = random_sliver(rng, rng.uniform(0.05, 6 * edge), rng.uniform(0.001, 0.1))
        got = set(cells_touching_polygon(sliver, 14))
        assert got == brute_force_cells(sliver, 14)
        assert got  # never empty, however thin


def test_cover_is_a_superset_of_centre_containment_and_handles_holes():
    rng = random.Random(9)
    outer = random_polygon(rng, 60.0)
    c = outer.centroid
    hole = c.buffer(10.0 / M_PER_DEG).exterior.coords
    ring = Polygon(outer.exterior.coords, [hole]) if outer.contains(
        Polygon(hole)) else outer
    got = set(cells_touching_polygon(ring, 14))
    centre = set(h3i.h3shape_to_cells(h3.geo_to_h3shape(ring), 14))
    assert centre <= got and len(got) > len(centre)
    assert got == brute_force_cells(ring, 14)


def test_cover_rejects_bad_areas():
    with pytest.raises(GridCodeError, match="bbox .* is empty"):
        cells_touching_polygon((4.3, 52.0, 4.2, 52.1))
    with pytest.raises(GridCodeError, match="area polygon is invalid: Self-intersection"):
        cells_touching_polygon([(0, 0), (1e-4, 1e-4), (1e-4, 0), (0, 1e-4)])
    with pytest.raises(GridCodeError, match="outside lon \\[-180, 180\\], lat \\[-85, 85\\]"):
        cells_touching_polygon((4.3, 86.0, 4.4, 86.1))
    with pytest.raises(GridCodeError, match="antimeridian"):
        cells_touching_polygon((-179.0, 0.0, 179.0, 0.1))
    with pytest.raises(GridCodeError, match="more than max_cells=1000"):
        cells_touching_polygon((4.3, 52.0, 4.31, 52.01), 14, max_cells=1000)
    with pytest.raises(GridCodeError, match="area polygon is (invalid|empty)"):
        cells_touching_polygon([(4.3, 52.0), (4.31, 52.0), (4.32, 52.0)])
    with pytest.raises(GridCodeError, match="non-finite"):
        cells_touching_polygon([(4.3, 52.0), (float("nan"), 52.0), (4.32, 52.1)])


def test_codes_for_box_is_cells_times_layers():
    bbox = (4.30070, 52.07050, 4.30080, 52.07056)
    codes = codes_for_box(bbox, 10.0, 15.0, layer_m=2.0, reference="AGL")
    cells = brute_force_cells(box(*bbox), 14)
    assert {c.cell for c in codes} == cells
    assert {c.layer for c in codes} == {5, 6, 7}  # [10,12) [12,14) [14,16) meet [10,15)
    assert len(codes) == 3 * len(cells)
    assert {c.reference for c in codes} == {"AGL"}
    with pytest.raises(GridCodeError, match="more than max_codes=100"):
        codes_for_box(bbox, 0.0, 100.0, max_codes=100)


# --------------------------------------------------------------------------- voxels
def _voxel_oracle(frame: Frame, grid: GridSpec, i: int, j: int, k: int,
                  layer_m: float) -> set[GridCode]:
    x0, y0 = grid.x0_m + i * grid.dx_m, grid.y0_m + j * grid.dx_m
    xs = np.array([x0, x0 + grid.dx_m, x0 + grid.dx_m, x0])
    ys = np.array([y0, y0, y0 + grid.dx_m, y0 + grid.dx_m])
    lon, lat = frame.to_wgs84(xs, ys)
    foot = Polygon(zip(lon, lat, strict=True))
    z0 = grid.z0_m + k * grid.dz_m
    z1 = z0 + grid.dz_m
    layers = [n for n in range(-1000, 1000) if n * layer_m < z1 and (n + 1) * layer_m > z0]
    return {GridCode(c, n, layer_m) for c in brute_force_cells(foot, 14) for n in layers}


@pytest.mark.parametrize("lon0, lat0, z0", [(4.3, 52.07, -3.0), (139.7, 35.68, 1.0),
                                            (-70.6, -33.4, 500.0)])
def test_cells_for_voxels_equals_oracle(lon0, lat0, z0):
    rng = np.random.default_rng(int(abs(lon0) * 10))
    frame = Frame(lon0, lat0)
    grid = GridSpec(x0_m=-500.0, y0_m=-400.0, z0_m=z0, dx_m=2.0, dz_m=2.0,
                    nx=500, ny=400, nz=60)
    ijk = np.stack([rng.integers(0, 500, 25), rng.integers(0, 400, 25),
                    rng.integers(0, 60, 25)], axis=1)
    ijk = np.concatenate([ijk, ijk[:3] + [1, 0, 0], ijk[:3] + [0, 0, 1]])  # neighbours
    for layer_m in (2.0, 3.0):
        got = cells_for_voxels(frame, grid, ijk, layer_m=layer_m)
        assert len(got) == len(ijk)
        for (i, j, k), codes in zip(ijk, got, strict=True):
            assert codes == _voxel_oracle(frame, grid, int(i), int(j), int(k), layer_m)


def test_cells_for_voxels_rejects_bad_indices():
    grid = GridSpec(x0_m=0.0, y0_m=0.0, z0_m=0.0, dx_m=2.0, dz_m=2.0, nx=4, ny=4, nz=4)
    with pytest.raises(GridCodeError, match="voxel \\(4, 0, 0\\) is outside the grid"):
        cells_for_voxels(Frame(4.3, 52.0), grid, [[4, 0, 0]])
    with pytest.raises(GridCodeError, match="\\(n, 3\\) integer array"):
        cells_for_voxels(Frame(4.3, 52.0), grid, [[0.5, 0, 0]])
    assert cells_for_voxels(Frame(4.3, 52.0), grid, np.zeros((0, 3), dtype=int)) == []
