"""CityJSON reader on the real Den Haag model, and on 1.0 / 1.1 / CityJSONSeq variants
derived from it in tmp_path (they must give the same buildings as the 2.0 original)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pyproj
import pytest
import shapely

from skytwin.airspace.frame import Frame
from skytwin.airspace.io import load_city

DENHAAG = "denhaag/DenHaag_01.city.json"
GEOD = pyproj.Geod(ellps="WGS84")
# RD New bounding box of the whole model (buildings + terrain), PROVENANCE.md
RD_BBOX = (78248.0, 457604.0, 79037.0, 458277.0)


@pytest.fixture(scope="module")
def denhaag(city_data):
    path = city_data / DENHAAG
    doc = json.loads(path.read_text())
    return path, doc, load_city(path)


def _raw_vertices(doc):
    t = doc["transform"]
    return np.asarray(doc["vertices"], dtype=np.float64) * t["scale"] + t["translate"]


def _indices(boundaries):
    if isinstance(boundaries, int):
        return [boundaries]
    return [i for b in boundaries for i in _indices(b)]


def test_counts_match_provenance(denhaag):
    _, doc, res = denhaag
    assert res.counts == {"Building": 844, "BuildingPart": 1653, "TINRelief": 1}
    assert res.skipped == []
    kinds = [b.kind for b in res.buildings]
    # 337 buildings carry geometry themselves, 507 only through their parts
    assert kinds.count("BuildingPart") == 1653
    assert kinds.count("Building") == 337
    objs = doc["CityObjects"]
    with_geom = {
        k for k, o in objs.items() if o["type"] == "Building" and o.get("geometry")
    }
    assert {b.id for b in res.buildings if b.kind == "Building"} == with_geom
    for b in res.buildings:
        if b.kind == "BuildingPart":
            assert b.parent_id == objs[b.id]["parents"][0]
            assert objs[b.parent_id]["type"] == "Building"
    assert res.source_crs == "EPSG:7415" and res.fmt == "cityjson" and res.has_terrain


def test_footprints_valid_oriented_and_heights_ordered(denhaag):
    _, doc, res = denhaag
    for b in res.buildings:
        fp = b.footprint
        assert fp.is_valid and not fp.is_empty and fp.area > 0
        for poly in getattr(fp, "geoms", [fp]):
            assert poly.exterior.is_ccw
            assert all(not r.is_ccw for r in poly.interiors)
        assert b.top_m > b.base_m >= b.ground_m
    zmin, zmax = doc["metadata"]["geographicalExtent"][2::3]
    assert min(b.ground_m for b in res.buildings) >= zmin
    assert max(b.top_m for b in res.buildings) == pytest.approx(zmax, abs=1e-9)


def test_heights_are_vertex_extremes(denhaag):
    _, doc, res = denhaag
    v = _raw_vertices(doc)
    objs = doc["CityObjects"]
    for b in res.buildings[::37]:
        z = v[_indices(objs[b.id]["geometry"][0]["boundaries"]), 2]
        assert b.base_m == pytest.approx(z.min(), abs=1e-9)
        assert b.top_m == pytest.approx(z.max(), abs=1e-9)
        family = b.parent_id or b.id
        members = [family] + list(objs[family].get("children", []))
        zf = np.concatenate(
            [
                v[_indices(g["boundaries"]), 2]
                for m in members
                for g in objs[m].get("geometry", [])
            ]
        )
        assert b.ground_m == pytest.approx(zf.min(), abs=1e-9)


def test_bbox_in_wgs84_matches_provenance(denhaag):
    _, _, res = denhaag
    pts = np.concatenate(
        [np.asarray(b.footprint.exterior.coords) for b in res.buildings]
    )
    lon, lat = res.frame.to_wgs84(pts[:, 0], pts[:, 1])
    to_rd = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:28992", always_xy=True)
    x, y = to_rd.transform(lon, lat)
    x0, y0, x1, y1 = RD_BBOX
    assert x0 <= x.min() and x.max() <= x1 and y0 <= y.min() and y.max() <= y1
    # the buildings fill most of the tile
    assert (x.max() - x.min()) > 0.8 * (x1 - x0) and (y.max() - y.min()) > 0.8 * (
        y1 - y0
    )
    assert 4.26 < res.frame.lon0_deg < 4.29 and 52.09 < res.frame.lat0_deg < 52.12


def test_vertex_positions_match_independent_pyproj(denhaag):
    _, doc, res = denhaag
    v = _raw_vertices(doc)
    objs = doc["CityObjects"]
    rd_to_wgs = pyproj.Transformer.from_crs(
        pyproj.CRS("EPSG:7415").sub_crs_list[0], "EPSG:4326", always_xy=True
    )
    matched = total = 0
    for b in res.buildings[::50]:
        raw = v[np.unique(_indices(objs[b.id]["geometry"][0]["boundaries"]))]
        rlon, rlat = rd_to_wgs.transform(raw[:, 0], raw[:, 1])
        fp = np.asarray(b.footprint.exterior.coords)[:-1]
        flon, flat = res.frame.to_wgs84(fp[:, 0], fp[:, 1])
        for lo, la in zip(flon, flat):
            _, _, d = GEOD.inv(
                np.full(len(rlon), lo), np.full(len(rlon), la), rlon, rlat
            )
            total += 1
            matched += np.min(d) < 1e-3
        # every raw vertex projects into the footprint (it is the solid's shadow)
        lx, ly = res.frame.to_local(rlon, rlat)
        dist = shapely.distance(b.footprint, shapely.points(np.column_stack((lx, ly))))
        assert dist.max() < 1e-4
    # corners of the outline are model vertices; the rest are edge crossings
    assert matched / total > 0.9


def test_wgs84_local_round_trip_under_1mm(denhaag):
    _, _, res = denhaag
    rng = np.random.default_rng(7)
    lon = rng.uniform(4.262, 4.285, 1000)
    lat = rng.uniform(52.098, 52.111, 1000)
    x, y = res.frame.to_local(lon, lat)
    lon2, lat2 = res.frame.to_wgs84(x, y)
    _, _, d = GEOD.inv(lon, lat, lon2, lat2)
    assert np.max(d) < 1e-3
    x2, y2 = res.frame.to_local(lon2, lat2)
    assert np.max(np.hypot(x2 - x, y2 - y)) < 1e-3


def test_terrain_samples_from_tin(denhaag):
    _, doc, res = denhaag
    tin = next(o for o in doc["CityObjects"].values() if o["type"] == "TINRelief")
    n = len(np.unique(_indices(tin["geometry"][0]["boundaries"])))
    t = res.terrain_xyz_m
    assert t.shape == (n, 3) and np.all(np.isfinite(t))
    zmin, zmax = doc["metadata"]["geographicalExtent"][2::3]
    assert zmin <= t[:, 2].min() and t[:, 2].max() <= zmax


# -- derived versions ------------------------------------------------------------------


def _subset(doc, n_with_parts=3, n_solo=3):
    """A small 2.0 document with a few Den Haag buildings (and their parts)."""
    objs = doc["CityObjects"]
    solo = [k for k, o in objs.items() if o["type"] == "Building" and o.get("geometry")]
    fam = [k for k, o in objs.items() if o["type"] == "Building" and o.get("children")]
    keep = solo[:n_solo] + fam[:n_with_parts]
    for k in fam[:n_with_parts]:
        keep += objs[k]["children"]
    used = sorted(
        {
            i
            for k in keep
            for g in objs[k].get("geometry", [])
            for i in _indices(g["boundaries"])
        }
    )
    remap = {old: new for new, old in enumerate(used)}

    def re(b):
        return remap[b] if isinstance(b, int) else [re(x) for x in b]

    out = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": doc["transform"],
        "metadata": {"referenceSystem": doc["metadata"]["referenceSystem"]},
        "CityObjects": {},
        "vertices": [doc["vertices"][i] for i in used],
    }
    for k in keep:
        o = copy.deepcopy(objs[k])
        for g in o.get("geometry", []):
            g["boundaries"] = re(g["boundaries"])
            g.pop("material", None)
        out["CityObjects"][k] = o
    return out, keep


def _as_v10(doc20):
    d = copy.deepcopy(doc20)
    d["version"] = "1.0"
    d["metadata"]["referenceSystem"] = "urn:ogc:def:crs:EPSG::7415"
    t = d.pop("transform")  # 1.0: transform optional; write real coordinates
    d["vertices"] = (
        np.asarray(d["vertices"], float) * t["scale"] + t["translate"]
    ).tolist()
    for o in d["CityObjects"].values():
        for g in o.get("geometry", []):
            g["lod"] = int(float(g["lod"]))  # 1.0: lod is a number
    return d


def _as_v11(doc20):
    d = copy.deepcopy(doc20)
    d["version"] = "1.1"
    d["metadata"]["referenceSystem"] = "https://www.opengis.net/def/crs/EPSG/0/7415"
    return d


def _as_seq(doc20, keep):
    """CityJSONSeq lines: header, then one feature per building with its parts."""
    objs = doc20["CityObjects"]
    header = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": doc20["transform"],
        "metadata": doc20["metadata"],
        "CityObjects": {},
        "vertices": [],
    }
    lines = [json.dumps(header)]
    for root in [k for k in keep if objs[k]["type"] == "Building"]:
        members = [root] + list(objs[root].get("children", []))
        used = sorted(
            {
                i
                for m in members
                for g in objs[m].get("geometry", [])
                for i in _indices(g["boundaries"])
            }
        )
        remap = {old: new for new, old in enumerate(used)}

        def re(b, remap=remap):
            return remap[b] if isinstance(b, int) else [re(x) for x in b]

        feat = {
            "type": "CityJSONFeature",
            "id": root,
            "CityObjects": {},
            "vertices": [doc20["vertices"][i] for i in used],
        }
        for m in members:
            o = copy.deepcopy(objs[m])
            for g in o.get("geometry", []):
                g["boundaries"] = re(g["boundaries"])
            feat["CityObjects"][m] = o
        lines.append(json.dumps(feat))
    return "\n".join(lines) + "\n"


def _same(a, b):
    assert [x.id for x in a.buildings] and sorted(x.id for x in a.buildings) == sorted(
        x.id for x in b.buildings
    )
    bb = {x.id: x for x in b.buildings}
    for x in a.buildings:
        y = bb[x.id]
        assert (x.kind, x.parent_id) == (y.kind, y.parent_id)
        assert x.base_m == pytest.approx(y.base_m, abs=1e-6)
        assert x.top_m == pytest.approx(y.top_m, abs=1e-6)
        assert x.ground_m == pytest.approx(y.ground_m, abs=1e-6)
        assert x.footprint.symmetric_difference(y.footprint).area < 1e-6


def test_versions_and_seq_give_the_same_buildings(denhaag, tmp_path):
    _, doc, _ = denhaag
    doc20, keep = _subset(doc)
    frame = Frame(4.2733, 52.1044)
    p20 = tmp_path / "sub20.city.json"
    p20.write_text(json.dumps(doc20))
    p10 = tmp_path / "sub10.json"
    p10.write_text(json.dumps(_as_v10(doc20)))
    p11 = tmp_path / "sub11.city.json"
    p11.write_text(json.dumps(_as_v11(doc20)))
    pseq = tmp_path / "sub.city.jsonl"
    pseq.write_text(_as_seq(doc20, keep))
    r20 = load_city(p20, frame=frame)
    assert len(r20.buildings) == len(
        [k for k in keep if doc20["CityObjects"][k].get("geometry")]
    )
    for p in (p10, p11, pseq):
        r = load_city(p, frame=frame)
        assert r.source_crs == "EPSG:7415" and r.skipped == []
        _same(r, r20)
    # the derived 2.0 subset agrees with the full file too
    full = {b.id: b for b in load_city(denhaag[0], frame=frame).buildings}
    for b in r20.buildings:
        assert b.footprint.symmetric_difference(full[b.id].footprint).area < 1e-6


def test_list_of_files_merges_into_one_frame(denhaag, tmp_path):
    _, doc, _ = denhaag
    doc20, _keep = _subset(doc, 2, 2)
    a = tmp_path / "a.city.json"
    a.write_text(json.dumps(doc20))
    objs = doc["CityObjects"]
    other = {k: objs[k] for k in list(objs)[-40:] if objs[k]["type"] != "TINRelief"}
    doc_b = copy.deepcopy(doc)
    doc_b["CityObjects"] = {
        k: v
        for k, v in other.items()
        if all(p in other for p in v.get("parents", []))
        and all(c in other for c in v.get("children", []))
    }
    b = tmp_path / "b.city.json"
    b.write_text(json.dumps(doc_b))
    ra, rb = load_city(a), load_city(b)
    both = load_city([a, b])
    assert len(both.buildings) == len(ra.buildings) + len(rb.buildings)
    assert both.counts["Building"] == ra.counts["Building"] + rb.counts["Building"]
    assert str(a) in both.path and str(b) in both.path


def test_crs_override_and_geometry_instance(tmp_path):
    # one 10 x 10 x 20 m box as a GeometryInstance, CRS given by the caller
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {
            "scale": [0.001, 0.001, 0.001],
            "translate": [78500.0, 457900.0, 0.0],
        },
        "CityObjects": {
            "box": {
                "type": "Building",
                "geometry": [
                    {
                        "type": "GeometryInstance",
                        "template": 0,
                        "boundaries": [0],
                        "transformationMatrix": [
                            1,
                            0,
                            0,
                            0,
                            0,
                            1,
                            0,
                            0,
                            0,
                            0,
                            1,
                            0,
                            0,
                            0,
                            0,
                            1,
                        ],
                    }
                ],
            }
        },
        "vertices": [[0, 0, 1000]],
        "geometry-templates": {
            "templates": [
                {
                    "type": "Solid",
                    "lod": "1",
                    "boundaries": [
                        [
                            [[0, 3, 2, 1]],
                            [[4, 5, 6, 7]],
                            [[0, 1, 5, 4]],
                            [[1, 2, 6, 5]],
                            [[2, 3, 7, 6]],
                            [[3, 0, 4, 7]],
                        ]
                    ],
                }
            ],
            "vertices-templates": [
                [0, 0, 0],
                [10, 0, 0],
                [10, 10, 0],
                [0, 10, 0],
                [0, 0, 20],
                [10, 0, 20],
                [10, 10, 20],
                [0, 10, 20],
            ],
        },
    }
    p = tmp_path / "box.city.json"
    p.write_text(json.dumps(doc))
    r = load_city(p, crs="EPSG:7415")
    (b,) = r.buildings
    assert b.base_m == pytest.approx(1.0) and b.top_m == pytest.approx(21.0)
    # RD New is conformal with scale ~0.99991 here: 100 m2 in RD is ~100.01 m2 on the ground
    assert b.footprint.area == pytest.approx(100.0, rel=5e-4)
