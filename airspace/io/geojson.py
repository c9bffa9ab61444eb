"""GeoJSON footprint reader (heights from OSM tags and other common attributes).

Design
------
A FeatureCollection of Polygon/MultiPolygon footprints, read whole with :mod:`json`
(footprint files are small: 572 Helsinki buildings are 0.3 MB). Coordinates are
longitude, latitude (RFC 7946, WGS84) unless a legacy (2008) ``crs`` member names
another CRS, or the ``crs`` argument overrides it; either way positions are taken
easting/longitude first, as GeoJSON has always written them.

Heights
-------
Every height-like property is read (:mod:`airspace.io.attributes`: OSM ``height``,
``building:levels`` (+ ``roof:height``/``roof:levels``), BD TOPO ``HAUTEUR``,
``Z_MIN_SOL``, ``Z_MAX_TOIT``, ``NB_ETAGES``, ``measuredHeight``, ..., or the user's
``height_field``/``ground_field``) and the roof is the **highest** value they give.
``base_m`` is OSM ``min_height`` (or ``building:min_level`` x 3 m) above the ground.

* When **every** feature gives its ground altitude (``Z_MIN_SOL``, ``h_maaiveld``, the
  ``ground_field``...), heights are absolute (``has_terrain`` True, the twin takes
  its terrain from them) and a third coordinate above the ground also counts as a roof
  altitude sample.
* Otherwise ``ground_m = 0`` and ``has_terrain`` is False: heights are above ground (a
  roof altitude counts where that feature gives its ground too), and the third
  coordinate, of unknown meaning without a ground, is not used.

A feature with no height at all gets ``top_m = None``: :func:`airspace.io.common.
build_result` applies the unknown-height policy (block the column up to the ceiling,
or the user's stated assumption) and counts it in the audit.

A feature tagged ``building:part`` (and not ``building``) is a ``"BuildingPart"``
record (parts may rise above their outline); its ``parent_id`` is the building outline
that contains it (the smallest one containing a point of the part), if any. A feature
tagged both ``building`` and ``building:part`` counts as a ``"Building"``. In a file
that tags its buildings (an OSM export), a polygon with neither tag, no height and a
ground key (:data:`GROUND_AREA_KEYS`: ``landuse``, ``amenity``...) is an area: kept in
``LoadResult.areas`` for derived zones, not an obstacle (blocking a district's landuse
polygon to the ceiling would close it); any other polygon is an obstacle. In a file that tags none (a footprint layer such as BD
TOPO) every polygon is a ``"Building"``.
Features with ``building=no`` (and no ``building:part``) are counted as
``"NotBuilding"`` and skipped.

Repairs and what is skipped
---------------------------
Unclosed rings are closed, rings with fewer than 3 distinct positions are dropped
(:mod:`airspace.io.common`), a non-finite height property is ignored; each repair is
counted in the audit. Non-polygon geometries and ``building=no`` features are skipped
with their reason (they are not footprints); a feature with no usable coordinate at
all is skipped (strict: raises). Truncated JSON, an unknown ``crs`` and an empty
collection always raise.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import shapely

from skytwin.airspace.building import LoadResult, Skipped
from skytwin.airspace.errors import MalformedInputError
from skytwin.airspace.frame import Frame, parse_crs
from skytwin.airspace.io.attributes import (
    LEVEL_HEIGHT_M,
    NonFiniteAttribute,
    parse_length_m,
    read_heights,
)
from skytwin.airspace.io.common import (
    ObjectError,
    Problems,
    RawModel,
    RawObject,
    build_result,
    scalar_tags,
)

__all__ = [
    "AREA_KIND",
    "GROUND_AREA_KEYS",
    "LEVEL_HEIGHT_M",
    "assign_parents",
    "load_geojson",
    "parse_length_m",
    "read_geojson",
]

GROUND_AREA_KEYS = frozenset({
    "landuse", "leisure", "natural", "amenity", "boundary", "place", "highway",
    "waterway", "water", "military", "aeroway", "parking", "area:highway", "tourism",
    "historic", "public_transport", "railway", "surface",
})
"""OSM keys of polygons that describe ground (a land use, a park, a site, a road
area): with no building tag and no height they are areas, not obstacles. A polygon with
any other tags (``man_made=tower``, ``power=*``...) and no height stays an obstacle of
unknown height."""

AREA_KIND = "Area"
"""Kind of a polygon feature that is not a building in a file that tags its buildings:
``LoadResult.areas``, not an obstacle."""


def _legacy_crs(doc, path) -> str:
    crs = doc.get("crs")
    if not crs:
        return "OGC:CRS84"
    props = crs.get("properties") or {} if isinstance(crs, dict) else {}
    if isinstance(crs, dict) and crs.get("type") == "EPSG" and "code" in props:
        return f"EPSG:{props['code']}"
    name = props.get("name")
    if not name:
        raise MalformedInputError(path, "crs", f"unreadable legacy crs member {crs!r}")
    return name


def _rings(polygon, oid, verts, repairs: list) -> list[np.ndarray]:
    """Vertex indices of each ring of one polygon (closing vertex dropped).

    An unclosed ring is closed (noted in ``repairs``); a ring with too few positions is
    kept for :mod:`airspace.io.common` to drop as degenerate; a ring that is not a list
    of positions is dropped here (noted) and, when it is the exterior, the polygon too.
    """
    if not isinstance(polygon, list) or not polygon:
        repairs.append("polygon without rings dropped")
        return []
    out = []
    for ri, ring in enumerate(polygon):
        try:
            pts = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError):
            pts = None
        if pts is None or pts.ndim != 2 or pts.shape[1] < 2 or len(pts) == 0:
            repairs.append(f"ring {ri} is not a list of [x, y] positions: dropped")
            if ri == 0:
                return []
            continue
        if pts.shape[1] == 2:
            pts = np.column_stack((pts, np.full(len(pts), np.nan)))
        pts = pts[:, :3]
        if len(pts) > 1 and np.array_equal(pts[0, :2], pts[-1, :2]):
            pts = pts[:-1]
        elif len(pts) > 2:
            repairs.append(f"unclosed ring {ri} closed")
        off = verts.add(pts)
        out.append(np.arange(off, off + len(pts), dtype=np.int64))
    return out


class _Verts:
    """Growing list of 3D vertex blocks with a running count (undoable per feature)."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []
        self.sizes: list[int] = []
        self.n = 0

    def add(self, xy: np.ndarray) -> int:
        off = self.n
        self.blocks.append(xy)
        self.n += len(xy)
        return off

    def truncate(self, k: int) -> None:
        while len(self.blocks) > k:
            self.n -= len(self.blocks.pop())


