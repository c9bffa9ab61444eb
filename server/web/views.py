"""What the web map shows, as JSON-ready dicts built from the service core.

Nothing here knows HTTP (:mod:`skytwin.server.web.app` does); every function takes the
:class:`~skytwin.server.service.ServiceCore` (and the caller where visibility matters)
and returns plain dicts and lists. Coordinates are WGS84 degrees rounded to 1e-7 deg
(about 1 cm), heights metres AMSL rounded to 1 cm, times Unix seconds.

Buildings and level of detail
-----------------------------
Nothing is ever dropped: hiding an obstacle on a safety map is worse than drawing it
coarsely, so detail goes down by merging, never by omission. A twin of up to
:data:`EXACT_MAX_BUILDINGS` buildings is sent whole, exact exterior rings (holes
dropped: the extrusion is a display, the twin keeps the exact geometry). A larger one
(the 10 km synthetic city: 100,000) is sent as *coarse blocks* for the overview
(:func:`buildings_payload` ``lod="coarse"``: one box per square tile, at most
:data:`MAX_COARSE_BLOCKS`, enclosing every footprint of the tile from the lowest base
to the highest roof: coarser, never thinner; ``"blocks"`` is the same with up to
:data:`MAX_BLOCKS`). Zoomed in, the page asks for the district it shows
(:func:`buildings_in_box`): the exact footprints of the buildings in view (the nearest
:data:`DISTRICT_MAX_BUILDINGS` to its centre when more) and the rest of the city as
coarse blocks, so the whole city stays drawn.

Why these numbers: the map must stay usable on a software renderer (SwiftShader, no
GPU), where the cost of a frame follows the triangles drawn more than the pixels
(measured: 19,189 rectangles extruded 2.0 s a frame, the same flat 0.12 s; 1,521
blocks 0.57 s, 404 blocks 0.11 s; half the resolution saves at most a third). An
extruded box is 10 triangles, so ~400 blocks plus ~1,500 buildings keep a full redraw
of the scene near a few hundred ms there and far below a frame on any GPU. Payloads of
the whole twin are built once per twin (it is immutable) and cached. Measured in
benchmarks/RESULTS.md ("Web map").

Unknown heights: a building with ``height_source == "unknown"`` has no height in the
data; the twin blocks its column to the ceiling, and the map draws it to that height
with ``unknown: 1`` so the page can show it hatched-grey and translucent (never as a
measured tower).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import shapely

__all__ = ["DISTRICT_MAX_BUILDINGS", "EXACT_MAX_BUILDINGS", "MAX_BLOCKS",
           "MAX_COARSE_BLOCKS", "buildings_in_box", "buildings_payload", "change_json",
           "flight_json", "ground_json", "point_info", "zone_json", "zone_from_json"]

#: above this many buildings, the overview gets blocks and districts exact footprints
EXACT_MAX_BUILDINGS = 5_000
#: at most this many blocks in the overview of a large twin
MAX_BLOCKS = 1_500
#: at most this many exact buildings in a district view (the rest: coarse blocks)
DISTRICT_MAX_BUILDINGS = 1_500
#: at most this many blocks in the far view (``lod="coarse"``)
MAX_COARSE_BLOCKS = 400

_cache: dict = {}
_cache_lock = threading.Lock()


def _r7(v) -> float:
    return round(float(v), 7)


def _r2(v) -> float:
    return round(float(v), 2)


def _payload(twin, idx, geoms, lod: str) -> dict:
    """Flat arrays for buildings ``idx`` drawn as ``geoms`` (local frame)."""
    rings, owner = [], []
    for n, g in enumerate(geoms):
        parts = g.geoms if hasattr(g, "geoms") else [g]
        for p in parts:
            if p.geom_type != "Polygon" or p.is_empty:
                p = p.buffer(0.5).envelope  # a degenerate rectangle (a line): keep it
            xy = np.asarray(p.exterior.coords)[:-1]
            rings.append(xy)
            owner.append(n)
    flat = np.concatenate(rings) if rings else np.zeros((0, 2))
    lon, lat = twin.frame.to_wgs84(flat[:, 0], flat[:, 1])
    ll = np.round(np.column_stack([lon, lat]), 7)
    out_rings, at = [], 0
    for xy in rings:
        out_rings.append(ll[at:at + len(xy)].ravel().tolist())
        at += len(xy)
    b = [twin.buildings[i] for i in idx]
    return {
        "lod": lod, "count": len(b), "buildings_total": len(twin.buildings),
        "rings": out_rings, "ring_building": owner,
        "base_m": [_r2(min(x.base_m, x.ground_m)) for x in b],
        "top_m": [_r2(x.top_m) for x in b],
        "ground_m": [_r2(x.ground_m) for x in b],
        "unknown": [1 if x.height_source == "unknown" else 0 for x in b],
        "ids": [str(x.id) for x in b],
        "bounds": [_r7(v) for v in twin.bounds_wgs84()],
    }


def _blocks(twin, max_blocks: int, lod: str = "blocks", members=None) -> dict:
    """Buildings merged per square tile: one box per occupied tile, enclosing every
    footprint whose centre lies in it (box = their joint bounds), from the lowest base
    to the highest roof (coarser, never thinner); grey when that roof is unknown.
    ``members``: the buildings to merge (indices; default all)."""
    every = np.arange(len(twin.buildings)) if members is None else np.asarray(members)
    if not len(every):
        p = _payload(twin, [], [], lod)
        p.update(members=[], tile_m=0.0)
        return p
    bounds = shapely.bounds(twin.footprints[every])        # (n, 4)
    cx = 0.5 * (bounds[:, 0] + bounds[:, 2])
    cy = 0.5 * (bounds[:, 1] + bounds[:, 3])
    area = max((cx.max() - cx.min()) * (cy.max() - cy.min()), 1.0)
    tile = max(50.0, math.sqrt(area / max_blocks))
    key = np.floor((cx - cx.min()) / tile).astype(np.int64) * 1_000_000 + \
        np.floor((cy - cy.min()) / tile).astype(np.int64)
    order = np.argsort(key, kind="stable")
    ks, starts = np.unique(key[order], return_index=True)
    groups = np.split(order, starts[1:])
    top = twin.bld_top_m[every]
    base = np.minimum(twin.bld_base_m, twin.bld_ground_m)[every]
    ground = twin.bld_ground_m[every]
    unknown = np.array([twin.buildings[i].height_source == "unknown" for i in every])
    geoms, rows = [], []
    for k, g in zip(ks, groups, strict=True):
        x0, y0 = bounds[g, 0].min(), bounds[g, 1].min()
        x1, y1 = bounds[g, 2].max(), bounds[g, 3].max()
        geoms.append(shapely.box(x0, y0, x1, y1))
        hi = g[np.argmax(top[g])]
        rows.append((f"block:{int(k)}", float(base[g].min()), float(top[hi]),
                     float(ground[g].min()), bool(unknown[hi]), len(g)))
    p = _payload(twin, [], geoms, lod)
    p.update(count=len(rows), tile_m=round(tile, 1), ids=[r[0] for r in rows],
             base_m=[_r2(r[1]) for r in rows], top_m=[_r2(r[2]) for r in rows],
             ground_m=[_r2(r[3]) for r in rows], unknown=[int(r[4]) for r in rows],
             members=[r[5] for r in rows])
    return p


def buildings_payload(twin, lod: str = "auto") -> dict:
    """Every building as flat arrays (see module docstring), cached per twin and lod.

    ``lod``: ``"exact"`` footprints, ``"rect"`` minimum rotated rectangles, ``"blocks"``
    one box per tile (at most :data:`MAX_BLOCKS`), ``"coarse"`` the same with at most
    :data:`MAX_COARSE_BLOCKS` (the far view), ``"auto"``: exact up to
    :data:`EXACT_MAX_BUILDINGS` buildings, else blocks (the page then asks for the
    exact buildings of the district it shows, :func:`buildings_in_box`).

    Returns
    -------
    dict with ``lod``, ``count`` (drawn objects), ``buildings_total``, ``rings`` (list
    of flat ``[lon, lat, lon, lat, ...]`` exterior rings), ``ring_building`` (object
    index of each ring), ``base_m``, ``top_m``, ``ground_m`` (m AMSL), ``unknown`` (1
    where the height is unknown), ``ids`` and ``bounds`` (WGS84 box of the twin).
    """
    if lod == "auto":
        lod = "exact" if len(twin.buildings) <= EXACT_MAX_BUILDINGS else "coarse"
    if lod not in ("exact", "rect", "blocks", "coarse"):
        raise ValueError(f"lod must be 'auto', 'exact', 'rect', 'blocks' or 'coarse', "
                         f"got {lod!r}")
    key = (id(twin), lod)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    n = len(twin.buildings)
    if lod in ("blocks", "coarse") and n:
        payload = _blocks(twin, MAX_BLOCKS if lod == "blocks" else MAX_COARSE_BLOCKS, lod)
    else:
        geoms = twin.footprints if lod == "exact" else shapely.oriented_envelope(
            twin.footprints)
        payload = _payload(twin, range(n), geoms, lod)
    with _cache_lock:
        _cache[key] = payload
    return payload


def buildings_in_box(twin, box_deg, max_count: int = DISTRICT_MAX_BUILDINGS) -> dict:
    """The district view: exact footprints of the buildings meeting a WGS84 box
    ``(w, s, e, n)`` (the nearest ``max_count`` to the box centre when more), and every
    other building of the twin merged into coarse blocks (:data:`MAX_COARSE_BLOCKS`),
    so that the whole city stays on the map at a cost the renderer can bear.

    ``count`` is the number of drawn objects, ``exact`` how many of them are exact
    buildings (the first ``exact`` entries), ``members`` the buildings in each object
    (1 for an exact one).
    """
    w, s_, e, n = (float(v) for v in box_deg)
    if not (w < e and s_ < n):
        raise ValueError(f"bbox must be west,south,east,north with west < east and "
                         f"south < north, got {box_deg}")
    lon = np.array([w, e, e, w])
    lat = np.array([s_, s_, n, n])
    x, y = twin.frame.to_local(lon, lat)
    poly = shapely.Polygon(np.column_stack([x, y]))
    idx = np.sort(np.asarray(twin.index.query(poly, predicate="intersects"), np.int64))
    if len(idx) > max_count:
        c = poly.centroid
        d = shapely.distance(twin.footprints[idx], c)
        idx = np.sort(idx[np.argsort(d)[:max_count]])
    p = _payload(twin, idx.tolist(), twin.footprints[idx], "exact")
    p["members"] = [1] * len(idx)
    rest = np.setdiff1d(np.arange(len(twin.buildings)), idx)
    if len(rest):
        q = _blocks(twin, MAX_COARSE_BLOCKS, "coarse", rest)
        k = p["count"]
        p["rings"] += q["rings"]
        p["ring_building"] += [k + r for r in q["ring_building"]]
        for f in ("base_m", "top_m", "ground_m", "unknown", "ids", "members"):
            p[f] = p[f] + q[f]
        p["count"] = k + q["count"]
    p["exact"] = len(idx)
    p["lod"] = "district"
    p["bbox"] = [w, s_, e, n]
    return p


def _zone_ring(core, zone) -> list:
    """The zone's outline as ``[[lon, lat], ...]`` (a circle as a 64-gon)."""
    if zone.polygon is not None:
        return [[_r7(a), _r7(b)] for a, b in zone.polygon]
    c = zone.circle
    x, y = core.twin.frame.to_local(c.lon_deg, c.lat_deg)
    a = np.linspace(0.0, 2.0 * math.pi, 64, endpoint=False)
    lon, lat = core.twin.frame.to_wgs84(x + c.radius_m * np.cos(a),
                                        y + c.radius_m * np.sin(a))
    return [[_r7(p), _r7(q)] for p, q in zip(lon, lat, strict=True)]


