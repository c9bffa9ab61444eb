"""A booking (single or batch) is never accepted inside an authorisation derived zone
that blocks its operator (server/service.py _rule_problems, regression).

The final booking check added only the derived zones that block *everyone*
(``GroundLayers.blocking_everyone``: restricted, altitude-limited) to the zones it
validates against; authorisation zones were checked only by the planner, before the
booking's critical section. A regulator's override that puts an authorisation zone in
force (re-enables it, or turns a warning zone into one) while a booking is being
planned therefore let the booking through, inside the zone, and the override's
affected list (computed before the reservation) does not name it.

The oracle is shapely on the raw GeoJSON (courthouse footprint + the rule's buffer),
not the validator or the zone layer.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, shape

from skytwin.planner.route import PlanError, RouteRequest
from skytwin.server.ground import override_derived_zone
from skytwin.server.service import BookingRejectedError, Caller, ServiceCore
from skytwin.server.store import Store
from tests.grpc_fixtures import helsinki_twin

CITY = Path(__file__).resolve().parents[1] / "fixtures" / "city" / "helsinki_centre.geojson"
TM35 = Transformer.from_crs("EPSG:4326", "EPSG:3067", always_xy=True)
WGS = Transformer.from_crs("EPSG:3067", "EPSG:4326", always_xy=True)
BUFFER_M = 30.0
META = {"priority": 1.0, "max_delay_s": 0.0, "speeds": {}}
OPB = Caller("b", "operator", "op-b")          # holds no authorisation
REG = Caller("r", "regulator", "")


def _rules(tmp_path, category) -> Path:
    p = tmp_path / f"rules_{category}.json"
    p.write_text(json.dumps({
        "schema": "skytwin-derived-zones/1",
        "sources": {"test": "a rule written for this test"},
        "rules": [
            {"id": "court", "category": category, "buffer_m": BUFFER_M,
             "match": {"keys": ["amenity"], "values": ["courthouse"]},
             "sources": ["test"]}]}))
    return p


def _zone_m():
    """Oracle: the courthouse footprints from the GeoJSON in EPSG:3067, grown."""
    doc = json.loads(CITY.read_text(encoding="utf-8"))
    geoms = [shapely.transform(shape(f["geometry"]),
                               lambda c: np.column_stack(TM35.transform(c[:, 0], c[:, 1])))
             for f in doc["features"]
             if (f.get("properties") or {}).get("amenity") == "courthouse"]
    assert geoms
    return shapely.union_all(geoms).buffer(BUFFER_M, quad_segs=64)


def _track_m(rec):
    return LineString([TM35.transform(lon, lat) for lon, lat in rec.lonlat_deg])


def _crossing_pairs(zone_m):
    c = zone_m.centroid
    for half_m, side, deg in ((h, o, d) for h in (220.0, 170.0, 130.0)
                              for o in (0.0, -25.0, 25.0) for d in range(0, 180, 20)):
        ux, uy = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        cx, cy = c.x - side * uy, c.y + side * ux
        a, b = (cx - half_m * ux, cy - half_m * uy), (cx + half_m * ux, cy + half_m * uy)
        if LineString([a, b]).intersects(zone_m) and not zone_m.contains(
                shapely.Point(a)) and not zone_m.contains(shapely.Point(b)):
            yield WGS.transform(*a), WGS.transform(*b)


@pytest.fixture
def core(tmp_path):
    twin, ref = helsinki_twin()
    c = ServiceCore(twin, Store(tmp_path / "a.db"), twin_ref=ref,
                    zone_rules=_rules(tmp_path, "authorisation"))
    yield c
    c.close()


def _pair_through(core, zone_m, zid):
    """A start/goal whose plan crosses the zone while it is disabled."""
    override_derived_zone(core, REG, zid, enabled=False, reason="test: lifted")
    for a, b in _crossing_pairs(zone_m):
        req = RouteRequest(a, b, depart_s=time.time() + 600)
        try:
            r = core.plan(req, OPB)
        except (PlanError, ValueError):
            continue
        xyz = r.trajectory.xyz_m
        lon, lat = core.twin.frame.to_wgs84(xyz[:, 0], xyz[:, 1])
        xy = LineString([TM35.transform(x, y) for x, y in zip(lon, lat)])
        if xy.intersects(zone_m.buffer(-1.0)):
            return a, b
    pytest.skip("no plannable pair across the zone")


def _zid(core):
    (z,) = core.ground.zones(include_disabled=True)
    return z.id


def _enable_during_planning(core, zid, out):
    """The override lands while the booking is being planned (after the planner read
    the zones in force, before the booking's critical section)."""
    real = core.plan

    def plan(req, caller=None):
        route = real(req, caller)
        if "affected" not in out:
            out["affected"] = override_derived_zone(core, REG, zid, enabled=True,
                                                    reason="test: in force again")[1]
        return route
    core.plan = plan


def test_a_booking_planned_before_an_authorisation_zone_came_into_force(core):
    zone_m = _zone_m()
    zid = _zid(core)
    a, b = _pair_through(core, zone_m, zid)
    out = {}
    _enable_during_planning(core, zid, out)
    try:
        rec, _ = core.submit_flight(OPB, "r1", RouteRequest(a, b,
                                                            depart_s=time.time() + 600),
                                    META)
    except BookingRejectedError as exc:
        assert "no-fly volume" in exc.reason
        assert core.store.count_flights() == 0 and len(core.index) == 0
        return
    # accepted: it must not cross the zone (or at least be listed as affected)
    inside = _track_m(rec).intersects(zone_m.buffer(-1.0))
    assert not inside or rec.flight_id in out["affected"], \
        f"flight {rec.flight_id} accepted inside authorisation zone {zid}, not listed"


def test_a_batch_planned_before_an_authorisation_zone_came_into_force(core):
    zone_m = _zone_m()
    zid = _zid(core)
    a, b = _pair_through(core, zone_m, zid)
    out = {}
    _enable_during_planning(core, zid, out)
    t = time.time() + 900
    reqs = [RouteRequest(a, b, depart_s=t), RouteRequest(b, a, depart_s=t + 300)]
    try:
        recs, _, _ = core.submit_batch(OPB, "batch1", reqs, [META, META])
    except BookingRejectedError as exc:
        assert "no-fly volume" in exc.reason
        assert core.store.count_flights() == 0 and len(core.index) == 0
        return
    for rec in recs:
        inside = _track_m(rec).intersects(zone_m.buffer(-1.0))
        assert not inside or rec.flight_id in out["affected"], \
            f"batch flight {rec.flight_id} accepted inside authorisation zone {zid}"
