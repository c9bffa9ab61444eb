"""Route planning end to end: every route in every city passes the independent validator.

The planner and the validator share no checking code (planner/exact.py + STRtree vs
planner/validate.py + rtree), so a clearance bug in one is caught by the other. Origin
and destination pairs are random (seeded) over each twin's whole extent: the rules are
tested, not hand-picked examples.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zlib

import numpy as np
import pytest
from shapely.geometry import LineString, Point

from skytwin.airspace.errors import AirspaceError, OutsideTwinError
from skytwin.airspace.io import load_city
from skytwin.airspace.twin import build_twin
from skytwin.airspace.zones import Altitude, Circle, Zone, ZoneLayer, ground_range_from_grid
from skytwin.planner.route import GoalBlocked, PlanError, Planner, RouteRequest, StartBlocked
from skytwin.planner.timing import SpeedProfile
from skytwin.planner.validate import RouteValidator

from tests.conftest import CITY_DATA, FIXTURES

CITIES = {
    "helsinki": (FIXTURES / "city" / "helsinki_centre.geojson", 1000),
    "denhaag": (CITY_DATA / "denhaag" / "DenHaag_01.city.json", 1000),
    "yokosuka": (CITY_DATA / "plateau" / "52397519_bldg_6697_op.gml", 300),
    "sapporo": (CITY_DATA / "plateau" / "64413325_bldg_6697_op.gml", 300),
}


@pytest.fixture(scope="module", params=sorted(CITIES))
def city(request):
    path, n = CITIES[request.param]
    if not path.exists():
        pytest.skip(f"{path} not found")
    twin = build_twin(load_city(str(path)))
    return request.param, twin, n


@pytest.fixture(scope="module")
def synthetic_twin():
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    frame = synthetic_frame()
    return build_twin(generate_city(size_m=1500.0, n_buildings=1200, seed=7, frame=frame),
                      frame=frame)


def _random_pairs(twin, n, seed):
    """Random WGS84 pairs inside the twin's grid (sampled in the local frame)."""
    g = twin.grid
    rng = np.random.default_rng(seed)
    x = rng.uniform(g.x0_m, g.x1_m, size=(n, 2))
    y = rng.uniform(g.y0_m, g.y1_m, size=(n, 2))
    lon, lat = twin.frame.to_wgs84(x, y)
    return [((lon[k, 0], lat[k, 0]), (lon[k, 1], lat[k, 1])) for k in range(n)]


def _run_many(twin, n, seed):
    planner = Planner(twin)
    validator = RouteValidator(twin.buildings, twin.clearance_m)
    stats = {"ok": 0, "blocked_end": 0, "no_route": 0, "problems": [], "ratios": []}
    for s, g in _random_pairs(twin, n, seed):
        req = RouteRequest(s, g, depart_s=1_800_000_000.0)
        try:
            r = planner.plan(req)
        except (StartBlocked, GoalBlocked) as exc:
            # independently confirm the end really is inside the named building
            kind, bid = exc.blocking
            assert kind == "building"
            lonlat = s if isinstance(exc, StartBlocked) else g
            x, y = twin.frame.to_local(*lonlat)
            fp = {b.id: b for b in twin.buildings}[bid]
            d = fp.footprint.distance(Point(x, y))
            if exc.code.endswith("_in_building"):
                assert d < 1e-6, (bid, lonlat)
            else:  # too close to a building taller than the ceiling allows to clear
                # (within the clearance of the point's search cell, at most 2 cells)
                assert d <= twin.clearance_m + 2 * math.sqrt(2.0) * twin.grid.dx_m
                assert fp.top_m + twin.clearance_m > (
                    twin.ground_m[twin.grid.column_of(x, y)] + req.ceiling_agl_m - 2 *
                    twin.grid.dz_m)
            assert bid in str(exc)
            stats["blocked_end"] += 1
            continue
        except PlanError as exc:
            assert "no route" in str(exc)
            stats["no_route"] += 1
            continue
        rep = validator.check(r.xyz_m, r.trajectory.t_s, req.speeds)
        if not rep.ok:
            stats["problems"].append((s, g, str(rep)))
        # smoothing never lengthens the voxel path and never beats the straight line
        # (rounding each waypoint to 1 cm may add up to ~1.5 cm per waypoint)
        assert r.length_m <= r.voxel_length_m + 0.015 * len(r.xyz_m)
        assert r.length_m >= r.straight_m - 1e-6
        assert r.alt_agl_m[1:-1].max() <= req.ceiling_agl_m + 1e-6
        stats["ratios"].append(r.length_m / max(r.straight_m, 1e-9))
        stats["ok"] += 1
    return stats


