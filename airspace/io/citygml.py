"""CityGML 2.0 (and 1.0) building reader, streamed with :func:`lxml.etree.iterparse`.

Design
------
The file is never loaded whole. :func:`lxml.etree.iterparse` reports the end of each
top-level member (``cityObjectMember``, ``featureMember``, ``appearanceMember``...) and
of ``gml:Envelope``; a member is processed as soon as it is complete, then cleared and
removed from its parent so that memory stays bounded by the largest single building.
The CityModel's ``gml:boundedBy`` envelope comes before the members, so its
``srsName`` is known before the first building; a building's own envelope or a
geometry's ``srsName`` overrides it; the ``crs`` argument overrides everything.

Axis order
----------
``gml:posList`` follows the axis order of the CRS. Geographic CRSs such as EPSG:6697
(JGD2011 + JGD2011 height, used by PLATEAU) are latitude, longitude, height. The order
is read from pyproj's ``CRS.axis_info`` (first axis pointing north/south means swap;
:func:`airspace.io.common.axis_swap`), never from a list of codes, and every
coordinate is stored easting/longitude first. ``srsDimension`` (on the posList, the
geometry, the building's or the CityModel's envelope) gives 2 or 3 values per position,
else the CRS's number of axes.

Geometry and heights
--------------------
Per ``bldg:Building`` and ``bldg:BuildingPart`` (parts are records of their own with
``parent_id``; a Building's geometry excludes its parts' geometry), the LoD used is
the first available of 2, 1, 3, 4 (``lod2Solid``, ``lod2MultiSurface``, the
``lod2MultiSurface`` of ``boundedBy`` surfaces, ``lod1Solid``, ``lod1MultiSurface``...).
``xlink:href`` surface members are resolved within the building (PLATEAU's lod2Solid
points at the polygons of its boundary surfaces); each polygon counts once. Heights are
absolute (orthometric, [m AMSL]): ``base_m``/``top_m`` are the lowest/highest vertex,
``ground_m`` the lowest vertex of the whole building (with its parts). A building with
only LoD0 (``lod0FootPrint`` preferred, else ``lod0RoofEdge``) uses that outline and
``bldg:measuredHeight``: ``ground = base = `` the outline's lowest z, ``top = ground +
measuredHeight``; without measuredHeight it is skipped. Other city objects are counted
in ``LoadResult.counts`` and ignored (relief included: no terrain samples are taken
from CityGML).

What is skipped
---------------
An unclosed ``LinearRing``, a posList whose length is not a multiple of the dimension,
or no usable geometry skips the object (strict: raises). Broken XML, a missing or
unknown CRS and an empty model always raise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
from lxml import etree

from skytwin.airspace.building import LoadResult
from skytwin.airspace.errors import CRSMissingError, MalformedInputError
from skytwin.airspace.frame import Frame, parse_crs
from skytwin.airspace.io.common import (
    ObjectError,
    Problems,
    RawModel,
    RawObject,
    axis_swap,
    build_result,
)

__all__ = ["LOD_PREFERENCE", "load_citygml", "read_citygml"]

LOD_PREFERENCE = (2, 1, 3, 4)
"""Order in which 3D LoDs are tried; LoD0 (2D outlines) comes last."""

_GML_ID = "{http://www.opengis.net/gml}id"
_XLINK = "{http://www.w3.org/1999/xlink}href"
_BUILDING_KINDS = ("Building", "BuildingPart")


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
    def __init__(self, path: str, crs, strict: bool):
        self.path = path
        self.problems = Problems(path, strict)
        self.crs = _CRSCache(path, crs)
        self.model_crs: pyproj.CRS | None = None
        self.blocks: list[np.ndarray] = []
        self.n = 0
        self.objects: list[RawObject] = []
        self.counts: dict[str, int] = {}
        self._to_model: dict[str, pyproj.Transformer] = {}
        self.model_dim: str | None = None

    # -- coordinates ------------------------------------------------------------------
    def _ring(self, ring_el, srs, dim, oid) -> np.ndarray:
        """Indices of one LinearRing's vertices (closing vertex dropped)."""
        pl = ring_el.find("{*}posList")
        if pl is not None:
            text = pl.text or ""
            dim = int(pl.get("srsDimension") or dim or 0) or None
            srs = pl.get("srsName") or srs
        else:
            poss = ring_el.findall("{*}pos")
            if poss:
                text = " ".join(p.text or "" for p in poss)
                if not dim:
                    dim = len((poss[0].text or "").split())
            else:
                co = ring_el.find("{*}coordinates")
                if co is None:
                    raise ObjectError(oid, "LinearRing without posList/pos/coordinates")
                tuples = (co.text or "").split()
                text = " ".join(t.replace(",", " ") for t in tuples)
                dim = len(tuples[0].split(",")) if tuples else 3
        crs, swap = self.crs.get(srs)
        if not dim:
            dim = len(crs.axis_info) or 3
        try:
            vals = np.array(text.split(), dtype=np.float64)
        except ValueError as exc:
            raise ObjectError(oid, f"posList holds a non-number: {exc}") from exc
        if dim not in (2, 3) or vals.size % dim:
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
        if len(pts) < 4:
            raise ObjectError(
                oid,
                f"degenerate ring: {len(pts)} positions (a closed "
                "LinearRing needs at least 4)",
            )
        first, last = pts[0], pts[-1]
        if not np.array_equal(first[:2], last[:2]) or not (
            np.array_equal(first[2:], last[2:]) or np.isnan(first[2])
        ):
            raise ObjectError(
                oid,
                "unclosed ring: the LinearRing's last position differs from its first",
            )
        pts = pts[:-1]
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

    def _polygon(self, poly, srs, dim, oid) -> list[np.ndarray]:
        srs = poly.get("srsName") or srs
        dim = poly.get("srsDimension") or dim
        ext = poly.find("{*}exterior/{*}LinearRing")
        if ext is None:
            raise ObjectError(
                oid, f"Polygon {poly.get(_GML_ID)} has no exterior LinearRing"
            )
        rings = [self._ring(ext, srs, dim, oid)]
        for ir in poly.iterfind("{*}interior/{*}LinearRing"):
            rings.append(self._ring(ir, srs, dim, oid))
        return rings

    # -- buildings --------------------------------------------------------------------
    def _lod_elements(self, bld) -> dict[int, list]:
        """``{lod: [geometry property elements]}`` of ``bld``, not of its parts."""
        out: dict[int, list] = {}

        def visit(el, depth):
            for ch in el:
                name = _local(ch.tag)
                if name in ("consistsOfBuildingPart",) or not name:
                    continue
                if name.startswith("lod") and len(name) > 3 and name[3].isdigit():
                    out.setdefault(int(name[3]), []).append(ch)
                elif (
                    name == "boundedBy"
                    or (depth == 1 and name.endswith("Surface"))
                    or name in ("opening",)
                    or name.endswith(("Opening", "Door", "Window"))
                ):
                    visit(ch, depth + 1)

        visit(bld, 0)
        return out

    def _collect(self, props, bld, srs, dim, oid, ids) -> list:
        surfaces = []
        seen: set[int] = set()
        for prop in props:
            targets = []
            for el in prop.iter("{*}Polygon", "{*}surfaceMember"):
                if _local(el.tag) == "Polygon":
                    targets.append(el)
                elif el.get(_XLINK):
                    ref = el.get(_XLINK).lstrip("#")
                    tgt = ids.get(ref)
                    if tgt is None:
                        raise ObjectError(
                            oid,
                            f"xlink:href #{ref} does not resolve within the building",
                        )
                    targets.extend(tgt.iter("{*}Polygon"))
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
                surfaces.append(self._polygon(poly, gsrs or srs, dim, oid))
        return surfaces

    def _one(self, bld, kind, parent, family, srs, dim, ids):
        oid = bld.get(_GML_ID) or f"{kind}#{self.counts.get(kind, 0)}"
        env = bld.find("{*}boundedBy/{*}Envelope")
        if env is not None:
            srs = env.get("srsName") or srs
            dim = env.get("srsDimension") or dim
        family = family or oid
        self.counts[kind] = self.counts.get(kind, 0) + 1
        parts = [
            p
            for c in bld.iterfind("{*}consistsOfBuildingPart")
            for p in c
            if _local(p.tag) == "BuildingPart"
        ]
        try:
            self._own_geometry(
                bld, kind, oid, parent, family, srs, dim, ids, has_parts=bool(parts)
            )
        except ObjectError as exc:
            self.problems.report(exc.object_id, exc.reason)
        for p in parts:
            self._one(p, "BuildingPart", oid, family, srs, dim, ids)

    def _own_geometry(self, bld, kind, oid, parent, family, srs, dim, ids, has_parts):
        lods = self._lod_elements(bld)
        for lod in LOD_PREFERENCE:
            if lod in lods:
                surfaces = self._collect(lods[lod], bld, srs, dim, oid, ids)
                if surfaces:
                    self.objects.append(
                        RawObject(oid, kind, parent, surfaces, family=family)
                    )
                    return
        lod0 = lods.get(0, [])
        foot = [e for e in lod0 if _local(e.tag) == "lod0FootPrint"] or [
            e for e in lod0 if _local(e.tag) == "lod0RoofEdge"
        ]
        if foot:
            mh = bld.find("{*}measuredHeight")
            if mh is None:
                raise ObjectError(oid, "only LoD0 (2D) geometry and no measuredHeight")
            try:
                height_m = float(mh.text)
            except (TypeError, ValueError) as exc:
                raise ObjectError(
                    oid, f"measuredHeight {mh.text!r} is not a number"
                ) from exc
            uom = (mh.get("uom") or "m").lower()
            if uom in ("ft", "foot", "feet", "[ft_i]", "urn:ogc:def:uom:epsg::9002"):
                height_m *= 0.3048
            surfaces = self._collect(foot, bld, srs, dim, oid, ids)
            self.objects.append(
                RawObject(
                    oid,
                    kind,
                    parent,
                    surfaces,
                    flat=True,
                    height_m=height_m,
                    family=family,
                )
            )
            return
        if has_parts:
            return  # geometry lives in the parts: not a record, not skipped
        raise ObjectError(oid, "no LoD0-LoD4 building geometry")

    def member(self, el):
        """Process one top-level member element (then the caller clears it)."""
        for obj in el:
            name = _local(obj.tag)
            if not name:
                continue
            if name == "Building":
                ids = {
                    p.get(_GML_ID): p
                    for p in obj.iter(
                        "{*}Polygon", "{*}MultiSurface", "{*}CompositeSurface"
                    )
                    if p.get(_GML_ID)
                }
                self._one(obj, "Building", None, None, None, self.model_dim, ids)
            else:
                self.counts[name] = self.counts.get(name, 0) + 1

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
        )