def read_geojson(path, crs=None, strict: bool = False, *, height_field: str | None = None,
                 ground_field: str | None = None) -> RawModel:
    """Parse a GeoJSON FeatureCollection of footprints into a RawModel.

    Parameters
    ----------
    path : str or Path
    crs : str, int or pyproj.CRS, optional
        Overrides RFC 7946 WGS84 and any legacy ``crs`` member.
    strict : bool
        Raise on object-level problems instead of skipping.
    height_field, ground_field : str, optional
        Attribute holding the height above ground / the ground altitude, replacing the
        built-in names (:mod:`airspace.io.attributes`).
    """
    path = str(path)
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise MalformedInputError(
            path,
            None,
            f"invalid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
        ) from exc
    except RecursionError as exc:
        raise MalformedInputError(path, None, "JSON nested too deeply") from exc
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = {"type": "FeatureCollection", "features": [doc], "crs": doc.get("crs")}
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise MalformedInputError(path, None, "not a GeoJSON FeatureCollection")
    src = parse_crs(crs if crs is not None else _legacy_crs(doc, path), path)
    problems = Problems(path, strict)
    counts: dict[str, int] = {}
    verts = _Verts()
    pending = []  # (oid, kind, surfaces, AttributeHeights, repairs)
    features = doc.get("features")
    if not isinstance(features, list):
        raise MalformedInputError(path, "features", "features is not a list")
    # A file that tags its buildings (building=*, building:part=*) says which polygons
    # are buildings: its other polygons that describe ground (GROUND_AREA_KEYS) and
    # give no height are areas, kept for derived zones but not obstacles. A file that
    # tags none is a footprint layer: every polygon is a building.
    tagged = any(isinstance(f, dict) and isinstance(f.get("properties"), dict)
                 and ("building" in f["properties"] or "building:part" in f["properties"])
                 for f in features)
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            raise MalformedInputError(
                path, f"features[{i}]", "feature is not an object"
            )
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            props = {}
        oid = str(
            feat.get("id")
            if feat.get("id") is not None
            else props.get("id", f"features[{i}]")
        )
        is_building = "building" in props
        is_part = "building:part" in props and not is_building
        if (
            is_building
            and str(props["building"]).lower() == "no"
            and "building:part" not in props
        ):
            counts["NotBuilding"] = counts.get("NotBuilding", 0) + 1
            problems.skipped.append(Skipped(oid, "tagged building=no"))
            continue
        kind = "BuildingPart" if is_part else "Building"
        counts[kind] = counts.get(kind, 0) + 1
        geom = feat.get("geometry") or {}
        gtype = geom.get("type") if isinstance(geom, dict) else None
        if gtype not in ("Polygon", "MultiPolygon"):
            problems.skipped.append(
                Skipped(
                    oid, f"geometry {gtype} is not a Polygon/MultiPolygon footprint"
                )
            )
            continue
        try:
            coords = geom.get("coordinates")
            polys = [coords] if gtype == "Polygon" else coords
            if not isinstance(polys, list) or not polys:
                raise ObjectError(oid, f"empty {gtype}: no coordinate")
            repairs: list[str] = []
            surfaces = [r for r in (_rings(p, oid, verts, repairs) for p in polys) if r]
            if not surfaces:
                raise ObjectError(oid, "no usable coordinate")
            try:
                attrs = read_heights(props, height_field, ground_field)
            except NonFiniteAttribute as exc:
                repairs.append(f"{exc}: ignored")
                attrs = read_heights(
                    {k: v for k, v in props.items()
                     if not (isinstance(v, float) and not math.isfinite(v))},
                    height_field, ground_field)
        except ObjectError as exc:
            problems.report(exc.object_id, exc.reason)
            continue
        if (tagged and not is_building and not is_part and attrs.roof_alt_m is None
                and attrs.relative_top()[0] is None and GROUND_AREA_KEYS & props.keys()):
            counts[kind] -= 1  # no building tag, no height: an area, not an obstacle
            kind = AREA_KIND
            counts[kind] = counts.get(kind, 0) + 1
        pending.append((oid, kind, surfaces, attrs, repairs, scalar_tags(props)))
    xyz = np.concatenate(verts.blocks) if verts.blocks else np.zeros((0, 3))
    # Absolute heights only when every feature knows its ground; else above ground.
    absolute = bool(pending) and all(a.ground_alt_m is not None for *_, a, _r, _t in pending)
    objects: list[RawObject] = []
    for oid, kind, surfaces, a, repairs, tags in pending:
        ground = a.ground_alt_m if absolute else 0.0
        top, source = a.relative_top()
        if absolute:
            idx = np.concatenate([r for s in surfaces for r in s])
            zz = xyz[idx, 2]
            zz = zz[np.isfinite(zz)]
            cands = [] if top is None else [(ground + top, source)]
            if a.roof_alt_m is not None:
                cands.append((a.roof_alt_m, a.roof_alt_source))
            if zz.size and zz.max() > ground:
                cands.append((float(zz.max()), "coordinates"))
            top, source = max(cands, default=(None, None), key=lambda c: c[0])
        else:
            top = None if top is None else ground + top
        base = ground + (a.base_m or 0.0)
        objects.append(
            RawObject(oid, kind, None, surfaces, flat=True, base_m=base, top_m=top,
                      ground_m=ground, height_source=source, repairs=repairs,
                      tags=tags)
        )
    if not absolute:
        xyz[:, 2] = np.nan  # a z of unknown meaning is not a height above ground
    return RawModel(
        path,
        "geojson",
        src,
        xyz,
        objects,
        skipped=problems.skipped,
        counts=counts,
        has_terrain=absolute,
    )


def assign_parents(result: LoadResult) -> LoadResult:
    """Give each BuildingPart without a parent the smallest outline containing it."""
    outlines = [b for b in result.buildings if b.kind == "Building"]
    if not outlines:
        return result
    tree = shapely.STRtree([b.footprint for b in outlines])
    out = []
    for b in result.buildings:
        if b.kind == "BuildingPart" and b.parent_id is None:
            p = b.footprint.representative_point()
            hits = [outlines[int(k)] for k in tree.query(p, predicate="within")]
            if hits:
                parent = min(hits, key=lambda h: h.footprint.area)
                b = dataclasses.replace(b, parent_id=parent.id)
        out.append(b)
    result.buildings = out
    return result


def load_geojson(
    path, crs=None, frame: Frame | None = None, strict: bool = False
) -> LoadResult:
    """Read a GeoJSON footprint file into buildings in a local frame."""
    from skytwin.airspace.io import load_city

    return load_city(path, crs=crs, frame=frame, fmt="geojson", strict=strict)