def zone_json(core, zone) -> dict:
    """A zone for the page: its fields, outline and band in m AMSL.

    The band converts AGL limits with the ground under the zone's box: the bottom at
    the lowest ground, the top at the highest (the volume drawn covers the zone
    everywhere; the exact band per column is the twin's business).
    """
    from skytwin.airspace.zones import LocalZone
    lz = LocalZone(zone, core.twin.frame)
    g_lo, g_hi = core.ground_range(*lz.bounds_m)
    lo, hi = zone.lower.amsl_m(g_lo), zone.upper.amsl_m(g_hi)
    return {
        "id": zone.id, "name": zone.name or "", "kind": zone.kind,
        "temporary": zone.window is not None,
        "lower": {"value_m": zone.lower.value_m, "reference": zone.lower.reference},
        "upper": {"value_m": zone.upper.value_m, "reference": zone.upper.reference},
        "band_amsl_m": [_r2(lo), _r2(hi)],
        "window": None if zone.window is None else list(zone.window),
        "reason": zone.reason, "authority": zone.authority.name,
        "circle": None if zone.circle is None else
        {"lon_deg": zone.circle.lon_deg, "lat_deg": zone.circle.lat_deg,
         "radius_m": zone.circle.radius_m},
        "ring": _zone_ring(core, zone),
        # a zone derived from the city model (ground layers): its category and rule
        "derived": None if getattr(zone, "derived", None) is None else {
            "category": zone.derived.category, "rule": zone.derived.rule,
            "enabled": bool(zone.derived.enabled)},
    }


