"""CityGML reader on the real PLATEAU tiles (EPSG:6697, lat/lon/h axis order) and on
tiny hand-written files in tmp_path (axis order by CRS, LoD0 + measuredHeight)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely
from lxml import etree

from skytwin.airspace.frame import Frame
from skytwin.airspace.io import load_city
from skytwin.airspace.io.common import axis_swap

YOKOSUKA = "plateau/52397519_bldg_6697_op.gml"
SAPPORO = "plateau/64413325_bldg_6697_op.gml"
NS = {
    "bldg": "http://www.opengis.net/citygml/building/2.0",
    "gml": "http://www.opengis.net/gml",
}
GML_ID = "{http://www.opengis.net/gml}id"
GEOD = pyproj.Geod(ellps="WGS84")


def _independent(path):
    """What lxml (no streaming, no reader code) says about the file."""
    tree = etree.parse(str(path))
    tops = tree.findall(".//bldg:Building", NS)
    mh_top = [
        float(b.find("bldg:measuredHeight", NS).text)
        for b in tops
        if b.find("bldg:measuredHeight", NS) is not None
    ]
    mh_all = {
        b.get(GML_ID): float(b.find("bldg:measuredHeight", NS).text)
        for b in tree.iterfind(".//bldg:*", NS)
        if b.tag.endswith(("}Building", "}BuildingPart"))
        and b.find("bldg:measuredHeight", NS) is not None
    }
    env = tree.find("gml:boundedBy/gml:Envelope", NS)
    lo = [float(v) for v in env.find("gml:lowerCorner", NS).text.split()]
    hi = [float(v) for v in env.find("gml:upperCorner", NS).text.split()]
    return tree, tops, mh_top, mh_all, lo, hi


@pytest.fixture(scope="module")
def yokosuka(city_data):
    path = city_data / YOKOSUKA
    return path, _independent(path), load_city(path)


@pytest.fixture(scope="module")
def sapporo(city_data):
    path = city_data / SAPPORO
    return path, _independent(path), load_city(path)


def _bbox_wgs84(res):
    pts = np.concatenate(
        [np.asarray(b.footprint.exterior.coords) for b in res.buildings]
    )
    lon, lat = res.frame.to_wgs84(pts[:, 0], pts[:, 1])
    return lon.min(), lat.min(), lon.max(), lat.max()


def test_yokosuka_counts_and_heights(yokosuka):
    _, (_, tops, mh_top, mh_all, lo, hi), res = yokosuka
    assert len(tops) == 13 and res.counts["Building"] == 13
    assert res.counts["BuildingPart"] == 2 and res.skipped == []
    # one building holds its geometry in 2 parts: 12 + 2 records
    assert [b.kind for b in res.buildings].count("Building") == 12
    parts = [b for b in res.buildings if b.kind == "BuildingPart"]
    assert len(parts) == 2 and parts[0].parent_id == parts[1].parent_id is not None
    assert (len(mh_top), min(mh_top), max(mh_top)) == (12, 3.2, 13.9)  # PROVENANCE.md
    # LoD2 solids: roof - lowest vertex equals the surveyed measuredHeight
    for b in res.buildings:
        assert b.top_m - b.base_m == pytest.approx(mh_all[b.id], abs=0.1)
        assert b.top_m > b.base_m >= b.ground_m
    # heights are absolute (T.P.) and span the envelope's z range
    assert min(b.ground_m for b in res.buildings) == pytest.approx(lo[2], abs=1e-9)
    assert max(b.top_m for b in res.buildings) == pytest.approx(hi[2], abs=1e-9)
    assert res.source_crs == "EPSG:6697" and res.has_terrain


def test_sapporo_counts_and_ground(sapporo):
    _, (_, tops, mh_top, _, lo, hi), res = sapporo
    assert len(tops) == 25 and res.counts == {"Building": 25}
    assert len(res.buildings) == 25 and res.skipped == []
    assert (len(mh_top), min(mh_top), max(mh_top)) == (22, 2.7, 21.8)  # PROVENANCE.md
    grounds = np.array([b.ground_m for b in res.buildings])
    assert 97.0 < np.median(grounds) < 103.0  # "ground level about 98 m"
    assert grounds.min() == pytest.approx(lo[2], abs=1e-9)
    # every roof at least as high as its vertices, and as its surveyed measuredHeight
    # (the higher wins: the twin is conservative)
    assert max(b.top_m for b in res.buildings) >= hi[2] - 1e-9
    assert all(0 < b.height_agl_m < 25 for b in res.buildings)


@pytest.mark.parametrize("which", ["yokosuka", "sapporo"])
def test_bbox_matches_envelope_in_lat_lon_order(which, request):
    _, (*_, lo, hi), res = request.getfixturevalue(which)
    lon0, lat0, lon1, lat1 = _bbox_wgs84(res)
    # envelope corners are written lat, lon (EPSG:6697 axis order); JGD2011 ~ WGS84
    assert (lat0, lon0, lat1, lon1) == pytest.approx(
        (lo[0], lo[1], hi[0], hi[1]), abs=1e-8
    )


@pytest.mark.parametrize("which", ["yokosuka", "sapporo"])
def test_vertex_positions_match_independent_pyproj(which, request):
    """Footprint corners are posList vertices of the building (the footprint is the
    envelope of all its LoDs), converted here with pyproj in EPSG:6668's own lat, lon
    order."""
    _, (tree, *_), res = request.getfixturevalue(which)
    jgd_to_wgs = pyproj.Transformer.from_crs("EPSG:6668", "EPSG:4326")  # lat, lon order
    by_id = {b.id: b for b in res.buildings}
    matched = total = 0
    for bld in tree.iterfind(".//bldg:Building", NS):
        b = by_id.get(bld.get(GML_ID))
        if b is None:
            continue
        vals = " ".join(
            p.text
            for p in bld.iter("{http://www.opengis.net/gml}posList")
            if not any("consistsOfBuildingPart" in a.tag for a in p.iterancestors())
        )
        vals = np.array(vals.split(), float).reshape(-1, 3)
        rlat, rlon = jgd_to_wgs.transform(vals[:, 0], vals[:, 1])
        fp = np.asarray(b.footprint.exterior.coords)[:-1]
        flon, flat = res.frame.to_wgs84(fp[:, 0], fp[:, 1])
        for lo_, la_ in zip(flon, flat):
            n = len(rlon)
            _, _, d = GEOD.inv(np.full(n, lo_), np.full(n, la_), rlon, rlat)
            total += 1
            matched += d.min() < 1e-3
        # every vertex of that LoD lies in (or on) the footprint
        lx, ly = res.frame.to_local(rlon, rlat)
        pts = shapely.points(np.column_stack((lx, ly)))
        assert shapely.distance(b.footprint, pts).max() < 1e-3
    # (where a roof edge overhangs the LoD1/LoD2 walls, the union has new corners at
    # the crossings: most corners, not all, are source vertices)
    assert total >= 50 and matched / total > 0.6


def test_wgs84_round_trip_under_1mm(sapporo):
    _, _, res = sapporo
    rng = np.random.default_rng(3)
    lon = rng.uniform(141.437, 141.442, 500)
    lat = rng.uniform(42.938, 42.942, 500)
    lon2, lat2 = res.frame.to_wgs84(*res.frame.to_local(lon, lat))
    assert np.max(GEOD.inv(lon, lat, lon2, lat2)[2]) < 1e-3


# -- hand-written files ----------------------------------------------------------------

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" '
    'xmlns:bldg="http://www.opengis.net/citygml/building/2.0" '
    'xmlns:gml="http://www.opengis.net/gml" '
    'xmlns:xlink="http://www.w3.org/1999/xlink">\n'
)


def _poslist(ring, swap):
    return " ".join(
        f"{float(p[1] if swap else p[0])!r} {float(p[0] if swap else p[1])!r} "
        f"{float(p[2])!r}"
        for p in ring
    )


def _box_rings(x0, y0, x1, y1, z0, z1):
    """Six closed rings of a box, points as (easting/lon, northing/lat, z)."""
    c = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    bottom = [(*c[i], z0) for i in (0, 3, 2, 1, 0)]
    top = [(*c[i], z1) for i in (0, 1, 2, 3, 0)]
    walls = [
        [
            (*c[i], z0),
            (*c[(i + 1) % 4], z0),
            (*c[(i + 1) % 4], z1),
            (*c[i], z1),
            (*c[i], z0),
        ]
        for i in range(4)
    ]
    return [bottom, top, *walls]


def _building_lod1(bid, rings, swap, extra=""):
    members = "".join(
        f"<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>"
        f"{_poslist(r, swap)}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
        f"</gml:surfaceMember>"
        for r in rings
    )
    return (
        f'<core:cityObjectMember><bldg:Building gml:id="{bid}">{extra}<bldg:lod1Solid>'
        f"<gml:Solid><gml:exterior><gml:CompositeSurface>{members}"
        f"</gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod1Solid>"
        f"</bldg:Building></core:cityObjectMember>\n"
    )


def _model(srs, body):
    env = (
        f'<gml:boundedBy><gml:Envelope srsName="{srs}" srsDimension="3">'
        f"<gml:lowerCorner>0 0 0</gml:lowerCorner><gml:upperCorner>1 1 1"
        f"</gml:upperCorner></gml:Envelope></gml:boundedBy>\n"
    )
    return HEAD + env + body + "</core:CityModel>\n"


@pytest.mark.parametrize(
    "srs",
    [
        "http://www.opengis.net/def/crs/EPSG/0/6697",  # lat, lon, h
        "EPSG:4326",  # lat, lon (+ h given by srsDimension)
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",  # lon, lat
        "urn:ogc:def:crs:EPSG::6677",  # JGD2011 plane IX: X north, Y east
    ],
)
def test_axis_order_follows_the_crs(srs, tmp_path):
    lon0, lat0 = 139.7389, 35.2599
    # a 20 m x 10 m box, written in each CRS's own axis order
    crs = pyproj.CRS(
        srs.replace("http://www.opengis.net/def/crs/OGC/1.3/", "OGC:")
        .replace("urn:ogc:def:crs:EPSG::", "EPSG:")
        .replace("http://www.opengis.net/def/crs/EPSG/0/", "EPSG:")
    )
    frame = Frame(lon0, lat0)
    corners_local = np.array([[0.0, 0.0], [20.0, 10.0]])
    lon, lat = frame.to_wgs84(corners_local[:, 0], corners_local[:, 1])
    horiz = crs.sub_crs_list[0] if crs.is_compound else crs
    t = pyproj.Transformer.from_crs("EPSG:4326", horiz, always_xy=True)
    e, n = t.transform(lon, lat)
    # an axis-aligned box in the source CRS (a slight rotation in the local frame)
    rings = _box_rings(e[0], n[0], e[1], n[1], 5.0, 25.0)
    p = tmp_path / "box.gml"
    p.write_text(_model(srs, _building_lod1("b1", rings, axis_swap(crs))))
    (b,) = load_city(p, frame=frame).buildings
    assert (b.base_m, b.top_m, b.ground_m) == (5.0, 25.0, 5.0)
    fp = np.asarray(b.footprint.exterior.coords)
    # corners (0, 0) and (20, 10) of the local frame are footprint vertices
    for cx, cy in corners_local:
        assert np.min(np.hypot(fp[:, 0] - cx, fp[:, 1] - cy)) < 1e-3
    assert b.footprint.area == pytest.approx(200.0, rel=0.01)


def test_lod0_footprint_with_measured_height(tmp_path):
    srs = "http://www.opengis.net/def/crs/EPSG/0/6697"
    ring = [
        (141.44, 42.94, 98.5),
        (141.4401, 42.94, 98.5),
        (141.4401, 42.9401, 98.5),
        (141.44, 42.9401, 98.5),
        (141.44, 42.94, 98.5),
    ]
    lod0 = (
        f"<bldg:lod0FootPrint><gml:MultiSurface><gml:surfaceMember><gml:Polygon>"
        f"<gml:exterior><gml:LinearRing><gml:posList>{_poslist(ring, True)}"
        f"</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
        f"</gml:surfaceMember></gml:MultiSurface></bldg:lod0FootPrint>"
    )
    body = (
        f'<core:cityObjectMember><bldg:Building gml:id="flat">'
        f'<bldg:measuredHeight uom="m">12.5</bldg:measuredHeight>{lod0}'
        f"</bldg:Building></core:cityObjectMember>\n"
        f'<core:cityObjectMember><bldg:Building gml:id="noheight">{lod0}'
        f"</bldg:Building></core:cityObjectMember>\n"
    )
    p = tmp_path / "lod0.gml"
    p.write_text(_model(srs, body))
    res = load_city(p)
    b, nh = res.buildings
    assert (b.id, b.ground_m, b.base_m, b.top_m) == ("flat", 98.5, 98.5, 111.0)
    assert b.height_source == "measuredHeight"
    assert 85 < b.footprint.area < 97  # ~8.2 m x 11.1 m
    # no height anywhere: kept, and not assumed low (the twin blocks its column)
    assert res.skipped == []
    assert (nh.id, nh.height_source, nh.ground_m) == ("noheight", "unknown", 98.5)
    assert nh.top_m - nh.ground_m >= 120.0
    assert res.audit[0]["unknown_heights"] == 1


def test_non_building_members_are_counted(tmp_path):
    srs = "EPSG:6697"
    rings = _box_rings(141.44, 42.94, 141.4401, 42.9401, 98.0, 104.0)
    body = (
        _building_lod1("b", rings, True)
        + '<core:cityObjectMember><tran:Road xmlns:tran="http://www.opengis.net/'
        'citygml/transportation/2.0" gml:id="r1"/></core:cityObjectMember>\n'
    )
    p = tmp_path / "mixed.xml"
    p.write_text(_model(srs, body))
    res = load_city(p)
    assert res.counts == {"Building": 1, "Road": 1} and len(res.buildings) == 1


def test_streaming_keeps_only_the_current_member(tmp_path, monkeypatch):
    """Members are cleared and removed once read: when a member is processed, no
    earlier member is still held by the CityModel (lxml may already have parsed a few
    later ones from its read buffer)."""
    from skytwin.airspace.io import citygml

    body = "".join(
        _building_lod1(
            f"b{i}",
            _box_rings(
                141.44 + 1e-4 * i, 42.94, 141.44005 + 1e-4 * i, 42.94005, 98, 104
            ),
            True,
        )
        for i in range(300)
    )
    p = tmp_path / "many.gml"
    p.write_text(_model("EPSG:6697", body))
    held = []
    original = citygml._Reader.member

    def spy(self, el):
        held.append(sum(1 for _ in el.itersiblings(preceding=True)))
        return original(self, el)

    monkeypatch.setattr(citygml._Reader, "member", spy)
    res = load_city(p)
    assert len(res.buildings) == 300 and len(held) == 300
    assert max(held) <= 1  # at most the CityModel's own boundedBy
