"""Ground risk (issue 13): the search with a risk multiplier against a naive Dijkstra,
SORA bands and iGRC against a hand-computed table, the population estimate of a few
hand-computed buildings, and the population file formats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import box

from skytwin.airspace.building import Building
from skytwin.airspace.frame import Frame
from skytwin.airspace.grid import GridSpec
from skytwin.airspace.risk import (
    DroneClass,
    estimate_population,
    igrc,
    period_at,
    population_band,
    read_population,
)
from skytwin.planner.search import SearchGrid, find_path
from tests.naive.search import dijkstra_cost, path_cost


# ------------------------------------------------------------------ search with risk
@pytest.mark.parametrize("seed", range(12))
def test_risk_weighted_search_matches_naive_dijkstra(seed):
    rng = np.random.default_rng(100 + seed)
    shape = tuple(int(s) for s in rng.integers(4, 9, size=3))
    blocked = (rng.random(shape) < rng.uniform(0.05, 0.35)).astype(np.uint8)
    free = np.argwhere(blocked == 0)
    i, j = rng.choice(len(free), size=2, replace=False)
    s, g = tuple(free[i]), tuple(free[j])
    risk = rng.random(shape[:2]) ** 2                     # normalised risk in [0, 1]
    w = float(rng.choice([0.5, 2.0, 10.0]))
    mult = 1.0 + w * risk
    want = dijkstra_cost(blocked, s, g, "strict", col_mult=mult)
    if math.isinf(want):
        return
    p = find_path(blocked, s, g, col_mult=mult)
    assert p.cost == pytest.approx(want, rel=1e-9)
    # the path's own cost, recomputed move by move, is the reported cost
    cost = sum(math.dist(a, b) * mult[b[0], b[1]]
               for a, b in zip(p.indices[:-1], p.indices[1:], strict=True))
    assert cost == pytest.approx(p.cost, rel=1e-9)
    # and no cheaper than the plain shortest path's length
    assert p.cost >= dijkstra_cost(blocked, s, g, "strict") - 1e-9
    # a SearchGrid carrying the multiplier gives the same answer
    q = find_path(SearchGrid(blocked, None, mult), s, g)
    assert q.cost == p.cost


def test_risk_multiplier_detours_around_a_crowded_strip():
    blocked = np.zeros((9, 9, 1), np.uint8)
    mult = np.ones((9, 9))
    mult[2:7, 0:7] = 5.0          # a crowded block between start and goal, open at y>=7
    p = find_path(blocked, (0, 3, 0), (8, 3, 0), col_mult=mult)
    assert max(p.indices[:, 1]) >= 7  # flew around, not over
    assert path_cost(blocked, p.indices, "strict") > 8.0


def test_col_mult_must_be_at_least_one():
    with pytest.raises(ValueError, match=">= 1"):
        find_path(np.zeros((3, 3, 1), np.uint8), (0, 0, 0), (2, 2, 0),
                  col_mult=np.full((3, 3), 0.5))


# ------------------------------------------------------------------ classification
# hand-computed from SORA 2.5 (bands: <5, <50, <500, <5000, <50000, >=50000 per km²;
# iGRC column 1 m / 25 m/s: 2, 3, 4, 5, 6, 7; column 8 m / 75 m/s: 4, 5, 6, 7, 8, n/a)
HAND_TABLE = [
    # density,  band, iGRC 1 m,  iGRC 8 m
    (0.0,        1,    2,         4),
    (4.999,      1,    2,         4),
    (5.0,        2,    3,         5),
    (49.0,       2,    3,         5),
    (50.0,       3,    4,         6),
    (499.9,      3,    4,         6),
    (500.0,      4,    5,         7),
    (4_999.0,    4,    5,         7),
    (5_000.0,    5,    6,         8),
    (49_999.0,   5,    6,         8),
    (50_000.0,   6,    7,         None),
    (250_000.0,  6,    7,         None),
]


@pytest.mark.parametrize(("density", "band", "small", "large"), HAND_TABLE)
def test_sora_band_and_igrc_match_the_hand_table(density, band, small, large):
    assert int(population_band(density)) == band
    assert igrc(band) == small
    assert igrc(band, DroneClass(8.0, 75.0)) == large


def test_drone_beyond_the_table_is_refused():
    with pytest.raises(ValueError, match="beyond SORA"):
        igrc(3, DroneClass(50.0, 250.0))


def test_day_and_night_follow_local_solar_time():
    noon_utc = 1_700_000_000 - 1_700_000_000 % 86400 + 12 * 3600
    assert period_at(noon_utc, 0.0) == "day"
    assert period_at(noon_utc, 150.0) == "night"        # 22:00 solar
    assert period_at(noon_utc - 6 * 3600, 0.0) == "night"  # 06:00


# ------------------------------------------------------------------ estimate
GRID = GridSpec(x0_m=0.0, y0_m=0.0, z0_m=0.0, dx_m=2.0, dz_m=2.0, nx=50, ny=50, nz=10)


def _b(bid, x0, y0, x1, y1, top, tags, source="height", kind="Building", parent=None):
    return Building(bid, box(x0, y0, x1, y1), 0.0, top, 0.0, kind, parent, source, tags)


def test_estimate_matches_hand_computed_people():
    bs = [
        # 20 x 20 m apartments, 5 storeys from the tag: 2000 m² x 2.4 / 100 = 48 at night
        _b("a", 2, 2, 22, 22, 15.0, {"building": "apartments", "building:levels": "5"}),
        # 10 x 10 m office, 12 m high -> 4 storeys: 400 m² x 4.0 / 100 = 16 by day
        _b("o", 60, 60, 70, 70, 12.0, {"building": "office"}),
        # a garage: nobody
        _b("g", 30, 2, 40, 12, 3.0, {"building": "garage"}),
        # unknown height, unknown use: 4 storeys assumed: 100 m² x 4 x 1.5 / 100 = 6
        _b("u", 60, 2, 70, 12, 999.0, None, source="unknown"),
        # a part inside "a" is not counted twice
        _b("a-part", 5, 5, 10, 10, 15.0, {"building:part": "yes"}, kind="BuildingPart"),
    ]
    layer = estimate_population(bs, GRID, cell_m=50.0)
    km2 = (50.0 / 1000.0) ** 2
    night = layer.density_night * km2   # people per cell
    day = layer.density_day * km2
    assert layer.shape == (2, 2)
    assert night[0, 0] == pytest.approx(48.0, rel=1e-5)
    assert day[0, 0] == pytest.approx(2000 * 1.2 / 100, rel=1e-5)
    assert day[1, 1] == pytest.approx(16.0, rel=1e-5)
    assert night[1, 1] == pytest.approx(0.4, rel=1e-5)
    assert night[1, 0] == pytest.approx(6.0, rel=1e-5)
    assert layer.notes["parts_skipped"] == 1
    assert layer.notes["unknown_height_assumed_storeys"] == 1


def test_estimate_spreads_a_building_over_the_cells_it_covers():
    # 40 x 20 m across the x = 50 m cell edge, 3 storeys from 9 m, unknown use (day 2.0)
    layer = estimate_population([_b("x", 30, 10, 70, 30, 9.0, {})], GRID, cell_m=50.0)
    people = layer.density_day * (0.05 ** 2)
    total = 800 * 3 * 2.0 / 100
    assert people[0, 0] == pytest.approx(total * 20 / 40, rel=1e-5)
    assert people[1, 0] == pytest.approx(total * 20 / 40, rel=1e-5)


def test_population_csv_and_ascii_grid(tmp_path):
    frame = Frame(24.94, 60.17)
    lon, lat = frame.to_wgs84(np.array([10.0, 80.0]), np.array([10.0, 80.0]))
    csv = tmp_path / "pop.csv"
    csv.write_text("lon,lat,people\n"
                   f"{lon[0]:.9f},{lat[0]:.9f},25\n{lon[1]:.9f},{lat[1]:.9f},100\n")
    layer = read_population(csv, frame, GRID, cell_m=50.0)
    people = layer.density_night * 0.05 ** 2
    assert people[0, 0] == pytest.approx(25.0, rel=1e-5)
    assert people[1, 1] == pytest.approx(100.0, rel=1e-5)
    # 100 people in 0.0025 km² = 40,000 /km²: band 5 (< 50,000)
    assert int(layer.bands("night")[1, 1]) == 5
    asc = tmp_path / "pop.asc"
    asc.write_text(f"ncols 1\nnrows 1\nxllcorner {lon[0]:.9f}\nyllcorner {lat[0]:.9f}\n"
                   "cellsize 0.0001\nNODATA_value -9999\n50\n")
    grid_layer = read_population(asc, frame, GRID, cell_m=50.0)
    assert (grid_layer.density_day * 0.05 ** 2)[0, 0] == pytest.approx(50.0, rel=1e-5)
    assert grid_layer.notes["outside"] == 0


def test_population_file_errors_name_the_file(tmp_path):
    from skytwin.airspace.errors import MalformedInputError
    bad = tmp_path / "pop.csv"
    bad.write_text("x,y\n1,2\n")
    with pytest.raises(MalformedInputError, match="pop.csv"):
        read_population(bad, Frame(0, 0), GRID)
