"""Derived zones (issue 13): the rules file, zones with provenance from real models, the
planner avoiding the blocking ones (checked independently: the source file's own tags,
buffered with shapely in an azimuthal equidistant projection around the object, never
through the code under test), and every route's exposure report."""

from __future__ import annotations

import json
import re

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, shape

from skytwin.airspace.derived import (
    DerivedRulesError,
    blocking_zones,
    category_counts,
    derive_zones,
    derived_ed269,
    load_derived_rules,
    parse_derived_rules,
)
from skytwin.airspace.ed269 import parse_ed269
from skytwin.airspace.errors import AirspaceError
from skytwin.airspace.io import load_city
from skytwin.airspace.risk import estimate_population
from skytwin.airspace.twin import build_twin
from skytwin.airspace.zones import ZoneLayer
from skytwin.planner.route import PlanError, Planner, RouteRequest
from tests.conftest import FIXTURES

HELSINKI = FIXTURES / "city" / "helsinki_centre.geojson"
DEPART_S = 1_800_000_000.0


# ------------------------------------------------------------------------ rules file
def test_bundled_rules_cite_sources_and_cover_the_issue_kinds():
    rules = load_derived_rules()
    ids = {r.id for r in rules.rules}
    assert {"aerodrome", "military", "prison", "power-plant", "substation", "government",
            "police", "fire-station", "hospital"} <= ids
    assert all(r.sources for r in rules.rules)
    assert set(rules.categories) == {"restricted", "authorisation", "altitude-limited",
                                     "warning"}
    # PLATEAU usage codes and ALKIS function codes, with and without the 31001_ prefix
    assert rules.match({"bldg:usage": "453"})[0].id == "military"
    assert rules.match({"bldg:usage": "421"})[0].id == "government"
    assert rules.match({"bldg:function": "31001_3072"})[0].id == "fire-station"
    assert rules.match({"amenity": "school;hospital"})[0].id == "hospital"
    # the most severe category first
    assert [r.category for r in rules.match({"power": "plant", "plant:source": "nuclear"})
            ] == ["restricted", "authorisation"]


def test_rules_errors_name_the_field(tmp_path):
    doc = json.loads((FIXTURES / "rules" / "derived_zones.json").read_text())
    doc["rules"][2]["category"] = "forbidden"
    with pytest.raises(DerivedRulesError, match=r"rules\[2\]\.category"):
        parse_derived_rules(doc, "x.json")
    doc = json.loads((FIXTURES / "rules" / "derived_zones.json").read_text())
    doc["rules"][0]["sources"] = ["nowhere"]
    with pytest.raises(DerivedRulesError, match=r"unknown source"):
        parse_derived_rules(doc, "x.json")


# ------------------------------------------------------------------------ Helsinki
@pytest.fixture(scope="module")
def helsinki():
    res = load_city(str(HELSINKI))
    twin = build_twin(res)
    derived = derive_zones(res.buildings, res.frame)
    risk = estimate_population(twin.buildings, twin.grid)
    return res, twin, derived, risk


def _source_features(path, key, value):
    doc = json.loads(path.read_text())
    return [f for f in doc["features"] if (f.get("properties") or {}).get(key) == value]


def test_helsinki_derived_zones_have_provenance(helsinki):
    res, twin, derived, _ = helsinki
    court = _source_features(HELSINKI, "amenity", "courthouse")
    fire = _source_features(HELSINKI, "amenity", "fire_station")
    by_rule = {d.rule: d for d in derived}
    assert by_rule["government"].source_id == court[0]["id"]
    assert by_rule["government"].category == "authorisation"
    assert by_rule["government"].matched == "amenity=courthouse"
    assert by_rule["fire-station"].source_id == fire[0]["id"]
    assert by_rule["fire-station"].category == "warning"
    # ED-269 export: the restriction follows the category, provenance in the message
    doc = derived_ed269(derived)
    feats = {f["identifier"]: f for f in doc["features"]}
    g = feats[by_rule["government"].zone.id]
    assert g["restriction"] == "REQ_AUTHORISATION" and court[0]["id"] in g["message"]
    assert feats[by_rule["fire-station"].zone.id]["restriction"] == "NO_RESTRICTION"
    back = parse_ed269(doc, skip_unrestricted=False)
    assert {z.id for z in back} == {d.zone.id for d in derived}


def _oracle_zone(feature, buffer_m):
    """The true buffered footprint, in an azimuthal equidistant frame at the object."""
    geom = shape(feature["geometry"])
    c = geom.centroid
    aeqd = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +units=m")
    tr = pyproj.Transformer.from_crs("EPSG:4326", aeqd, always_xy=True)
    local = shapely.transform(geom, lambda xy: np.column_stack(tr.transform(*xy.T)))
    # 1 cm below the buffer: frame differences are far smaller at this distance
    return tr, shapely.buffer(local, buffer_m - 0.01, quad_segs=64)