def read_citygml(path, crs=None, strict: bool = False) -> RawModel:
    """Stream a CityGML file into a :class:`~airspace.io.common.RawModel`.

    Parameters
    ----------
    path : str or Path
    crs : str, int or pyproj.CRS, optional
        Overrides every ``srsName`` in the file.
    strict : bool
        Raise on object-level problems instead of skipping.
    """
    path = str(path)
    reader = _Reader(path, crs, strict)
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
                    and parent is not None
                    and parent.getparent() is not None
                    and parent.getparent().getparent() is None
                ):
                    reader.crs.model_name = reader.crs.model_name or el.get("srsName")
                    reader.model_dim = reader.model_dim or el.get("srsDimension")
                continue
            if _local(el.tag) not in ("Envelope", "appearanceMember"):
                reader.member(el)
                for obj in el:
                    last_id = obj.get(_GML_ID) or last_id
            el.clear()
            while el.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        after = f" (last complete object: {last_id})" if last_id else ""
        raise MalformedInputError(path, None, f"broken XML: {exc}{after}") from exc
    return reader.model()


def load_citygml(
    path, crs=None, frame: Frame | None = None, strict: bool = False
) -> LoadResult:
    """Read a CityGML file into buildings in a local frame (see :func:`read_citygml`)."""
    return build_result([read_citygml(Path(path), crs, strict)], frame, strict)
