"""What every city-model reader shares: the raw model, object checks, and the step
from source coordinates to :class:`~airspace.building.Building` records.

Design
------
Each reader (``cityjson``, ``citygml``, ``geojson``) only *parses*: it turns one file into
a :class:`RawModel`, which holds

* one ``(n, 3)`` vertex array in the **source CRS**, easting/longitude first (readers
  fix the axis order of their format; ``z`` is NaN when the format has none), and
* one :class:`RawObject` per building or building part: its surfaces as rings of
  indices into that vertex array, and its heights when the format gives them apart
  from the vertices (GeoJSON tags, CityGML ``measuredHeight``).

:func:`build_result` then does the geometry once, for all formats and for several files
at a time: object checks (non-finite coordinates, degenerate rings), file-level sanity
checks (latitudes beyond 90 degrees, a model thousands of kilometres wide), the
:class:`~airspace.frame.Frame` (centred on the data unless given), one vectorised pyproj
transform of every vertex into it (source -> WGS84 with the datum shift, then
:meth:`Frame.to_local`), and the footprints.

Footprint
---------
The footprint of an object with 3D surfaces is the union of the 2D projections of its
*non-vertical* faces (a face is vertical when the z component of its unit normal is
below :data:`VERTICAL_NZ`); for a closed solid that is exactly the projection of the
volume. 2D-only objects (GeoJSON, CityGML LoD0) use every ring. The union is computed on
a 1 micrometre grid (:data:`GRID_SIZE_M`) so that faces that share an edge merge
without floating-point slivers; holes smaller than :data:`MIN_HOLE_AREA_M2` (left by
faces that do not quite meet) are filled, which only ever enlarges the obstacle. The
result is valid, polygonal and oriented with counter-clockwise exteriors.

Conservative repairs (the twin may be coarser than the city, never thinner)
----------------------------------------------------------------------------
Only an object with no usable coordinate at all (no finite x, y) is skipped. Anything
else is repaired and kept, each repair noted for the build's audit
(``LoadResult.audit``) or, when ``strict``, raised as
:class:`~airspace.errors.MalformedInputError` naming the file and the object:

* vertices with non-finite x/y leave their ring; a non-finite z is ignored;
* a ring with fewer than 3 distinct positions is dropped (with its exterior, the face;
  a 3DBAG part with one broken face keeps every other face);
* an object whose faces give no footprint (all dropped, vertical or collapsed) is
  enclosed by the **convex hull of all its vertices** (widened by
  :data:`HULL_MIN_WIDTH_M` when it has no area), counted as "hulled";
* heights: the roof is the highest of the vertices (when they span a height), the
  attributes and the extrusion (``measuredHeight``); a flat outline (LoD0) with none of
  these takes its building's highest vertex (its parts or other LoDs); ``top <= base``
  lowers the base to the ground; with no height anywhere the obstacle is of **unknown
  height**: ``height_source = "unknown"`` and the twin blocks its column up to the
  ceiling, unless the caller states an assumption (``unknown_height_m``, the CLI's
  ``--unknown-height``; ``height_source = "assumed"``).

File-level problems (unreadable files, absurd positions) always raise. Several files
merge into one result only when they agree on heights: all with terrain (absolute
heights) or all without.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon

from skytwin.airspace.building import Building, LoadResult, Skipped
from skytwin.airspace.errors import EmptyModelError, MalformedInputError, OutsideTwinError
from skytwin.airspace.frame import Frame
from skytwin.airspace.io.attributes import AttributeHeights, NonFiniteAttribute, read_heights

__all__ = [
    "GRID_SIZE_M",
    "MAX_ABS_Z_M",
    "MAX_EXTENT_M",
    "MIN_HOLE_AREA_M2",
    "VERTICAL_NZ",
    "AbsurdCoordinatesError",
    "ObjectError",
    "Problems",
    "RawModel",
    "RawObject",
    "apply_attribute_heights",
    "scalar_tags",
    "axis_swap",
    "build_result",
]

MAX_EXTENT_M = 200_000.0
"""Widest model accepted [m]. Beyond it the local transverse Mercator frame is no longer
metric to better than 5e-4, and a real city model that wide is almost surely a unit or
axis-order mistake."""

MAX_ABS_Z_M = 10_000.0
"""Largest absolute height accepted [m]; anything higher is not a building on Earth."""

VERTICAL_NZ = 1e-3
"""A face whose unit normal has ``|n_z|`` below this (within 0.06 degrees of vertical)
adds nothing to a footprint and is left out of the union."""

GRID_SIZE_M = 1e-6
"""Precision grid of the footprint union [m]: far below survey accuracy."""

MIN_HOLE_AREA_M2 = 0.01
"""Holes smaller than this (10 cm x 10 cm) in a footprint are slivers and are filled."""


class AbsurdCoordinatesError(MalformedInputError, OutsideTwinError):
    """Coordinates no real city model can have (latitude 300, a model 5,000 km wide).

    Both a :class:`~airspace.errors.MalformedInputError` (the file is wrong) and an
    :class:`~airspace.errors.OutsideTwinError` (the place is impossible).
    """


class ObjectError(Exception):
    """Raised inside a reader for a problem confined to one object (internal)."""

    def __init__(self, object_id: str, reason: str):
        super().__init__(reason)
        self.object_id = object_id
        self.reason = reason


@dataclass
class RawObject:
    """One building or building part as parsed, before any projection.

    Attributes
    ----------
    id, kind, parent_id : str, str, str or None
        As in :class:`~airspace.building.Building`.
    surfaces : list of list of ndarray
        Each surface is ``[exterior, *holes]``; each ring an ``int64`` index array into
        :attr:`RawModel.xyz`, not repeating its first vertex.
    flat : bool
        True for 2D outlines (every ring counts in the footprint, none is "vertical").
    base_m, top_m, ground_m : float or None
        Heights given apart from the vertices [m AMSL]; ``None`` means "from the
        vertices" (min z, max z, and min z of the whole building for the ground).
    height_m : float or None
        Extrusion height above the object's lowest vertex (CityGML LoD0 outline with
        ``measuredHeight``): ``base = ground =`` lowest vertex (0 without z),
        ``top = base + height_m``.
    family : str
        Id of the building this object belongs to (its own id for a building); the
        ground of every member is the lowest vertex of the family, and a member with
        no height of its own (a LoD0 footprint) takes the family's highest vertex.
    height_source : str or None
        Which attribute gave ``top_m``/``height_m`` (for the audit).
    repairs : list of str
        What the reader repaired in this object (for the audit; strict raises).
    points : list of ndarray
        Vertex indices of geometry that forms no face (points, curves, the reference
        point of an implicit geometry): they bound the object's hull and its heights.
    tags : dict or None
        The object's semantic attributes (:func:`scalar_tags`), passed on to
        :attr:`Building.tags <airspace.building.Building.tags>`.
    """

    id: str
    kind: str
    parent_id: str | None
    surfaces: list
    flat: bool = False
    base_m: float | None = None
    top_m: float | None = None
    ground_m: float | None = None
    height_m: float | None = None
    family: str | None = None
    height_source: str | None = None
    repairs: list = field(default_factory=list)
    tags: dict | None = None
    points: list = field(default_factory=list)


@dataclass
class RawModel:
    """One parsed file: vertices in the source CRS and the objects that use them."""

    path: str
    fmt: str
    crs: pyproj.CRS
    xyz: np.ndarray
    objects: list[RawObject]
    skipped: list[Skipped] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    has_terrain: bool = True
    terrain_idx: np.ndarray | None = None
    """Indices into ``xyz`` of terrain samples (CityJSON TINRelief), or None."""
    notes: list = field(default_factory=list)
    """File-level facts the reader inferred (axis order, dimension, CRS), for the audit."""


MAX_TAGS = 64
"""Most attributes kept per object (the first ones; keeps memory bounded)."""

MAX_TAG_CHARS = 200
"""Longest attribute value kept [characters] (longer values are cut)."""


def scalar_tags(*dicts) -> dict:
    """Scalar attributes of one or more dicts (later ones win) as ``{str: str}``.

    Lists of scalars become their values joined by ``;`` (OSM's multi-value form);
    nested objects are left out.

    >>> scalar_tags({"amenity": "hospital", "height": 12.5, "x": {"a": 1}}, {"y": [1, 2]})
    {'amenity': 'hospital', 'height': '12.5', 'y': '1;2'}
    """
    out: dict = {}
    for d in dicts:
        if not isinstance(d, dict):
            continue
        for k, v in d.items():
            if len(out) >= MAX_TAGS and k not in out:
                break
            if isinstance(v, list) and v and all(
                    isinstance(x, str | int | float | bool) for x in v):
                v = ";".join(str(x) for x in v)
            if isinstance(v, str | int | float | bool):
                out[str(k)] = str(v)[:MAX_TAG_CHARS]
    return out


def apply_attribute_heights(raw: RawObject, attrs, fields=(None, None)) -> None:
    """Set ``raw``'s attribute heights from a dict of attributes (3D models).

    A roof altitude becomes ``top_m``; a height above ground becomes ``top_m`` over a
    given ground altitude, else the extrusion ``height_m`` over the lowest vertex; the
    highest wins (:mod:`airspace.io.attributes`). A non-finite value is a repair.
    """
    if not isinstance(attrs, dict) or not attrs:
        return
    try:
        a = read_heights(attrs, *fields)
    except NonFiniteAttribute as exc:
        raw.repairs.append(f"{exc}: ignored")
        a = AttributeHeights()
    rel, src = a.relative_top()
    if a.roof_alt_m is not None:
        raw.top_m, raw.height_source = a.roof_alt_m, a.roof_alt_source
    if rel is None:
        return
    if a.ground_alt_m is not None:
        top = a.ground_alt_m + rel
        if raw.top_m is None or top > raw.top_m:
            raw.top_m, raw.height_source = top, src
    else:
        raw.height_m, raw.height_source = rel, src


class Problems:
    """Collects object-level problems: skip and record, or raise when strict."""

    def __init__(self, path: str, strict: bool):
        self.path = str(path)
        self.strict = bool(strict)
        self.skipped: list[Skipped] = []

    def report(self, object_id: str, reason: str) -> None:
        """Record (or, when strict, raise) a problem with one object."""
        if self.strict:
            raise MalformedInputError(self.path, object_id, reason)
        self.skipped.append(Skipped(str(object_id), reason))


def axis_swap(crs: pyproj.CRS) -> bool:
    """Whether coordinates written in ``crs``'s own axis order come northing first.

    Decided from pyproj's axis information (first axis pointing north or south), never
    from a list of EPSG codes.

    Examples
    --------
    >>> axis_swap(pyproj.CRS("EPSG:6697")), axis_swap(pyproj.CRS("EPSG:7415"))
    (True, False)
    """
    axes = crs.axis_info
    if not axes and crs.is_compound:
        axes = crs.sub_crs_list[0].axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


@functools.lru_cache(maxsize=32)
def _wgs84_transformer(wkt: str) -> pyproj.Transformer:
    crs = pyproj.CRS.from_wkt(wkt)
    horiz = crs.sub_crs_list[0] if crs.is_compound else crs
    return pyproj.Transformer.from_crs(horiz, "EPSG:4326", always_xy=True)


def _to_wgs84(crs: pyproj.CRS, x: np.ndarray, y: np.ndarray):
    """Source CRS (easting/longitude first) -> WGS84 lon/lat, datum shift included."""
    lon, lat = _wgs84_transformer(crs.to_wkt()).transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _object_vertices(obj: RawObject) -> np.ndarray:
    rings = [r for s in obj.surfaces for r in s] + list(obj.points)
    return np.unique(np.concatenate(rings)) if rings else np.zeros(0, np.int64)


def _ring_table(rings: list[np.ndarray]):
    """Concatenated ring indices, ring start offsets and ring lengths."""
    lens = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    starts = np.zeros(len(rings), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    return np.concatenate(rings), starts, lens


def _distinct_counts(rings: list[np.ndarray], pts: np.ndarray,
                     flat: np.ndarray | None = None) -> np.ndarray:
    """Number of distinct positions in each ring (``pts`` rows indexed by the rings).

    ``flat`` (one bool per ring) compares x, y only for those rings (2D outlines).
    One lexsort for all rings: call it once per model, not once per object.
    """
    cat, _starts, lens = _ring_table(rings)
    ring_id = np.repeat(np.arange(len(rings)), lens)
    p = np.nan_to_num(pts[cat], nan=-1e300)
    if flat is not None and p.shape[1] == 3:
        p[np.repeat(flat, lens), 2] = 0.0
    keys = [p[:, k] for k in range(p.shape[1] - 1, -1, -1)] + [ring_id]
    order = np.lexsort(keys)
    sp, sr = p[order], ring_id[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (sr[1:] != sr[:-1]) | np.any(sp[1:] != sp[:-1], axis=1)
    return np.bincount(sr[new], minlength=len(rings))


def _repair_surfaces(obj: RawObject, xyz: np.ndarray, distinct: np.ndarray,
                     finite_xy: np.ndarray) -> None:
    """Drop what cannot be a face, keep the object (repairs noted in ``obj.repairs``).

    Vertices with a non-finite x or y leave their ring; a ring with fewer than 3
    distinct positions (x, y for 2D outlines, x, y, z otherwise) is dropped, and with
    its exterior ring the whole face. ``distinct`` holds the distinct-position count of
    each of the object's rings (model-wide :func:`_distinct_counts`), ``finite_xy``
    one bool per vertex of the model.
    """
    rings = [r for surf in obj.surfaces for r in surf]
    if not rings:
        return
    cat = np.concatenate(rings)
    if not obj.flat:
        finite_z = np.isfinite(xyz[cat, 2])
        if finite_z.any() and not finite_z.all():
            obj.repairs.append("non-finite height (z) of some vertices ignored")
    surfaces = obj.surfaces
    if not finite_xy[cat].all():  # rare: filter ring by ring, count again
        surfaces = [[r[finite_xy[r]] for r in surf] for surf in obj.surfaces]
        obj.repairs.append("non-finite coordinates removed from a ring")
        rings = [r for surf in surfaces for r in surf]
        distinct = (_distinct_counts(rings, xyz[:, :2] if obj.flat else xyz)
                    if any(len(r) for r in rings) else np.zeros(len(rings), np.int64))
    elif np.all(distinct >= 3):
        return  # the common case: nothing to repair
    out, k = [], 0
    for si, surf in enumerate(surfaces):
        n = len(surf)
        d = distinct[k:k + n]
        k += n
        if n == 0 or d[0] < 3:
            obj.repairs.append(
                f"degenerate face dropped (surface {si}: "
                f"{int(d[0]) if n else 0} distinct vertices, fewer than 3)")
            continue
        holes = [r for r, dd in zip(surf[1:], d[1:]) if dd >= 3]
        if len(holes) < n - 1:
            obj.repairs.append(f"degenerate hole dropped (surface {si})")
        out.append([surf[0], *holes])
    obj.surfaces = out


def _check_objects(model: RawModel, problems: Problems):
    """Repair each object; returns survivors with their vertices (finite x, y).

    Only an object with no usable coordinate at all is skipped. Returns
    ``[(obj, idx)]`` where ``idx`` are the indices of every vertex the object has with
    finite x and y (those of dropped faces included: they still bound its hull).
    """
    xyz = model.xyz
    finite_xy = np.isfinite(xyz[:, 0]) & np.isfinite(xyz[:, 1])
    rings, flat, first = [], [], [0]
    for obj in model.objects:
        for surf in obj.surfaces:
            rings.extend(surf)
            flat.extend([obj.flat] * len(surf))
        first.append(len(rings))
    distinct = np.zeros(len(rings), dtype=np.int64)
    nz = np.flatnonzero([len(r) > 0 for r in rings])
    if nz.size:  # one lexsort for the whole model
        distinct[nz] = _distinct_counts([rings[k] for k in nz], xyz,
                                        np.asarray(flat, dtype=bool)[nz])
    kept = []
    for n, obj in enumerate(model.objects):
        idx = _object_vertices(obj)
        if idx.size:
            idx = idx[finite_xy[idx]]
        if idx.size == 0:
            problems.report(obj.id, "no usable coordinate (no finite x, y)")
            continue
        _repair_surfaces(obj, xyz, distinct[first[n]:first[n + 1]], finite_xy)
        for name in ("base_m", "top_m", "ground_m", "height_m"):
            v = getattr(obj, name)
            if v is not None and not math.isfinite(v):
                obj.repairs.append(f"non-finite {name.removesuffix('_m')} height "
                                   f"{v!r} ignored")
                setattr(obj, name, None)
        kept.append((obj, idx))
    return kept


def _check_place(model: RawModel, kept, lon, lat) -> None:
    """File-level sanity of positions; raises AbsurdCoordinatesError naming an object."""
    path = model.path
    horiz = model.crs.sub_crs_list[0] if model.crs.is_compound else model.crs
    xyz = model.xyz
    for obj, idx in kept:
        if horiz.is_geographic:
            x, y = xyz[idx, 0], xyz[idx, 1]
            if np.any(np.abs(y) > 90.0) or np.any(np.abs(x) > 360.0):
                raise AbsurdCoordinatesError(
                    path,
                    obj.id,
                    f"latitude/longitude out of range (lat "
                    f"{y.min():g}..{y.max():g}, lon {x.min():g}..{x.max():g}) in "
                    f"{model.crs.to_string()}: wrong CRS or axis order?",
                )
        if not (np.all(np.isfinite(lon[idx])) and np.all(np.isfinite(lat[idx]))):
            raise AbsurdCoordinatesError(
                path,
                obj.id,
                f"coordinates cannot be transformed from "
                f"{model.crs.to_string()} to WGS84: wrong CRS?",
            )
        if np.any(np.abs(lat[idx]) > 85.0):
            raise AbsurdCoordinatesError(
                path,
                obj.id,
                f"latitude {float(np.abs(lat[idx]).max()):g} beyond 85 "
                "degrees: wrong CRS or axis order?",
            )
        z = xyz[idx, 2]
        z = z[np.isfinite(z)]
        for v in (obj.base_m, obj.top_m, obj.ground_m):
            if v is not None:
                z = np.append(z, v)
        if z.size and np.abs(z).max() > MAX_ABS_Z_M:
            raise AbsurdCoordinatesError(
                path,
                obj.id,
                f"height {float(z[np.abs(z).argmax()]):g} m beyond "
                f"{MAX_ABS_Z_M:g} m: wrong units?",
            )


def _check_extent(paths: str, kept_all, lon, lat) -> None:
    """Raise when the model is wider than MAX_EXTENT_M, naming the farthest object."""
    if not kept_all:
        return
    centres = np.array([(np.median(lon[i]), np.median(lat[i])) for _, i in kept_all])
    lon0, lat0 = np.median(centres[:, 0]), np.median(centres[:, 1])
    geod = pyproj.Geod(ellps="WGS84")
    _, _, dist = geod.inv(
        np.full(len(centres), lon0),
        np.full(len(centres), lat0),
        centres[:, 0],
        centres[:, 1],
    )
    dist = np.asarray(dist)
    if dist.max() > 0.5 * MAX_EXTENT_M:
        far = int(dist.argmax())
        obj = kept_all[far][0]
        raise AbsurdCoordinatesError(
            paths,
            obj.id,
            f"object lies {dist[far] / 1000:.0f} km from the centre of "
            f"the model (lon {centres[far, 0]:.6f}, lat {centres[far, 1]:.6f}); a model "
            f"may span at most {MAX_EXTENT_M / 1000:.0f} km",
        )


def _face_polygons(obj: RawObject, x, y, z):
    """Shapely polygons of the non-vertical faces of ``obj`` (all faces if flat)."""
    surfaces = obj.surfaces
    if not obj.flat:
        cat, starts, lens = _ring_table([surf[0] for surf in surfaces])
        nxt = np.arange(1, len(cat) + 1)
        nxt[starts + lens - 1] = starts
        # a 2D position (no z) counts as z = 0: its face is then never "vertical"
        zn = np.where(np.isfinite(z), z, 0.0)
        px, py, pz = x[cat], y[cat], zn[cat]
        qx, qy, qz = px[nxt], py[nxt], pz[nxt]
        # Newell normal of each exterior ring
        nx_ = np.add.reduceat((py - qy) * (pz + qz), starts)
        ny_ = np.add.reduceat((pz - qz) * (px + qx), starts)
        nz_ = np.add.reduceat((px - qx) * (py + qy), starts)
        norm = np.sqrt(nx_ * nx_ + ny_ * ny_ + nz_ * nz_)
        keep = (norm > 0.0) & (np.abs(nz_) >= VERTICAL_NZ * norm)
        surfaces = [surf for surf, k in zip(surfaces, keep) if k]
    if not surfaces:
        return []
    rings = [r for surf in surfaces for r in surf]
    cat, _starts, lens = _ring_table(rings)
    ring_id = np.repeat(np.arange(len(rings)), lens)
    face_of_ring = np.repeat(np.arange(len(surfaces)), [len(surf) for surf in surfaces])
    lr = shapely.linearrings(np.column_stack((x[cat], y[cat])), indices=ring_id)
    polys = shapely.polygons(lr, indices=face_of_ring)
    bad = ~shapely.is_valid(polys)
    if np.any(bad):
        polys[bad] = shapely.make_valid(polys[bad])
    return list(polys)


def _polygonal(geom) -> Polygon | MultiPolygon | None:
    if geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        parts = list(getattr(geom, "geoms", [geom]))
    else:
        parts = [
            g
            for g in shapely.get_parts(geom)
            if g.geom_type in ("Polygon", "MultiPolygon")
        ]
        parts = [p for g in parts for p in getattr(g, "geoms", [g])]
    out = []
    for p in parts:
        holes = [h for h in p.interiors if Polygon(h).area >= MIN_HOLE_AREA_M2]
        q = Polygon(p.exterior, holes)
        if q.area > 0.0:
            out.append(q)
    if not out:
        return None
    g = out[0] if len(out) == 1 else MultiPolygon(out)
    if not g.is_valid:  # a filled hole may now overlap an island inside it
        g = shapely.union_all(out)
    return shapely.orient_polygons(g, exterior_cw=False)


def footprint_of(obj: RawObject, x, y, z):
    """The valid, oriented 2D footprint of one object in the local frame, or None."""
    polys = _face_polygons(obj, x, y, z)
    if not polys:
        return None
    merged = shapely.union_all(polys, grid_size=GRID_SIZE_M)
    return _polygonal(merged)


UNKNOWN_TOP_AGL_M = 120.0
"""Roof above ground given to an obstacle of unknown height at read time: the default
ceiling (120 m AGL). The twin raises such obstacles to its own ceiling whatever it is
(:func:`airspace.twin.build_twin`), so the column is never overflown."""

MIN_Z_EXTENT_M = 0.01
"""An object whose vertices span less height than this is flat (a LoD0 outline): its
vertices give its ground or roof level, not its height."""

HULL_MIN_WIDTH_M = 0.5
"""A hull with no area (collinear vertices) is widened by this buffer [m]."""

POINT_RADIUS_M = 5.0
"""An object known by one position only (a tree or a mast given by its reference point)
is enclosed by a circle of this radius [m]: its extent is unknown, so it is assumed
(counted as hulled in the audit)."""


def _hull(x, y, idx):
    """Convex hull of an object's vertices, widened when it has no area."""
    pts = shapely.multipoints(np.column_stack((x[idx], y[idx])))
    h = shapely.convex_hull(pts)
    if h.area <= 0.0:
        h = shapely.buffer(h, POINT_RADIUS_M if h.geom_type == "Point"
                           else HULL_MIN_WIDTH_M)
    return shapely.orient_polygons(h, exterior_cw=False)


def _obstacle(obj, idx, x, y, z, family_z, model_ground, unknown_height_m):
    """The conservative :class:`Building` of one repaired object, and whether it is a hull.

    Top: the highest of the vertices (when they span a height), the attributes, the
    extrusion, else the family's highest vertex (a LoD0 footprint whose parts or other
    LoDs are 3D), else the unknown-height policy. Footprint: the union of the faces,
    else the convex hull of every vertex.
    """
    zz = z[idx]
    zf = zz[np.isfinite(zz)]
    fam = family_z.get(obj.family or obj.id)
    ground = obj.ground_m
    if ground is None:
        ground = fam[0] if fam else (float(zf.min()) if zf.size else model_ground)
    cands = []
    if zf.size and float(zf.max() - zf.min()) >= MIN_Z_EXTENT_M:
        cands.append((float(zf.max()), "coordinates"))
    if obj.top_m is not None:
        cands.append((obj.top_m, obj.height_source or "attributes"))
    b0 = None
    if obj.height_m is not None:
        b0 = float(zf.min()) if zf.size else ground
        cands.append((b0 + obj.height_m, obj.height_source or "measuredHeight"))
    if not cands and fam and fam[1] - fam[0] >= MIN_Z_EXTENT_M:
        cands.append((fam[1], "other LoDs or parts"))
    base = obj.base_m
    if base is None:
        base = float(zf.min()) if zf.size else ground
    if b0 is not None:
        base = min(base, b0)
    top, source = max(cands, default=(None, None), key=lambda c: c[0])
    if top is not None and not top > base:
        obj.repairs.append(f"top {top:g} m not above base {base:g} m: base lowered "
                           "to the ground")
        base = min(base, ground)
        if not top > base:
            top = None
    if top is None:
        if unknown_height_m is not None:
            top, source = ground + unknown_height_m, "assumed"
        else:
            top, source = ground + UNKNOWN_TOP_AGL_M, "unknown"
        base = min(base, ground)
        if not top > base:
            base = top - UNKNOWN_TOP_AGL_M
    if zf.size and float(zf.max()) > top:  # never below one of its own vertices
        top = float(zf.max())
    fp = footprint_of(obj, x, y, z) if obj.surfaces else None
    hulled = fp is None
    if hulled:
        fp = _hull(x, y, idx)
    b = Building(obj.id, fp, float(base), float(top), float(ground), obj.kind,
                 obj.parent_id, source, obj.tags or None)
    return b, hulled


def _height_class(source: str) -> str:
    if source in ("coordinates", "unknown", "assumed", "other LoDs or parts"):
        return {"other LoDs or parts": "family"}.get(source, source)
    return "attributes"


class _Audit:
    """Per-file account of what the build read, repaired, enclosed and assumed."""

    def __init__(self, model: RawModel, unknown_height_m, skipped):
        self.model = model
        self.unknown_height_m = unknown_height_m
        self.skipped = skipped
        self.obstacles = 0
        self.repaired = 0
        self.hulled = 0
        self.heights: dict[str, int] = {}
        self.height_fields: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.repair_kinds: dict[str, int] = {}

    def add(self, obj: RawObject, b: Building, hulled: bool) -> None:
        self.obstacles += 1
        self.kinds[b.kind] = self.kinds.get(b.kind, 0) + 1
        if obj.repairs:
            self.repaired += 1
            for r in dict.fromkeys(_repair_kind(r) for r in obj.repairs):
                self.repair_kinds[r] = self.repair_kinds.get(r, 0) + 1
        self.hulled += int(hulled)
        c = _height_class(b.height_source)
        self.heights[c] = self.heights.get(c, 0) + 1
        if c == "attributes":
            self.height_fields[b.height_source] = (
                self.height_fields.get(b.height_source, 0) + 1)

    def as_dict(self) -> dict:
        reasons: dict[str, int] = {}
        for s in self.skipped:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
        unknown = self.heights.get("unknown", 0) + self.heights.get("assumed", 0)
        if self.unknown_height_m is None:
            policy = "blocked up to the ceiling (height unknown)"
        else:
            policy = f"assumed {self.unknown_height_m:g} m above ground (--unknown-height)"
        return {
            "path": self.model.path,
            "format": self.model.fmt,
            "crs": self.model.crs.to_string(),
            "objects_seen": dict(self.model.counts),
            "obstacles": self.obstacles,
            "obstacle_kinds": dict(self.kinds),
            "repaired": self.repaired,
            "repairs": dict(self.repair_kinds),
            "hulled": self.hulled,
            "heights": dict(self.heights),
            "height_fields": dict(self.height_fields),
            "unknown_heights": unknown,
            "unknown_height_policy": policy,
            "notes": list(self.model.notes),
            "skipped": len(self.skipped),
            "skipped_reasons": reasons,
        }


def _repair_kind(note: str) -> str:
    """A repair note without its numbers, for counting (``"degenerate face dropped"``)."""
    return note.split(" (")[0].split(":")[0]



def build_result(
    models: list[RawModel], frame: Frame | None, strict: bool,
    unknown_height_m: float | None = None,
) -> LoadResult:
    """Project, check and assemble one or more parsed files into one LoadResult.

    Parameters
    ----------
    models : list of RawModel
        Parsed files; each may have its own source CRS.
    frame : Frame or None
        Local frame to use; ``None`` centres one on the bounding box of the data.
    strict : bool
        Raise on any repair, hull or assumption instead of making it.
    unknown_height_m : float or None
        Height above ground to assume for an obstacle whose data gives none; ``None``
        (the default) marks it ``height_source="unknown"`` and the twin blocks its
        column up to the ceiling (:func:`airspace.twin.build_twin`).

    Raises
    ------
    EmptyModelError
        When no object survives.
    AbsurdCoordinatesError
        For impossible positions or extents (names file and object).
    """
    paths = os.pathsep.join(m.path for m in models)
    skipped: list[Skipped] = []
    counts: dict[str, int] = {}
    prepared = []
    model_skipped = {}
    for m in models:
        problems = Problems(m.path, strict)
        kept = _check_objects(m, problems)
        skipped.extend(m.skipped)
        skipped.extend(problems.skipped)
        model_skipped[id(m)] = [*m.skipped, *problems.skipped]
        for k, v in m.counts.items():
            counts[k] = counts.get(k, 0) + v
        lon, lat = _to_wgs84(m.crs, m.xyz[:, 0], m.xyz[:, 1])
        if kept:
            _check_place(m, kept, lon, lat)
        prepared.append((m, kept, lon, lat))
    if len({m.has_terrain for m in models}) > 1:
        raise MalformedInputError(
            paths,
            None,
            "cannot merge models with terrain (absolute heights) and without "
            "(heights above ground): "
            + ", ".join(f"{m.path} has_terrain={m.has_terrain}" for m in models),
        )
    kept_all = [(o, i) for m, kept, lon, lat in prepared for o, i in kept]
    if not kept_all:
        raise EmptyModelError(
            paths,
            None,
            "no usable building in the model "
            f"(objects seen: {counts or 'none'}; skipped: "
            f"{len(skipped)}; first reason: "
            f"{skipped[0].reason if skipped else '-'})",
        )
    all_lon = np.concatenate(
        [
            lon[np.concatenate([i for _, i in kept])]
            for m, kept, lon, lat in prepared
            if kept
        ]
    )
    all_lat = np.concatenate(
        [
            lat[np.concatenate([i for _, i in kept])]
            for m, kept, lon, lat in prepared
            if kept
        ]
    )
    if len(models) == 1:
        m, kept, lon, lat = prepared[0]
        _check_extent(paths, kept, lon, lat)
    else:
        # per-object centres in one shared lon/lat space
        offs, glon, glat, objs = 0, [], [], []
        for m, kept, lon, lat in prepared:
            glon.append(lon)
            glat.append(lat)
            objs.extend((o, i + offs) for o, i in kept)
            offs += len(lon)
        _check_extent(paths, objs, np.concatenate(glon), np.concatenate(glat))
    if frame is None:
        frame = Frame(
            0.5 * (all_lon.min() + all_lon.max()), 0.5 * (all_lat.min() + all_lat.max())
        )

    buildings: list[Building] = []
    areas: list[Building] = []
    terrain = []
    audits = []
    for m, kept, lon, lat in prepared:
        audit = _Audit(m, unknown_height_m, model_skipped[id(m)])
        # through WGS84, so that datum shifts (RD/Amersfoort -> WGS84) are applied
        x, y = frame.to_local(lon, lat)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        z = m.xyz[:, 2]
        family_z: dict[str, tuple[float, float]] = {}
        for obj, idx in kept:
            zz = z[idx]
            zz = zz[np.isfinite(zz)]
            if zz.size:
                fam = obj.family or obj.id
                lo, hi = family_z.get(fam, (math.inf, -math.inf))
                family_z[fam] = (min(lo, float(zz.min())), max(hi, float(zz.max())))
        model_ground = (float(np.median([lo for lo, _ in family_z.values()]))
                        if family_z else 0.0)
        for obj, idx in kept:
            b, hulled = _obstacle(obj, idx, x, y, z, family_z, model_ground,
                                  unknown_height_m)
            if obj.kind == "Area":  # tagged, not a building: for derived zones only
                areas.append(b)
                continue
            if strict and (obj.repairs or hulled
                           or b.height_source in ("unknown", "assumed")):
                what = obj.repairs[0] if obj.repairs else (
                    "no face gives a footprint: it would be enclosed by the hull of its "
                    "vertices" if hulled else
                    "no height in the data (--strict assumes none)")
                raise MalformedInputError(m.path, obj.id, f"strict: {what}")
            audit.add(obj, b, hulled)
            buildings.append(b)
        audits.append(audit)
        if m.terrain_idx is not None and m.terrain_idx.size:
            t = m.terrain_idx
            terrain.append(np.column_stack((x[t], y[t], z[t])))
    if not buildings:
        raise EmptyModelError(
            paths,
            None,
            "no usable building in the model "
            f"(objects seen: {counts}; skipped: {len(skipped)}; first "
            f"reason: {skipped[0].reason if skipped else '-'})",
        )
    crs_names = list(dict.fromkeys(m.crs.to_string() for m in models))
    fmts = list(dict.fromkeys(m.fmt for m in models))
    return LoadResult(
        buildings=buildings,
        skipped=skipped,
        frame=frame,
        source_crs=crs_names[0] if len(crs_names) == 1 else "; ".join(crs_names),
        has_terrain=all(m.has_terrain for m in models),
        path=paths,
        fmt=fmts[0] if len(fmts) == 1 else "mixed",
        counts=counts,
        terrain_xyz_m=np.concatenate(terrain).astype(np.float64) if terrain else None,
        audit=[a.as_dict() for a in audits],
        areas=areas,
    )
