"""CityJSON 1.0 / 1.1 / 2.0 and CityJSONSeq (CityJSONFeature lines) reader.

Design
------
A CityJSON file keeps one shared vertex list, so it is read whole with :mod:`json`
(CityJSON files are compact: Den Haag's 2,500 objects are 3 MB). CityJSONSeq files
(``.city.jsonl``) are read line by line: the first line is the ``CityJSON`` header
(``transform``, ``metadata``), every further line a ``CityJSONFeature`` with its own
``vertices``; each feature's indices are offset into one growing vertex list, so a
feature never sees another's vertices. Integer vertices are decoded with the
``transform`` (``v * scale + translate``) when there is one.

Coordinates are taken as written, x (easting or longitude) first: CityJSON fixes the
order x, y, z whatever the CRS says. The CRS is ``metadata.referenceSystem`` (a URN in
1.0, an OGC URL in 1.1+), or the ``crs`` override; without either,
:class:`~airspace.errors.CRSMissingError`. A compound CRS such as EPSG:7415 (RD New +
NAP) uses its horizontal part for x/y and keeps z as the orthometric height [m AMSL].

Buildings
---------
``Building`` and ``BuildingPart`` objects become records (other types are counted in
``LoadResult.counts`` and otherwise ignored; a ``TINRelief``'s vertices become
``terrain_xyz_m``). Of several geometries the one with the highest LoD is used; Solid,
MultiSurface, CompositeSurface, MultiSolid, CompositeSolid and GeometryInstance are
understood. ``base_m``/``top_m`` are the lowest/highest vertex of the object;
``ground_m`` is the lowest vertex of the whole building (the building and all its
parts), i.e. where the model's building meets its terrain. A Building whose geometry
lives only in its parts makes no record of its own and is not "skipped": its parts are
the records, with ``parent_id`` naming it.

What is skipped
---------------
An object with a vertex index out of range, a malformed ring or no surface geometry
(see :mod:`airspace.io.common` for the geometric checks) is skipped with its reason, or
raises when ``strict``. Truncated JSON, an unknown version, a missing or unknown CRS
and an empty model always raise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from skytwin.airspace.building import LoadResult
from skytwin.airspace.errors import CRSMissingError, MalformedInputError
from skytwin.airspace.frame import Frame, parse_crs
from skytwin.airspace.io.common import (
    ObjectError,
    apply_attribute_heights,
    Problems,
    RawModel,
    RawObject,
    build_result,
    scalar_tags,
)

__all__ = ["BUILDING_TYPES", "OBSTACLE_TYPES", "load_cityjson", "read_cityjson"]

BUILDING_TYPES = ("Building", "BuildingPart")
"""Buildings and their parts."""

OBSTACLE_TYPES = (
    *BUILDING_TYPES,
    "BuildingInstallation",
    "BuildingConstructiveElement",
    "Bridge",
    "BridgePart",
    "BridgeInstallation",
    "BridgeConstructiveElement",
    "OtherConstruction",
    "CityFurniture",
    "SolitaryVegetationObject",
    "GenericCityObject",
)
"""CityObject types that become obstacle records (:class:`~airspace.building.Building`):
everything built or grown that stands above the ground (chimneys and dormers modelled
as installations, bridges, masts, trees). Surfaces that lie on the ground (LandUse,
Road, WaterBody, PlantCover, relief) and tunnels are not obstacles. Extension types
(``"+NoiseBarrier"``, any type starting with ``+``) are obstacles too: what a model
adds on purpose is kept."""

_SURFACE_DEPTH = {
    "MultiSurface": 0,
    "CompositeSurface": 0,
    "Solid": 1,
    "MultiSolid": 2,
    "CompositeSolid": 2,
}


_POINT_TYPES = ("GeometryInstance", "MultiPoint", "MultiLineString")
"""Geometries read besides surfaces; points and lines bound an object's hull."""


def _flat_indices(b) -> list:
    """Every vertex index in a (nested) boundaries list."""
    if isinstance(b, list):
        return [i for x in b for i in _flat_indices(x)]
    return [b]


def _lod_key(geom: dict) -> float:
    try:
        return float(str(geom.get("lod", 0)))
    except ValueError:
        return 0.0