def test_random_routes_pass_independent_validator(city):
    name, twin, n = city
    stats = _run_many(twin, n, seed=zlib.crc32(name.encode()))
    assert stats["problems"] == []
    assert stats["ok"] >= n // 4, stats  # most random pairs are plannable
    assert stats["no_route"] <= n // 20, stats


def test_random_routes_synthetic_city(synthetic_twin):
    stats = _run_many(synthetic_twin, 400, seed=3)
    assert stats["problems"] == []
    assert stats["ok"] >= 100


def _open_pair(twin, seed=0, min_dist_m=300.0):
    """Two plannable points at least ``min_dist_m`` apart (found by planning)."""
    planner = Planner(twin)
    for s, g in _random_pairs(twin, 500, seed):
        x0, y0 = twin.frame.to_local(*s)
        x1, y1 = twin.frame.to_local(*g)
        if math.hypot(x1 - x0, y1 - y0) < min_dist_m:
            continue
        try:
            return s, g, planner.plan(RouteRequest(s, g))
        except AirspaceError:
            continue
    raise AssertionError("no plannable pair found")


@pytest.fixture(scope="module")
def helsinki():
    return build_twin(load_city(str(CITIES["helsinki"][0])))


T_1000 = 1_800_000_000.0  # a reference "10:00"