def _crosses(route, tr, zone_poly) -> bool:
    x, y = tr.transform(route.lonlat_deg[:, 0], route.lonlat_deg[:, 1])
    return LineString(np.column_stack([x, y])).intersects(zone_poly)


def test_routes_avoid_blocking_derived_zones_independently_checked(helsinki):
    res, twin, derived, risk = helsinki
    court = _source_features(HELSINKI, "amenity", "courthouse")[0]
    tr, zone_poly = _oracle_zone(court, 100.0)
    inv = pyproj.Transformer.from_crs(tr.target_crs, "EPSG:4326", always_xy=True)
    layer = ZoneLayer(twin.frame, blocking_zones(derived))
    with_zones = Planner(twin, layer, risk=risk, derived=derived)
    without = Planner(twin)
    crossed_without, planned = 0, 0
    rng = np.random.default_rng(7)
    tries = 0
    while crossed_without < 3 and tries < 400:
        tries += 1
        a, b = rng.uniform(-260, 260, size=(2, 2))
        if min(np.hypot(*a), np.hypot(*b)) < 130:
            continue
        s, e = inv.transform(*a), inv.transform(*b)
        try:
            free = without.plan(RouteRequest(s, e, depart_s=DEPART_S))
        except AirspaceError:
            continue
        if not _crosses(free, tr, zone_poly):
            continue            # only pairs whose zoneless route crosses the zone
        crossed_without += 1
        try:
            r = with_zones.plan(RouteRequest(s, e, depart_s=DEPART_S))
        except PlanError as exc:       # refusing is fine; crossing is not
            assert "no-fly" in str(exc) or "no route" in str(exc)
            continue
        planned += 1
        assert not _crosses(r, tr, zone_poly), (a, b)
        assert r.exposure["derived_zones_near"], "the zone it went around is reported"
    assert planned >= 2 and crossed_without >= 1   # the check is not vacuous
    # an operator holding the authorisation may fly through
    auth = ZoneLayer(twin.frame, blocking_zones(derived, authorisations=["government"]))
    assert len(auth) == len(layer) - 1


def test_every_route_reports_exposure_and_risk_weight_cuts_it(helsinki):
    res, twin, derived, risk = helsinki
    planner = Planner(twin, risk=risk, derived=derived)
    rng = np.random.default_rng(3)
    g = twin.grid
    base, risky, n = [], [], 0
    while n < 6:
        x, y = rng.uniform(g.x0_m, g.x1_m, 2), rng.uniform(g.y0_m, g.y1_m, 2)
        s, e = twin.frame.to_wgs84(x[0], y[0]), twin.frame.to_wgs84(x[1], y[1])
        try:
            r0 = planner.plan(RouteRequest(s, e, depart_s=DEPART_S))
        except PlanError:
            continue
        r10 = planner.plan(RouteRequest(s, e, depart_s=DEPART_S, risk_weight=10.0))
        n += 1
        for r in (r0, r10):
            ex = r.to_dict()["exposure"]
            assert {"people_overflown", "worst_band", "derived_zones_near",
                    "warnings"} <= set(ex)
            assert 1 <= ex["worst_band"] <= 6
        # the exposure is the integral of the layer's density along the track: recompute
        xy = r0.xyz_m[:, :2]
        pts, ds = [], []
        for a, b in zip(xy[:-1], xy[1:], strict=True):   # every 10 cm
            n_s = max(1, int(np.ceil(np.linalg.norm(b - a) / 0.1)))
            t = (np.arange(n_s) + 0.5) / n_s
            pts.append(a + t[:, None] * (b - a))
            ds.append(np.full(n_s, np.linalg.norm(b - a) / n_s))
        pts, ds = np.concatenate(pts), np.concatenate(ds)
        i, j = risk.cell_of(pts[:, 0], pts[:, 1])
        want = float((risk.density(r0.exposure["period"])[i, j] * ds).sum() / 1000)
        assert r0.exposure["people_overflown"] == pytest.approx(want, rel=0.01, abs=1.0)
        base.append(r0.exposure["people_overflown"])
        risky.append(r10.exposure["people_overflown"])
    assert sum(risky) < 0.8 * sum(base)


def test_band_cap_is_respected_or_refused(helsinki):
    res, twin, derived, risk = helsinki
    planner = Planner(twin, risk=risk)
    rng = np.random.default_rng(5)
    g = twin.grid
    ok = 0
    for _ in range(40):
        x, y = rng.uniform(g.x0_m, g.x1_m, 2), rng.uniform(g.y0_m, g.y1_m, 2)
        s, e = twin.frame.to_wgs84(x[0], y[0]), twin.frame.to_wgs84(x[1], y[1])
        try:
            r = planner.plan(RouteRequest(s, e, depart_s=DEPART_S, max_band=5))
        except PlanError:
            continue
        ok += 1
        # independent: every sample of the track lies in a cell of band <= 5
        xy = r.xyz_m[:, :2]
        pts = np.concatenate([np.linspace(a, b, 100) for a, b in zip(xy[:-1], xy[1:],
                                                                      strict=True)])
        i, j = risk.cell_of(pts[:, 0], pts[:, 1])
        assert risk.density(r.exposure["period"])[i, j].max() < 50_000.0
    assert ok >= 3


