"""The twin's local metric frame and every coordinate conversion into and out of it.

Design
------
Each twin has one :class:`Frame`: a transverse Mercator projection on the WGS84
ellipsoid centred on the twin (``+proj=tmerc +lat_0 +lon_0 +k=1``). Within 10 km of the
centre its scale error is below 1.3e-6 (about 1 cm over 10 km), so local ``x_m`` (east) and
``y_m`` (north) are true metres for clearance and route lengths. Heights are not
transformed: ``z`` stays the source model's orthometric height [m AMSL].

Transformers are expensive, so a Frame builds its WGS84 pair once at construction
(``always_xy=True``: longitude first) and caches one transformer per source CRS; pyproj
transformers are safe to share across threads. A Frame is immutable and hashable by its
centre.

Examples
--------
>>> f = Frame(24.9440, 60.1716)
>>> x, y = f.to_local(24.9440, 60.1716)
>>> round(float(x), 6), round(float(y), 6)
(0.0, 0.0)
>>> lon, lat = f.to_wgs84(*f.to_local(24.95, 60.17))
>>> abs(float(lon) - 24.95) < 1e-10 and abs(float(lat) - 60.17) < 1e-10
True
"""

from __future__ import annotations

import re
import threading

import numpy as np
import pyproj
from pyproj.exceptions import CRSError

from skytwin.airspace.errors import CRSMissingError, OutsideTwinError

__all__ = ["ADV_HORIZONTAL", "ADV_VERTICAL", "Frame", "parse_crs"]


ADV_HORIZONTAL = {
    "ETRS89_UTM32": 25832,
    "ETRS89_UTM33": 25833,
    "ETRS89_UTM31": 25831,
    "ETRS89_3GK2": 5676,
    "ETRS89_3GK3": 5677,
    "ETRS89_3GK4": 5678,
    "DE_DHDN_3GK2": 31466,
    "DE_DHDN_3GK3": 31467,
    "DE_DHDN_3GK4": 31468,
    "DE_DHDN_3GK5": 31469,
    "DE_DHDN_3GK2_NW177": 31466,
    "DE_DHDN_3GK3_NW177": 31467,
    "ETRS89_LAT-LON": 4258,
    "ETRS89_LON-LAT": 4258,
}
"""AdV (German surveying authorities) horizontal CRS names -> EPSG codes. The AdV writes
``urn:adv:crs:HORIZONTAL*VERTICAL[*GEOID]`` in every German state's LoD1/LoD2 CityGML
(e.g. ``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016``); the names are those of the
AdV CRS register (ETRS89/UTM zone 32N = EPSG:25832, DHDN/3-degree Gauss-Kruger zone 3 =
EPSG:31467, ...)."""

ADV_VERTICAL = {
    "DE_DHHN2016_NH": 7837,
    "DE_DHHN92_NH": 5783,
    "DE_DHHN12_NOH": 5784,
    "DE_DHSN82_NH": 5783,  # DHSN82 normal heights differ from DHHN92 by centimetres
}
"""AdV vertical CRS names -> EPSG codes (DHHN2016 height = EPSG:7837, DHHN92 = 5783)."""

_EPSG_CODE = re.compile(r"EPSG\W*(?:[\d.]*\W+)?(\d{4,6})(?!\d)", re.IGNORECASE)


def _adv_crs(text: str) -> pyproj.CRS | None:
    """The pyproj CRS of an AdV URN (``urn:adv:crs:H*V*G``), or None if not one."""
    if not text.lower().startswith("urn:adv:crs:"):
        return None
    names = text[len("urn:adv:crs:"):].split("*")
    horiz = ADV_HORIZONTAL.get(names[0].upper())
    if horiz is None:
        return None
    vert = next((ADV_VERTICAL[n.upper()] for n in names[1:] if n.upper() in ADV_VERTICAL),
                None)
    h = pyproj.CRS.from_epsg(horiz)
    if vert is None:
        return h
    v = pyproj.CRS.from_epsg(vert)
    return pyproj.crs.CompoundCRS(f"{h.name} + {v.name}", [h, v])


def _recovered_epsg(text: str) -> pyproj.CRS | None:
    """A CRS from the EPSG codes a mangled name still spells (``EPSG:31467``), or None.

    One code gives that CRS; a horizontal and a vertical code give their compound.
    """
    codes = list(dict.fromkeys(int(c) for c in _EPSG_CODE.findall(text)))
    crss = []
    for c in codes:
        try:
            crss.append(pyproj.CRS.from_epsg(c))
        except CRSError:
            return None
    if len(crss) == 1:
        return crss[0]
    if len(crss) == 2 and crss[1].is_vertical and not crss[0].is_vertical:
        return pyproj.crs.CompoundCRS(f"{crss[0].name} + {crss[1].name}", crss)
    return None


