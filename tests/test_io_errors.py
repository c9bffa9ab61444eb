"""Bad city models: typed errors naming the file and the object for what cannot be read;
a bad face or value inside an object is repaired (or the object enclosed by its hull)
and the object KEPT, counted in the audit; ``strict`` turns each repair into an error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skytwin.airspace.errors import (
    AirspaceError,
    CRSMissingError,
    EmptyModelError,
    MalformedInputError,
    OutsideTwinError,
)
from skytwin.airspace.io import AbsurdCoordinatesError, load_city

# -- tiny hand-made models (written in tmp_path) --------------------------------------


def _box(x0, y0, size, z0, z1, first=0):
    """Vertices and LoD1 Solid boundaries of an axis-aligned box."""
    v = [
        [x0, y0, z0],
        [x0 + size, y0, z0],
        [x0 + size, y0 + size, z0],
        [x0, y0 + size, z0],
        [x0, y0, z1],
        [x0 + size, y0, z1],
        [x0 + size, y0 + size, z1],
        [x0, y0 + size, z1],
    ]
    f = first
    faces = [
        [[f, f + 3, f + 2, f + 1]],
        [[f + 4, f + 5, f + 6, f + 7]],
        [[f, f + 1, f + 5, f + 4]],
        [[f + 1, f + 2, f + 6, f + 5]],
        [[f + 2, f + 3, f + 7, f + 6]],
        [[f + 3, f, f + 4, f + 7]],
    ]
    return v, [faces]


def _cityjson(n=3, crs="https://www.opengis.net/def/crs/EPSG/0/7415"):
    verts, objs = [], {}
    for i in range(n):
        v, b = _box(78500.0 + 30 * i, 457900.0, 10.0, 2.0, 12.0 + i, first=len(verts))
        verts += v
        objs[f"B{i}"] = {
            "type": "Building",
            "geometry": [{"type": "Solid", "lod": "1", "boundaries": b}],
        }
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "CityObjects": objs,
        "vertices": verts,
        "metadata": {},
    }
    if crs:
        doc["metadata"]["referenceSystem"] = crs
    return doc


def _feature(fid, ring, **props):
    return {
        "type": "Feature",
        "id": fid,
        "properties": {"building": "yes", **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _square(lon, lat, d=0.0002):
    return [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]


def _geojson(extra=(), n=3):
    feats = [
        _feature(f"way/{i}", _square(24.94 + 0.001 * i, 60.17), height=10 + i)
        for i in range(n)
    ]
    return {"type": "FeatureCollection", "features": feats + list(extra)}


def _write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def _gml(members, srs="http://www.opengis.net/def/crs/EPSG/0/6697"):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<core:CityModel '
        'xmlns:core="http://www.opengis.net/citygml/2.0" '
        'xmlns:bldg="http://www.opengis.net/citygml/building/2.0" '
        'xmlns:gml="http://www.opengis.net/gml">\n'
        f'<gml:boundedBy><gml:Envelope srsName="{srs}" srsDimension="3"/></gml:boundedBy>\n'
        + "".join(members)
        + "</core:CityModel>\n"
    )


def _gml_building(bid, lat, lon, close=True):
    d = 0.0001
    ring = [(lat, lon), (lat, lon + d), (lat + d, lon + d), (lat + d, lon)]
    ring = ring + [ring[0]] if close else ring
    pos = " ".join(f"{a} {b} 10.0" for a, b in ring)
    return (
        f'<core:cityObjectMember><bldg:Building gml:id="{bid}">'
        f'<bldg:measuredHeight uom="m">9.0</bldg:measuredHeight><bldg:lod0FootPrint>'
        f"<gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing>"
        f"<gml:posList>{pos}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
        f"</gml:surfaceMember></gml:MultiSurface></bldg:lod0FootPrint></bldg:Building>"
        f"</core:cityObjectMember>\n"
    )


def _expect(exc_type, path, fn, object_id=None, words=()):
    with pytest.raises(exc_type) as info:
        fn()
    msg = str(info.value)
    assert str(path) in msg, msg
    if object_id is not None:
        assert object_id in msg and info.value.object_id == object_id, msg
    for w in words:
        assert w in msg, msg
    assert isinstance(info.value, AirspaceError)
    return info.value


def _repaired_or_raise(path, object_id, words, n_total, res_check=None):
    """Non-strict: the object is kept (repaired), counted in the audit, the rest loads.
    Strict: raises naming the file, the object and the problem."""
    res = load_city(path)
    assert len(res.buildings) == n_total
    assert object_id in {b.id for b in res.buildings}
    assert not [s for s in res.skipped if s.object_id == object_id]
    a = res.audit[0]
    assert a["repaired"] + a["hulled"] + a["unknown_heights"] >= 1, a
    if res_check is not None:
        res_check({b.id: b for b in res.buildings}[object_id], res)
    _expect(
        MalformedInputError,
        path,
        lambda: load_city(path, strict=True),
        object_id,
        words,
    )


# -- file-level errors ------------------------------------------------------------------


def test_truncated_cityjson(tmp_path):
    text = json.dumps(_cityjson())
    p = _write(tmp_path, "cut.city.json", text[: len(text) // 2])
    e = _expect(MalformedInputError, p, lambda: load_city(p), words=("invalid JSON",))
    assert isinstance(e.__cause__, json.JSONDecodeError)


def test_truncated_geojson(tmp_path):
    text = json.dumps(_geojson())
    p = _write(tmp_path, "cut.geojson", text[:-40])
    _expect(MalformedInputError, p, lambda: load_city(p), words=("invalid JSON",))


def test_truncated_cityjsonseq_line(tmp_path):
    doc = _cityjson(2)
    header = {k: doc[k] for k in ("type", "version", "metadata")}
    header.update(CityObjects={}, vertices=[])
    feat = {
        "type": "CityJSONFeature",
        "id": "B0",
        "CityObjects": {"B0": doc["CityObjects"]["B0"]},
        "vertices": doc["vertices"][:8],
    }
    text = (
        json.dumps(header)
        + "\n"
        + json.dumps(feat)
        + "\n"
        + json.dumps(feat)[:50]
        + "\n"
    )
    p = _write(tmp_path, "cut.city.jsonl", text)
    _expect(
        MalformedInputError,
        p,
        lambda: load_city(p),
        object_id="line 3",
        words=("invalid JSON",),
    )


def test_broken_xml(tmp_path):
    text = _gml(
        [_gml_building("g1", 35.26, 139.74), _gml_building("g2", 35.261, 139.74)]
    )
    p = _write(
        tmp_path, "broken.gml", text[: text.rindex("<core:cityObjectMember>") + 60]
    )
    _expect(
        MalformedInputError,
        p,
        lambda: load_city(p),
        words=("broken XML", "last complete object: g1"),
    )


def test_unknown_crs(tmp_path):
    p = _write(tmp_path, "unk.city.json", _cityjson(crs="urn:ogc:def:crs:EPSG::999999"))
    _expect(CRSMissingError, p, lambda: load_city(p), words=("999999",))
    g = _write(
        tmp_path,
        "unk.gml",
        _gml([_gml_building("g1", 35.26, 139.74)], srs="EPSG:123456789"),
    )
    _expect(CRSMissingError, g, lambda: load_city(g), words=("123456789",))
    j = _write(
        tmp_path,
        "unk.geojson",
        {**_geojson(), "crs": {"type": "name", "properties": {"name": "EPSG:31"}}},
    )
    _expect(CRSMissingError, j, lambda: load_city(j))


def test_missing_crs_and_override(tmp_path):
    p = _write(tmp_path, "nocrs.city.json", _cityjson(crs=None))
    _expect(CRSMissingError, p, lambda: load_city(p), words=("referenceSystem",))
    assert len(load_city(p, crs="EPSG:7415").buildings) == 3
    g = _write(
        tmp_path,
        "nocrs.gml",
        _gml([_gml_building("g1", 35.26, 139.74)]).replace(
            ' srsName="http://www.opengis.net/def/crs/EPSG/0/6697"', ""
        ),
    )
    _expect(CRSMissingError, g, lambda: load_city(g), words=("srsName",))
    assert len(load_city(g, crs=6697).buildings) == 1


def test_empty_models(tmp_path):
    doc = _cityjson(0)
    p = _write(tmp_path, "empty.city.json", doc)
    _expect(EmptyModelError, p, lambda: load_city(p), words=("no usable building",))
    j = _write(tmp_path, "empty.geojson", {"type": "FeatureCollection", "features": []})
    _expect(EmptyModelError, j, lambda: load_city(j))
    g = _write(tmp_path, "empty.gml", _gml([]))
    _expect(EmptyModelError, g, lambda: load_city(g))
    # the only object has no usable coordinate at all: empty, and the reason passed on
    bad = _cityjson(1)
    for face in bad["CityObjects"]["B0"]["geometry"][0]["boundaries"][0]:
        face[0] = [97, 98, 99]
    q = _write(tmp_path, "allbad.city.json", bad)
    _expect(EmptyModelError, q, lambda: load_city(q), words=("no usable coordinate",))


# -- object-level problems ---------------------------------------------------------------


def _same_box(size=10.0, top=None):
    """Check: the kept object keeps its whole footprint (and its roof)."""

    def check(b, res):
        assert b.footprint.area == pytest.approx(size * size, rel=1e-3)
        if top is not None:
            assert b.top_m == pytest.approx(top)

    return check


def test_vertex_index_out_of_range(tmp_path):
    doc = _cityjson(3)
    doc["CityObjects"]["B1"]["geometry"][0]["boundaries"][0][2][0] = [8, 9, 1000, 12]
    p = _write(tmp_path, "idx.city.json", doc)
    _repaired_or_raise(p, "B1", ("vertex index 1000 out of range",), 3,
                       _same_box(top=13.0))


def test_degenerate_ring_cityjson(tmp_path):
    doc = _cityjson(3)
    doc["CityObjects"]["B2"]["geometry"][0]["boundaries"][0][1][0] = [20, 21, 20]
    p = _write(tmp_path, "deg.city.json", doc)
    # the roof face is degenerate: dropped; the floor still gives the footprint and the
    # walls still reach the roof height
    _repaired_or_raise(p, "B2", ("degenerate face",), 3, _same_box(top=14.0))


def test_degenerate_ring_geojson(tmp_path):
    bad = _feature(
        "way/bad", [[24.95, 60.17], [24.9502, 60.17], [24.95, 60.17]], height=5
    )
    p = _write(tmp_path, "deg.geojson", _geojson([bad]))

    def hulled(b, res):  # no face left: enclosed by its (widened) hull, not dropped
        assert res.audit[0]["hulled"] == 1
        line = 0.0002 * 111_320 * np.cos(np.radians(60.17))
        assert b.footprint.area >= line * 2 * 0.5 * 0.99
        assert b.top_m == 5.0

    _repaired_or_raise(p, "way/bad", ("degenerate face",), 4, hulled)
    # enough positions, but only two distinct ones
    flat = _feature(
        "way/flat",
        [[24.95, 60.17], [24.9502, 60.17], [24.9502, 60.17], [24.95, 60.17]],
        height=5,
    )
    q = _write(tmp_path, "deg2.geojson", _geojson([flat]))
    _repaired_or_raise(q, "way/flat", ("degenerate face", "fewer than 3"), 4, hulled)


def test_unclosed_ring(tmp_path):
    ring = _square(24.95, 60.17)[:-1]
    p = _write(
        tmp_path, "open.geojson", _geojson([_feature("way/open", ring, height=8)])
    )
    closed = load_city(_write(tmp_path, "closed.geojson", _geojson(
        [_feature("way/open", _square(24.95, 60.17), height=8)])))
    area = {b.id: b for b in closed.buildings}["way/open"].footprint.area

    def same(b, res):
        assert b.footprint.area == pytest.approx(area) and b.top_m == 8.0

    _repaired_or_raise(p, "way/open", ("unclosed ring",), 4, same)
    g = _write(
        tmp_path,
        "open.gml",
        _gml(
            [
                _gml_building("g1", 35.26, 139.74),
                _gml_building("g2", 35.2601, 139.74, close=False),
            ]
        ),
    )
    _repaired_or_raise(g, "g2", ("unclosed ring",), 2)


def test_non_finite_heights(tmp_path):
    p = _write(
        tmp_path,
        "nan.geojson",
        _geojson([_feature("way/nan", _square(24.95, 60.17), height=float("nan"))]),
    )

    def unknown(b, res):  # the height is unusable: not assumed low
        assert b.height_source == "unknown" and b.top_m >= 120.0

    _repaired_or_raise(p, "way/nan", ("non-finite height",), 4, unknown)
    doc = _cityjson(3)
    doc["vertices"][5][2] = float("nan")
    q = _write(tmp_path, "nan.city.json", json.dumps(doc))
    _repaired_or_raise(q, "B0", ("non-finite height",), 3, _same_box(top=12.0))


def test_not_a_footprint_is_reported_not_dropped(tmp_path):
    point = {
        "type": "Feature",
        "id": "node/1",
        "properties": {"building": "yes"},
        "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
    }
    p = _write(tmp_path, "pt.geojson", _geojson([point]))
    for strict in (False, True):
        res = load_city(p, strict=strict)
        assert len(res.buildings) == 3
        assert [s.object_id for s in res.skipped] == ["node/1"]
        assert "Point" in res.skipped[0].reason


# -- absurd coordinates --------------------------------------------------------------------


def test_latitude_300(tmp_path):
    bad = _feature("way/mars", _square(24.95, 300.0), height=10)
    p = _write(tmp_path, "lat300.geojson", _geojson([bad]))
    e = _expect(
        AbsurdCoordinatesError,
        p,
        lambda: load_city(p),
        object_id="way/mars",
        words=("latitude",),
    )
    assert isinstance(e, OutsideTwinError) and isinstance(e, MalformedInputError)


def test_projected_coordinates_under_a_geographic_crs(tmp_path):
    # RD metres but the file claims WGS84: latitudes of 457,900 degrees
    p = _write(
        tmp_path, "wrongcrs.city.json", _cityjson(crs="urn:ogc:def:crs:EPSG::4979")
    )
    _expect(
        AbsurdCoordinatesError,
        p,
        lambda: load_city(p),
        object_id="B0",
        words=("wrong CRS",),
    )


def test_model_thousands_of_km_wide(tmp_path):
    sydney = _feature("way/sydney", _square(151.2, -33.86), height=10)
    p = _write(tmp_path, "wide.geojson", _geojson([sydney]))
    _expect(
        AbsurdCoordinatesError,
        p,
        lambda: load_city(p),
        object_id="way/sydney",
        words=("km from the centre",),
    )


def test_absurd_height(tmp_path):
    p = _write(
        tmp_path,
        "tall.geojson",
        _geojson([_feature("way/tall", _square(24.95, 60.17), height="120000 m")]),
    )
    _expect(
        AbsurdCoordinatesError,
        p,
        lambda: load_city(p),
        object_id="way/tall",
        words=("wrong units",),
    )


def test_unknown_format(tmp_path):
    p = _write(tmp_path, "model.txt", "hello")
    _expect(MalformedInputError, p, lambda: load_city(p), words=("unknown city-model",))
    with pytest.raises(ValueError, match="fmt must be one of"):
        load_city(p, fmt="shapefile")


def test_format_detection_by_content(tmp_path):
    from skytwin.airspace.io import detect_format

    g = _write(tmp_path, "footprints.json", _geojson())
    c = _write(tmp_path, "model.json", _cityjson())
    assert detect_format(g) == "geojson" and detect_format(c) == "cityjson"
    assert len(load_city(g).buildings) == 3 and len(load_city(c).buildings) == 3


def test_merging_needs_one_height_reference(tmp_path):
    c = _write(tmp_path, "model.city.json", _cityjson())  # absolute heights (NAP)
    g = _write(tmp_path, "osm.geojson", _geojson())  # heights above ground
    _expect(MalformedInputError, c, lambda: load_city([c, g]), words=("has_terrain",))


def test_merging_two_cities_is_absurd(city_data):
    tiles = [
        city_data / "plateau" / n
        for n in ("52397519_bldg_6697_op.gml", "64413325_bldg_6697_op.gml")
    ]
    _expect(
        AbsurdCoordinatesError,
        tiles[1],
        lambda: load_city(tiles),
        words=("km from the centre",),
    )
