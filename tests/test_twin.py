"""The Twin container: grid planning, fields, index, dense windows, save/load, limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from skytwin.airspace.building import Building, LoadResult, Skipped
from skytwin.airspace.errors import MalformedInputError, OutsideTwinError
from skytwin.airspace.frame import Frame
from skytwin.airspace.twin import MAX_EXTENT_M, Twin, TwinTooLargeError, build_twin
from skytwin.fixtures.synthetic_city import generate_city, ground_at, synthetic_frame
from tests.naive import raster as naive

FRAME = Frame(4.30, 52.08)


def bld(bid, geom, top, ground=0.0):
    return Building(bid, shapely.orient_polygons(geom), base_m=ground, top_m=top,
                    ground_m=ground)


@pytest.fixture(scope="module")
def small_city():
    return generate_city(size_m=500, n_buildings=200, seed=3)


@pytest.fixture(scope="module")
def small_twin(small_city):
    return build_twin(small_city, frame=synthetic_frame(), clearance_m=4.0)


# -- grid -----------------------------------------------------------------------------
def test_grid_covers_buildings_with_margin_and_layers_reach_ceiling():
    twin = build_twin([bld("a", box(0, 0, 10, 10), 20.0)], frame=FRAME,
                      resolution_m=2.0, layer_m=2.0, clearance_m=5.0, margin_m=10.0)
    g = twin.grid
    assert (g.x0_m, g.y0_m) == (-10.0, -10.0) and (g.x1_m, g.y1_m) == (20.0, 20.0)
    assert g.z0_m == 0.0 and g.z1_m >= 120.0 + 2.0
    assert twin.floor_k[10, 10] == 13        # 25 m obstacle top -> layers 0..12 blocked
    assert twin.floor_k[0, 0] == 1           # the ground layer only


def test_tall_building_raises_layers_above_ceiling():
    twin = build_twin([bld("t", box(0, 0, 5, 5), 300.0, ground=12.3)], frame=FRAME)
    assert twin.grid.z0_m == 12.0
    assert twin.grid.z1_m >= 305.0 + twin.grid.dz_m


def test_default_margin_is_clearance_plus_three_cells():
    twin = build_twin([bld("a", box(0, 0, 10, 10), 20.0)], frame=FRAME, clearance_m=5.0)
    assert twin.grid.x0_m <= -11.0 and twin.grid.x1_m >= 21.0


# -- fields ---------------------------------------------------------------------------
def test_fields_match_oracles_on_synthetic_city(small_city, small_twin):
    g = small_twin.grid
    polys = [b.footprint for b in small_city]
    tops = np.array([b.top_m for b in small_city])
    sl = (slice(0, 60), slice(0, 60))  # a window of the grid is enough for the oracle
    args = (g.x0_m, g.y0_m, g.dx_m, 60, 60)
    top = naive.top_oracle(polys, tops, *args)
    ctop = naive.clear_top_oracle(polys, tops, 4.0, *args)
    have = np.isfinite(top)
    assert np.all(small_twin.top_m[sl][have] >= top[have].astype(np.float32))
    have = np.isfinite(ctop)
    assert np.all(small_twin.clear_top_m[sl][have] >= ctop[have].astype(np.float32))
    assert np.all(small_twin.clear_top_m >= small_twin.top_m)
    assert np.all(small_twin.top_m >= small_twin.ground_m)


def test_ground_from_buildings_spreads_by_nearest_neighbour():
    twin = build_twin([bld("w", box(0, 0, 4, 4), 20.0, ground=5.0),
                       bld("e", box(40, 0, 44, 4), 30.0, ground=15.0)], frame=FRAME,
                      clearance_m=0.0, margin_m=4.0)
    g = twin.grid
    i_w, j = g.column_of(-3.0, 2.0)
    i_e, _ = g.column_of(47.0, 2.0)
    assert twin.ground_m[i_w, j] == 5.0 and twin.ground_m[i_e, j] == 15.0
    assert g.z0_m == 5.0


def test_ground_from_terrain_samples_is_interpolated():
    xs, ys = np.meshgrid(np.linspace(-50, 50, 11), np.linspace(-50, 50, 11))
    z = 10.0 + 0.1 * xs          # a plane: linear interpolation is exact
    terrain = np.column_stack([xs.ravel(), ys.ravel(), z.ravel()])
    twin = build_twin([bld("a", box(-5, -5, 5, 5), 40.0, ground=10.0)], frame=FRAME,
                      terrain_xyz_m=terrain, margin_m=20.0)
    g = twin.grid
    xc = g.x0_m + (np.arange(g.nx) + 0.5) * g.dx_m
    assert np.allclose(twin.ground_m[:, 0], 10.0 + 0.1 * xc, atol=1e-4)
    assert twin.meta["has_terrain"] is True


def test_no_ground_anywhere_defaults_to_zero():
    twin = build_twin([bld("a", box(0, 0, 3, 3), 9.0)], frame=FRAME)
    assert np.all(twin.ground_m == 0.0)


# -- index ----------------------------------------------------------------------------
def test_buildings_near_equals_brute_force(small_city, small_twin):
    rng = np.random.default_rng(1)
    polys = np.array([b.footprint for b in small_city], dtype=object)
    for x, y, r in zip(rng.uniform(-250, 250, 40), rng.uniform(-250, 250, 40),
                       rng.uniform(0, 30, 40), strict=True):
        want = np.flatnonzero(shapely.distance(polys, shapely.Point(x, y)) <= r)
        assert small_twin.buildings_near(x, y, r).tolist() == want.tolist()
    with pytest.raises(ValueError, match="radius_m must be >= 0"):
        small_twin.buildings_near(0, 0, -1)


def test_building_arrays(small_city, small_twin):
    assert len(small_twin.bld_top_m) == len(small_city)
    assert np.array_equal(small_twin.bld_ground_m, [b.ground_m for b in small_city])
    assert np.allclose(small_twin.bld_ground_m,
                       ground_at(*shapely.get_coordinates(
                           shapely.centroid(small_twin.footprints)).T))


# -- dense windows and blocked fraction ----------------------------------------------
def test_blocked_dense_agrees_with_floor_k(small_twin):
    g = small_twin.grid
    win = small_twin.blocked_dense(10, 70, 5, 50, 2, 40)
    assert win.dtype == np.uint8 and win.shape == (60, 45, 38)
    for i, j, k in np.random.default_rng(0).integers(0, (60, 45, 38), (2000, 3)):
        assert win[i, j, k] == int(k + 2 < small_twin.floor_k[10 + i, 5 + j])
    full = small_twin.blocked_dense(0, g.nx, 0, g.ny)
    assert full.shape == g.shape
    assert math.isclose(full.mean(), small_twin.blocked_fraction(), rel_tol=1e-12)


def test_blocked_dense_rejects_windows_outside(small_twin):
    g = small_twin.grid
    with pytest.raises(OutsideTwinError, match="outside the grid"):
        small_twin.blocked_dense(0, g.nx + 1, 0, 5)
    with pytest.raises(OutsideTwinError, match="empty or outside"):
        small_twin.blocked_dense(5, 5, 0, 5)


# -- save / load ----------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
def test_save_load_round_trip_is_identical(tmp_path, compress):
    city = generate_city(size_m=400, n_buildings=120, seed=9)
    courtyard = box(500, 0, 540, 40).difference(box(510, 10, 530, 30))
    city.append(Building("yard", shapely.orient_polygons(courtyard), base_m=1.0,
                         top_m=25.5, ground_m=1.0, kind="BuildingPart", parent_id="p"))
    twin = build_twin(LoadResult(city, [Skipped("x1", "no geometry")], synthetic_frame(),
                                 "EPSG:4326", True, "/tmp/city.json", "cityjson",
                                 {"Building": 121}), clearance_m=3.0)
    path = twin.save(tmp_path / "city.twin", compress=compress)
    assert path.exists() and path.name == "city.twin"
    back = Twin.load(path)
    assert back.frame == twin.frame and back.grid == twin.grid
    for name in ("ground_m", "top_m", "clear_top_m", "floor_k", "bld_top_m",
                 "bld_base_m", "bld_ground_m"):
        a, b = getattr(twin, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert len(back.buildings) == len(twin.buildings)
    for a, b in zip(twin.buildings, back.buildings, strict=True):
        assert shapely.equals_exact(a.footprint, b.footprint, tolerance=0.0)
        assert (a.id, a.kind, a.parent_id, a.top_m, a.base_m, a.ground_m) == \
            (b.id, b.kind, b.parent_id, b.top_m, b.base_m, b.ground_m)
    assert back.meta == twin.meta
    assert back.summary() == twin.summary()
    assert back.meta["skipped"] == [{"object_id": "x1", "reason": "no geometry"}]


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"not a twin")
    with pytest.raises(MalformedInputError, match="not a SkyTwin twin file"):
        Twin.load(p)


# -- summary, progress, validation, limits --------------------------------------------
def test_summary_keys_and_bounds(small_twin):
    s = small_twin.summary()
    for key in ("buildings", "skipped", "bounds_wgs84", "grid", "blocked_fraction",
                "build_s", "peak_mem_mb", "clearance_m"):
        assert key in s
    lon0, lat0, lon1, lat1 = s["bounds_wgs84"]
    assert lon0 < synthetic_frame().lon0_deg < lon1 and lat0 < synthetic_frame().lat0_deg < lat1
    assert set(s["grid"]) == {"nx", "ny", "nz", "dx_m", "dz_m"}
    assert 0.0 < s["blocked_fraction"] < 1.0 and s["peak_mem_mb"] > 0


def test_progress_reports_until_done(small_city):
    calls = []
    build_twin(small_city, frame=synthetic_frame(), progress=lambda d, n: calls.append((d, n)))
    assert calls and calls[-1] == (len(small_city), len(small_city))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_bad_arguments_raise_clear_errors():
    b = [bld("a", box(0, 0, 1, 1), 5.0)]
    with pytest.raises(ValueError, match="needs frame="):
        build_twin(b)
    with pytest.raises(ValueError, match="resolution_m must be > 0"):
        build_twin(b, frame=FRAME, resolution_m=0.0)
    with pytest.raises(ValueError, match="clearance_m must be >= 0"):
        build_twin(b, frame=FRAME, clearance_m=float("nan"))
    with pytest.raises(ValueError, match="no buildings"):
        build_twin([], frame=FRAME)
    with pytest.raises(ValueError, match="terrain_xyz_m must be"):
        build_twin(b, frame=FRAME, terrain_xyz_m=np.zeros((4, 2)))


def test_absurd_extent_is_refused_before_allocating():
    far = [bld("a", box(0, 0, 1, 1), 5.0), bld("b", box(2e5, 0, 2e5 + 1, 1), 5.0)]
    with pytest.raises(TwinTooLargeError, match="more than the 100 km") as e:
        build_twin(far, frame=FRAME)
    assert isinstance(e.value, OutsideTwinError) and isinstance(e.value, ValueError)
    assert MAX_EXTENT_M == 100_000.0


def test_absurd_resolution_is_refused_before_allocating():
    city = [bld("a", box(0, 0, 1, 1), 5.0), bld("b", box(20_000, 20_000, 20_001, 20_001),
                                                 5.0)]
    with pytest.raises(TwinTooLargeError, match="columns at 0.5 m exceeds the limit"):
        build_twin(city, frame=FRAME, resolution_m=0.5)
    with pytest.raises(TwinTooLargeError, match="voxels exceeds the limit"):
        build_twin(city, frame=FRAME, resolution_m=4.0, layer_m=0.05)


def test_ground_spread_on_coarse_grid_for_large_twins(monkeypatch):
    import skytwin.airspace.twin as twin_mod

    monkeypatch.setattr(twin_mod, "FILL_CELLS", 50)
    twin = build_twin([bld("w", box(0, 0, 4, 4), 20.0, ground=5.0),
                       bld("e", box(40, 0, 44, 4), 30.0, ground=15.0)], frame=FRAME,
                      clearance_m=0.0, margin_m=4.0)
    g = twin.grid
    j = g.column_of(2.0, 2.0)[1]
    assert twin.ground_m[g.column_of(2.0, 2.0)] == 5.0      # known cells keep their value
    assert twin.ground_m[g.column_of(-3.0, 2.0)[0], j] == 5.0
    assert twin.ground_m[g.column_of(47.0, 2.0)[0], j] == 15.0
    assert np.all((twin.ground_m >= 5.0) & (twin.ground_m <= 15.0))


def test_wrong_input_types_raise_type_error():
    with pytest.raises(TypeError, match="expects a LoadResult or a list of Building"):
        build_twin([box(0, 0, 1, 1)], frame=FRAME)
    with pytest.raises(TypeError, match="frame must be an airspace.frame.Frame"):
        build_twin([bld("a", box(0, 0, 1, 1), 5.0)], frame=(4.3, 52.0))


# -- real city models (rules, not figures: every sampled protected point is blocked) -----
@pytest.mark.parametrize("rel", ["denhaag/DenHaag_01.city.json",
                                 "helsinki_osm/helsinki_buildings_osm.geojson",
                                 "plateau/52397519_bldg_6697_op.gml",
                                 "plateau/64413325_bldg_6697_op.gml"])
def test_real_city_protected_points_are_blocked(city_data, rel):
    from skytwin.airspace.io import load_city

    res = load_city(city_data / rel)
    c = 5.0
    twin = build_twin(res, clearance_m=c)
    assert twin.summary()["buildings"] == len(res.buildings)
    assert twin.summary()["skipped"] == len(res.skipped)
    assert twin.meta["source"] == [str(res.path)] and twin.meta["fmt"] == res.fmt
    g = twin.grid
    rng = np.random.default_rng(0)
    picks = rng.choice(len(res.buildings), size=min(200, len(res.buildings)),
                       replace=False)
    n = 0
    for b in (res.buildings[k] for k in picks):
        minx, miny, maxx, maxy = b.footprint.bounds
        xy = rng.uniform((minx - c, miny - c), (maxx + c, maxy + c), (60, 2))
        xy = xy[shapely.distance(shapely.points(xy), b.footprint) <= c]
        z = rng.uniform(g.z0_m, b.top_m + c, len(xy))
        z[::5] = b.top_m + c
        i = np.floor((xy[:, 0] - g.x0_m) / g.dx_m).astype(int)
        j = np.floor((xy[:, 1] - g.y0_m) / g.dx_m).astype(int)
        k = np.floor((z - g.z0_m) / g.dz_m).astype(int)
        assert np.all(k < twin.floor_k[i, j]), b.id
        n += len(xy)
    assert n > 500
