"""GeoJSON footprint reader (OSM-style building tags for heights).

Design
------
A FeatureCollection of Polygon/MultiPolygon footprints, read whole with :mod:`json`
(footprint files are small: 572 Helsinki buildings are 0.3 MB). Coordinates are
longitude, latitude (RFC 7946, WGS84) unless a legacy (2008) ``crs`` member names
another CRS, or the ``crs`` argument overrides it; either way positions are taken
easting/longitude first, as GeoJSON has always written them. A third coordinate, if
present, is ignored.

Heights
-------
GeoJSON has no terrain: ``ground_m = 0`` and ``has_terrain`` is False, so ``base_m``
and ``top_m`` are heights above ground. Tags follow OSM Simple 3D Buildings:

* ``top_m``: ``height`` (raw strings such as ``"12.13 m"``, ``"40 ft"``, ``"12,5"``);
  else ``building:levels`` x :data:`LEVEL_HEIGHT_M` plus ``roof:height`` (or
  ``roof:levels`` x :data:`LEVEL_HEIGHT_M`); else, for a part raised on ``min_height``
  with only a ``roof:height`` (a dome), ``base + roof:height``; else
  ``max(DEFAULT_HEIGHT_M, base + LEVEL_HEIGHT_M)``, and the feature is counted in
  ``counts["default_height"]``. Unparseable values count as absent.
* ``base_m``: ``min_height``, else ``building:min_level`` x :data:`LEVEL_HEIGHT_M`,
  else 0.

A feature tagged ``building:part`` (and not ``building``) is a ``"BuildingPart"``
record (parts may rise above their outline); its ``parent_id`` is the building outline
that contains it (the smallest one containing a point of the part), if any. A feature
tagged both ``building`` and ``building:part`` counts as a ``"Building"``. Features with
``building=no`` (and no ``building:part``) are counted as ``"NotBuilding"`` and skipped.

What is skipped
---------------
Non-polygon geometries and ``building=no`` features are skipped with their reason (in
strict mode too: they are not broken, only not buildings). Unclosed or degenerate rings,
non-numeric coordinates, non-finite numeric heights (``NaN``, ``Infinity``) and heights
that give ``top <= base`` skip the feature (strict: raise). Truncated JSON, an unknown
``crs`` and an empty collection always raise.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import shapely

from skytwin.airspace.building import Building, LoadResult, Skipped
from skytwin.airspace.errors import MalformedInputError
from skytwin.airspace.frame import Frame, parse_crs
from skytwin.airspace.io.common import ObjectError, Problems, RawModel, RawObject, build_result

__all__ = [
    "DEFAULT_HEIGHT_M",
    "LEVEL_HEIGHT_M",
    "assign_parents",
    "load_geojson",
    "parse_length_m",
    "read_geojson",
]

LEVEL_HEIGHT_M = 3.0
"""Height of one storey [m], for ``building:levels`` / ``building:min_level`` (the
value OSM renderers such as OSM Buildings and F4 Map use)."""

DEFAULT_HEIGHT_M = 10.0
"""Roof height above ground [m] of a building that gives neither height nor levels:
about three storeys; such features are counted in ``counts["default_height"]``."""

_UNITS_M = {
    "": 1.0,
    "m": 1.0,
    "meter": 1.0,
    "meters": 1.0,
    "metre": 1.0,
    "metres": 1.0,
    "ft": 0.3048,
    "feet": 0.3048,
    "foot": 0.3048,
    "'": 0.3048,
}
_NUM_UNIT = re.compile(r"^\s*([-+]?\d+(?:[.,]\d+)?|[-+]?[.,]\d+)\s*([a-zA-Z']*)\s*$")
_FEET_INCHES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*'\s*(\d+(?:\.\d+)?)\s*\"\s*$")


def parse_length_m(value) -> float | None:
    """A length tag as metres, or None when it is not a length.

    Examples
    --------
    >>> parse_length_m("12.13 m"), parse_length_m("40 ft"), parse_length_m("12,5")
    (12.13, 12.192, 12.5)
    >>> parse_length_m(7), parse_length_m("6'6\\""), parse_length_m("tall")
    (7.0, 1.9812, None)
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    text = str(value).strip()
    m = _FEET_INCHES.match(text)
    if m:
        return round((float(m.group(1)) * 12 + float(m.group(2))) * 0.0254, 6)
    m = _NUM_UNIT.match(text)
    if not m:
        return None
    unit = m.group(2).lower()
    if unit not in _UNITS_M:
        return None
    return round(float(m.group(1).replace(",", ".")) * _UNITS_M[unit], 6)


_HEIGHT_TAGS = (
    "height",
    "min_height",
    "building:levels",
    "building:min_level",
    "roof:height",
    "roof:levels",
)


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


def _rings(polygon, oid, verts: list) -> list[np.ndarray]:
    if not isinstance(polygon, list) or not polygon:
        raise ObjectError(oid, "polygon without rings")
    out = []
    for ri, ring in enumerate(polygon):
        try:
            pts = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ObjectError(oid, f"ring {ri} holds non-numeric positions") from exc
        if pts.ndim != 2 or pts.shape[1] < 2:
            raise ObjectError(oid, f"ring {ri} is not a list of [x, y] positions")
        if len(pts) < 4:
            raise ObjectError(
                oid,
                f"degenerate ring {ri}: {len(pts)} positions (a "
                "closed ring needs at least 4)",
            )
        if not np.array_equal(pts[0, :2], pts[-1, :2]):
            raise ObjectError(
                oid,
                f"unclosed ring {ri}: last position {pts[-1, :2]} "
                f"differs from first {pts[0, :2]}",
            )
        off = verts.add(pts[:-1, :2])
        out.append(np.arange(off, off + len(pts) - 1, dtype=np.int64))
    return out


class _Verts:
    """Growing list of 2D vertex blocks with a running count (undoable per feature)."""

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


def _heights(props, oid) -> tuple[float, float, bool]:
    """(base_m, top_m, defaulted) from OSM tags (see the module docstring)."""
    for tag in _HEIGHT_TAGS:
        v = props.get(tag)
        if isinstance(v, float) and not math.isfinite(v):
            raise ObjectError(oid, f"non-finite {tag} {v!r}")
    base = parse_length_m(props.get("min_height"))
    if base is None:
        min_level = parse_length_m(props.get("building:min_level"))
        base = 0.0 if min_level is None else min_level * LEVEL_HEIGHT_M
    top = parse_length_m(props.get("height"))
    if top is not None:
        return base, top, False
    roof = parse_length_m(props.get("roof:height"))
    if roof is None:
        roof_levels = parse_length_m(props.get("roof:levels"))
        roof = None if roof_levels is None else roof_levels * LEVEL_HEIGHT_M
    levels = parse_length_m(props.get("building:levels"))
    if levels is not None:
        return base, levels * LEVEL_HEIGHT_M + (roof or 0.0), False
    if roof is not None and roof > 0.0 and base > 0.0:
        return base, base + roof, False  # a roof-only part (a dome on a church)
    return base, max(DEFAULT_HEIGHT_M, base + LEVEL_HEIGHT_M), True


def read_geojson(path, crs=None, strict: bool = False) -> RawModel:
    """Parse a GeoJSON FeatureCollection of footprints into a RawModel.

    Parameters
    ----------
    path : str or Path
    crs : str, int or pyproj.CRS, optional
        Overrides RFC 7946 WGS84 and any legacy ``crs`` member.
    strict : bool
        Raise on object-level problems instead of skipping.
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
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = {"type": "FeatureCollection", "features": [doc], "crs": doc.get("crs")}
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise MalformedInputError(path, None, "not a GeoJSON FeatureCollection")
    src = parse_crs(crs if crs is not None else _legacy_crs(doc, path), path)
    problems = Problems(path, strict)
    counts: dict[str, int] = {}
    verts = _Verts()
    objects: list[RawObject] = []
    features = doc.get("features")
    if not isinstance(features, list):
        raise MalformedInputError(path, "features", "features is not a list")
    for i, feat in enumerate(features):
        if not isinstance(feat, dict):
            raise MalformedInputError(
                path, f"features[{i}]", "feature is not an object"
            )
        props = feat.get("properties") or {}
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
                raise ObjectError(oid, f"empty {gtype}")
            n_before = len(verts.blocks)
            surfaces = []
            try:
                for poly in polys:
                    surfaces.append(_rings(poly, oid, verts))
            except ObjectError:
                verts.truncate(n_before)
                raise
            base, top, defaulted = _heights(props, oid)
            if not top > base:
                verts.truncate(n_before)
                raise ObjectError(
                    oid, f"height {top:g} m is not above min_height {base:g} m"
                )
        except ObjectError as exc:
            problems.report(exc.object_id, exc.reason)
            continue
        if defaulted:
            counts["default_height"] = counts.get("default_height", 0) + 1
        objects.append(
            RawObject(
                oid,
                kind,
                None,
                surfaces,
                flat=True,
                base_m=base,
                top_m=top,
                ground_m=0.0,
            )
        )
    xy = np.concatenate(verts.blocks) if verts.blocks else np.zeros((0, 2))
    xyz = np.column_stack((xy, np.full(len(xy), np.nan)))
    return RawModel(
        path,
        "geojson",
        src,
        xyz,
        objects,
        skipped=problems.skipped,
        counts=counts,
        has_terrain=False,
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
                b = Building(
                    b.id, b.footprint, b.base_m, b.top_m, b.ground_m, b.kind, parent.id
                )
        out.append(b)
    result.buildings = out
    return result


def load_geojson(
    path, crs=None, frame: Frame | None = None, strict: bool = False
) -> LoadResult:
    """Read a GeoJSON footprint file into buildings in a local frame."""
    return assign_parents(
        build_result([read_geojson(Path(path), crs, strict)], frame, strict)
    )