class _Vertices:
    """The growing vertex list of one file (several blocks for CityJSONSeq)."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []
        self.n = 0

    def add(self, arr: np.ndarray) -> int:
        off = self.n
        self.blocks.append(arr)
        self.n += len(arr)
        return off

    def array(self) -> np.ndarray:
        if not self.blocks:
            return np.zeros((0, 3))
        return np.concatenate(self.blocks).astype(np.float64, copy=False)


def _decode_vertices(raw, transform, path, where) -> np.ndarray:
    try:
        v = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MalformedInputError(
            path, where, f"vertices are not numbers: {exc}"
        ) from exc
    if v.size == 0:
        return np.zeros((0, 3))
    if v.ndim != 2 or v.shape[1] != 3:
        raise MalformedInputError(
            path, where, f"vertices must be [x, y, z] triples, got shape {v.shape}"
        )
    if transform:
        try:
            scale = np.asarray(transform["scale"], dtype=np.float64)
            translate = np.asarray(transform["translate"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedInputError(
                path, where, f"bad transform {transform!r}"
            ) from exc
        v = v * scale + translate
    return v


def _ring(ring, nverts: int, offset: int, oid: str) -> np.ndarray:
    try:
        r = np.asarray(ring)
    except (TypeError, ValueError) as exc:
        raise ObjectError(oid, f"ring is not a list of vertex indices: {exc}") from exc
    if r.ndim != 1 or (r.size and r.dtype.kind not in "iu"):
        raise ObjectError(
            oid, f"ring is not a flat list of integer vertex indices: {ring!r}"
        )
    r = r.astype(np.int64)
    if r.size and (r.min() < 0 or r.max() >= nverts):
        bad = int(r[(r < 0) | (r >= nverts)][0])
        raise ObjectError(oid, f"vertex index {bad} out of range (0..{nverts - 1})")
    if r.size > 1 and r[0] == r[-1]:
        r = r[:-1]
    return r + offset


def _surfaces(geom: dict, nverts: int, offset: int, oid: str, repairs=None) -> list:
    depth = _SURFACE_DEPTH[geom["type"]]
    items = [geom.get("boundaries")]
    for _ in range(depth + 1):
        nxt = []
        for it in items:
            if not isinstance(it, list):
                raise ObjectError(oid, f"malformed {geom['type']} boundaries")
            nxt.extend(it)
        items = nxt
    rings, per_surface = [], []
    for surf in items:
        if not isinstance(surf, list) or not surf:
            raise ObjectError(
                oid, f"malformed {geom['type']} boundaries (empty surface)"
            )
        per_surface.append(len(surf))
        rings.extend(surf)
    # one numpy conversion for the whole geometry; per-ring checks stay exact
    lens = [len(r) if isinstance(r, list) else -1 for r in rings]
    if min(lens, default=0) < 0:
        raise ObjectError(oid, "ring is not a list of vertex indices")
    flat = [i for r in rings for i in r]
    arr = np.array(flat)
    if arr.size and (arr.ndim != 1 or arr.dtype.kind not in "iu"):
        return _surfaces_slow(items, nverts, offset, oid, repairs)
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= nverts):
        if repairs is None:
            bad = int(arr[(arr < 0) | (arr >= nverts)][0])
            raise ObjectError(oid, f"vertex index {bad} out of range (0..{nverts - 1})")
        return _surfaces_slow(items, nverts, offset, oid, repairs)
    arr = arr + offset
    parts = np.split(arr, np.cumsum(lens)[:-1]) if lens else []
    parts = [r[:-1] if r.size > 1 and r[0] == r[-1] else r for r in parts]
    out, k = [], 0
    for n in per_surface:
        out.append(parts[k : k + n])
        k += n
    return out


def _surfaces_slow(items, nverts, offset, oid, repairs=None):
    """Ring by ring, for boundaries that are not plain integer lists (error paths).

    With ``repairs`` (a list), a broken ring is dropped and noted there (with its
    exterior, the whole face) instead of failing the object.
    """
    if repairs is None:
        return [[_ring(r, nverts, offset, oid) for r in surf] for surf in items]
    out = []
    for surf in items:
        rings = []
        for k, r in enumerate(surf if isinstance(surf, list) else []):
            try:
                rings.append(_ring(r, nverts, offset, oid))
            except ObjectError as exc:
                repairs.append(f"broken ring dropped ({exc.reason})")
                if k == 0:
                    break
        else:
            if rings:
                out.append(rings)
    return out


class _Reader:
    def __init__(self, path: str, crs, strict: bool, fields=(None, None)):
        self.path = path
        self.fields = fields
        self.problems = Problems(path, strict)
        self.verts = _Vertices()
        self.objects: list[RawObject] = []
        self.counts: dict[str, int] = {}
        self.terrain: list[np.ndarray] = []
        self.crs_override = crs
        self.templates = None
        self.template_vertices = None
        self.transform = None

    # -- header ---------------------------------------------------------------------
    def header(self, doc: dict, where=None):
        if not isinstance(doc, dict) or doc.get("type") != "CityJSON":
            raise MalformedInputError(
                self.path, where, 'not a CityJSON document ("type": "CityJSON" missing)'
            )
        version = str(doc.get("version", ""))
        if not version.startswith(("1.", "2.")):
            raise MalformedInputError(
                self.path,
                where,
                f"unsupported CityJSON version {version!r} (1.0, 1.1 and 2.0 are read)",
            )
        self.transform = doc.get("transform")
        meta = doc.get("metadata") or {}
        ref = meta.get("referenceSystem") if isinstance(meta, dict) else None
        if self.crs_override is not None:
            self.crs = parse_crs(self.crs_override, self.path)
        elif ref:
            self.crs = parse_crs(ref, self.path)
        else:
            raise CRSMissingError(
                self.path,
                None,
                "CityJSON metadata.referenceSystem is "
                "missing; pass crs= (e.g. 'EPSG:7415')",
            )
        tpl = doc.get("geometry-templates")
        if isinstance(tpl, dict):
            self.templates = tpl.get("templates", [])
            self.template_vertices = np.asarray(
                tpl.get("vertices-templates", []), dtype=np.float64
            ).reshape(-1, 3)

    # -- objects ----------------------------------------------------------------------
    def block(self, city_objects, vertices, where=None):
        v = _decode_vertices(vertices, self.transform, self.path, where)
        offset = self.verts.add(v)
        self._cur = v
        if not isinstance(city_objects, dict):
            raise MalformedInputError(self.path, where, "CityObjects is not an object")
        for oid, obj in city_objects.items():
            typ = obj.get("type", "?") if isinstance(obj, dict) else "?"
            self.counts[typ] = self.counts.get(typ, 0) + 1
            try:
                if typ in OBSTACLE_TYPES or typ.startswith("+"):
                    self._building(oid, obj, city_objects, len(v), offset)
                elif typ == "TINRelief":
                    for g in obj.get("geometry") or []:
                        if g.get("type") in _SURFACE_DEPTH:
                            for s in _surfaces(g, len(v), offset, oid):
                                self.terrain.extend(s)
            except ObjectError as exc:
                self.problems.report(exc.object_id, exc.reason)

    def _family(self, oid, objs) -> str:
        seen = {oid}
        cur = oid
        while True:
            parents = (objs.get(cur) or {}).get("parents") or []
            if not parents or parents[0] in seen or parents[0] not in objs:
                return cur
            cur = parents[0]
            seen.add(cur)

    def _building(self, oid, obj, objs, nverts, offset):
        """One obstacle: the envelope of ALL its geometries (every LoD), its heights
        from its attributes too (the highest wins, :mod:`airspace.io.attributes`)."""
        geoms = [
            g
            for g in obj.get("geometry") or []
            if isinstance(g, dict)
            and (g.get("type") in _SURFACE_DEPTH or g.get("type") in _POINT_TYPES)
        ]
        kind = obj["type"]
        parents = obj.get("parents") or []
        parent = parents[0] if parents else None
        if not geoms:
            if obj.get("children"):
                return  # geometry lives in its parts: not a record, not skipped
            raise ObjectError(oid, "no surface geometry (Solid/MultiSurface/...)")
        repairs: list[str] = []
        surfaces, points = [], []
        for geom in sorted(geoms, key=_lod_key, reverse=True):
            try:
                if geom["type"] == "GeometryInstance":
                    surfaces.extend(self._instance(oid, geom, nverts, offset))
                elif geom["type"] in _POINT_TYPES:  # no faces: bounds the hull
                    points.append(_ring(_flat_indices(geom.get("boundaries")), nverts,
                                        offset, oid))
                else:
                    surfaces.extend(_surfaces(geom, nverts, offset, oid, repairs))
            except ObjectError as exc:
                repairs.append(f"LoD {geom.get('lod', '?')} geometry dropped "
                               f"({exc.reason})")
        if not surfaces and not any(len(p) for p in points):
            raise ObjectError(oid, "no usable coordinate: "
                              + (repairs[0] if repairs else "empty geometry"))
        parent_obj = objs.get(parent) if parent is not None else None
        raw = RawObject(oid, kind, parent, surfaces, family=self._family(oid, objs),
                        repairs=repairs, tags=scalar_tags(
                            parent_obj.get("attributes")
                            if isinstance(parent_obj, dict) else None,
                            obj.get("attributes")),
                        points=[p for p in points if len(p)])
        apply_attribute_heights(raw, obj.get("attributes"), self.fields)
        self.objects.append(raw)

    def _instance(self, oid, geom, nverts, offset):
        try:
            tpl = self.templates[int(geom["template"])]
            ref = int(geom["boundaries"][0])
            mat = np.asarray(geom["transformationMatrix"], dtype=np.float64).reshape(
                4, 4
            )
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            raise ObjectError(oid, f"malformed GeometryInstance: {exc}") from exc
        if not 0 <= ref < nverts:
            raise ObjectError(oid, f"vertex index {ref} out of range (0..{nverts - 1})")
        tv = self.template_vertices
        h = np.column_stack((tv, np.ones(len(tv)))) @ mat.T
        refpt = self._cur[ref]
        local = h[:, :3] + refpt
        toff = self.verts.add(local)
        return _surfaces(tpl, len(tv), toff, oid)

    def model(self) -> RawModel:
        xyz = self.verts.array()
        tidx = np.unique(np.concatenate(self.terrain)) if self.terrain else None
        return RawModel(
            self.path,
            "cityjson",
            self.crs,
            xyz,
            self.objects,
            skipped=self.problems.skipped,
            counts=self.counts,
            has_terrain=True,
            terrain_idx=tidx,
        )


def _json_error(path, exc, where=None) -> MalformedInputError:
    return MalformedInputError(
        path, where, f"invalid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
    )


def read_cityjson(
    path, crs=None, strict: bool = False, seq: bool | None = None, *,
    height_field: str | None = None, ground_field: str | None = None,
) -> RawModel:
    """Parse a CityJSON or CityJSONSeq file into a :class:`~airspace.io.common.RawModel`.

    Parameters
    ----------
    path : str or Path
        ``.city.json`` / ``.json`` (CityJSON) or ``.city.jsonl`` / ``.jsonl`` (CityJSONSeq).
    crs : str, int or pyproj.CRS, optional
        Overrides ``metadata.referenceSystem``.
    strict : bool
        Raise on object-level problems instead of skipping.
    seq : bool, optional
        Force CityJSONSeq (True) or CityJSON (False); by default from the extension.
    """
    path = str(path)
    if seq is None:
        seq = path.lower().endswith(".jsonl")
    reader = _Reader(path, crs, strict, (height_field, ground_field))
    if not seq:
        try:
            with open(path, "rb") as fh:
                doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise _json_error(path, exc) from exc
        except RecursionError as exc:
            raise MalformedInputError(path, None, "JSON nested too deeply") from exc
        reader.header(doc)
        reader.block(doc.get("CityObjects", {}), doc.get("vertices", []))
        return reader.model()
    with open(path, "rb") as fh:
        first = True
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"line {lineno}"
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _json_error(path, exc, where) from exc
            if first:
                reader.header(doc, where)
                reader.block(
                    doc.get("CityObjects") or {}, doc.get("vertices") or [], where
                )
                first = False
                continue
            if not isinstance(doc, dict) or doc.get("type") != "CityJSONFeature":
                raise MalformedInputError(
                    path, where, "expected a CityJSONFeature line"
                )
            reader.block(
                doc.get("CityObjects", {}),
                doc.get("vertices", []),
                f"{where} ({doc.get('id', '?')})",
            )
    if first:
        raise MalformedInputError(path, None, "empty CityJSONSeq file")
    return reader.model()


def load_cityjson(
    path, crs=None, frame: Frame | None = None, strict: bool = False
) -> LoadResult:
    """Read a CityJSON/CityJSONSeq file into buildings in a local frame.

    Same as :func:`airspace.io.load_city` for one CityJSON file.
    """
    return build_result([read_cityjson(Path(path), crs, strict)], frame, strict)
