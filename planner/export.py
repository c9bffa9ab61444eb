"""Export routes, twins and conflicts to standard formats people can look at.

* The route format (:func:`route_json`): one JSON form of a route and its waypoints,
  shared by ``skytwin route --json``, ``skytwin client plan/submit/get`` and the
  GeoJSON properties below, with units in every name (``lon_deg``, ``alt_amsl_m``,
  ``time_unix_s`` ...). It is documented once, as a JSON Schema, in
  ``docs/route.schema.json``; a test validates every output against it.
* GeoJSON (RFC 7946): WGS84 lon/lat with altitude as the third coordinate [m AMSL];
  properties carry the units in their names (the route line's properties are the
  route format without its waypoints; each waypoint Point's properties are one
  waypoint of the route format). Opens in QGIS, geojson.io, kepler.gl.
* CZML (Cesium): a time-dynamic document, one packet per flight with its 4D
  trajectory as cartographicDegrees samples, so Cesium animates the flights over the
  3D city.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import shapely
from shapely.geometry import mapping

__all__ = ["conflict_positions", "conflicts_geojson", "route_czml", "route_geojson", "route_json",
           "trajectories_czml", "trajectories_geojson", "twin_geojson"]


def _iso(t_s: float) -> str:
    return _dt.datetime.fromtimestamp(float(t_s), tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def route_json(route) -> dict:
    """A planned route in the route format (``docs/route.schema.json``).

    Waypoints carry ``lon_deg``, ``lat_deg`` (WGS84), ``alt_amsl_m``, ``alt_agl_m``,
    ``t_s`` (seconds since departure) and ``time_unix_s``; the route carries
    ``depart_unix_s``, ``arrive_unix_s``, ``duration_s``, ``length_m``, ``straight_m``,
    ``clearance_m`` and ``search_level``, plus the planner's own figures
    (``voxel_length_m``, ``expansions``, ``search_ms``, ``total_ms``).
    """
    d = route.to_dict()
    wps = [{"lon_deg": w["lon"], "lat_deg": w["lat"], "alt_amsl_m": w["alt_amsl_m"],
            "alt_agl_m": w["alt_agl_m"], "t_s": w["t_s"], "time_unix_s": w["time_unix_s"]}
           for w in d["waypoints"]]
    out = {"flight_id": d["flight_id"], "waypoints": wps, "length_m": d["length_m"],
           "duration_s": d["duration_s"], "clearance_m": d["clearance_m"],
           "straight_m": d["straight_m"], "search_level": d["search_level"],
           "depart_unix_s": round(float(d["depart_unix_s"]), 3),
           "arrive_unix_s": wps[-1]["time_unix_s"] if wps else
           round(float(d["depart_unix_s"]), 3)}
    for k in ("voxel_length_m", "expansions", "search_ms", "total_ms"):
        out[k] = d[k]
    return out


def route_geojson(route, buildings_near: list | None = None) -> dict:
    """A FeatureCollection: the route line, its waypoints, and optionally buildings.

    The line's properties are :func:`route_json` without the waypoints (plus
    ``kind: "route"``); each waypoint is a Point whose properties are its waypoint of
    :func:`route_json` (plus ``kind: "waypoint"`` and its ``index``).
    """
    coords = [[round(float(lo), 9), round(float(la), 9), round(float(a), 2)]
              for (lo, la), a in zip(route.lonlat_deg, route.alt_amsl_m, strict=True)]
    d = route_json(route)
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
        geom = shapely.transform(
            b.footprint, lambda xy: np.column_stack(frame.to_wgs84(xy[:, 0], xy[:, 1])))
        feats.append({"type": "Feature", "id": b.id, "geometry": mapping(geom),
                      "properties": {"kind": "building", "top_amsl_m": round(b.top_m, 2),
                                     "base_amsl_m": round(b.base_m, 2),
                                     "ground_amsl_m": round(b.ground_m, 2),
                                     "height_agl_m": round(b.top_m - b.ground_m, 2),
                                     "height_source": b.height_source}})
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




def trajectories_geojson(frame, trajectories) -> list:
    """One LineString feature per trajectory (WGS84, altitude [m AMSL], times)."""
    feats = []
    for tr in trajectories:
        lon, lat = frame.to_wgs84(tr.xyz_m[:, 0], tr.xyz_m[:, 1])
        coords = [[round(float(a), 9), round(float(b), 9), round(float(z), 2)]
                  for a, b, z in zip(lon, lat, tr.xyz_m[:, 2], strict=True)]
        feats.append({"type": "Feature", "id": tr.flight_id,
                      "geometry": {"type": "LineString", "coordinates": coords},
                      "properties": {"kind": "flight", "flight_id": tr.flight_id,
                                     "depart_unix_s": tr.t_start_s,
                                     "arrive_unix_s": tr.t_end_s,
                                     "times_unix_s": [round(float(t), 3) for t in tr.t_s]}})
    return feats


def conflict_positions(trajectories, conflicts) -> list:
    """``(pa, pb)`` local positions ``(3,)`` of the two drones at mid-conflict."""
    by_id = {t.flight_id: t for t in trajectories}
    out = []
    for c in conflicts:
        t = 0.5 * (c.t_start_s + c.t_end_s)
        out.append((by_id[c.flight_a].position_at(t), by_id[c.flight_b].position_at(t)))
    return out


def conflicts_geojson(frame, trajectories, conflicts) -> list:
    """One feature per conflict: the segment between the two drones at mid-conflict.

    Properties carry both flight ids, the conflict's time span [Unix s] and the smallest
    horizontal and vertical distances found.
    """
    feats = []
    for c, (pa, pb) in zip(conflicts, conflict_positions(trajectories, conflicts),
                           strict=True):
        lon, lat = frame.to_wgs84([pa[0], pb[0]], [pa[1], pb[1]])
        coords = [[round(float(lon[k]), 9), round(float(lat[k]), 9),
                   round(float((pa, pb)[k][2]), 2)] for k in range(2)]
        feats.append({"type": "Feature",
                      "geometry": {"type": "LineString", "coordinates": coords},
                      "properties": {"kind": "conflict", "flight_a": c.flight_a,
                                     "flight_b": c.flight_b,
                                     "t_start_unix_s": round(c.t_start_s, 3),
                                     "t_end_unix_s": round(c.t_end_s, 3),
                                     "min_h_m": round(c.min_h_m, 2),
                                     "min_v_m": round(c.min_v_m, 2)}})
    return feats
