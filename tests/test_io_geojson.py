"""GeoJSON footprint reader on the real Helsinki OSM extract (and the bundled copy)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyproj
import pytest

from skytwin.airspace.frame import Frame
from skytwin.airspace.io import load_city
from skytwin.airspace.io.common import UNKNOWN_TOP_AGL_M
from skytwin.airspace.io.geojson import LEVEL_HEIGHT_M, parse_length_m
from tests.conftest import FIXTURES

HELSINKI = "helsinki_osm/helsinki_buildings_osm.geojson"
PBF_BBOX = (24.9351762, 60.1641550, 24.9534145, 60.1791130)  # PROVENANCE.md
SHA256 = "f170e4d677d153a83a9eebea8f0c21de9a84893dd00e7c506db0a775983b6172"
GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def helsinki(city_data):
    path = city_data / HELSINKI
    return path, json.loads(path.read_text()), load_city(path)


def _polys(fp):
    return list(getattr(fp, "geoms", [fp]))


def test_counts_match_provenance(helsinki):
    _, doc, res = helsinki
    feats = doc["features"]
    both = {
        f["id"]
        for f in feats
        if "building" in f["properties"] and "building:part" in f["properties"]
    }
    assert len(feats) == 572 and len(both) == 7
    assert res.counts["Building"] == 446 and res.counts["BuildingPart"] == 126
    rec = {b.id: b for b in res.buildings}
    assert all(rec[i].kind == "Building" for i in both)  # both tags: a building
    # nothing is dropped: the part with zero height (levels 2, min_level 2) is kept,
    # its base lowered to the ground (a repair the audit counts)
    assert res.skipped == []
    assert len(res.buildings) == 572
    assert rec["way/90615218"].base_m == 0.0 and rec["way/90615218"].top_m == 6.0
    assert res.audit[0]["repaired"] == 1
    assert res.fmt == "geojson" and res.has_terrain is False
    assert all(b.ground_m == 0.0 for b in res.buildings)


def test_heights_from_tags(helsinki):
    _, doc, res = helsinki
    rec = {b.id: b for b in res.buildings}
    n_default = 0
    for f in doc["features"]:
        p, b = f["properties"], rec.get(f["id"])
        if b is None:
            continue
        cands = []
        if "height" in p:
            cands.append(float(p["height"].removesuffix(" m")))
        if "building:levels" in p:
            roof = float(p.get("roof:height", 0.0))
            if "roof:height" not in p and "roof:levels" in p:
                roof = float(p["roof:levels"]) * LEVEL_HEIGHT_M
            cands.append(float(p["building:levels"]) * LEVEL_HEIGHT_M + roof)
        if not cands and "roof:height" in p and "min_height" in p:
            cands.append(float(p["min_height"]) + float(p["roof:height"]))
        if cands:  # every tag is read; the highest roof wins (conservative)
            assert b.top_m == pytest.approx(max(cands))
            assert b.height_source != "unknown"
        else:  # no height: not assumed low, marked unknown (the twin blocks it)
            n_default += 1
            assert b.height_source == "unknown"
            assert b.top_m == UNKNOWN_TOP_AGL_M
            continue
        if b.id == "way/90615218":  # height == min_height: base lowered (repair)
            assert b.base_m == 0.0
        elif "min_height" in p:
            assert b.base_m == pytest.approx(float(p["min_height"]))
        elif "building:min_level" in p:
            assert b.base_m == pytest.approx(
                float(p["building:min_level"]) * LEVEL_HEIGHT_M
            )
        else:
            assert b.base_m == 0.0
        assert b.top_m > b.base_m
    assert res.audit[0]["unknown_heights"] == n_default > 0
    tops = [b.top_m for b in res.buildings
            if b.kind == "Building" and b.height_source != "unknown"]
    assert max(tops) == 70.0  # the tallest tagged height (a church spire? "70")


def test_bbox_within_pbf_header(helsinki):
    _, _, res = helsinki
    pts = np.concatenate(
        [
            np.asarray(p.exterior.coords)
            for b in res.buildings
            for p in _polys(b.footprint)
        ]
    )
    lon, lat = res.frame.to_wgs84(pts[:, 0], pts[:, 1])
    x0, y0, x1, y1 = PBF_BBOX
    assert x0 <= lon.min() and lon.max() <= x1 and y0 <= lat.min() and lat.max() <= y1
    assert lon.max() - lon.min() > 0.95 * (x1 - x0)
    assert lat.max() - lat.min() > 0.95 * (y1 - y0)


def test_vertices_round_trip_to_the_file(helsinki):
    _, doc, res = helsinki
    rec = {b.id: b for b in res.buildings}
    for f in doc["features"][::20]:
        b = rec.get(f["id"])
        if b is None:
            continue
        raw = np.array(
            [
                pt
                for poly in f["geometry"]["coordinates"]
                for ring in poly
                for pt in ring
            ]
        )
        for p in _polys(b.footprint):
            c = np.asarray(p.exterior.coords)
            lon, lat = res.frame.to_wgs84(c[:, 0], c[:, 1])
            for lo, la in zip(lon, lat):
                _, _, d = GEOD.inv(
                    np.full(len(raw), lo), np.full(len(raw), la), raw[:, 0], raw[:, 1]
                )
                assert d.min() < 1e-3
        for poly in f["geometry"]["coordinates"]:
            ring = np.asarray(poly[0])
            x, y = res.frame.to_local(ring[:, 0], ring[:, 1])
            assert abs(b.footprint.area) > 0
            assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))


def test_wgs84_local_round_trip_under_1mm(helsinki):
    _, _, res = helsinki
    rng = np.random.default_rng(11)
    lon = rng.uniform(PBF_BBOX[0], PBF_BBOX[2], 1000)
    lat = rng.uniform(PBF_BBOX[1], PBF_BBOX[3], 1000)
    lon2, lat2 = res.frame.to_wgs84(*res.frame.to_local(lon, lat))
    assert np.max(GEOD.inv(lon, lat, lon2, lat2)[2]) < 1e-3


def test_parts_get_the_outline_that_contains_them(helsinki):
    _, _, res = helsinki
    rec = {b.id: b for b in res.buildings}
    parts = [b for b in res.buildings if b.kind == "BuildingPart"]
    with_parent = [b for b in parts if b.parent_id is not None]
    assert len(with_parent) > 0.9 * len(parts)
    for b in with_parent:
        parent = rec[b.parent_id]
        assert parent.kind == "Building"
        assert parent.footprint.buffer(1e-6).contains(
            b.footprint.representative_point()
        )


def test_legacy_crs_member(helsinki, tmp_path):
    _, doc, res = helsinki
    to_tm35 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3067", always_xy=True)
    feats = []
    for f in doc["features"][:60]:
        g = f["geometry"]
        coords = [
            [[list(to_tm35.transform(*pt)) for pt in ring] for ring in poly]
            for poly in g["coordinates"]
        ]
        feats.append({**f, "geometry": {"type": "MultiPolygon", "coordinates": coords}})
    legacy = {
        "type": "FeatureCollection",
        "features": feats,
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3067"}},
    }
    p = tmp_path / "tm35.geojson"
    p.write_text(json.dumps(legacy))
    r = load_city(p, frame=res.frame)
    assert r.source_crs == "EPSG:3067"
    rec = {b.id: b for b in res.buildings}
    for b in r.buildings:
        a = rec[b.id]
        assert b.footprint.symmetric_difference(a.footprint).area < 1e-3
        assert (b.base_m, b.top_m) == (a.base_m, a.top_m)


@pytest.mark.parametrize(
    "raw, metres",
    [
        ("12.13 m", 12.13),
        ("40 ft", 12.192),
        ("12,5", 12.5),
        (" 7 ", 7.0),
        (3, 3.0),
        ("9 metres", 9.0),
        ("6'6\"", 1.9812),
        ("tall", None),
        ("", None),
        (None, None),
        ("12 storeys", None),
        (float("nan"), None),
    ],
)
def test_parse_length_m(raw, metres):
    got = parse_length_m(raw)
    assert got == (None if metres is None else pytest.approx(metres))


def test_bundled_default_city_is_the_helsinki_extract(helsinki):
    path = FIXTURES / "city" / "helsinki_centre.geojson"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256
    text = (FIXTURES / "city" / "ATTRIBUTION.md").read_text()
    assert "ODbL" in text and "© OpenStreetMap contributors" in text and SHA256 in text
    r = load_city(
        path, frame=Frame(helsinki[2].frame.lon0_deg, helsinki[2].frame.lat0_deg)
    )
    assert len(r.buildings) == len(helsinki[2].buildings)