def test_risk_weight_needs_a_risk_layer(helsinki):
    _, twin, _, _ = helsinki
    with pytest.raises(PlanError, match="ground-risk layer"):
        Planner(twin).plan(RouteRequest((24.94, 60.17), (24.95, 60.168), risk_weight=1))
    with pytest.raises(PlanError, match="max_band"):
        RouteRequest((24.94, 60.17), (24.95, 60.168), max_band=9)


# ------------------------------------------------------------------------ real models
def test_plateau_supply_facilities_become_authorisation_zones(city_data):
    path = city_data / "more" / "plateau_ina_53375768_bldg_6697_op.gml"
    if not path.exists():
        pytest.skip(f"{path} not found")
    # independent count: Building elements whose bldg:usage is 452
    text = path.read_text(encoding="utf-8")
    n452 = len(re.findall(r"<bldg:usage[^>]*>452<", text))
    res = load_city(str(path))
    derived = derive_zones(res.buildings, res.frame)
    supply = [d for d in derived if d.rule == "supply-facility"]
    assert len(supply) == n452 > 0
    assert all(d.matched == "bldg:usage=452" and d.category == "authorisation"
               for d in supply)
    assert category_counts(derived)["authorisation"] == n452


# ------------------------------------------------------------------------ command line
def _cli(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "skytwin.server.cli", *args],
                          capture_output=True, text=True, check=False, timeout=300)


def test_cli_zones_derive_json_lists_provenance_and_counts(tmp_path):
    out = tmp_path / "dz.json"
    r = _cli("zones", "derive", str(HELSINKI), "--json", "--ed269", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["counts"] == {"restricted": 0, "authorisation": 1, "altitude-limited": 0,
                           "warning": 1}
    court = _source_features(HELSINKI, "amenity", "courthouse")[0]
    z = next(z for z in d["zones"] if z["rule"] == "government")
    assert z["source_id"] == court["id"] and z["category"] == "authorisation"
    assert len(parse_ed269(json.loads(out.read_text()), skip_unrestricted=False)) == 2
    bad = _cli("zones", "derive", str(HELSINKI), "--rules", str(HELSINKI), "--json")
    assert bad.returncode == 2 and "schema" in json.loads(bad.stderr)["error"]["message"]


def test_cli_route_reports_exposure_with_and_without_weight(tmp_path):
    args = ["route", "--from", "24.94030,60.17150", "--to", "24.95240,60.16760",
            "--depart", "2027-01-15T11:00:00Z", "--json"]
    r0 = _cli(*args, "--risk-weight", "0")
    r3 = _cli(*args, "--risk-weight", "3", "--derive-zones",
              "--geojson", str(tmp_path / "r.geojson"))
    assert r0.returncode == 0 and r3.returncode == 0, r0.stderr + r3.stderr
    e0, e3 = json.loads(r0.stdout)["exposure"], json.loads(r3.stdout)["exposure"]
    assert e0["people_overflown"] > 0 and 1 <= e0["worst_band"] <= 6
    assert e3["people_overflown"] < e0["people_overflown"]
    kinds = {f["properties"]["kind"] for f in
             json.loads((tmp_path / "r.geojson").read_text())["features"]}
    assert {"route", "derived_zone", "risk_cell"} <= kinds
    bad = _cli(*args, "--risk-weight", "-1")
    assert bad.returncode == 2 and "risk weight" in bad.stderr


# ------------------------------------------------------------------------ twin files
@pytest.mark.parametrize("name", ["helsinki", "plateau"])
def test_twin_file_keeps_what_derived_zones_and_risk_need(tmp_path, city_data, name):
    from skytwin.airspace.twin import Twin
    path = HELSINKI if name == "helsinki" else \
        city_data / "more" / "plateau_ina_53375768_bldg_6697_op.gml"
    if not path.exists():
        pytest.skip(f"{path} not found")
    twin = build_twin(load_city(str(path)))
    twin.save(tmp_path / "t.npz")
    back = Twin.load(tmp_path / "t.npz")
    a = [d.to_dict() for d in derive_zones([*twin.buildings, *twin.areas], twin.frame)]
    b = [d.to_dict() for d in derive_zones([*back.buildings, *back.areas], back.frame)]
    assert a == b and len(a) > 0
    assert [x.tags for x in back.buildings] == [x.tags for x in twin.buildings]
    ra = estimate_population(twin.buildings, twin.grid)
    rb = estimate_population(back.buildings, back.grid)
    assert np.array_equal(ra.density_day, rb.density_day)
    assert np.array_equal(ra.density_night, rb.density_night)
    if name == "helsinki":    # the command line reads the twin file too
        r = _cli("zones", "derive", str(tmp_path / "t.npz"), "--json")
        assert r.returncode == 0, r.stderr
        assert [z["id"] for z in json.loads(r.stdout)["zones"]] == [z["id"] for z in a]
