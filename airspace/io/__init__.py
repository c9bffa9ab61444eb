"""City-model readers: CityJSON (1.0-2.0, CityJSONSeq), CityGML 2.0 and GeoJSON.

One entry point, :func:`load_city`, picks the reader from the file name (or content)
and returns a :class:`~airspace.building.LoadResult` whose buildings are expressed in
one local metric :class:`~airspace.frame.Frame`. Each format lives in its own module;
the geometry they share (checks, projection, footprints) is in
:mod:`airspace.io.common`.
"""

from __future__ import annotations

import math
from pathlib import Path

from skytwin.airspace.building import LoadResult
from skytwin.airspace.errors import MalformedInputError
from skytwin.airspace.frame import Frame
from skytwin.airspace.io.common import AbsurdCoordinatesError, build_result

__all__ = ["FORMATS", "AbsurdCoordinatesError", "detect_format", "load_city"]

FORMATS = ("cityjson", "cityjsonseq", "citygml", "geojson")
"""Values accepted for ``fmt``."""


def detect_format(path) -> str:
    """The reader for ``path``: from its extension, else from its first bytes.

    Examples
    --------
    >>> detect_format("a/DenHaag.city.json"), detect_format("b.city.jsonl")
    ('cityjson', 'cityjsonseq')
    >>> detect_format("tile_op.gml"), detect_format("osm.geojson")
    ('citygml', 'geojson')
    """
    name = str(path).lower()
    if name.endswith(".jsonl"):
        return "cityjsonseq"
    if name.endswith((".gml", ".xml")):
        return "citygml"
    if name.endswith(".geojson"):
        return "geojson"
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        if name.endswith(".json"):
            return "cityjson"
        raise MalformedInputError(str(path), None, f"cannot read file: {exc}") from exc
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "citygml"
    # the document type named first wins (a GeoJSON property may mention CityJSON)
    marks = {
        fmt: head.find(key)
        for fmt, key in (
            ("geojson", b'"FeatureCollection"'),
            ("geojson-feature", b'"Feature"'),
            ("cityjson", b'"CityJSON"'),
        )
        if key in head
    }
    if marks:
        first = min(marks, key=marks.get)
        if first.startswith("geojson"):
            return "geojson"
        lines = head.split(b"\n", 1)
        if len(lines) == 2 and b'"CityJSONFeature"' in lines[1]:
            return "cityjsonseq"
        return "cityjson"
    if name.endswith(".json"):
        return "cityjson"
    raise MalformedInputError(
        str(path),
        None,
        "unknown city-model format (expected "
        "CityJSON, CityJSONSeq, CityGML or GeoJSON)",
    )


def _read(path: Path, fmt: str | None, crs, strict: bool, fields: dict):
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if not path.exists():
        raise MalformedInputError(str(path), None, "file not found")
    if fmt in ("cityjson", "cityjsonseq"):
        from skytwin.airspace.io.cityjson import read_cityjson

        return read_cityjson(path, crs, strict, seq=(fmt == "cityjsonseq"), **fields)
    if fmt == "citygml":
        from skytwin.airspace.io.citygml import read_citygml

        return read_citygml(path, crs, strict, **fields)
    from skytwin.airspace.io.geojson import read_geojson

    return read_geojson(path, crs, strict, **fields)


def load_city(
    path,
    crs=None,
    frame: Frame | None = None,
    fmt: str | None = None,
    strict: bool = False,
    *,
    unknown_height_m: float | None = None,
    height_field: str | None = None,
    ground_field: str | None = None,
) -> LoadResult:
    """Read one city model (or several, merged) into buildings in a local frame.

    Parameters
    ----------
    path : str, Path or list of them
        CityJSON (``.json``, ``.city.json``), CityJSONSeq (``.jsonl``,
        ``.city.jsonl``), CityGML (``.gml``, ``.xml``) or GeoJSON (``.geojson``). A
        list is merged into one result with one frame.
    crs : str, int or pyproj.CRS, optional
        Source CRS, overriding what the file says (see
        :func:`airspace.frame.parse_crs`).
    frame : Frame, optional
        Frame for the footprints; by default one centred on the data.
    fmt : {"cityjson", "cityjsonseq", "citygml", "geojson"}, optional
        Skip format detection.
    strict : bool
        When True, every repair, hull and height assumption raises instead.
    unknown_height_m : float, optional
        Height above ground to assume for obstacles whose data gives none. By default
        none is assumed: they are marked ``height_source="unknown"`` and the twin
        blocks their columns up to its ceiling.
    height_field, ground_field : str, optional
        Attribute that holds the building height above ground / the ground altitude,
        replacing the built-in names (:mod:`airspace.io.attributes`).

    Returns
    -------
    LoadResult

    Raises
    ------
    MalformedInputError
        Unreadable file (truncated JSON, broken XML) or, when ``strict``, a bad object.
    CRSMissingError
        No CRS in the file and none given, or one pyproj does not know.
    EmptyModelError
        No usable building.
    AbsurdCoordinatesError
        Positions no city can have (also an ``OutsideTwinError``).
    """
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    if not paths:
        raise ValueError("no file given")
    if unknown_height_m is not None and not (
            math.isfinite(unknown_height_m) and 0.0 < unknown_height_m <= 1000.0):
        raise ValueError(f"unknown_height_m must be in (0, 1000] m, got {unknown_height_m!r}")
    fields = {"height_field": height_field, "ground_field": ground_field}
    models = [_read(Path(p), fmt, crs, strict, fields) for p in paths]
    result = build_result(models, frame, strict, unknown_height_m)
    if any(m.fmt == "geojson" for m in models):
        from skytwin.airspace.io.geojson import assign_parents

        result = assign_parents(result)
    return result