def parse_crs(value: str | int | pyproj.CRS, path: str | None = None) -> pyproj.CRS:
    """Turn a CRS as written in a file into a :class:`pyproj.CRS`.

    Accepts ``"EPSG:7415"``, ``7415``, OGC URLs and URNs
    (``https://www.opengis.net/def/crs/EPSG/0/7415``, ``urn:ogc:def:crs:EPSG::6697``),
    compound URNs (``urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783``), the AdV names
    of German state data (``urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016``, see
    :data:`ADV_HORIZONTAL`), anything else pyproj understands, and, as a last resort,
    names that are broken but still spell their EPSG code(s) (an FME export's
    ``urn:ogc:def:crs:EPSG:6.12:31467x``).

    Raises
    ------
    CRSMissingError
        When ``value`` is empty or unknown (the message keeps pyproj's and says how to
        give the CRS by hand).

    Examples
    --------
    >>> parse_crs("https://www.opengis.net/def/crs/EPSG/0/7415").to_epsg()
    7415
    >>> parse_crs("urn:ogc:def:crs:EPSG::6697").to_epsg()
    6697
    >>> [c.to_epsg() for c in parse_crs("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016").sub_crs_list]
    [25832, 7837]
    """
    if isinstance(value, pyproj.CRS):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CRSMissingError(path, None, "no coordinate reference system given; "
                              "pass one explicitly (e.g. --crs EPSG:4326)")
    text = str(value).strip()
    low = text.lower()
    adv = _adv_crs(text)
    if adv is not None:
        return adv
    if "opengis.net/def/crs/" in low:  # https://www.opengis.net/def/crs/EPSG/0/7415
        parts = text.rstrip("/").split("/")
        text = f"{parts[-3]}:{parts[-1]}"
    elif low.startswith("urn:ogc:def:crs:"):  # urn:ogc:def:crs:EPSG::6697 or EPSG:6.6:6697
        parts = text.split(":")
        text = f"{parts[4]}:{parts[-1]}"
    elif text.isdigit():
        text = f"EPSG:{text}"
    try:
        return pyproj.CRS.from_user_input(text)
    except CRSError as exc:
        recovered = _recovered_epsg(str(value))
        if recovered is not None:
            return recovered
        shown = str(value)[:120]
        raise CRSMissingError(
            path, None, f"unknown CRS {shown!r} ({exc}); give the model's CRS by hand, "
            "e.g. --crs EPSG:25832 (or crs= in Python)") from exc


class Frame:
    """Local metric frame centred on ``(lon0_deg, lat0_deg)``.

    Parameters
    ----------
    lon0_deg, lat0_deg : float
        Centre of the twin, WGS84 degrees.
    """

    __slots__ = ("_cache", "_fwd", "_inv", "_lock", "crs", "lat0_deg", "lon0_deg")

    def __init__(self, lon0_deg: float, lat0_deg: float):
        if not (-180.0 <= lon0_deg <= 180.0 and -85.0 <= lat0_deg <= 85.0):
            raise OutsideTwinError(
                f"frame centre lon={lon0_deg}, lat={lat0_deg} is not a valid WGS84 "
                "position (lon in [-180, 180], lat in [-85, 85])")
        self.lon0_deg = float(lon0_deg)
        self.lat0_deg = float(lat0_deg)
        self.crs = pyproj.CRS.from_proj4(
            f"+proj=tmerc +lat_0={self.lat0_deg:.12f} +lon_0={self.lon0_deg:.12f} "
            "+k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs")
        self._fwd = pyproj.Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        self._inv = pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        self._cache: dict[str, pyproj.Transformer] = {}
        self._lock = threading.Lock()

    # -- WGS84 <-> local -------------------------------------------------------------
    def to_local(self, lon_deg, lat_deg):
        """WGS84 degrees -> local ``(x_m, y_m)`` (scalars or arrays)."""
        return self._fwd.transform(lon_deg, lat_deg)

    def to_wgs84(self, x_m, y_m):
        """Local ``(x_m, y_m)`` -> WGS84 ``(lon_deg, lat_deg)`` (scalars or arrays)."""
        return self._inv.transform(x_m, y_m)

    # -- any source CRS -> local ------------------------------------------------------
    def transformer_from(self, crs: pyproj.CRS) -> pyproj.Transformer:
        """The (cached) transformer from ``crs``'s horizontal part to this frame."""
        key = crs.to_wkt()
        with self._lock:
            t = self._cache.get(key)
            if t is None:
                horiz = crs.sub_crs_list[0] if crs.is_compound else crs
                t = pyproj.Transformer.from_crs(horiz, self.crs, always_xy=True)
                self._cache[key] = t
        return t

    def from_crs(self, crs: pyproj.CRS, x, y):
        """Source-CRS coordinates (``always_xy``: easting/longitude first) -> local."""
        xs, ys = self.transformer_from(crs).transform(np.asarray(x, dtype=np.float64),
                                                       np.asarray(y, dtype=np.float64))
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise OutsideTwinError(
                f"coordinates cannot be projected from {crs.to_string()} to the local frame "
                "(non-finite result): check the CRS and the axis order")
        return xs, ys

    @classmethod
    def centred_on(cls, crs: pyproj.CRS, x, y) -> Frame:
        """A frame centred on the bounding box of source-CRS points ``x, y``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        horiz = crs.sub_crs_list[0] if crs.is_compound else crs
        t = pyproj.Transformer.from_crs(horiz, "EPSG:4326", always_xy=True)
        lon, lat = t.transform(x, y)
        lon = np.asarray(lon)
        lat = np.asarray(lat)
        if lon.size == 0 or not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
            raise OutsideTwinError(
                f"coordinates in {crs.to_string()} do not map to valid WGS84 positions")
        return cls(0.5 * (float(lon.min()) + float(lon.max())),
                   0.5 * (float(lat.min()) + float(lat.max())))

    # -- identity -----------------------------------------------------------------------
    def __eq__(self, other):
        return (isinstance(other, Frame) and other.lon0_deg == self.lon0_deg
                and other.lat0_deg == self.lat0_deg)

    def __hash__(self):
        return hash((self.lon0_deg, self.lat0_deg))

    def __repr__(self):
        return f"Frame(lon0_deg={self.lon0_deg!r}, lat0_deg={self.lat0_deg!r})"

    def __reduce__(self):
        return (Frame, (self.lon0_deg, self.lat0_deg))