def zone_from_json(d: dict, default_id: str):
    """A :class:`~skytwin.airspace.zones.Zone` from the page's zone form.

    ``d`` holds ``circle`` ``{lon_deg, lat_deg, radius_m}`` or ``polygon``
    ``[[lon, lat], ...]``, ``lower`` and ``upper`` ``{value_m, reference}``, optional
    ``window`` ``[start_unix_s, end_unix_s]`` (either may be null), ``name``,
    ``reason`` and ``id`` (default ``default_id``). Errors are ``ValueError`` (or
    ``ZoneError``) naming the field.
    """
    from skytwin.airspace.zones import Altitude, Circle, Zone
    if not isinstance(d, dict):
        raise ValueError("the zone must be a JSON object")

    def alt(name):
        v = d.get(name)
        if not isinstance(v, dict) or "value_m" not in v:
            raise ValueError(f"{name} must be {{'value_m': number, 'reference': "
                             "'AGL' or 'AMSL'}")
        return Altitude(v["value_m"], str(v.get("reference", "AGL")))

    circle = d.get("circle")
    poly = d.get("polygon")
    if (circle is None) == (poly is None):
        raise ValueError("give exactly one of circle and polygon")
    if circle is not None:
        if not isinstance(circle, dict):
            raise ValueError("circle must be {lon_deg, lat_deg, radius_m}")
        try:
            circle = Circle(float(circle["lon_deg"]), float(circle["lat_deg"]),
                            float(circle["radius_m"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("circle must be {lon_deg, lat_deg, radius_m} "
                             "(numbers)") from None
        if not circle.radius_m > 0:
            raise ValueError(f"circle.radius_m must be > 0, got {circle.radius_m}")
    window = d.get("window")
    if window is not None:
        if not isinstance(window, (list, tuple)) or len(window) != 2:
            raise ValueError("window must be [start_unix_s, end_unix_s] (null: open)")
        window = tuple(None if w is None else float(w) for w in window)
    return Zone(id=str(d.get("id") or default_id), lower=alt("lower"), upper=alt("upper"),
                polygon=None if poly is None else tuple(tuple(p) for p in poly),
                circle=circle, window=window, reason=str(d.get("reason") or ""),
                authority=str(d.get("authority") or ""),
                name=(str(d["name"]) if d.get("name") else None))


def ground_json(core, risk: bool = True) -> dict:
    """The ground layers of the twin for the map: the risk layer's cells and the
    derived zones (in force).

    Returns
    -------
    dict with ``risk``: ``cell_m``, ``source``, ``band_limits`` (people/km² between
    SORA bands), ``n`` cells, ``corners`` (flat ``[lon, lat] x 4`` per cell, degrees
    rounded to 1e-7), ``band_day``, ``band_night`` (SORA density band 1-6, 1 the
    emptiest), ``density_day``, ``density_night`` [people/km², rounded]; and
    ``derived``: the derived zones as :func:`zone_json` (with ``derived.category``).
    ``risk=False``: the zones only (``risk`` None).
    """
    g = getattr(core, "ground", None)
    if g is None:
        return {"risk": None, "derived": []}
    out = None
    if risk and g.risk is not None:
        r = g.risk_cells(box=core.twin.bounds_wgs84())
        cells = r["cells"]
        out = {"cell_m": r["cell_m"], "source": r["source"],
                "band_limits": list(r.get("band_limits") or []), "n": len(cells),
                "corners": [_r7(v) for c in cells for p in c["corners"] for v in p],
                "band_day": [int(c["band_day"]) for c in cells],
                "band_night": [int(c["band_night"]) for c in cells],
                "density_day": [round(float(c["density_day"])) for c in cells],
                "density_night": [round(float(c["density_night"])) for c in cells]}
    return {"risk": out, "derived": [zone_json(core, z) for z in g.zones()]}


def flight_json(rec) -> dict:
    """A booked flight for the page: ``wp`` rows ``[lon, lat, alt_amsl_m, t_unix_s]``."""
    t = rec.trajectory.t_s
    rows = [[_r7(a), _r7(b), _r2(h), round(float(s), 3)]
            for (a, b), h, s in zip(rec.lonlat_deg, rec.alt_amsl_m, t, strict=True)]
    return {"flight_id": rec.flight_id, "operator_id": rec.operator_id,
            "status": rec.status, "depart_unix_s": round(float(t[0]), 3),
            "arrive_unix_s": round(float(t[-1]), 3), "wp": rows}


def change_json(core, ch) -> dict:
    """A change (already filtered with ``Change.for_caller``) for the event list."""
    d = {"sequence": ch.sequence, "kind": ch.kind, "time_s": ch.time_s,
         "actor": ch.actor, "affected_flight_ids": list(ch.affected_flight_ids),
         "reason": ch.reason,
         # live operations: the lifecycle state a flight_state change moves to
         "flight_state": getattr(ch, "flight_state", "") or ""}
    if ch.flight is not None:
        d["flight"] = flight_json(ch.flight)
    if ch.zone is not None:
        d["zone"] = zone_json(core, ch.zone) if ch.kind != "zone_removed" else \
            {"id": ch.zone.id}
    return d


def point_info(core, lon_deg: float, lat_deg: float, alt_agl_m: float,
               t_s: float | None) -> dict:
    """Everything about one point of the map (the click panel).

    Grid code (H3 cell + layer, AMSL) and Beidou code of the point at ``alt_agl_m``
    above the ground; ground and roof heights (roof: the highest building whose
    footprint holds the point, with its height source); what blocks the code (buildings
    with the twin's clearance and zones active at ``t_s``: the planner's protected
    volumes); and every zone over the point with its band and whether it is active.
    """
    from skytwin.airspace import beidou
    from skytwin.airspace.errors import OutsideTwinError
    from skytwin.airspace.query import what_blocks
    twin = core.twin
    g = twin.grid
    x, y = twin.frame.to_local(lon_deg, lat_deg)
    x, y = float(x), float(y)
    if not (g.x0_m <= x <= g.x1_m and g.y0_m <= y <= g.y1_m):
        raise OutsideTwinError(f"point ({lon_deg:.6f}, {lat_deg:.6f}) is outside the twin")
    i = min(int((x - g.x0_m) // g.dx_m), g.nx - 1)
    j = min(int((y - g.y0_m) // g.dx_m), g.ny - 1)
    ground = float(twin.ground_m[i, j])
    alt = ground + float(alt_agl_m)
    roof = None
    if twin.buildings:
        hits = twin.index.query(shapely.Point(x, y), predicate="intersects")
        if len(hits):
            top = max(hits, key=lambda n: twin.buildings[n].top_m)
            b = twin.buildings[top]
            roof = {"building_id": str(b.id), "roof_m": _r2(b.top_m),
                    "height_source": b.height_source,
                    "unknown_height": b.height_source == "unknown"}
    code = core.encode_grid_code(lon_deg, lat_deg, alt, "AMSL")
    blockers = what_blocks(twin, code, zones=core.zones, t_s=t_s,
                           clearance_m=twin.clearance_m)
    zones = []
    for lz in core.zones.local_zones():
        if lz.contains_2d(x, y):
            lo, hi = lz.band_amsl(ground)
            z = lz.zone
            zones.append({"id": z.id, "name": z.name or "", "band_amsl_m": [_r2(lo), _r2(hi)],
                          "active": t_s is None or z.active_during(t_s, t_s),
                          "window": None if z.window is None else list(z.window)})
    return {
        "lon_deg": _r7(lon_deg), "lat_deg": _r7(lat_deg), "alt_agl_m": float(alt_agl_m),
        "alt_amsl_m": _r2(alt), "ground_m": _r2(ground), "roof": roof,
        "column_top_m": _r2(twin.top_m[i, j]),
        "grid_code": str(code), "h3_cell": str(code).split("-")[0], "layer": code.layer,
        # Beidou heights are geodetic; the twin's are AMSL: the geoid separation is
        # taken as 0 here, as in airspace.beidou.codes_for_voxels by default
        "beidou": beidou.encode(lon_deg, lat_deg, alt),
        "blocked": bool(blockers),
        "blocked_by": [{"kind": b.kind, "id": b.id} for b in blockers],
        "zones": sorted(zones, key=lambda z: z["id"]),
    }
