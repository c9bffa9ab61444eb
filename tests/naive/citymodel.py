"""An obstacle oracle that reads city models on its own (never through ``airspace.io``).

Why: a check that reads buildings through the reader it checks cannot see a building
that reader dropped or lowered. This module parses the source files with plain
``json`` / ``lxml`` and ``pyproj`` (the CRS and axis order are given by the caller, from
the data's provenance, not parsed by the product's code), keeps every face of every
Building / BuildingPart / BuildingInstallation exactly as written, and checks routes
against the *face prisms*: a point is too close to a face when its horizontal distance
to the face's projection is below the clearance while it is no higher than the face's
highest vertex plus the clearance. Every point of a solid lies under one of its roof
faces, so this is the building's own volume with the clearance, columns from the ground
up (as the twin's rule), with no repair, hull or union of the product's.

Heights of 2D footprints (GeoJSON, CityGML LoD0) are the data's own: an OSM ``height``
tag, else ``building:levels`` x 3 m (+ ``roof:levels`` x 3 m or ``roof:height``), a
CityGML ``measuredHeight`` over the outline; with none of these the height is **unknown
and taken as infinite**: a route may not pass over or near what the data does not
measure.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pyproj
import shapely
from lxml import etree

OBSTACLE_KINDS_JSON = ("Building", "BuildingPart", "BuildingInstallation")
GML_IDS = ("{http://www.opengis.net/gml}id", "{http://www.opengis.net/gml/3.2}id")
BUILDING_TAGS = ("Building", "BuildingPart")


@dataclass
class RawObstacle:
    """One source object: id, kind, faces (rings of (x, y, z) in the source CRS)."""

    id: str
    kind: str
    rings: list = field(default_factory=list)   # list of [exterior, *holes] arrays
    flat_top: float | None = None               # 2D outline: roof height (inf: unknown)


# -- readers ---------------------------------------------------------------------------


def read_cityjson(path) -> list[RawObstacle]:
    doc = json.loads(open(path, "rb").read())
    verts = np.asarray(doc["vertices"], dtype=float)
    tr = doc.get("transform")
    if tr:
        verts = verts * np.asarray(tr["scale"]) + np.asarray(tr["translate"])
    out = []
    for oid, obj in doc["CityObjects"].items():
        if obj.get("type") not in OBSTACLE_KINDS_JSON:
            continue
        o = RawObstacle(oid, obj["type"])
        for g in obj.get("geometry") or []:
            for surface in _json_surfaces(g.get("boundaries")):
                rings = []
                for ring in surface:
                    idx = [i for i in ring if isinstance(i, int) and 0 <= i < len(verts)]
                    if idx:
                        rings.append(verts[idx])
                if rings:
                    o.rings.append(rings)
        out.append(o)
    return out


def _json_surfaces(b):
    """Yield each surface ([ring, ring, ...] of int lists) of any nesting depth."""
    if not isinstance(b, list) or not b:
        return
    if isinstance(b[0], list) and b[0] and isinstance(b[0][0], int):
        yield b
        return
    for item in b:
        yield from _json_surfaces(item)


def _floats(text):
    return np.array(text.split(), dtype=float) if text else np.zeros(0)


def read_citygml(path, lat_first: bool) -> list[RawObstacle]:
    """Every Building / BuildingPart with its own posList rings (not its parts')."""
    tree = etree.parse(str(path))
    out = []
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        local = el.tag.rsplit("}", 1)[-1]
        if local not in BUILDING_TAGS:
            continue
        oid = next((el.get(a) for a in GML_IDS if el.get(a)), None) or f"{local}@{id(el)}"
        o = RawObstacle(oid, local)
        measured = None
        for ch in el:
            if ch.tag.rsplit("}", 1)[-1] == "measuredHeight" and ch.text:
                measured = float(ch.text)
        all_2d = True
        for pl in el.iter("{*}posList", "{*}pos"):
            if not _own(pl, el):
                continue
            vals = _floats(pl.text)
            dim = pl.get("srsDimension")
            dim = int(dim) if dim else (3 if vals.size % 3 == 0 else 2)
            if vals.size % dim or vals.size == 0:
                continue
            pts = vals.reshape(-1, dim)
            if dim == 2:
                pts = np.column_stack((pts, np.full(len(pts), np.nan)))
            else:
                all_2d = False
            if lat_first:
                pts = pts[:, [1, 0, 2]]
            o.rings.append([pts])
        if o.rings:
            zs = np.concatenate([r[0][:, 2] for r in o.rings])
            zf = zs[np.isfinite(zs)]
            if all_2d or (zf.size and zf.max() - zf.min() < 0.01):
                base = float(zf.min()) if zf.size else 0.0
                o.flat_top = base + measured if measured is not None else math.inf
        out.append(o)
    return out


def _own(node, building) -> bool:
    """Whether ``node`` belongs to ``building`` itself (not a nested part, not an
    implicit geometry template)."""
    a = node.getparent()
    while a is not None and a is not building:
        name = a.tag.rsplit("}", 1)[-1] if isinstance(a.tag, str) else ""
        if name in BUILDING_TAGS or "Implicit" in name:
            return False
        a = a.getparent()
    return True


def _osm_len(v):
    if v is None:
        return None
    m = re.match(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*(m)?\s*$", str(v))
    return float(m.group(1).replace(",", ".")) if m else None


def read_geojson(path) -> list[RawObstacle]:
    doc = json.loads(open(path, "rb").read())
    out = []
    # OSM exports tag buildings; a file that tags none is a footprint layer
    tagged = any("building" in (f.get("properties") or {})
                 or "building:part" in (f.get("properties") or {}) for f in doc["features"])
    for i, f in enumerate(doc["features"]):
        p = f.get("properties") or {}
        if str(p.get("building", "")).lower() == "no" and "building:part" not in p:
            continue
        g = f.get("geometry") or {}
        if g.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        fid = str(f.get("id") if f.get("id") is not None else p.get("id", f"features[{i}]"))
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        top = _osm_len(p.get("height"))
        if top is None and _osm_len(p.get("building:levels")) is not None:
            roof = _osm_len(p.get("roof:height"))
            if roof is None and _osm_len(p.get("roof:levels")) is not None:
                roof = 3.0 * _osm_len(p.get("roof:levels"))
            top = 3.0 * _osm_len(p.get("building:levels")) + (roof or 0.0)
        if top is None and _osm_len(p.get("min_height")) and _osm_len(p.get("roof:height")):
            top = _osm_len(p.get("min_height")) + _osm_len(p.get("roof:height"))
        if tagged and "building" not in p and "building:part" not in p and top is None \
                and {"landuse", "leisure", "natural", "amenity", "highway"} & p.keys():
            continue  # a land-use / amenity / road area with no height: not a building
        o = RawObstacle(fid, "BuildingPart" if "building:part" in p and "building" not in p
                        else "Building", flat_top=math.inf if top is None else top)
        for poly in polys:
            rings = [np.array([[c[0], c[1], 0.0] for c in ring], dtype=float)
                     for ring in poly if ring]
            if rings:
                o.rings.append(rings)
        out.append(o)
    return out


# -- the oracle ------------------------------------------------------------------------


class ObstacleOracle:
    """Face prisms of raw obstacles in a local metric frame of the oracle's own."""

    def __init__(self, obstacles: list[RawObstacle], src_crs: str):
        self.obstacles = [o for o in obstacles if o.rings]
        lon0, lat0 = self._centre(src_crs)
        self.local = pyproj.Transformer.from_crs(
            "EPSG:4326", pyproj.CRS.from_proj4(
                f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +x_0=0 +y_0=0 "
                "+ellps=WGS84 +units=m"), always_xy=True)
        src = pyproj.CRS.from_user_input(src_crs)
        horiz = src.sub_crs_list[0] if src.is_compound else src
        to_wgs = pyproj.Transformer.from_crs(horiz, "EPSG:4326", always_xy=True)
        geoms, tops, owner = [], [], []
        for k, o in enumerate(self.obstacles):
            for face in o.rings:
                lon, lat = to_wgs.transform(face[0][:, 0], face[0][:, 1])
                ext = np.column_stack(self.local.transform(lon, lat))
                holes = []
                for h in face[1:]:
                    hl, ha = to_wgs.transform(h[:, 0], h[:, 1])
                    holes.append(np.column_stack(self.local.transform(hl, ha)))
                geoms.append(_face_geometry(ext, holes))
                z = np.concatenate([r[:, 2] for r in face])
                z = z[np.isfinite(z)]
                top = o.flat_top if o.flat_top is not None else (
                    float(z.max()) if z.size else math.inf)
                tops.append(top)
                owner.append(k)
        self.geoms = np.array(geoms, dtype=object)
        self.tops = np.array(tops)
        self.owner = np.array(owner)
        self.tree = shapely.STRtree(self.geoms)

    def _centre(self, src_crs):
        src = pyproj.CRS.from_user_input(src_crs)
        horiz = src.sub_crs_list[0] if src.is_compound else src
        to_wgs = pyproj.Transformer.from_crs(horiz, "EPSG:4326", always_xy=True)
        pts = np.concatenate([f[0][:, :2] for o in self.obstacles for f in o.rings])
        lon, lat = to_wgs.transform(pts[:, 0], pts[:, 1])
        return float(np.median(lon)), float(np.median(lat))

    def ids(self) -> set[str]:
        return {o.id for o in self.obstacles}

    def violations(self, lonlat_deg, alt_m, clearance_m, tol_m=0.02):
        """``[(segment, obstacle id, horizontal gap m, z m, face top m)]`` for every
        airborne segment (all but the first and last, which are the vertical take-off
        and landing) that enters a face prism; for the vertical ones, entering a
        footprint below its roof is reported too."""
        xy = np.column_stack(self.local.transform(lonlat_deg[:, 0], lonlat_deg[:, 1]))
        z = np.asarray(alt_m, dtype=float)
        bad = []
        n = len(xy) - 1
        for s in range(n):
            vertical = s in (0, n - 1)
            c = 0.0 if vertical else clearance_m
            p0, p1 = np.r_[xy[s], z[s]], np.r_[xy[s + 1], z[s + 1]]
            seg2d = shapely.LineString([p0[:2], p1[:2]]) if np.any(p0[:2] != p1[:2]) \
                else shapely.Point(p0[:2])
            for k in self.tree.query(seg2d, predicate="dwithin", distance=c + 1e-9) \
                    if c > 0 else self.tree.query(seg2d, predicate="intersects"):
                top = self.tops[k] + c - tol_m
                part = _below(p0, p1, top)
                if part is None:
                    continue
                g = self.geoms[k]
                if vertical:  # take-off / landing: never through a footprint
                    if g.area > 0 and shapely.contains(g, part) and shapely.distance(
                            part, g.boundary) > tol_m:
                        bad.append((s, self.obstacles[self.owner[k]].id, 0.0,
                                    float(min(p0[2], p1[2])), float(self.tops[k])))
                    continue
                d = shapely.distance(part, g)
                if d < c - tol_m:
                    bad.append((s, self.obstacles[self.owner[k]].id, float(d),
                                float(min(p0[2], p1[2])), float(self.tops[k])))
        return bad


def _face_geometry(ext, holes):
    if len(ext) >= 3:
        poly = shapely.Polygon(ext, [h for h in holes if len(h) >= 3])
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
        if poly.area > 1e-9:
            return poly
    if len(ext) >= 2:
        return shapely.LineString(ext)
    return shapely.Point(ext[0])


def _below(p0, p1, top):
    """The 2D part of segment p0-p1 whose z is <= top (None when none)."""
    z0, z1 = p0[2], p1[2]
    if z0 > top and z1 > top:
        return None
    if z0 <= top and z1 <= top:
        a, b = p0, p1
    else:
        t = (top - z0) / (z1 - z0)
        m = p0 + t * (p1 - p0)
        a, b = (p0, m) if z0 <= top else (m, p1)
    if np.allclose(a[:2], b[:2]):
        return shapely.Point(a[:2])
    return shapely.LineString([a[:2], b[:2]])
