"""Beidou grid location codes (airspace.beidou) against hand-derived worked examples.

The expected codes below are derived by hand from the definition in the module
docstring (GB/T 39409-2020 as reconstructed there); each step is written out.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from shapely.geometry import Polygon, box

from skytwin.airspace.beidou import (
    BeidouError,
    codes_for_voxels,
    decode,
    encode,
    height_index,
    height_of_index_m,
    parent,
)
from skytwin.airspace.errors import GridCodeError
from skytwin.airspace.frame import Frame
from skytwin.airspace.grid import GridSpec

# 116°18'45.37"E, 39°59'35.38"N: the example point of the standard's users.
LON_S = 116 * 3600 + 18 * 60 + 45.37  # 418725.37 arc-seconds
LAT_S = 39 * 3600 + 59 * 60 + 35.38  # 143975.38 arc-seconds
LON = LON_S / 3600
LAT = LAT_S / 3600

# Level by level, in arc-seconds (lon | lat), remainder carried to the next level:
# L1  6° = 21600" | 4° = 14400":  418725.37 // 21600 = 19 -> zone 19 + 31 = 50;
#     143975.38 // 14400 = 9 -> band 'J' (A + 9).  Remainders 8325.37 | 14375.38.
#     -> "N50J"
# L2  1800" | 1800": 8325.37 // 1800 = 4 (rem 1125.37); 14375.38 // 1800 = 7
#     (rem 1775.38) -> "47"
# L3  900" | 600": 1125.37 // 900 = 1 (rem 225.37); 1775.38 // 600 = 2 (rem 575.38)
#     Z order 2 * lat + lon = 2 * 2 + 1 = 5 -> "5"
# L4  60" | 60": 225.37 // 60 = 3 (rem 45.37); 575.38 // 60 = 9 (rem 35.38) -> "39"
# L5  4" | 4": 45.37 // 4 = 11 = B (rem 1.37); 35.38 // 4 = 8 (rem 3.38) -> "B8"
# L6  2" | 2": 1.37 // 2 = 0 (rem 1.37); 3.38 // 2 = 1 (rem 1.38); 2 * 1 + 0 -> "2"
# L7  1/4": 1.37 // 0.25 = 5 (rem 0.12); 1.38 // 0.25 = 5 (rem 0.13) -> "55"
# L8  1/32": 0.12 * 32 = 3.84 -> 3 (rem 0.02625); 0.13 * 32 = 4.16 -> 4 (rem 0.005)
#     -> "34"
# L9  1/256": 0.02625 * 256 = 6.72 -> 6 (rem 0.0028125); 0.005 * 256 = 1.28 -> 1
#     (rem 0.00109375) -> "61"
# L10 1/2048": 0.0028125 * 2048 = 5.76 -> 5; 0.00109375 * 2048 = 2.24 -> 2 -> "52"
EXAMPLE_2D = {1: "N50J", 2: "N50J47", 3: "N50J475", 4: "N50J47539", 5: "N50J47539B8",
              6: "N50J47539B82", 7: "N50J47539B8255", 8: "N50J47539B825534",
              9: "N50J47539B82553461", 10: "N50J47539B8255346152"}

# Height 50 m (geodetic):
#   x = 7372800 * ln(1 + 50 / 6378137) / ln(1 + pi / 180)
#     = 7372800 * 7.8392490e-06 / 0.017302733 = 3340.35  ->  n = 3340, sign 0
#   3340 = 0b110_100_001_100 (31 bits: zeros above bit 11). Split 6,3,1,4,4,1,3,3,3,3
#   bits from the top: L1 "00", L2 "0", L3 "0", L4 "0", L5 "0", L6 "0",
#   L7 (bits 11-9) 0b110 = 6, L8 (8-6) 0b100 = 4, L9 (5-3) 0b001 = 1, L10 (2-0) 0b100 = 4.
# 3D = "N" + sign "0" + per level (2D chars + height chars):
#   50J+00, 47+0, 5+0, 39+0, B8+0, 2+0, 55+6, 34+4, 61+1, 52+4
EXAMPLE_3D_50M = {1: "N050J00", 3: "N050J0047050",
                  7: "N050J0047050390B8020556",
                  8: "N050J0047050390B8020556344",
                  10: "N050J0047050390B8020556344611524"}


def test_worked_example_2d_all_levels():
    for level, code in EXAMPLE_2D.items():
        assert encode(LON, LAT, level=level) == code
        assert len(code) == (1, 4, 6, 7, 9, 11, 12, 14, 16, 18, 20)[level]


def test_worked_example_3d():
    assert height_index(50.0) == 3340
    for level, code in EXAMPLE_3D_50M.items():
        assert encode(LON, LAT, 50.0, level) == code
    assert len(EXAMPLE_3D_50M[10]) == 32


def test_decode_worked_example_bounds():
    c = decode("N50J47539B8255")  # level 7: 1/4" cells from the sums above
    lon0_s = 19 * 21600 + 4 * 1800 + 1 * 900 + 3 * 60 + 11 * 4 + 0 * 2 + 5 * 0.25
    lat0_s = 9 * 14400 + 7 * 1800 + 2 * 600 + 9 * 60 + 8 * 4 + 1 * 2 + 5 * 0.25
    assert (c.level, c.is_3d) == (7, False)
    assert c.lon_min_deg == pytest.approx(lon0_s / 3600, abs=1e-12)
    assert c.lon_max_deg == pytest.approx((lon0_s + 0.25) / 3600, abs=1e-12)
    assert c.lat_min_deg == pytest.approx(lat0_s / 3600, abs=1e-12)
    assert c.lat_max_deg == pytest.approx((lat0_s + 0.25) / 3600, abs=1e-12)
    c3 = decode(EXAMPLE_3D_50M[8])
    # level-8 height cell = 2**6 = 64 indices: n in [3328, 3392) (3340 >> 6 = 52; 52*64)
    assert c3.h_min_m == pytest.approx(height_of_index_m(3328))
    assert c3.h_max_m == pytest.approx(height_of_index_m(3392))
    assert c3.h_min_m <= 50.0 < c3.h_max_m
    assert c3.h_max_m - c3.h_min_m == pytest.approx(0.958, abs=0.001)  # ~1/32" tall
    assert decode("n50j47539b82").code == "N50J47539B82"  # lowercase accepted


def test_level_sizes():
    sizes_s = {1: (21600, 14400), 2: (1800, 1800), 3: (900, 600), 4: (60, 60), 5: (4, 4),
               6: (2, 2), 7: (0.25, 0.25), 8: (1 / 32, 1 / 32), 9: (1 / 256, 1 / 256),
               10: (1 / 2048, 1 / 2048)}
    for level, (dlon, dlat) in sizes_s.items():
        c = decode(encode(LON, LAT, level=level))
        assert (c.lon_max_deg - c.lon_min_deg) * 3600 == pytest.approx(dlon, abs=1e-9)
        assert (c.lat_max_deg - c.lat_min_deg) * 3600 == pytest.approx(dlat, abs=1e-9)
    # height cell at level 7 near the ground: 2**9 indices, ~7.66 m (1/4" ~ 7.7 m)
    c = decode(encode(LON, LAT, 1.0, 7))
    assert c.h_max_m - c.h_min_m == pytest.approx(7.664, abs=0.001)


def _random_point(rng):
    return (rng.uniform(-180, 180), rng.uniform(-87.99, 87.99), rng.uniform(-200, 9000))


def test_round_trip_and_prefixes_every_level():
    rng = random.Random(2020)
    for _ in range(400):
        lon, lat, h = _random_point(rng)
        prev2 = prev3 = None
        for level in range(1, 11):
            c2, c3 = encode(lon, lat, level=level), encode(lon, lat, h, level)
            for code in (c2, c3):
                cell = decode(code)
                assert cell.level == level and cell.code == code
                assert cell.lon_min_deg <= lon <= cell.lon_max_deg
                assert cell.lat_min_deg <= lat <= cell.lat_max_deg
                assert cell.contains(lon, lat, h)
            cell3 = decode(c3)
            assert cell3.h_min_m <= h < cell3.h_max_m
            if prev2 is not None:  # a coarser code is a prefix of the finer one
                assert c2.startswith(prev2) and c3.startswith(prev3)
                assert parent(c2, level - 1) == prev2 and parent(c3, level - 1) == prev3
            prev2, prev3 = c2, c3


def test_hemispheres_are_mirror_images():
    rng = random.Random(5)
    for _ in range(300):
        lon, lat = rng.uniform(0.001, 179.9), rng.uniform(0.001, 87.9)
        ne = encode(lon, lat, level=10)
        nw = encode(-lon, lat, level=10)
        se = encode(lon, -lat, level=10)
        sw = encode(-lon, -lat, level=10)
        zone = int(ne[1:3])
        assert nw == "N" + f"{61 - zone:02d}" + ne[3:]  # zone 31+k <-> 30-k
        assert se == "S" + ne[1:]
        assert sw == "S" + nw[1:]
        assert 31 <= zone <= 60 and int(nw[1:3]) <= 30
        # decoding mirrors the bounds
        a, b = decode(ne), decode(sw)
        assert b.lon_min_deg == pytest.approx(-a.lon_max_deg, abs=1e-12)
        assert b.lat_max_deg == pytest.approx(-a.lat_min_deg, abs=1e-12)
    # prime meridian / equator: 0 is east/north; a W/S cell keeps its side nearest 0
    assert encode(0.0, 0.0, level=2) == "N31A00"
    assert encode(-6.0, 1.0, level=1) == "N29A"  # |lon| = 6 starts zone 29, not 30
    assert encode(-5.9999, 1.0, level=1) == "N30A"


def test_negative_heights_below_the_ellipsoid():
    # sign 1, magnitude |floor(x)|: -0.01 m -> x = -0.67 -> n = -1 -> "1" ... "1" at L10
    code = encode(LON, LAT, -0.01, 10)
    assert code[1] == "1" and code[-1] == "1"
    cell = decode(code)
    assert cell.h_min_m <= -0.01 < cell.h_max_m
    assert height_index(-0.01) == -1 and height_index(0.0) == 0


@pytest.mark.parametrize("code, why", [
    ("X50J", "must start with N or S"),
    ("N50J4", "length 5 is not that of a 2D code"),
    ("N61J", "level 1 longitude zone '61' must be 01..60"),
    ("N50W", "level 1 latitude band 'W' must be a letter A..V"),
    ("N50JC7", "level 2 longitude: 'C' is not a digit in 0..B"),
    ("N50J486", "level 2 latitude: '8' is not a digit in 0..7"),
    ("N50J476", "level 3: '6' is not a digit in 0..5"),
    ("N50J475FA", "level 4 longitude: 'F' is not a digit in 0..E"),
    ("N250J00", "height sign '2' must be 0 (above) or 1 (below)"),
    ("N050J64", "level 1 height '64' must be two digits 00..63"),
    ("N050J0047850", "level 2 height: '8' is not a digit in 0..7"),
])
def test_malformed_codes_raise_typed_errors(code, why):
    with pytest.raises(BeidouError) as e:
        decode(code)
    assert why in str(e.value) and repr(code) in str(e.value)
    assert isinstance(e.value, GridCodeError) and isinstance(e.value, ValueError)


def test_bad_points_and_levels():
    with pytest.raises(BeidouError, match="polar cap"):
        encode(10.0, 88.0)
    with pytest.raises(BeidouError, match="level must be an integer in 1..10"):
        encode(10.0, 10.0, level=11)
    with pytest.raises(BeidouError, match="lon_deg must be a number"):
        encode(190.0, 10.0)
    with pytest.raises(BeidouError, match="finer than the code's level 3"):
        parent("N50J475", 4)


# --------------------------------------------------------------------------- voxels
def _oracle(frame, grid, i, j, k, level, geoid_m):
    """Every level cell (from decode's bounds) meeting the voxel, brute force."""
    x0, y0 = grid.x0_m + i * grid.dx_m, grid.y0_m + j * grid.dx_m
    xs = np.array([x0, x0 + grid.dx_m, x0 + grid.dx_m, x0])
    ys = np.array([y0, y0, y0 + grid.dx_m, y0 + grid.dx_m])
    lon, lat = frame.to_wgs84(xs, ys)
    foot = Polygon(zip(lon, lat, strict=True))
    clon, clat = float(np.mean(lon)), float(np.mean(lat))
    size = decode(encode(clon, clat, level=level))
    dlon = size.lon_max_deg - size.lon_min_deg
    dlat = size.lat_max_deg - size.lat_min_deg
    codes2d = set()
    for a in range(-6, 7):
        for b in range(-6, 7):
            code = encode(clon + a * dlon, clat + b * dlat, level=level)
            c = decode(code)
            if box(c.lon_min_deg, c.lat_min_deg, c.lon_max_deg, c.lat_max_deg).intersects(foot):
                codes2d.add(code)
    h_lo = grid.z0_m + k * grid.dz_m + geoid_m
    h_hi = h_lo + grid.dz_m
    heights = set()
    for n in range(height_index(h_lo) - 70, height_index(h_hi) + 70):
        hc = decode(encode(clon, clat, height_of_index_m(n) + 1e-6, level))
        if hc.h_min_m < h_hi and hc.h_max_m > h_lo:
            heights.add(hc.code)
    # 3D code = interleave(2D, height): rebuild from a representative point per pair
    out = set()
    for code in codes2d:
        c = decode(code)
        px, py = 0.5 * (c.lon_min_deg + c.lon_max_deg), 0.5 * (c.lat_min_deg + c.lat_max_deg)
        for hcode in heights:
            hc = decode(hcode)
            out.add(encode(px, py, 0.5 * (hc.h_min_m + hc.h_max_m), level))
    return codes2d, out


@pytest.mark.parametrize("lon0, lat0, level, geoid_m", [
    (116.3126, 39.9931, 8, -9.0), (121.47, 31.23, 7, 10.0), (4.3, 52.07, 8, 43.0),
    (-0.001, 0.001, 7, 0.0)])
def test_codes_for_voxels_equals_oracle(lon0, lat0, level, geoid_m):
    rng = np.random.default_rng(level * 100 + int(abs(lat0)))
    frame = Frame(lon0, lat0)
    grid = GridSpec(x0_m=-300.0, y0_m=-300.0, z0_m=-1.0, dx_m=2.0, dz_m=2.0,
                    nx=300, ny=300, nz=50)
    ijk = np.stack([rng.integers(0, 300, 12), rng.integers(0, 300, 12),
                    rng.integers(0, 50, 12)], axis=1)
    got3 = codes_for_voxels(frame, grid, ijk, level, geoid_height_m=geoid_m)
    got2 = codes_for_voxels(frame, grid, ijk, level, dimension=2)
    for (i, j, k), g3, g2 in zip(ijk, got3, got2, strict=True):
        want2, want3 = _oracle(frame, grid, int(i), int(j), int(k), level, geoid_m)
        assert g2 == want2
        assert g3 == want3


def test_codes_for_voxels_contains_voxel_points():
    frame = Frame(116.3126, 39.9931)
    grid = GridSpec(x0_m=-50.0, y0_m=-50.0, z0_m=30.0, dx_m=2.0, dz_m=2.0,
                    nx=50, ny=50, nz=20)
    rng = np.random.default_rng(1)
    ijk = np.stack([rng.integers(0, 50, 20), rng.integers(0, 50, 20),
                    rng.integers(0, 20, 20)], axis=1)
    codes = codes_for_voxels(frame, grid, ijk, 8, geoid_height_m=-9.0)
    for (i, j, k), cs in zip(ijk, codes, strict=True):
        for _ in range(10):  # random points of the voxel encode into its codes
            x = grid.x0_m + (i + rng.random()) * grid.dx_m
            y = grid.y0_m + (j + rng.random()) * grid.dx_m
            z = grid.z0_m + (k + rng.random()) * grid.dz_m
            lon, lat = frame.to_wgs84(x, y)
            assert encode(float(lon), float(lat), z - 9.0, 8) in cs
    with pytest.raises(BeidouError, match="dimension must be 2 or 3"):
        codes_for_voxels(frame, grid, ijk, 8, dimension=4)
    with pytest.raises(BeidouError, match="geoid_height_m"):
        codes_for_voxels(frame, grid, ijk, 8, geoid_height_m=float("nan"))
