"""Grid-code queries on a twin: blocked codes in a box, and what blocks one code."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from skytwin.airspace.building import Building
from skytwin.airspace.errors import GridCodeError
from skytwin.airspace.frame import Frame
from skytwin.airspace.gridcode import GridCode, cell_polygon
from skytwin.airspace.query import Blocker, blocked_codes, what_blocks
from skytwin.airspace.twin import build_twin
from skytwin.airspace.zones import Altitude, Circle, Zone, ZoneLayer

FRAME = Frame(24.94, 60.17)


@pytest.fixture(scope="module")
def twin():
    blds = [Building("tower", box(0, 0, 12, 9), base_m=3.0, top_m=31.0, ground_m=3.0),
            Building("shed", box(40, -10, 47, -3).buffer(0.3), base_m=3.0, top_m=7.5,
                     ground_m=3.0)]
    return build_twin(blds, frame=FRAME, resolution_m=2.0, clearance_m=5.0)


def _area(twin, x0, y0, x1, y1):
    lon0, lat0 = twin.frame.to_wgs84(x0, y0)
    lon1, lat1 = twin.frame.to_wgs84(x1, y1)
    return (min(lon0, lon1), min(lat0, lat1), max(lon0, lon1), max(lat0, lat1))


def test_every_point_inside_a_building_falls_in_a_blocked_code(twin):
    got = blocked_codes(twin, _area(twin, -20, -20, 60, 30), 0.0, 40.0)
    rng = np.random.default_rng(0)
    for b in twin.buildings:
        x0, y0, x1, y1 = b.footprint.bounds
        pts = rng.uniform([x0, y0, b.ground_m], [x1, y1, b.top_m], size=(400, 3))
        inside = shapely.contains_xy(b.footprint, pts[:, 0], pts[:, 1])
        for x, y, z in pts[inside]:
            lon, lat = twin.frame.to_wgs84(x, y)
            code = GridCode.from_point(lon, lat, z)
            assert code in got and Blocker("building", b.id) in got[code]


def test_every_blocked_code_really_overlaps_its_blocker(twin):
    got = blocked_codes(twin, _area(twin, -20, -20, 60, 30), 0.0, 40.0)
    assert got
    by_id = {b.id: b for b in twin.buildings}
    for code, blockers in got.items():
        poly = shapely.transform(cell_polygon(code.cell), lambda xy: np.column_stack(
            twin.frame.to_local(xy[:, 0], xy[:, 1])))
        lo, hi = code.z_range_m
        for blk in blockers:
            b = by_id[blk.id]
            assert poly.intersects(b.footprint)
            assert lo <= b.top_m and hi > b.ground_m
    # nothing above the tower's roof is blocked by buildings
    assert all(c.z_range_m[0] <= 31.0 for c in got)


def test_clearance_inflates_and_what_blocks_names_things(twin):
    plain = blocked_codes(twin, _area(twin, -20, -20, 60, 30), 0.0, 40.0)
    inflated = blocked_codes(twin, _area(twin, -20, -20, 60, 30), 0.0, 40.0,
                             clearance_m=5.0)
    assert set(plain) < set(inflated)
    code = next(iter(plain))
    assert what_blocks(twin, str(code)) == plain[code]
    lon, lat = twin.frame.to_wgs84(-30.0, -30.0)
    assert what_blocks(twin, GridCode.from_point(lon, lat, 10.0)) == ()


def test_zone_blocks_codes_only_while_active(twin):
    lon, lat = twin.frame.to_wgs84(20.0, 20.0)
    zone = Zone(id="Z-1", circle=Circle(lon, lat, 8.0), lower=Altitude(0.0, "AGL"),
                upper=Altitude(30.0, "AGL"), window=(1000.0, 2000.0), reason="event")
    layer = ZoneLayer(twin.frame, [zone])
    code = GridCode.from_point(lon, lat, 20.0)
    assert Blocker("zone", "Z-1") in what_blocks(twin, code, zones=layer, t_s=1500.0)
    assert what_blocks(twin, code, zones=layer, t_s=2500.0) == ()
    above = GridCode.from_point(lon, lat, 3.0 + 30.0 + 2.1)  # above the AGL band
    assert what_blocks(twin, above, zones=layer, t_s=1500.0) == ()
    got = blocked_codes(twin, _area(twin, 5, 5, 35, 35), 0.0, 60.0, zones=layer, t_s=1500.0)
    assert code in got


def test_bad_queries_are_typed_errors(twin):
    with pytest.raises(GridCodeError, match="z_hi_m > z_lo_m"):
        blocked_codes(twin, _area(twin, 0, 0, 10, 10), 30.0, 10.0)
    with pytest.raises(GridCodeError, match="max_codes"):
        blocked_codes(twin, _area(twin, -20, -20, 60, 30), 0.0, 400.0, max_codes=1000)
    with pytest.raises(GridCodeError, match="AMSL"):
        what_blocks(twin, GridCode.from_point(24.94, 60.17, 5.0, reference="AGL"))
