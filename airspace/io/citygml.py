"""CityGML 1.0 / 2.0 / 3.0 obstacle reader, streamed with :func:`lxml.etree.iterparse`.

Design
------
The file is never loaded whole. :func:`lxml.etree.iterparse` reports the end of each
top-level member (``cityObjectMember``, ``featureMember``, ``appearanceMember``...) and
of ``gml:Envelope``; a member is processed as soon as it is complete, then cleared and
removed from its parent so that memory stays bounded by the largest single building.
The CityModel's ``gml:boundedBy`` envelope comes before the members, so its
``srsName`` is known before the first building; a building's own envelope or a
geometry's ``srsName`` overrides it; the ``crs`` argument overrides everything. CRS
names are read by :func:`airspace.frame.parse_crs` (EPSG URNs and URLs, compound URNs,
the AdV names of German state data, mangled names that still spell an EPSG code).

Axis order and dimension
------------------------
``gml:posList`` follows the axis order of the CRS. Geographic CRSs such as EPSG:6697
(JGD2011 + JGD2011 height, used by PLATEAU) are latitude, longitude, height. The order
is read from pyproj's ``CRS.axis_info`` (first axis pointing north/south means swap;
:func:`airspace.io.common.axis_swap`), never from a list of codes, and every
coordinate is stored easting/longitude first. Coordinates that contradict a
geographic CRS's order (a "latitude" beyond 90 degrees while the other axis fits) are
read longitude first, and the audit notes it; where both orders give valid places the
CRS's order is kept (nothing in the file can tell them apart). ``srsDimension`` (on the
posList, the geometry, the building's or the CityModel's envelope) gives 2 or 3 values
per position; when none gives it, it is inferred from the values (the dimension in
which the ring closes), never from the CRS alone, and the audit notes it.

Geometry and heights
--------------------
Obstacles are ``Building`` (2.0 ``consistsOfBuildingPart`` / 3.0 ``buildingPart``
parts are records of their own with ``parent_id``), ``Bridge`` (and parts),
``CityFurniture``, ``SolitaryVegetationObject``, ``GenericCityObject`` and
``OtherConstruction`` (:data:`OBSTACLE_TYPES`). An object's geometry is the
**envelope of all its LoDs** (0 to 4; a LoD1 block may be lower than the LoD2 roof
it summarises), taken from the object, its boundary surfaces (2.0 ``boundedBy``, 3.0
``boundary``) and their openings, and its outer installations and constructive
elements (chimneys and dormers rise above the roof); implicit geometries are not read.
``xlink:href`` surface members are resolved within the object, else file-wide (a
second pass collects the referenced elements, see :func:`read_citygml`). Heights are
absolute (orthometric, [m AMSL]): the highest of the vertices, ``measuredHeight`` and
``storeysAboveGround`` (x 3 m) over the lowest vertex, and height-like generic
attributes (:mod:`airspace.io.attributes`); a LoD0-only object with none of these
takes its building's other parts, or else is of unknown height
(:func:`airspace.io.common.build_result` applies the policy). Other city objects are
counted in ``LoadResult.counts`` and ignored (relief included: no terrain samples are
taken from CityGML).

Repairs and what is skipped
---------------------------
An unclosed ``LinearRing`` is closed; a ring whose posList cannot be read (not a whole
number of positions, non-numbers) is dropped with its face; each repair is noted for
the audit (strict: raises). Only an object with no usable coordinate is skipped.
Broken XML, a missing or unknown CRS and an empty model always raise.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pyproj
from lxml import etree

from skytwin.airspace.building import LoadResult
from skytwin.airspace.errors import CRSMissingError, MalformedInputError
from skytwin.airspace.frame import Frame, parse_crs
from skytwin.airspace.io.attributes import parse_length_m
from skytwin.airspace.io.common import (
    apply_attribute_heights,
    ObjectError,
    Problems,
    RawModel,
    RawObject,
    axis_swap,
    build_result,
    scalar_tags,
)

__all__ = ["OBSTACLE_TYPES", "load_citygml", "read_citygml"]


_GML_ID = "{http://www.opengis.net/gml}id"
_GML32_ID = "{http://www.opengis.net/gml/3.2}id"
_XLINK = "{http://www.w3.org/1999/xlink}href"
OBSTACLE_TYPES = (
    "Building",
    "Bridge",
    "CityFurniture",
    "SolitaryVegetationObject",
    "GenericCityObject",
    "OtherConstruction",
)
"""Top-level city objects that become obstacles (with their parts: BuildingPart,
BridgePart). Ground-lying objects (relief, land use, transport, water) are counted
only."""

_PART_LINKS = ("consistsOfBuildingPart", "buildingPart", "consistsOfBridgePart",
               "bridgePart")
_CONTAINERS = frozenset({
    "boundedBy", "boundary", "opening", "outerBuildingInstallation",
    "buildingInstallation", "BuildingInstallation", "buildingConstructiveElement",
    "BuildingConstructiveElement", "outerBridgeInstallation", "bridgeInstallation",
    "BridgeInstallation", "bridgeConstructiveElement", "BridgeConstructiveElement",
})


def _gid(el) -> str | None:
    """``gml:id`` of an element, GML 3.1 (CityGML 1.0/2.0) or GML 3.2 (CityGML 3.0)."""
    return el.get(_GML_ID) or el.get(_GML32_ID)


class _Unresolved(Exception):
    """An ``xlink:href`` points outside the object: resolve it in a second pass."""

    def __init__(self, ref: str):
        super().__init__(ref)
        self.ref = ref


def _local(tag) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


class _CRSCache:
    def __init__(self, path, override):
        self.path = path
        self.override = None if override is None else parse_crs(override, path)
        self._by_name: dict[str, tuple[pyproj.CRS, bool]] = {}
        self.model_name: str | None = None

    def get(self, name: str | None) -> tuple[pyproj.CRS, bool]:
        if self.override is not None:
            return self.override, axis_swap(self.override)
        name = name or self.model_name
        if not name:
            raise CRSMissingError(
                self.path,
                None,
                "no srsName on the geometry, the "
                "building or the CityModel envelope; pass crs=",
            )
        hit = self._by_name.get(name)
        if hit is None:
            crs = parse_crs(name, self.path)
            hit = (crs, axis_swap(crs))
            self._by_name[name] = hit
        return hit


class _Reader:
    def __init__(self, path: str, crs, strict: bool, fields=(None, None)):
        self.path = path
        self.fields = fields
        self.notes: list[str] = []
        self.inferred_dim: int | None = None
        self._repairs: list[str] = []
        self.global_ids: dict = {}
        self.pass_no = 1
        self.deferred: set = set()
        self.needed: set = set()
        self.problems = Problems(path, strict)
        self.crs = _CRSCache(path, crs)
        self.model_crs: pyproj.CRS | None = None
        self.blocks: list[np.ndarray] = []
        self.n = 0
        self.objects: list[RawObject] = []
        self.counts: dict[str, int] = {}
        self._to_model: dict[str, pyproj.Transformer] = {}
        self.model_dim: str | None = None
        self._semantics: dict[str, dict] = {}

    # -- coordinates ------------------------------------------------------------------
    def _ring(self, ring_el, srs, dim, oid) -> np.ndarray:
        """Indices of one LinearRing's vertices (closing vertex dropped).

        ``srsDimension`` comes from the posList, the geometry, the building or the
        model; when none gives it, it is inferred from the values (the dimension, 3 or
        2, in which the ring closes; else the one that divides the count), never taken
        from the CRS alone (a file may declare EPSG:4326 and write lon, lat, h).
        """
        pl = ring_el.find("{*}posList")
        declared = None
        if pl is not None:
            text = pl.text or ""
            declared = int(pl.get("srsDimension") or dim or 0) or None
            srs = pl.get("srsName") or srs
        else:
            poss = ring_el.findall("{*}pos")
            if poss:
                text = " ".join(p.text or "" for p in poss)
                declared = int(dim or 0) or len((poss[0].text or "").split()) or None
            else:
                co = ring_el.find("{*}coordinates")
                if co is None:
                    raise ObjectError(oid, "LinearRing without posList/pos/coordinates")
                tuples = (co.text or "").split()
                text = " ".join(t.replace(",", " ") for t in tuples)
                declared = len(tuples[0].split(",")) if tuples else 3
        crs, swap = self.crs.get(srs)
        try:
            vals = np.array(text.split(), dtype=np.float64)
        except ValueError as exc:
            raise ObjectError(oid, f"posList holds a non-number: {exc}") from exc
        dim = declared or self._infer_dim(vals)
        if dim not in (2, 3) or vals.size % dim or vals.size == 0:
            raise ObjectError(
                oid,
                f"posList of {vals.size} values is not a whole number "
                f"of {dim}D positions",
            )
        pts = vals.reshape(-1, dim)
        if dim == 2:
            pts = np.column_stack((pts, np.full(len(pts), np.nan)))
        if swap:
            pts = pts[:, [1, 0, 2]]
        if self._geographic(crs) and np.any(np.abs(pts[:, 1]) > 90.0) and np.all(
                np.abs(pts[:, 0]) <= 90.0):
            pts = pts[:, [1, 0, 2]]  # written lon, lat against the CRS's lat, lon
            self.note(f"{crs.name}: coordinates are written longitude first, against "
                      "the CRS's latitude-first axis order (latitudes beyond 90 "
                      "degrees otherwise); read as longitude, latitude")
        first, last = pts[0], pts[-1]
        closed = len(pts) > 1 and np.array_equal(first[:2], last[:2]) and (
            np.array_equal(first[2:], last[2:]) or np.isnan(first[2]))
        if closed:
            pts = pts[:-1]
        elif len(pts) > 2:
            self._repairs.append("unclosed ring closed")
        return self._store(pts, crs)

    def _store(self, pts: np.ndarray, crs) -> np.ndarray:
        """Append ``(n, 3)`` positions (easting/longitude first) in ``crs`` to the
        model's vertices, in the model's CRS; returns their indices."""
        if self.model_crs is None:
            self.model_crs = crs
        elif crs != self.model_crs:
            key = crs.to_wkt()
            t = self._to_model.get(key)
            if t is None:
                t = pyproj.Transformer.from_crs(crs, self.model_crs, always_xy=True)
                self._to_model[key] = t
            x, y = t.transform(pts[:, 0], pts[:, 1])
            pts = np.column_stack((x, y, pts[:, 2]))
        off = self.n
        self.blocks.append(pts)
        self.n += len(pts)
        return np.arange(off, off + len(pts), dtype=np.int64)

    def _infer_dim(self, vals: np.ndarray) -> int | None:
        """2 or 3 values per position, from the values of a ring with no srsDimension."""
        fits = [d for d in (3, 2) if vals.size % d == 0 and vals.size >= 3 * d]
        for d in fits:
            p = vals.reshape(-1, d)
            if np.array_equal(p[0], p[-1]):
                if d != self.inferred_dim:
                    self.inferred_dim = d
                    self.note(f"no srsDimension: {d} values per position inferred "
                              "(the rings close in that dimension)")
                return d
        return fits[0] if fits else None

    def _points(self, elements, srs, dim) -> list[np.ndarray]:
        """Positions of geometry that gives no face (curves, points, and the reference
        point of an implicit geometry, which is all that locates a template placed from
        a library): they bound the object's hull (:func:`airspace.io.common.
        build_result`). Relative template coordinates are not placed."""
        out = []
        for el in elements:
            for node in el.iter("{*}posList", "{*}pos", "{*}coordinates"):
                if any(_local(a.tag) == "relativeGMLGeometry" for a in node.iterancestors()):
                    continue
                text = (node.text or "").replace(",", " ")
                try:
                    vals = np.array(text.split(), dtype=np.float64)
                except ValueError:
                    self._repairs.append("a position that is not a number ignored")
                    continue
                crs, swap = self.crs.get(node.get("srsName") or srs)
                d = int(node.get("srsDimension") or dim or 0) or (
                    3 if vals.size % 3 == 0 else 2)
                if vals.size == 0 or vals.size % d or d not in (2, 3):
                    continue
                pts = vals.reshape(-1, d)
                if d == 2:
                    pts = np.column_stack((pts, np.full(len(pts), np.nan)))
                if swap:
                    pts = pts[:, [1, 0, 2]]
                out.append(self._store(pts, crs))
        return out

    def _geographic(self, crs) -> bool:
        horiz = crs.sub_crs_list[0] if crs.is_compound else crs
        return bool(horiz.is_geographic)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _polygon(self, poly, srs, dim, oid) -> list[np.ndarray]:
        srs = poly.get("srsName") or srs
        dim = poly.get("srsDimension") or dim
        ext = poly.find("{*}exterior/{*}LinearRing")
        if ext is None:
            self._repairs.append(f"Polygon {_gid(poly)} without exterior dropped")
            return []
        try:
            rings = [self._ring(ext, srs, dim, oid)]
        except ObjectError as exc:
            self._repairs.append(f"broken face dropped ({exc.reason})")
            return []
        for ir in poly.iterfind("{*}interior/{*}LinearRing"):
            try:
                rings.append(self._ring(ir, srs, dim, oid))
            except ObjectError as exc:
                self._repairs.append(f"broken hole dropped ({exc.reason})")
        return rings

    # -- buildings --------------------------------------------------------------------
    def _lod_elements(self, bld) -> dict[int, list]:
        """``{lod: [geometry property elements]}`` of ``bld``, not of its parts.

        Geometry is looked for on the object, in its boundary surfaces (``boundedBy``
        in CityGML 2.0, ``boundary`` in 3.0), their openings, and its outer
        installations and constructive elements (chimneys, dormers, balconies rise
        above or beyond the walls). Implicit geometries (templates placed by a matrix)
        are not read.
        """
        out: dict[int, list] = {}

        def visit(el):
            for ch in el:
                name = _local(ch.tag)
                if not name or name in _PART_LINKS:
                    continue
                if name.startswith("lod") and len(name) > 3 and name[3].isdigit():
                    if "Implicit" not in name:
                        out.setdefault(int(name[3]), []).append(ch)
                elif name in _CONTAINERS or name.endswith(
                        ("Surface", "Opening", "Door", "Window")):
                    visit(ch)

        visit(bld)
        return out

    def _collect(self, props, bld, srs, dim, oid, ids) -> list:
        surfaces = []
        seen: set[int] = set()
        for prop in props:
            targets = []
            if prop.get(_XLINK):  # <lod2Solid xlink:href="#..."/> itself
                targets.extend(self._resolve(prop.get(_XLINK), ids, oid))
            for el in prop.iter("{*}Polygon", "{*}surfaceMember", "{*}Triangle",
                                "{*}baseSurface"):
                if _local(el.tag) in ("Polygon", "Triangle"):
                    targets.append(el)
                elif el.get(_XLINK):
                    targets.extend(self._resolve(el.get(_XLINK), ids, oid))
            psrs = prop.get("srsName") or srs
            for poly in targets:
                if id(poly) in seen:
                    continue
                seen.add(id(poly))
                gsrs = psrs
                anc = poly.getparent()
                while anc is not None and anc is not bld and not gsrs:
                    gsrs = anc.get("srsName")
                    anc = anc.getparent()
                rings = self._polygon(poly, gsrs or srs, dim, oid)
                if rings:
                    surfaces.append(rings)
        return surfaces

    def _resolve(self, href, ids, oid) -> list:
        """Polygons of an ``xlink:href`` target: in the building, else file-wide."""
        ref = href.rsplit("#", 1)[-1]
        tgt = ids.get(ref)
        if tgt is None:
            tgt = self.global_ids.get(ref)
        if tgt is None:
            if self.pass_no == 1:
                raise _Unresolved(ref)
            self._repairs.append(f"xlink:href #{ref[:60]} resolves nowhere in the "
                                 "file: that surface is missing")
            return []
        if _local(tgt.tag) in ("Polygon", "Triangle"):
            return [tgt]
        return list(tgt.iter("{*}Polygon", "{*}Triangle"))

    def _one(self, bld, kind, parent, family, srs, dim, ids):
        oid = _gid(bld) or f"{kind}#{self.counts.get(kind, 0)}"
        env = bld.find("{*}boundedBy/{*}Envelope")
        if env is not None:
            srs = env.get("srsName") or srs
            dim = env.get("srsDimension") or dim
        family = family or oid
        self.counts[kind] = self.counts.get(kind, 0) + 1
        parts = [
            p
            for c in bld
            if _local(c.tag) in _PART_LINKS
            for p in c
            if _local(p.tag).endswith("Part")
        ]
        try:
            self._own_geometry(
                bld, kind, oid, parent, family, srs, dim, ids, has_parts=bool(parts)
            )
        except ObjectError as exc:
            self.problems.report(exc.object_id, exc.reason)
        for p in parts:
            self._one(p, _local(p.tag), oid, family, srs, dim, ids)

    def _own_geometry(self, bld, kind, oid, parent, family, srs, dim, ids, has_parts):
        """The object's record: the envelope of ALL its LoDs (0 to 4), with
        ``measuredHeight``, ``storeysAboveGround`` and height-like generic attributes as
        candidate roofs (the highest wins)."""
        self._repairs = []
        lods = self._lod_elements(bld)
        surfaces = []
        for lod in sorted(lods):
            surfaces.extend(self._collect(lods[lod], bld, srs, dim, oid, ids))
        attrs = self._attributes(bld)
        tags = scalar_tags(self._semantics.get(parent) if parent else None,
                           self._semantic_tags(bld, attrs))
        self._semantics[oid] = tags
        points = [] if surfaces else self._points(
            [e for lod in sorted(lods) for e in lods[lod]]
            + [e for e in bld.iter("{*}ImplicitGeometry")], srs, dim)
        if not surfaces and not points:
            if has_parts:
                return  # geometry lives in the parts: not a record, not skipped
            why = self._repairs[0] if self._repairs else "no LoD0-LoD4 geometry"
            raise ObjectError(oid, f"no usable coordinate: {why}")
        raw = RawObject(oid, kind, parent, surfaces, family=family,
                        repairs=list(self._repairs), tags=tags, points=points)
        apply_attribute_heights(raw, attrs, self.fields)
        self.objects.append(raw)

    def _semantic_tags(self, bld, attrs) -> dict:
        """What the object is for: ``bldg:function``/``usage``/``class`` (CityGML 2.0
        and 3.0), PLATEAU ``uro:`` usage codes anywhere inside the object's own
        attribute elements (``detailedUsage``, ``orgUsage``, ``orgUsage2``...), keyed
        ``"<prefix>:<name>"`` as written in the file, plus its generic attributes."""
        out = {k: v for k, v in attrs.items() if isinstance(v, str)}
        for ch in bld:
            name = _local(ch.tag)
            if name in ("function", "usage", "class") and ch.text and ch.text.strip():
                key = f"bldg:{name}"
                out[key] = (out[key] + ";" if key in out else "") + ch.text.strip()
            elif ch.tag.startswith("{") and "/uro/" in ch.tag:
                for el in ch.iter():
                    n = _local(el.tag)
                    if ("sage" in n or n == "buildingID") and el.text and el.text.strip():
                        out.setdefault(f"uro:{n}", el.text.strip())
        return out

    def _attributes(self, bld) -> dict:
        """Height-like attributes of one object: its own elements (``measuredHeight``,
        ``storeysAboveGround``) and generic attributes (``gen:*Attribute`` name/value,
        CityGML 2.0 and 3.0)."""
        out = {}
        for ch in bld:
            name = _local(ch.tag)
            if name == "measuredHeight":
                v = parse_length_m(ch.text)
                uom = (ch.get("uom") or "m").lower()
                if v is not None and uom in ("ft", "foot", "feet", "[ft_i]",
                                             "urn:ogc:def:uom:epsg::9002"):
                    v *= 0.3048
                out["measuredHeight"] = v
            elif name == "storeysAboveGround":
                out["storeysAboveGround"] = ch.text
            elif name.endswith("Attribute") or name == "genericAttribute":
                for g in ch.iter():
                    gname = g.get("name")
                    if gname is None:
                        n_el = g.find("{*}name")
                        gname = n_el.text if n_el is not None else None
                    val = g.find("{*}value")
                    if gname and val is not None and val.text:
                        out.setdefault(gname.strip(), val.text.strip())
        return {k: v for k, v in out.items() if v is not None}

    def member(self, el, deferred_only=None):
        """Process one top-level member element (then the caller clears it)."""
        for obj in el:
            name = _local(obj.tag)
            if not name:
                continue
            if name in OBSTACLE_TYPES:
                gid = _gid(obj)
                if deferred_only is not None and gid not in deferred_only:
                    continue
                ids = {
                    _gid(p): p
                    for p in obj.iter()
                    if isinstance(p.tag, str) and _gid(p)
                }
                mark = (len(self.objects), dict(self.counts),
                        len(self.problems.skipped))
                try:
                    self._one(obj, name, None, None, None, self.model_dim, ids)
                except _Unresolved as exc:
                    del self.objects[mark[0]:]
                    self.counts = mark[1]
                    del self.problems.skipped[mark[2]:]
                    self.deferred.add(gid)
                    self.needed.add(exc.ref)
                    self._scan_refs(obj)
            elif deferred_only is None:
                self.counts[name] = self.counts.get(name, 0) + 1

    def _scan_refs(self, obj) -> None:
        """Every xlink target an object points at (to collect them file-wide)."""
        for el in obj.iter():
            if isinstance(el.tag, str) and el.get(_XLINK):
                self.needed.add(el.get(_XLINK).rsplit("#", 1)[-1])

    def model(self) -> RawModel:
        xyz = np.concatenate(self.blocks) if self.blocks else np.zeros((0, 3))
        crs = self.model_crs
        if crs is None:
            crs = self.crs.override or (
                self.crs.get(None)[0] if self.crs.model_name else None
            )
        if crs is None:
            crs = pyproj.CRS("EPSG:4326")  # no geometry at all: build_result raises
        return RawModel(
            self.path,
            "citygml",
            crs,
            xyz,
            self.objects,
            skipped=self.problems.skipped,
            counts=self.counts,
            has_terrain=True,
            notes=self.notes,
        )


def _iter_members(path, on_member, on_model_envelope=None):
    """Stream the top-level members of a CityGML file, clearing each after use."""
    last_id = None
    ctx = etree.iterparse(
        path,
        events=("end",),
        huge_tree=True,
        remove_comments=True,
        tag=(
            "{*}Envelope",
            "{*}cityObjectMember",
            "{*}featureMember",
            "{*}featureMembers",
            "{*}appearanceMember",
        ),
    )
    try:
        for _event, el in ctx:
            parent = el.getparent()
            if parent is None or parent.getparent() is not None:
                # nested element (a building's envelope): handled with its member
                if (
                    _local(el.tag) == "Envelope"
                    and on_model_envelope is not None
                    and parent is not None
                    and parent.getparent() is not None
                    and parent.getparent().getparent() is None
                ):
                    on_model_envelope(el)
                continue
            if _local(el.tag) not in ("Envelope", "appearanceMember"):
                on_member(el)
                for obj in el:
                    last_id = _gid(obj) or last_id
            el.clear()
            while el.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        after = f" (last complete object: {last_id})" if last_id else ""
        raise MalformedInputError(path, None, f"broken XML: {exc}{after}") from exc


def read_citygml(path, crs=None, strict: bool = False, *, height_field: str | None = None,
                 ground_field: str | None = None) -> RawModel:
    """Stream a CityGML file into a :class:`~airspace.io.common.RawModel`.

    Parameters
    ----------
    path : str or Path
    crs : str, int or pyproj.CRS, optional
        Overrides every ``srsName`` in the file.
    strict : bool
        Raise on object-level problems instead of skipping.
    height_field, ground_field : str, optional
        Generic attribute holding the height / ground altitude
        (:mod:`airspace.io.attributes`).

    Notes
    -----
    One streaming pass reads every object whose ``xlink:href`` references resolve
    within the object. Objects that point elsewhere in the file (CityGML 3.0 and
    PLATEAU-style files may share surfaces across members) are deferred: a second pass
    copies just the referenced elements, a third reads the deferred objects with them.
    """
    path = str(path)
    reader = _Reader(path, crs, strict, (height_field, ground_field))

    def model_envelope(el):
        reader.crs.model_name = reader.crs.model_name or el.get("srsName")
        reader.model_dim = reader.model_dim or el.get("srsDimension")

    _iter_members(path, reader.member, model_envelope)
    if reader.deferred:
        keep_objects = {}

        def collect(el):
            for node in el.iter():
                if not isinstance(node.tag, str):
                    continue
                gid = _gid(node)
                if gid in reader.needed and gid not in reader.global_ids:
                    reader.global_ids[gid] = copy.deepcopy(node)
            for obj in el:
                if _gid(obj) in reader.deferred:
                    keep_objects[_gid(obj)] = copy.deepcopy(el)

        _iter_members(path, collect)
        reader.pass_no = 2
        for member in keep_objects.values():
            reader.member(member, deferred_only=reader.deferred)
        reader.note(f"{len(keep_objects)} object(s) reference surfaces elsewhere in the "
                    "file (xlink:href): resolved file-wide")
    return reader.model()


def load_citygml(
    path, crs=None, frame: Frame | None = None, strict: bool = False
) -> LoadResult:
    """Read a CityGML file into buildings in a local frame (see :func:`read_citygml`)."""
    return build_result([read_citygml(Path(path), crs, strict)], frame, strict)
