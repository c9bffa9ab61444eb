"""Heights from the attributes real city data carries (GeoJSON properties, CityJSON
``attributes``, CityGML generic attributes).

Design
------
Real data writes a building's height under many names: OSM's ``height`` and
``building:levels``, France's BD TOPO ``HAUTEUR`` / ``Z_MIN_SOL`` / ``Z_MAX_TOIT`` /
``NB_ETAGES``, CityGML's ``measuredHeight`` and ``storeysAboveGround``, 3DBAG's
``h_dak_max`` / ``h_maaiveld``, and many more. Names are compared *normalised*
(lower case, only letters and digits: ``"building:height"`` and ``"Building_Height"``
are both ``buildingheight``), in four families:

* **height** above ground [m]: :data:`HEIGHT_NAMES`;
* **roof altitude** [m, the model's vertical datum]: :data:`ROOF_ALTITUDE_NAMES`;
* **ground altitude** [m]: :data:`GROUND_ALTITUDE_NAMES`;
* **storeys** (times :data:`LEVEL_HEIGHT_M`): :data:`LEVEL_NAMES`.

Precedence is *conservative*, not first-found: every value present is read and the
roof is the **highest** of them (a roof altitude, ground + height, ground + storeys x
3 m, plus ``roof:height``/``roof:levels`` over the storeys as OSM defines). A user
override (``height_field`` / ``ground_field``, the CLI's ``--height-field`` /
``--ground-field``) names the attribute to use: it then replaces the built-in names of
its family (an explicit height field is read as a height above ground unless its value
is an altitude, i.e. when a ground field is also given and the value is above it).
Unparseable values count as absent; non-finite numbers are an error of the object.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "GROUND_ALTITUDE_NAMES",
    "HEIGHT_NAMES",
    "LEVEL_HEIGHT_M",
    "LEVEL_NAMES",
    "ROOF_ALTITUDE_NAMES",
    "AttributeHeights",
    "normalise",
    "parse_length_m",
    "read_heights",
]

LEVEL_HEIGHT_M = 3.0
"""Height of one storey [m] for storey counts (the value OSM renderers use)."""

HEIGHT_NAMES = frozenset({
    "height", "buildingheight", "measuredheight", "hauteur", "hoehe", "gebaeudehoehe",
    "hoogte", "altura", "altezza", "bldgheight", "heightm", "heightabovegroundm",
    "heightaboveground", "relativeheight", "relhoehe", "hdak", "heightroof",
})
"""Height of the roof above the ground [m]."""

ROOF_ALTITUDE_NAMES = frozenset({
    "zmaxtoit", "roofaltitude", "roofheightabs", "absoluteheight", "hdakmax",
    "b3hdakmax", "rooftopaltitude", "zroof", "roofelevation", "maxaltitude",
    "altitudemaxtoit", "zmax",
})
"""Altitude of the highest point of the roof [m, the model's vertical datum]."""

GROUND_ALTITUDE_NAMES = frozenset({
    "zminsol", "groundaltitude", "hmaaiveld", "b3hmaaiveld", "groundelevation",
    "zground", "altitudesol", "terrainheight", "zmin", "minaltitude", "gelaendehoehe",
})
"""Altitude of the ground under the building [m, the model's vertical datum]."""

LEVEL_NAMES = frozenset({
    "buildinglevels", "levels", "nbetages", "storeys", "stories", "storeysaboveground",
    "numfloors", "floors", "floorcount", "anzahlgeschosse", "geschosse", "bouwlagen",
    "numberoffloors", "storeycount",
})
"""Number of storeys above ground."""

_UNITS_M = {"": 1.0, "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0,
            "metres": 1.0, "ft": 0.3048, "feet": 0.3048, "foot": 0.3048, "'": 0.3048}
_NUM_UNIT = re.compile(r"^\s*([-+]?\d+(?:[.,]\d+)?|[-+]?[.,]\d+)\s*([a-zA-Z']*)\s*$")
_FEET_INCHES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*'\s*(\d+(?:\.\d+)?)\s*\"\s*$")
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def normalise(name: str) -> str:
    """An attribute name as compared: lower case letters and digits only.

    >>> normalise("building:levels"), normalise("Z_MAX_TOIT"), normalise("HAUTEUR")
    ('buildinglevels', 'zmaxtoit', 'hauteur')
    """
    return _NON_ALNUM.sub("", str(name).lower())


def parse_length_m(value) -> float | None:
    """A length as metres, or None when it is not a length.

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
    if isinstance(value, dict):  # CityJSON 2.0 {"value": 12.3, "uom": "m"}
        return parse_length_m(value.get("value"))
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


@dataclass(frozen=True)
class AttributeHeights:
    """What the attributes of one object say about its heights.

    ``height_m`` is above ground; ``roof_alt_m`` and ``ground_alt_m`` are altitudes in
    the model's vertical datum; ``levels`` a storey count. Each ``*_source`` names the
    attribute that gave the value (for the build's audit). ``base_m`` is the OSM
    ``min_height`` (or ``building:min_level`` x 3 m) above ground.
    """

    height_m: float | None = None
    height_source: str | None = None
    roof_alt_m: float | None = None
    roof_alt_source: str | None = None
    ground_alt_m: float | None = None
    ground_alt_source: str | None = None
    levels_height_m: float | None = None
    levels_source: str | None = None
    base_m: float | None = None

    def relative_top(self) -> tuple[float | None, str | None]:
        """The highest roof above ground these attributes give, and its source."""
        cands = []
        if self.height_m is not None:
            cands.append((self.height_m, self.height_source))
        if self.levels_height_m is not None:
            cands.append((self.levels_height_m, self.levels_source))
        if self.roof_alt_m is not None and self.ground_alt_m is not None:
            cands.append((self.roof_alt_m - self.ground_alt_m, self.roof_alt_source))
        if not cands:
            return None, None
        return max(cands, key=lambda c: c[0])


class NonFiniteAttribute(ValueError):
    """An attribute holds NaN or infinity (the object is malformed)."""


def read_heights(props: dict, height_field: str | None = None,
                 ground_field: str | None = None) -> AttributeHeights:
    """Read every height-like attribute of one object (see the module docstring).

    Examples
    --------
    >>> h = read_heights({"HAUTEUR": 21.8, "Z_MIN_SOL": 170.2, "Z_MAX_TOIT": 193.4})
    >>> top, source = h.relative_top()
    >>> h.height_m, h.ground_alt_m, h.roof_alt_m, round(top, 6), source
    (21.8, 170.2, 193.4, 23.2, 'Z_MAX_TOIT')
    >>> read_heights({"building:levels": "4", "roof:levels": 1}).relative_top()
    (15.0, 'building:levels')
    >>> read_heights({"h": 3}, height_field="h").relative_top()
    (3.0, 'h')
    """
    if not isinstance(props, dict):
        return AttributeHeights()
    for k, v in props.items():
        if isinstance(v, float) and not math.isfinite(v):
            if normalise(k) in (HEIGHT_NAMES | ROOF_ALTITUDE_NAMES | GROUND_ALTITUDE_NAMES
                                | LEVEL_NAMES | {"minheight", "buildingminlevel",
                                                 "roofheight", "rooflevels"}) or k in (
                    height_field, ground_field):
                raise NonFiniteAttribute(f"non-finite {k} {v!r}")
    norm = {}
    for k, v in props.items():
        norm.setdefault(normalise(k), (k, v))

    def best(names, field=None):
        """The largest parseable value among ``names`` (or the one user field)."""
        found = []
        if field is not None:
            if field in props:
                val = parse_length_m(props[field])
                if val is not None:
                    found.append((val, field))
            return max(found, default=(None, None), key=lambda c: c[0])
        for n in names:
            if n in norm:
                k, v = norm[n]
                val = parse_length_m(v)
                if val is not None:
                    found.append((val, k))
        return max(found, default=(None, None), key=lambda c: c[0])

    height, h_src = best(HEIGHT_NAMES, height_field)
    roof_alt, r_src = (None, None) if height_field else best(ROOF_ALTITUDE_NAMES)
    ground_alt, g_src = best(GROUND_ALTITUDE_NAMES, ground_field)
    levels, l_src = (None, None) if height_field else best(LEVEL_NAMES)
    levels_h = None
    if levels is not None and levels > 0:
        roof = parse_length_m(props.get("roof:height"))
        if roof is None:
            rl = parse_length_m(props.get("roof:levels"))
            roof = None if rl is None else rl * LEVEL_HEIGHT_M
        levels_h = levels * LEVEL_HEIGHT_M + (roof or 0.0)
    base = parse_length_m(props.get("min_height"))
    if base is None:
        ml = parse_length_m(props.get("building:min_level"))
        base = None if ml is None else ml * LEVEL_HEIGHT_M
    if height is None and levels_h is None and base is not None and base > 0.0:
        roof = parse_length_m(props.get("roof:height"))
        if roof is not None and roof > 0.0:  # a roof-only part raised on min_height
            height, h_src = base + roof, "roof:height"
    if height_field and ground_field and height is not None and ground_alt is not None \
            and height > ground_alt:
        roof_alt, r_src, height, h_src = height, h_src, None, None  # an altitude
    return AttributeHeights(height, h_src, roof_alt, r_src, ground_alt, g_src,
                            levels_h, l_src, base)
