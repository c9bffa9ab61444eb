"""Export routes, twins and conflicts to standard formats people can look at.

* GeoJSON (RFC 7946): WGS84 lon/lat with altitude as the third coordinate [m AMSL];
  properties carry the units in their names. Opens in QGIS, geojson.io, kepler.gl.
* CZML (Cesium): a time-dynamic document, one packet per flight with its 4D
  trajectory as cartographicDegrees samples, so Cesium animates the flights over the
  3D city.
"""

from __future__ import annotations

import datetime as _dt

from shapely.geometry import mapping
from shapely.ops import transform as _shp_transform

__all__ = ["route_geojson", "route_czml", "twin_geojson", "trajectories_czml"]


def _iso(t_s: float) -> str:
    return _dt.datetime.fromtimestamp(float(t_s), tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def route_geojson(route, buildings_near: list | None = None) -> dict:
    """A FeatureCollection: the route line, its waypoints, and optionally buildings."""
    coords = [[round(float(lo), 9), round(float(la), 9), round(float(a), 2)]
              for (lo, la), a in zip(route.lonlat_deg, route.alt_amsl_m, strict=True)]
    d = route.to_dict()
    props = {k: v for k, v in d.items() if k != "waypoints"}
    feats = [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
              "properties": {**props, "kind": "route"}}]
    for n, w in enumerate(d["waypoints"]):
        feats.append({"type": "Feature",
                      "geometry": {"type": "Point", "coordinates": coords[n]},
                      "properties": {"kind": "waypoint", "index": n, **w}})
    if buildings_near:
        feats.extend(buildings_near)
    return {"type": "FeatureCollection", "features": feats}


def twin_geojson(twin, ids=None) -> dict:
    """Buildings of a twin as WGS84 footprints with heights (``ids`` to pick some)."""
    frame = twin.frame
    feats = []
    pick = None if ids is None else set(ids)
    for b in twin.buildings:
        if pick is not None and b.id not in pick:
            continue
        geom = _shp_transform(lambda x, y, z=None: frame.to_wgs84(x, y), b.footprint)
        feats.append({"type": "Feature", "id": b.id, "geometry": mapping(geom),
                      "properties": {"kind": "building", "top_amsl_m": round(b.top_m, 2),
                                     "base_amsl_m": round(b.base_m, 2),
                                     "ground_amsl_m": round(b.ground_m, 2),
                                     "height_agl_m": round(b.top_m - b.ground_m, 2)}})
    return {"type": "FeatureCollection", "features": feats}


def trajectories_czml(items, name: str = "SkyTwin") -> list:
    """CZML for ``(flight_id, lonlat_deg (n,2), alt_m (n,), t_s (n,))`` tuples."""
    items = list(items)
    t0 = min(float(t[0]) for _, _, _, t in items)
    t1 = max(float(t[-1]) for _, _, _, t in items)
    doc = [{"id": "document", "name": name, "version": "1.0",
            "clock": {"interval": f"{_iso(t0)}/{_iso(t1)}", "currentTime": _iso(t0),
                      "multiplier": 10}}]
    for fid, lonlat, alt, t in items:
        samples = []
        for (lo, la), a, ts in zip(lonlat, alt, t, strict=True):
            samples += [round(float(ts) - t0, 3), round(float(lo), 9), round(float(la), 9),
                        round(float(a), 2)]
        doc.append({
            "id": str(fid),
            "availability": f"{_iso(t[0])}/{_iso(t[-1])}",
            "position": {"epoch": _iso(t0), "cartographicDegrees": samples},
            "path": {"width": 2, "leadTime": 0, "trailTime": 3600,
                     "material": {"solidColor": {"color": {"rgba": [0, 170, 255, 255]}}}},
            "point": {"pixelSize": 8, "color": {"rgba": [255, 80, 0, 255]}},
        })
    return doc


def route_czml(route) -> list:
    """CZML of one route (see :func:`trajectories_czml`)."""
    return trajectories_czml([(route.trajectory.flight_id, route.lonlat_deg,
                               route.alt_amsl_m, route.trajectory.t_s)])


