"""ED-269 import, export, round trips, units and malformed documents."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from skytwin.airspace.ed269 import (
    FT_TO_M,
    UNLIMITED_M,
    dump_ed269,
    load_ed269,
    parse_ed269,
    save_ed269,
)
from skytwin.airspace.errors import ZoneError
from skytwin.airspace.frame import Frame
from skytwin.airspace.zones import Altitude, Authority, Circle, Zone, ZoneLayer
from tests.conftest import FIXTURES

EXAMPLE = FIXTURES / "zones" / "example_ed269.json"


def _volume(**over):
    v = {
        "uomDimensions": "M",
        "lowerLimit": 0,
        "lowerVerticalReference": "AGL",
        "upperLimit": 120,
        "upperVerticalReference": "AGL",
        "horizontalProjection": {
            "type": "Circle",
            "center": [24.94, 60.17],
            "radius": 100,
        },
    }
    v.update(over)
    return v


def _doc(*features):
    return {"title": "t", "description": "d", "features": list(features)}


def _feature(ident="Z1", **over):
    f = {
        "identifier": ident,
        "country": "FIN",
        "name": "n",
        "type": "COMMON",
        "restriction": "PROHIBITED",
        "reason": ["AIR_TRAFFIC"],
        "zoneAuthority": [{"name": "CAA", "email": "a@b.c"}],
        "applicability": [{"permanent": "YES"}],
        "geometry": [_volume()],
    }
    f.update(over)
    return f


# --------------- fixture
def test_example_fixture_imports_over_helsinki():
    zones = load_ed269(EXAMPLE)
    assert [z.id for z in zones] == ["XHEL001", "XHEL002", "XHEL003/v0", "XHEL003/v1"]
    for z in zones:
        pts = [(z.circle.lon_deg, z.circle.lat_deg)] if z.circle else z.polygon
        for lon, lat in pts:
            assert 24.93 <= lon <= 24.96 and 60.16 <= lat <= 60.18
    helipad, event, gov0, gov1 = zones
    assert helipad.kind == "circle" and helipad.window is None
    start = datetime(2026, 6, 12, 15, tzinfo=UTC).timestamp()
    assert event.window == (start, start + 6 * 3600)
    assert gov0.upper == Altitude(400 * 0.3048, "AGL")
    assert gov1.lower == Altitude(400 * 0.3048, "AGL")
    assert gov1.upper == Altitude(1000 * 0.3048, "AMSL")
    assert gov1.circle.radius_m == pytest.approx(249.936, abs=1e-12)
    assert event.reason == "POPULATION, open-air concert"
    layer = ZoneLayer(Frame(24.944, 60.171), zones)
    assert [z.id for z in layer.at_point(24.9392, 60.1752, 100, "AGL")] == ["XHEL001"]
    assert layer.at_point(24.9515, 60.1695, 50, "AGL", t_s=start - 1) == []
    assert [
        z.id for z in layer.at_point(24.9515, 60.1695, 50, "AGL", t_s=start + 1)
    ] == ["XHEL002"]


def test_example_round_trip(tmp_path):
    zones = load_ed269(EXAMPLE)
    save_ed269(zones, tmp_path / "out.json", country="FIN")
    assert load_ed269(tmp_path / "out.json") == zones
    doc = json.loads((tmp_path / "out.json").read_text())
    assert {f["country"] for f in doc["features"]} == {"FIN"}
    assert all(
        g["uomDimensions"] == "M" for f in doc["features"] for g in f["geometry"]
    )


def test_random_round_trip():
    rng = np.random.default_rng(1)
    zones = []
    for n in range(200):
        lo_ref, hi_ref = rng.choice(["AGL", "AMSL"], 2)
        lo = float(rng.uniform(-10, 100))
        kw = {
            "circle": Circle(
                float(rng.uniform(-180, 180)),
                float(rng.uniform(-80, 80)),
                float(rng.uniform(0.1, 5000)),
            )
        }
        if n % 2:
            lon, lat = rng.uniform(-170, 170), rng.uniform(-70, 70)
            kw = {"polygon": [(lon, lat), (lon + 0.01, lat), (lon + 0.005, lat + 0.01)]}
        win = [
            None,
            (float(rng.integers(0, 2**31)), None),
            (None, float(rng.integers(0, 2**31))),
            (1.7e9 + float(rng.integers(0, 10**6)), 1.8e9),
        ][n % 4]
        zones.append(
            Zone(
                id=f"Z-{n}",
                lower=Altitude(lo, lo_ref),
                upper=Altitude(lo + float(rng.uniform(0.5, 300)), hi_ref),
                window=win,
                reason=["", "SENSITIVE,NOISE", "free text, here"][n % 3],
                authority=[
                    Authority(""),
                    Authority("X", "x@y.z"),
                    Authority("Y", "https://y"),
                    Authority("Z", "+1 555"),
                ][n % 4],
                name=None if n % 5 == 0 else f"zone {n}",
                **kw,
            )
        )
    doc = json.loads(json.dumps(dump_ed269(zones)))
    assert parse_ed269(doc) == zones


# --------------- units
def test_feet_converted_exactly_including_radius():
    f = _feature(
        geometry=[
            _volume(
                uomDimensions="FT",
                lowerLimit=100,
                upperLimit=500,
                horizontalProjection={
                    "type": "Circle",
                    "center": [24.94, 60.17],
                    "radius": 1000,
                },
            )
        ]
    )
    (z,) = parse_ed269(_doc(f))
    assert z.lower.value_m == 100 * FT_TO_M == 30.48
    assert z.upper.value_m == 500 * FT_TO_M
    assert z.circle.radius_m == 1000 * FT_TO_M


def test_wgs84_reference_needs_geoid():
    f = _feature(geometry=[_volume(upperVerticalReference="WGS84", upperLimit=150)])
    with pytest.raises(
        ZoneError,
        match=r"features\[0\]\.geometry\[0\]\."
        r"upperVerticalReference: WGS84 .*geoid_height_m",
    ):
        parse_ed269(_doc(f))
    (z,) = parse_ed269(_doc(f), geoid_height_m=18.0)
    assert z.upper == Altitude(132.0, "AMSL")


def test_missing_limits_mean_surface_and_unlimited():
    vol = _volume()
    for k in (
        "lowerLimit",
        "upperLimit",
        "lowerVerticalReference",
        "upperVerticalReference",
    ):
        del vol[k]
    (z,) = parse_ed269(_doc(_feature(geometry=[vol])))
    assert z.lower == Altitude(0.0, "AGL") and z.upper == Altitude(UNLIMITED_M, "AMSL")


# --------------- ids and windows
def test_several_volumes_and_windows_get_derived_ids():
    apps = [
        {
            "permanent": "NO",
            "startDateTime": "2026-01-01T10:00:00Z",
            "endDateTime": "2026-01-01T12:00:00Z",
        },
        {"permanent": "NO", "startDateTime": "2026-01-02T10:00:00+02:00"},
    ]
    f = _feature("EV", applicability=apps, geometry=[_volume(), _volume(lowerLimit=10)])
    zones = parse_ed269(_doc(f))
    assert [z.id for z in zones] == ["EV/v0/w0", "EV/v0/w1", "EV/v1/w0", "EV/v1/w1"]
    t10 = datetime(2026, 1, 1, 10, tzinfo=UTC).timestamp()
    assert zones[0].window == (t10, t10 + 7200)
    assert zones[1].window == (t10 + 86400 - 7200, None)
    assert parse_ed269(_doc(_feature("P", applicability=[])))[0].window is None


def test_holes_are_dropped_and_top_level_list_accepted():
    outer = [[24.0, 60.0], [24.1, 60.0], [24.1, 60.1], [24.0, 60.1], [24.0, 60.0]]
    hole = [[24.04, 60.04], [24.06, 60.04], [24.06, 60.06], [24.04, 60.04]]
    f = _feature(
        geometry=[
            _volume(
                horizontalProjection={"type": "Polygon", "coordinates": [outer, hole]}
            )
        ]
    )
    (z,) = parse_ed269([f])
    assert z.polygon == tuple(tuple(p) for p in outer[:-1])


def test_no_restriction_skipped_unless_asked(caplog):
    f = _feature(restriction="NO_RESTRICTION")
    assert parse_ed269(_doc(f)) == []
    assert "NO_RESTRICTION" in caplog.text
    assert len(parse_ed269(_doc(f), skip_unrestricted=False)) == 1


# --------------- malformed
BAD = [
    (
        lambda f: f["geometry"][0]["horizontalProjection"].update(radius=-5),
        r"features\[0\]\.geometry\[0\]\.horizontalProjection\.radius: must be > 0",
    ),
    (
        lambda f: f["geometry"][0]["horizontalProjection"].update(radius="big"),
        r"features\[0\]\.geometry\[0\]\.horizontalProjection\.radius: must be a number",
    ),
    (
        lambda f: f["geometry"][0]["horizontalProjection"].update(type="Ellipse"),
        r"horizontalProjection\.type: must be 'Polygon' or 'Circle', got 'Ellipse'",
    ),
    (
        lambda f: f["geometry"][0]["horizontalProjection"].update(center=[24.9]),
        r"horizontalProjection\.center: must be \[lon, lat\]",
    ),
    (
        lambda f: f["geometry"][0]["horizontalProjection"].update(center=[240.0, 60.0]),
        r"horizontalProjection\.center: \[lon, lat\] out of range",
    ),
    (
        lambda f: f["geometry"][0].update(uomDimensions="KM"),
        r"features\[0\]\.geometry\[0\]\.uomDimensions: must be 'M' or 'FT', got 'KM'",
    ),
    (
        lambda f: f["geometry"][0].update(lowerVerticalReference="SFC"),
        r"geometry\[0\]\.lowerVerticalReference: must be one of",
    ),
    (
        lambda f: f["geometry"][0].update(lowerLimit=200),
        r"features\[0\]\.geometry\[0\]: zone Z1: upper\.value_m must exceed "
        r"lower\.value_m "
        r"\(got 120 <= 200\)",
    ),
    (
        lambda f: f["geometry"][0].update(upperLimit=True),
        r"geometry\[0\]\.upperLimit: must be a number",
    ),
    (
        lambda f: f.update(geometry=[]),
        r"features\[0\]\.geometry: must hold at least one",
    ),
    (lambda f: f.pop("geometry"), r"features\[0\]\.geometry: must be a list"),
    (
        lambda f: f.update(identifier=""),
        r"features\[0\]\.identifier: must be a non-empty",
    ),
    (
        lambda f: f.update(restriction="MAYBE"),
        r"features\[0\]\.restriction: must be one of",
    ),
    (
        lambda f: f.update(reason=["BIRDS"]),
        r"features\[0\]\.reason\[0\]: must be one of",
    ),
    (
        lambda f: f.update(
            applicability=[{"permanent": "NO", "startDateTime": "2026-01-01T10:00:00"}]
        ),
        r"applicability\[0\]\.startDateTime: needs a time zone",
    ),
    (
        lambda f: f.update(
            applicability=[{"permanent": "NO", "startDateTime": "tomorrow"}]
        ),
        r"applicability\[0\]\.startDateTime: not an ISO 8601 date-time",
    ),
    (
        lambda f: f.update(
            applicability=[
                {
                    "permanent": "NO",
                    "startDateTime": "2026-01-01T10:00:00Z",
                    "endDateTime": "2026-01-01T09:00:00Z",
                }
            ]
        ),
        r"applicability\[0\]\.endDateTime: must be after startDateTime",
    ),
    (
        lambda f: f.update(applicability=[{"permanent": "SOMETIMES"}]),
        r"applicability\[0\]\.permanent: must be 'YES' or 'NO'",
    ),
    (
        lambda f: f["geometry"][0].update(
            horizontalProjection={
                "type": "Polygon",
                "coordinates": [
                    [
                        [24.0, 60.0],
                        [24.1, 60.1],
                        [24.1, 60.0],
                        [24.0, 60.1],
                        [24.0, 60.0],
                    ]
                ],
            }
        ),
        r"features\[0\]\.geometry\[0\]: zone Z1: polygon is not simple",
    ),
    (
        lambda f: f["geometry"][0].update(
            horizontalProjection={
                "type": "Polygon",
                "coordinates": [[[24.0, 60.0], "x"]],
            }
        ),
        r"horizontalProjection\.coordinates\[0\]\[1\]: must be \[lon, lat\]",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BAD)
def test_malformed_feature_names_field(mutate, message):
    good = _feature()
    f = copy.deepcopy(good)
    mutate(f)
    with pytest.raises(ZoneError, match=message):
        parse_ed269(_doc(f))


def test_error_path_counts_features():
    bad = _feature("B")
    bad["geometry"][0]["horizontalProjection"]["radius"] = 0
    with pytest.raises(
        ZoneError,
        match=r"^features\[3\]\.geometry\[0\]\."
        r"horizontalProjection\.radius: must be > 0",
    ):
        parse_ed269(_doc(*[_feature(f"G{n}") for n in range(3)], bad))


def test_duplicate_ids_rejected():
    with pytest.raises(
        ZoneError,
        match=r"features\[1\]\.identifier: zone id 'A' already used "
        r"by features\[0\]",
    ):
        parse_ed269(_doc(_feature("A"), _feature("A")))


def test_bad_documents(tmp_path):
    with pytest.raises(ZoneError, match="must be an object with 'features'"):
        parse_ed269("nope")
    p = tmp_path / "trunc.json"
    p.write_text('{"features": [')
    with pytest.raises(ZoneError, match=r"trunc\.json: not valid JSON"):
        load_ed269(p)
    p.write_text(json.dumps(_doc(_feature(restriction="X"))))
    with pytest.raises(ZoneError, match=r"trunc\.json: features\[0\]\.restriction"):
        load_ed269(p)