def _wall_zone(twin, route, window):
    """A tall circle zone sitting on the middle of ``route``'s cruise."""
    mid = route.xyz_m[len(route.xyz_m) // 2]
    lon, lat = twin.frame.to_wgs84(mid[0], mid[1])
    return Zone(id="Z-TEST", circle=Circle(lon, lat, 60.0), lower=Altitude(0.0, "AGL"),
                upper=Altitude(400.0, "AMSL"), window=window, reason="test event")


def test_zone_blocks_only_while_active(helsinki):
    s, g, free_route = _open_pair(helsinki, seed=11)
    zone = _wall_zone(helsinki, free_route, (T_1000, T_1000 + 7200.0))
    layer = ZoneLayer(helsinki.frame, [zone])
    lz = layer.local("Z-TEST")
    planner = Planner(helsinki, layer)
    validator = RouteValidator(helsinki.buildings, helsinki.clearance_m)
    gr = ground_range_from_grid(helsinki.grid, helsinki.ground_m)
    # the unconstrained route crosses the zone volume
    hit = validator.check(free_route.xyz_m, np.full(len(free_route.xyz_m), T_1000 + 3600),
                          zones=[lz], ground_range=gr)
    assert not hit.ok and "Z-TEST" in str(hit)
    # 11:00: the zone is active, the route must go around it
    at_11 = planner.plan(RouteRequest(s, g, depart_s=T_1000 + 3600))
    rep = validator.check(at_11.xyz_m, at_11.trajectory.t_s, SpeedProfile(), zones=[lz],
                          ground_range=gr)
    assert rep.ok, str(rep)
    assert not np.array_equal(at_11.xyz_m, free_route.xyz_m)
    assert "Z-TEST" in at_11.zones_considered
    # 13:00: the zone has ended, the route is the unconstrained one
    at_13 = planner.plan(RouteRequest(s, g, depart_s=T_1000 + 3 * 3600))
    assert "Z-TEST" not in at_13.zones_considered
    assert at_13.length_m == pytest.approx(free_route.length_m, abs=1e-6)


def test_goal_inside_active_zone_is_refused_with_zone_named(helsinki):
    s, g, _ = _open_pair(helsinki, seed=12)
    zone = Zone(id="Z-17", circle=Circle(g[0], g[1], 40.0), lower=Altitude(0.0, "AGL"),
                upper=Altitude(120.0, "AGL"), window=None, reason="hospital helipad")
    planner = Planner(helsinki, ZoneLayer(helsinki.frame, [zone]))
    with pytest.raises(GoalBlocked) as ei:
        planner.plan(RouteRequest(s, g))
    assert ei.value.blocking == ("zone", "Z-17")
    assert "Z-17" in str(ei.value) and "goal" in str(ei.value)


def test_goal_enclosed_by_ring_of_zones(helsinki):
    """Goal free itself but walled in by zones: 'no route', naming the zones."""
    s, g, _ = _open_pair(helsinki, seed=13, min_dist_m=400.0)
    x, y = helsinki.frame.to_local(*g)
    # a zone polygon has no holes: wall the goal in with two half-rings (55-130 m)
    zones = []
    for k, (a0, a1) in enumerate(((0, 180), (180, 360))):
        angs = np.radians(np.linspace(a0 - 2, a1 + 2, 40))
        outer = [helsinki.frame.to_wgs84(x + 130 * math.cos(a), y + 130 * math.sin(a))
                 for a in angs]
        inner = [helsinki.frame.to_wgs84(x + 55 * math.cos(a), y + 55 * math.sin(a))
                 for a in angs[::-1]]
        zones.append(Zone(id=f"RING-{k}", polygon=tuple(outer + inner),
                          lower=Altitude(0.0, "AGL"), upper=Altitude(500.0, "AMSL"),
                          reason="security perimeter"))
    planner = Planner(helsinki, ZoneLayer(helsinki.frame, zones))
    with pytest.raises(PlanError) as ei:
        planner.plan(RouteRequest(s, g))
    assert "RING-" in str(ei.value)
    assert ei.value.blocking[0] == "zone"


def test_outside_twin_is_a_typed_error(helsinki):
    b = helsinki.bounds_wgs84()
    with pytest.raises(OutsideTwinError, match="outside the twin"):
        Planner(helsinki).plan(RouteRequest((b[0] - 0.05, b[1]), (b[2], b[3])))


def _measured_building(twin):
    """The largest building whose point is held only by buildings of known height (a
    roof pad on an unknown-height building is at the ceiling: nowhere to climb)."""
    for bld in sorted(twin.buildings, key=lambda b: -b.footprint.area):
        p = bld.footprint.representative_point()
        if all(b.height_source != "unknown" for b in twin.buildings
               if b.footprint.intersects(p)):
            return bld, p
    raise AssertionError("no building of known height")


def test_start_inside_building_names_it(helsinki):
    bld, p = _measured_building(helsinki)
    lonlat = helsinki.frame.to_wgs84(p.x, p.y)
    s, g, _ = _open_pair(helsinki, seed=14)
    with pytest.raises(StartBlocked) as ei:
        Planner(helsinki).plan(RouteRequest(lonlat, g))
    # the named building (parts overlap outlines in OSM) really holds the point
    holding = {b.id: b for b in helsinki.buildings if b.footprint.intersects(p)}
    assert ei.value.blocking[1] in holding and ei.value.blocking[1] in str(ei.value)
    # the same point is a valid pad when given at the highest roof there
    roof = max(b.top_m for b in holding.values())
    r = Planner(helsinki).plan(RouteRequest(lonlat, g, start_alt_amsl_m=roof))
    assert r.xyz_m[0, 2] == pytest.approx(roof, abs=0.01)


def test_validator_catches_a_route_through_a_building(helsinki):
    """The validator is not a rubber stamp: a straight low line through a block fails."""
    bld = max(helsinki.buildings, key=lambda b: b.footprint.area)
    c = bld.footprint.centroid
    minx, miny, maxx, maxy = bld.footprint.bounds
    z = bld.top_m - 1.0
    xyz = np.round(np.array([[minx - 50, c.y, 0.0], [minx - 50, c.y, z],
                             [maxx + 50, c.y, z], [maxx + 50, c.y, 0.0]]) * 100) / 100
    rep = RouteValidator(helsinki.buildings, helsinki.clearance_m).check(xyz)
    assert not rep.ok and bld.id in str(rep)


def test_waypoints_are_centimetre_quantized_and_wgs84_consistent(helsinki):
    _, _, r = _open_pair(helsinki, seed=15)
    assert np.all(np.abs(r.xyz_m * 100 - np.round(r.xyz_m * 100)) < 1e-6)
    x, y = helsinki.frame.to_local(r.lonlat_deg[:, 0], r.lonlat_deg[:, 1])
    assert np.max(np.hypot(x - r.xyz_m[:, 0], y - r.xyz_m[:, 1])) < 1e-3
    d = r.to_dict()
    assert set(d["waypoints"][0]) >= {"lon", "lat", "alt_amsl_m", "alt_agl_m", "t_s"}
    assert d["waypoints"][0]["alt_agl_m"] == 0.0 and d["waypoints"][-1]["alt_agl_m"] == 0.0


def test_cli_route_json_and_error(tmp_path):
    fr, to = "24.94030,60.17150", "24.95240,60.16760"
    out = subprocess.run([sys.executable, "-m", "skytwin.server.cli", "route", "--from", fr, "--to",
                          to, "--json", "--geojson", str(tmp_path / "r.geojson")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert {"waypoints", "length_m", "duration_s", "clearance_m"} <= set(d)
    gj = json.loads((tmp_path / "r.geojson").read_text())
    assert gj["features"][0]["geometry"]["type"] == "LineString"
    bad = subprocess.run([sys.executable, "-m", "skytwin.server.cli", "route", "--from", "0,0",
                          "--to", to, "--json"], capture_output=True, text=True, check=False)
    assert bad.returncode != 0
    assert "outside the twin" in json.loads(bad.stderr)["error"]["message"]


def test_shortcut_segments_are_straight_lines_not_voxel_steps(helsinki):
    """Smoothing really is any-angle: few waypoints, length close to the straight line
    on open routes."""
    _, _, r = _open_pair(helsinki, seed=16)
    assert len(r.xyz_m) < 0.5 * r.voxel_length_m / helsinki.grid.dx_m
    line = LineString(r.xyz_m[:, :2])
    assert line.length >= 0


def test_climb_and_proximity_penalties_reach_the_search(helsinki, monkeypatch):
    from scipy import ndimage

    from skytwin.planner import search
    seen = {}
    real = search.find_path

    def spy(blocked, start, goal, **kw):
        if isinstance(blocked, search.SearchGrid):    # the planner's padded grids
            pad = blocked.padded.shape
            seen.update(kw, blocked=blocked.blocked.copy(),
                        voxel_cost=blocked.voxel_cost.reshape(pad)[1:-1, 1:-1, 1:-1].copy())
        else:
            seen.update(kw, blocked=np.asarray(blocked).copy())
        return real(blocked, start, goal, **kw)

    s, g, base = _open_pair(helsinki, seed=17, min_dist_m=500.0)
    monkeypatch.setattr(search, "find_path", spy)
    r = Planner(helsinki).plan(RouteRequest(s, g, climb_factor=5.0, proximity_cost_m=20.0))
    assert seen["vertical_factor"] == 5.0
    cost, blocked = seen["voxel_cost"], seen["blocked"] > 0
    near = ndimage.binary_dilation(blocked, structure=np.ones((3, 3, 3), bool)) & ~blocked
    assert np.all(cost[near] == 20.0) and np.all(cost[~near] == 0.0)
    validator = RouteValidator(helsinki.buildings, helsinki.clearance_m)
    assert validator.check(r.xyz_m, r.trajectory.t_s, SpeedProfile()).ok
    with pytest.raises(PlanError, match="climb_factor"):
        RouteRequest(s, g, climb_factor=0.5)
    with pytest.raises(PlanError, match="proximity_cost_m"):
        RouteRequest(s, g, proximity_cost_m=-1.0)


def _random_zones(twin, rng, n, t0):
    g, f = twin.grid, twin.frame
    zones = []
    for k in range(n):
        x, y = rng.uniform(g.x0_m, g.x1_m), rng.uniform(g.y0_m, g.y1_m)
        lo = float(rng.choice([0.0, 20.0, 40.0]))
        hi = lo + float(rng.uniform(10, 80))
        ref = str(rng.choice(["AGL", "AMSL"]))
        w0 = t0 + rng.uniform(-3600, 7200)
        win = (w0, w0 + rng.uniform(300, 3600)) if rng.random() < 0.7 else None
        if rng.random() < 0.5:
            lon, lat = f.to_wgs84(x, y)
            zones.append(Zone(id=f"Z{k}", circle=Circle(lon, lat, rng.uniform(15, 80)),
                              lower=Altitude(lo, ref), upper=Altitude(hi, ref), window=win,
                              reason="random"))
        else:  # star-shaped polygon around (x, y): always simple
            m = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * np.pi, m))
            r = rng.uniform(20, 90, m)
            pts = tuple(f.to_wgs84(x + r[i] * np.cos(ang[i]), y + r[i] * np.sin(ang[i]))
                        for i in range(m))
            try:
                zones.append(Zone(id=f"Z{k}", polygon=pts, lower=Altitude(lo, ref),
                                  upper=Altitude(hi, ref), window=win, reason="random"))
            except AirspaceError:
                pass  # degenerate draw
    return zones


def test_random_routes_with_random_timed_zones_pass_validator(helsinki):
    """Random zones (circles and polygons, AGL and AMSL bands, time windows) and random
    departures: no route enters a zone while it is active (independent validator)."""
    rng = np.random.default_rng(42)
    layer = ZoneLayer(helsinki.frame, _random_zones(helsinki, rng, 25, T_1000))
    planner = Planner(helsinki, layer)
    validator = RouteValidator(helsinki.buildings, helsinki.clearance_m)
    gr = ground_range_from_grid(helsinki.grid, helsinki.ground_m)
    ok = 0
    for s, g in _random_pairs(helsinki, 250, seed=43):
        req = RouteRequest(s, g, depart_s=T_1000 + rng.uniform(-1800, 7200))
        try:
            r = planner.plan(req)
        except AirspaceError as exc:
            assert str(exc)  # every refusal says why
            continue
        lz = layer.local_zones(r.trajectory.t_start_s, r.trajectory.t_end_s)
        rep = validator.check(r.xyz_m, r.trajectory.t_s, req.speeds, zones=lz,
                              ground_range=gr)
        assert rep.ok, (s, g, req.depart_s, str(rep))
        ok += 1
    assert ok >= 60


def test_routes_are_checked_exactly_even_if_the_screen_lets_everything_through(helsinki):
    """The numba screen only picks smoothing candidates: with a screen that passes
    every segment, the exact (GEOS) check of the kept segments still refuses the
    shortcuts through buildings, smoothing runs again with it, and the routes are the
    ones planned with an honest screen."""
    from skytwin.planner.exact import ExactChecker

    class Blind(ExactChecker):
        def segment_blocked_fast(self, p0, p1):
            return False

    blind = Blind.for_twin(helsinki)
    honest = Planner(helsinki)
    planner = Planner(helsinki, checker=blind)
    validator = RouteValidator(helsinki.buildings, helsinki.clearance_m)
    n = 0
    for s, g in _random_pairs(helsinki, 60, seed=23):
        try:
            want = honest.plan(RouteRequest(s, g))
        except AirspaceError:
            continue
        got = planner.plan(RouteRequest(s, g))
        assert validator.check(got.xyz_m, got.trajectory.t_s, SpeedProfile()).ok
        assert blind.polyline_violation(got.xyz_m[1:-1]) is None
        np.testing.assert_array_equal(got.xyz_m, want.xyz_m)
        n += 1
    assert n >= 10
