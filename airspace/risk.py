"""Ground risk: people per km² per cell, SORA population bands, and route exposure.

What it is
----------
A :class:`RiskLayer` is a 2D raster aligned with the twin's columns (cells of ``k``
twin columns a side, default about 50 m) holding the density of people on the ground
[people/km²] for the day and for the night. It is built from

1. **a population file**, when the user has one (:func:`read_population`):

   * CSV points (``.csv``): a header with ``lon``, ``lat`` (WGS84 degrees) and one of
     ``people`` / ``population`` / ``count``; each row is that many people at that
     point (census blocks, address points). Optional ``people_day`` and
     ``people_night`` columns give the two periods; otherwise both use ``people``.
   * ESRI ASCII grid (``.asc``, e.g. a WorldPop "people per pixel" export): header
     ``ncols nrows xllcorner yllcorner cellsize [NODATA_value]`` in WGS84 degrees, then
     people per cell, north row first; NODATA counts as 0. Each cell is spread over
     4 x 4 sub-points so that its people fall into the right twin cells.

   People are counted into the cells that hold their points (census data are where
   people sleep: both periods use them unless the file gives a day column).

2. **otherwise, an estimate from the city model** (:func:`estimate_population`):
   people in a building = floor area x occupancy of its use for the period, with
   floor area = footprint area x storeys (the model's storey count when it gives one,
   else ``round(height above ground / 3 m)``, at least 1) and the use read from its
   tags (:func:`use_class`: OSM ``building``/``amenity``, PLATEAU ``bldg:usage``,
   ALKIS/CityGML ``bldg:function``). Each building's people are spread over the
   cells its footprint covers in proportion to the area in each.

   Occupancy (people per 100 m² of floor area; :data:`OCCUPANCY`), day / night:

   ============ ===== ===== =====================================================
   use          day   night basis
   ============ ===== ===== =====================================================
   residential  1.2   2.4   ~40 m² of dwelling per person (Eurostat EU-SILC,
                            average dwelling size / household size); ~95 % at
                            home at night, ~half by day
   office       4.0   0.1   BCO Guide to Specification (2019): 8-13 m² per
                            workstation, ~60 % attendance, gross/net 0.85
   retail       3.0   0.0   ~30 m² gross per person on average (peak fire-code
                            loads are 3-5 m², far above the daily mean)
   education    5.0   0.0   ~10 m² per pupil in classrooms, ~20 m² gross
   health       4.0   3.0   beds + staff of general hospitals
   hotel        1.0   3.0   rooms of ~30 m² with ~1 guest
   public       2.0   0.2   civic, religious, cultural, stations (mean load)
   industrial   1.0   0.3   factories, warehouses, supply plants
   ancillary    0.0   0.0   garages, sheds, roofs, kiosks, other structures
   unknown      2.0   1.5   mixed urban use (no use in the data)
   ============ ===== ===== =====================================================

Limits (what the estimate is not): it counts people *inside* buildings, not in
streets, parks or vehicles (which a census does not count either), and sheltering by
the roof is ignored (SORA's conservative reading); storey counts from heights assume
3 m storeys; a building whose height is unknown is given :data:`UNKNOWN_STOREYS`
storeys **for the population only** (the obstacle still blocks its column up to the
ceiling, see :mod:`airspace.twin`); use classes are coarse. The estimate is for
routing between relative risks; a regulator's density map or census raster should be
given when one exists.

Day and night
    :func:`period_at` picks the period from the local *solar* time of a departure
    (UTC + longitude / 15 h): day from 07:00 to 19:00. Time zones and daylight saving
    are ignored (at most ~1.5 h off in Europe).

SORA population bands and intrinsic ground-risk class
-----------------------------------------------------
JARUS SORA 2.5 (JAR-DEL-SRM-SORA-MB-2.5, 2024), main body, step 2: the maximum
population density in the operational volume plus ground risk buffer, in bands
(:data:`BAND_LIMITS`): controlled ground area (band 0, never assigned from data),
``< 5``, ``< 50``, ``< 500``, ``< 5,000``, ``< 50,000``, ``>= 50,000`` people/km²
(bands 1 to 6; a density exactly at a limit belongs to the band above). The intrinsic
ground-risk class (iGRC) comes from the band and the drone's class (maximum
characteristic dimension and maximum speed) in :data:`IGRC_TABLE` (``None``: not
covered by SORA, i.e. certified category). SkyTwin's documented drone class is
:data:`DEFAULT_DRONE`: up to 1 m span and 25 m/s (a delivery multirotor, the table's
first column).

Sources, and what was checked (issue 13)
----------------------------------------
* **SORA bands and iGRC table**: JARUS SORA 2.5 main body (JAR-DEL-SRM-SORA-MB-2.5),
  step 2, Table 2. **Not re-verified in this revision**: the document could not be
  retrieved with the project's reference search (no copy in the stored corpus), so
  :data:`BAND_LIMITS` and :data:`IGRC_TABLE` are as first written and should be
  checked against the published table before any regulatory use. The tests check the
  code against a hand-computed table of these values, not against JARUS.
* **PLATEAU ``bldg:usage``** (:data:`_PLATEAU_USE`): checked against the code list
  names reproduced in public PLATEAU tools (401 業務施設 office, 402 商業施設 retail,
  403 宿泊施設 hotel, 404 商業系複合施設, 411 住宅, 412 共同住宅, 413/414 店舗等併用
  (共同)住宅, 415 作業所併用住宅, 421 官公庁施設, 422 文教厚生施設, 431 運輸倉庫施設,
  441 工場, 454 その他, 461 不明; 451 農林漁業用施設, 452 供給処理施設 and 453
  防衛施設 by name). 422 is "education, culture *and welfare*": hospitals coded 422
  get the education occupancy (nobody at night), an under-estimate at night.
* **ALKIS ``Gebaeudefunktion``** (:func:`_alkis_use`): the 3000-3099 groups
  (3020-3024 education and research, 3050-3054 health) and the 25xx supply codes
  were checked against the AdV code list as reproduced in public ALKIS processing
  code; the 1000-1999 residential range and 2460-2469 garages (``31001_2463``
  occurs 32 times in the bundled NRW model) were not checked code by code.
* **Occupancy** (:data:`OCCUPANCY`): the figures cite BCO (2019) and Eurostat EU-SILC
  as written above, but were **not re-verified** against those documents in this
  revision; they are order-of-magnitude planning defaults, to be replaced by a
  population file (``.csv``/``.asc``) where one exists.

Normalised risk and route cost
------------------------------
``r = min(density / DENSITY_REF, 1)`` with ``DENSITY_REF = 50,000`` people/km² (the
lower limit of SORA's top band): a linear scale, so that the planner's extra cost
``w x r x length`` is proportional to the people overflown. The planner
(:mod:`planner.route`) uses ``1 + w x r`` as the multiplier of the length of a move.

Exposure
    ``people_overflown`` = integral of density along the horizontal track,
    [people/km² x km]: the people in a 1 km-wide strip centred on the track (multiply
    by a swath width in km for a narrower strip). Computed from the exact length of
    the track in each cell.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from numba import njit

from skytwin.airspace._jit import JIT
from skytwin.airspace.errors import MalformedInputError

__all__ = [
    "BAND_LIMITS",
    "BAND_NAMES",
    "DEFAULT_DRONE",
    "DENSITY_REF",
    "IGRC_TABLE",
    "OCCUPANCY",
    "UNKNOWN_STOREYS",
    "DroneClass",
    "RiskLayer",
    "estimate_population",
    "igrc",
    "period_at",
    "population_band",
    "read_population",
    "use_class",
]

BAND_LIMITS = (5.0, 50.0, 500.0, 5_000.0, 50_000.0)
"""Upper limits (exclusive) of SORA population bands 1-5 [people/km²]; band 6 above."""
BAND_NAMES = ("controlled", "<5", "<50", "<500", "<5000", "<50000", ">=50000")
DENSITY_REF = 50_000.0
"""Density at which the normalised risk reaches 1 [people/km²]."""
STOREY_M = 3.0
UNKNOWN_STOREYS = 4
"""Storeys assumed for the population of a building of unknown height (population
only; the bundled Helsinki centre's buildings with a storey count have a median of 5)."""

OCCUPANCY = {
    "residential": (1.2, 2.4),
    "office": (4.0, 0.1),
    "retail": (3.0, 0.0),
    "education": (5.0, 0.0),
    "health": (4.0, 3.0),
    "hotel": (1.0, 3.0),
    "public": (2.0, 0.2),
    "industrial": (1.0, 0.3),
    "ancillary": (0.0, 0.0),
    "unknown": (2.0, 1.5),
}
"""People per 100 m² of floor area, (day, night), by use (see module docstring)."""


@dataclass(frozen=True)
class DroneClass:
    """A SORA iGRC column: maximum characteristic dimension [m] and speed [m/s]."""

    max_dimension_m: float
    max_speed_mps: float

    @property
    def column(self) -> int:
        """Index of the iGRC table column (the first class that holds the drone)."""
        for n, (d, v) in enumerate(_IGRC_COLUMNS):
            if self.max_dimension_m <= d and self.max_speed_mps <= v:
                return n
        raise ValueError(f"a drone of {self.max_dimension_m} m / {self.max_speed_mps} m/s "
                         "is beyond SORA's iGRC table (certified category)")


_IGRC_COLUMNS = ((1.0, 25.0), (3.0, 35.0), (8.0, 75.0), (20.0, 120.0), (40.0, 200.0))
IGRC_TABLE = (
    (1, 1, 2, 3, 3),            # 0 controlled ground area
    (2, 3, 4, 5, 6),            # 1 < 5 people/km²
    (3, 4, 5, 6, 7),            # 2 < 50
    (4, 5, 6, 7, 8),            # 3 < 500
    (5, 6, 7, 8, 9),            # 4 < 5,000
    (6, 7, 8, 9, 10),           # 5 < 50,000
    (7, 8, None, None, None),   # 6 >= 50,000
)
"""SORA 2.5 iGRC by population band (rows) and drone class (columns: 1 m / 25 m/s,
3 m / 35 m/s, 8 m / 75 m/s, 20 m / 120 m/s, 40 m / 200 m/s)."""
DEFAULT_DRONE = DroneClass(1.0, 25.0)


def population_band(density_ppl_km2):
    """SORA population band (1-6) of a density [people/km²] (array or scalar).

    >>> population_band([0, 4.99, 5, 49.9, 500, 4999, 50000]).tolist()
    [1, 1, 2, 2, 4, 4, 6]
    """
    d = np.asarray(density_ppl_km2, dtype=np.float64)
    return (1 + np.searchsorted(np.array(BAND_LIMITS), d, side="right")).astype(np.int8)


def igrc(band: int, drone: DroneClass = DEFAULT_DRONE) -> int | None:
    """Intrinsic ground-risk class of a band for a drone class (None: not in SORA).

    >>> igrc(4), igrc(6), igrc(6, DroneClass(8.0, 75.0))
    (5, 7, None)
    """
    return IGRC_TABLE[int(band)][drone.column]


def period_at(t_unix_s: float, lon_deg: float) -> str:
    """``"day"`` (07:00-19:00 local solar time) or ``"night"``.

    >>> period_at(12 * 3600, 0.0), period_at(12 * 3600, 120.0)
    ('day', 'night')
    """
    h = ((t_unix_s / 3600.0) + lon_deg / 15.0) % 24.0
    return "day" if 7.0 <= h < 19.0 else "night"


# ------------------------------------------------------------------------------ uses
_OSM_USE = {
    "residential": ("apartments", "residential", "house", "detached", "semidetached_house",
                    "terrace", "dormitory", "bungalow", "flats", "cabin", "farm"),
    "office": ("office", "commercial"),
    "retail": ("retail", "supermarket", "kiosk", "mall", "shop", "marketplace",
               "restaurant", "fast_food", "pub", "bar", "cafe", "bank"),
    "education": ("school", "university", "college", "kindergarten"),
    "health": ("hospital", "clinic"),
    "hotel": ("hotel",),
    "public": ("public", "civic", "government", "church", "cathedral", "chapel",
               "mosque", "temple", "museum", "train_station", "transportation",
               "theatre", "library", "townhall", "courthouse", "place_of_worship",
               "fire_station", "police", "sports_hall", "stadium", "grandstand"),
    "industrial": ("industrial", "warehouse", "service", "utility", "factory",
                   "manufacture", "plant", "substation"),
    "ancillary": ("garage", "garages", "shed", "roof", "carport", "hut", "kiosk_roof",
                  "entrance", "underpass_entrance", "bunker", "ruins", "toilets",
                  "shelter", "pavilion", "bandstand", "atrium", "ship", "container"),
}
_OSM_LOOKUP = {v: k for k, vs in _OSM_USE.items() for v in vs}
_PLATEAU_USE = {
    "401": "office", "402": "retail", "403": "hotel", "404": "retail",
    "411": "residential", "412": "residential", "413": "residential",
    "414": "residential", "415": "residential", "421": "public", "422": "education",
    "431": "industrial", "441": "industrial", "451": "industrial",
    "452": "industrial", "453": "public", "454": "unknown", "461": "unknown",
}


def _alkis_use(code: str) -> str | None:
    prefix, _, c = code.rpartition("_")
    if prefix and prefix != "31001":
        return "ancillary" if prefix.startswith("51") else None  # other structures
    if not (c.isdigit() and len(c) == 4):
        return None
    n = int(c)
    if 1000 <= n < 2000:
        return "residential"
    if 2460 <= n < 2470:
        return "ancillary"                     # garages
    if 2000 <= n < 2500:
        return "office"
    if 2500 <= n < 3000:
        return "industrial"
    if 3020 <= n < 3030:
        return "education"
    if 3050 <= n < 3060:
        return "health"
    if 3000 <= n < 4000:
        return "public"
    return None


def use_class(tags) -> str:
    """Occupancy class of a building from its tags (``"unknown"`` when none says).

    >>> use_class({"building": "apartments"}), use_class({"bldg:usage": "401"})
    ('residential', 'office')
    >>> use_class({"bldg:function": "31001_2463"}), use_class({"building": "yes"})
    ('ancillary', 'unknown')
    """
    if not tags:
        return "unknown"
    for key in ("amenity", "building", "healthcare", "shop"):
        v = tags.get(key)
        if v is not None and str(v).lower() in _OSM_LOOKUP:
            return _OSM_LOOKUP[str(v).lower()]
    if tags.get("shop"):
        return "retail"
    for key in ("bldg:usage", "usage"):
        v = tags.get(key)
        if v is not None:
            u = _PLATEAU_USE.get(str(v).split(";")[0].strip())
            if u:
                return u
    for key in ("bldg:function", "function"):
        v = tags.get(key)
        if v is not None:
            u = _alkis_use(str(v).split(";")[0].strip())
            if u:
                return u
    return "unknown"


def _storeys(b) -> tuple[float, str]:
    from skytwin.airspace.io.attributes import LEVEL_NAMES, normalise
    tags = b.tags or {}
    for k, v in tags.items():
        if normalise(k) in LEVEL_NAMES:
            try:
                n = float(str(v).replace(",", "."))
            except ValueError:
                continue
            if math.isfinite(n) and 0 < n < 300:
                return max(1.0, round(n)), "storeys"
    if b.height_source == "unknown":
        return float(UNKNOWN_STOREYS), "assumed (height unknown)"
    return max(1.0, round((b.top_m - b.ground_m) / STOREY_M)), "height"


# ------------------------------------------------------------------------------ layer
@njit(**JIT)
def _pool_max(r, k, i0, j0, f, ni, nj, nxf, nyf):
    """Max of risk cells ``r`` (cells of ``k`` fine columns) under each search column
    ``(ci, cj)`` covering fine columns ``[i0 + ci*f, i0 + (ci+1)*f)`` (and the same
    in y), clipped to the ``nxf x nyf`` fine columns. Returns ``(ni, nj) float64``."""
    out = np.zeros((ni, nj), dtype=np.float64)
    for ci in range(ni):
        a = i0 + ci * f
        b = min(a + f, nxf) - 1
        if b < a:
            continue
        ra, rb = a // k, b // k
        for cj in range(nj):
            c = j0 + cj * f
            d = min(c + f, nyf) - 1
            if d < c:
                continue
            m = 0.0
            for ii in range(ra, rb + 1):
                for jj in range(c // k, d // k + 1):
                    if r[ii, jj] > m:
                        m = r[ii, jj]
            out[ci, cj] = m
    return out


@dataclass
class RiskLayer:
    """People per km² on a raster aligned with a twin's columns (module docstring).

    Attributes
    ----------
    x0_m, y0_m : float
        Local origin (the twin grid's).
    cell_m : float
        Cell side [m] (``k`` twin columns).
    k : int
        Twin columns per cell side.
    fine_nx, fine_ny : int
        The twin's column counts.
    density_day, density_night : (nx, ny) float32 [people/km²]
    source : str
        ``"estimated from the city model"`` or the population file.
    notes : dict
        Counts and assumptions (buildings used, parts skipped, unknown heights...).
    """

    x0_m: float
    y0_m: float
    cell_m: float
    k: int
    fine_nx: int
    fine_ny: int
    density_day: np.ndarray
    density_night: np.ndarray
    source: str
    notes: dict = field(default_factory=dict)
    _norm: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.density_day.shape

    def density(self, period: str = "day") -> np.ndarray:
        if period not in ("day", "night"):
            raise ValueError(f"period must be 'day' or 'night', got {period!r}")
        return self.density_day if period == "day" else self.density_night

    def normalised(self, period: str = "day") -> np.ndarray:
        """``min(density / DENSITY_REF, 1)``, float64 (cached)."""
        if period not in self._norm:
            self._norm[period] = np.minimum(
                self.density(period).astype(np.float64) / DENSITY_REF, 1.0)
        return self._norm[period]

    def bands(self, period: str = "day") -> np.ndarray:
        """SORA band (1-6) per cell, int8 (cached)."""
        key = "bands-" + period
        if key not in self._norm:
            self._norm[key] = population_band(self.density(period))
        return self._norm[key]

    def cell_of(self, x_m, y_m):
        """Cell indices (clipped to the layer) of local points."""
        nx, ny = self.shape
        i = np.clip(np.floor((np.asarray(x_m) - self.x0_m) / self.cell_m), 0, nx - 1)
        j = np.clip(np.floor((np.asarray(y_m) - self.y0_m) / self.cell_m), 0, ny - 1)
        return i.astype(np.int64), j.astype(np.int64)

    def pooled(self, values: np.ndarray, i0: int, j0: int, f: int, ni: int, nj: int):
        """Max of a per-cell field under each column of a search window at level
        ``f`` whose first fine column is ``(i0, j0)`` (conservative: the riskiest
        part of a coarse search cell)."""
        return _pool_max(np.ascontiguousarray(values, dtype=np.float64), self.k, int(i0),
                         int(j0), int(f), int(ni), int(nj), self.fine_nx, self.fine_ny)

    def samples(self, xy: np.ndarray, per_cell: int = 64):
        """Sample points every cell/``per_cell`` along a horizontal polyline ``(n, 2)``.

        Returns ``(mid_x, mid_y, ds_m)``: midpoints of the pieces and their lengths.
        """
        xy = np.asarray(xy, dtype=np.float64)
        mids_x, mids_y, ds = [], [], []
        step = self.cell_m / per_cell
        for a, b in zip(xy[:-1], xy[1:], strict=True):
            L = float(math.hypot(*(b - a)))
            if L == 0.0:
                continue
            n = max(1, math.ceil(L / step))
            t = (np.arange(n) + 0.5) / n
            mids_x.append(a[0] + t * (b[0] - a[0]))
            mids_y.append(a[1] + t * (b[1] - a[1]))
            ds.append(np.full(n, L / n))
        if not ds:
            return xy[:1, 0], xy[:1, 1], np.zeros(1)
        return np.concatenate(mids_x), np.concatenate(mids_y), np.concatenate(ds)

    def track_cells(self, xy: np.ndarray):
        """The cells a horizontal polyline ``(n, 2)`` crosses, exactly.

        Each segment is cut where it crosses a cell boundary (the parameters of every
        x and y grid line between its ends); each piece lies in one cell, found at its
        midpoint. Returns ``(i, j, length_m)`` per piece (a lone point: its cell, 0 m).
        A segment that only touches a cell at one point (a corner) does not cross it.
        """
        xy = np.asarray(xy, dtype=np.float64)
        ii, jj, ll = [], [], []
        c = self.cell_m
        for a, b in zip(xy[:-1], xy[1:], strict=True):
            d = b - a
            L = float(math.hypot(d[0], d[1]))
            if L == 0.0:
                continue
            ts = [np.array([0.0, 1.0])]
            for ax, o in ((0, self.x0_m), (1, self.y0_m)):
                if d[ax] != 0.0:
                    lo, hi = sorted((a[ax], b[ax]))
                    k0, k1 = math.ceil((lo - o) / c), math.floor((hi - o) / c)
                    if k1 >= k0:
                        ts.append((o + np.arange(k0, k1 + 1) * c - a[ax]) / d[ax])
            t = np.unique(np.clip(np.concatenate(ts), 0.0, 1.0))
            mid = 0.5 * (t[:-1] + t[1:])
            keep = t[1:] > t[:-1]
            i, j = self.cell_of(a[0] + mid * d[0], a[1] + mid * d[1])
            ii.append(i[keep])
            jj.append(j[keep])
            ll.append(np.diff(t)[keep] * L)
        if not ll:
            i, j = self.cell_of(xy[:1, 0], xy[:1, 1])
            return i, j, np.zeros(1)
        return np.concatenate(ii), np.concatenate(jj), np.concatenate(ll)

    def exposure(self, xy: np.ndarray, period: str = "day") -> dict:
        """People overflown and the worst band along a horizontal polyline (exact
        cell crossings, :meth:`track_cells`)."""
        i, j, ds = self.track_cells(xy)
        d = self.density(period)[i, j].astype(np.float64)
        bands = population_band(d)
        length_by_band = {BAND_NAMES[b]: round(float(ds[bands == b].sum()), 1)
                          for b in np.unique(bands)}
        worst = int(bands.max())
        return {
            "people_overflown": round(float((d * ds).sum() / 1000.0), 3),
            "unit": "people/km2 x km",
            "worst_band": worst,
            "worst_band_name": BAND_NAMES[worst],
            "max_density_ppl_km2": round(float(d.max()), 1),
            "igrc": igrc(worst),
            "length_by_band_m": length_by_band,
            "period": period,
        }

    def summary(self) -> dict:
        b = self.bands("day")
        return {"source": self.source, "cell_m": self.cell_m, "shape": list(self.shape),
                "people_day": round(float(self.density_day.sum()) * self.cell_m ** 2 / 1e6),
                "people_night": round(float(self.density_night.sum()) * self.cell_m ** 2
                                      / 1e6),
                "cells_by_band_day": {BAND_NAMES[n]: int((b == n).sum())
                                      for n in range(1, 7)},
                **self.notes}


def _empty_layer(grid, cell_m, source):
    k = max(1, round(cell_m / grid.dx_m))
    nx, ny = -(-grid.nx // k), -(-grid.ny // k)
    z = np.zeros((nx, ny), np.float64)
    return RiskLayer(grid.x0_m, grid.y0_m, k * grid.dx_m, k, grid.nx, grid.ny, z, z.copy(),
                     source)


def _finish(layer: RiskLayer) -> RiskLayer:
    km2 = (layer.cell_m / 1000.0) ** 2
    layer.density_day = (layer.density_day / km2).astype(np.float32)
    layer.density_night = (layer.density_night / km2).astype(np.float32)
    return layer


def estimate_population(buildings, grid, cell_m: float = 50.0) -> RiskLayer:
    """Estimate people per km² from the buildings (see module docstring).

    Parameters
    ----------
    buildings : sequence of Building
        A twin's buildings (tags used for the use and storeys when present).
    grid : GridSpec
        The twin's grid; the layer's cells are ``round(cell_m / dx)`` columns a side.
    """
    layer = _empty_layer(grid, cell_m, "estimated from the city model")
    buildings = list(buildings)
    ids = {b.id for b in buildings}
    whole = [b for b in buildings if not b.kind.endswith("Part")]
    orphans = any(b.kind.endswith("Part") and b.parent_id not in ids for b in buildings)
    tree = shapely.STRtree([b.footprint for b in whole]) if whole and orphans else None
    skipped_parts = unknown = 0
    by_use: dict[str, int] = {}
    keep, per_storeys, occ = [], [], []
    for b in buildings:
        if b.kind.endswith("Part"):
            if b.parent_id in ids:
                skipped_parts += 1
                continue
            if tree is not None:
                hit = tree.query(b.footprint, predicate="intersects")
                cover = sum(shapely.area(shapely.intersection(whole[n].footprint,
                                                              b.footprint))
                            for n in hit)
                if cover > 0.5 * b.footprint.area:
                    skipped_parts += 1
                    continue
        storeys, how = _storeys(b)
        unknown += how.startswith("assumed")
        use = use_class(b.tags)
        by_use[use] = by_use.get(use, 0) + 1
        keep.append(b.footprint)
        per_storeys.append(storeys)
        occ.append(OCCUPANCY[use])
    # vectorised over the buildings (a 100,000-building city in seconds, not minutes):
    # people = floor area x occupancy; a building within one cell adds to it, a larger
    # one is spread over the cells its footprint covers in proportion to the area in each
    used = 0
    if keep:
        fps = np.array(keep, dtype=object)
        floor = shapely.area(fps) * np.asarray(per_storeys, dtype=np.float64)
        occ_a = np.asarray(occ, dtype=np.float64).reshape(-1, 2)
        day, night = floor * occ_a[:, 0] / 100.0, floor * occ_a[:, 1] / 100.0
        nz = (day != 0.0) | (night != 0.0)
        fps, day, night = fps[nz], day[nz], night[nz]
        used = int(nz.sum())
        bnds = shapely.bounds(fps)
        i0, j0 = layer.cell_of(bnds[:, 0], bnds[:, 1])
        i1, j1 = layer.cell_of(bnds[:, 2], bnds[:, 3])
        one = (i0 == i1) & (j0 == j1)
        np.add.at(layer.density_day, (i0[one], j0[one]), day[one])
        np.add.at(layer.density_night, (i0[one], j0[one]), night[one])
        multi = np.flatnonzero(~one)
        if len(multi):
            ni, nj = i1[multi] - i0[multi] + 1, j1[multi] - j0[multi] + 1
            counts = ni * nj
            local = np.repeat(np.arange(len(multi)), counts)
            k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            nj_r = nj[local]
            ii = i0[multi][local] + k // nj_r
            jj = j0[multi][local] + k % nj_r
            c = layer.cell_m
            boxes = shapely.box(layer.x0_m + ii * c, layer.y0_m + jj * c,
                                layer.x0_m + (ii + 1) * c, layer.y0_m + (jj + 1) * c)
            share = shapely.area(shapely.intersection(boxes, fps[multi][local]))
            tot = np.bincount(local, weights=share, minlength=len(multi))
            flat = tot[local] <= 0          # degenerate: spread evenly
            share = np.where(flat, 1.0, share)
            tot = np.where(tot > 0, tot, counts.astype(np.float64))
            w = share / tot[local]
            np.add.at(layer.density_day, (ii, jj), day[multi][local] * w)
            np.add.at(layer.density_night, (ii, jj), night[multi][local] * w)
    layer.notes = {"buildings_counted": used, "parts_skipped": skipped_parts,
                   "unknown_height_assumed_storeys": unknown,
                   "unknown_storeys": UNKNOWN_STOREYS, "by_use": by_use}
    return _finish(layer)


def _read_points(path: Path):
    with path.open(newline="", encoding="utf-8") as fh:
        rd = csv.DictReader(fh)
        cols = {c.strip().lower(): c for c in (rd.fieldnames or [])}
        need = [c for c in ("lon", "lat") if c not in cols]
        pcol = next((cols[c] for c in ("people", "population", "count") if c in cols), None)
        if need or (pcol is None and "people_day" not in cols):
            raise MalformedInputError(str(path), "header", "a population CSV needs lon, "
                                      "lat and people (or population, count) columns")
        lon, lat, day, night = [], [], [], []
        for n, row in enumerate(rd, start=2):
            try:
                lo, la = float(row[cols["lon"]]), float(row[cols["lat"]])
                p = float(row[pcol]) if pcol else 0.0
                pd = float(row[cols["people_day"]]) if "people_day" in cols else p
                pn = float(row[cols["people_night"]]) if "people_night" in cols else p
            except (TypeError, ValueError) as exc:
                raise MalformedInputError(str(path), f"line {n}", f"not a number: {exc}") \
                    from None
            if not all(math.isfinite(v) for v in (lo, la, pd, pn)) or min(pd, pn) < 0:
                raise MalformedInputError(str(path), f"line {n}",
                                          "values must be finite, people >= 0")
            lon.append(lo)
            lat.append(la)
            day.append(pd)
            night.append(pn)
    return (np.array(lon), np.array(lat), np.array(day), np.array(night))


def _read_ascii_grid(path: Path):
    head = {}
    with path.open(encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    n = 0
    while n < len(lines) and lines[n].strip() and lines[n].split()[0].lower() in (
            "ncols", "nrows", "xllcorner", "yllcorner", "xllcenter", "yllcenter",
            "cellsize", "nodata_value"):
        k, v = lines[n].split()[:2]
        head[k.lower()] = float(v)
        n += 1
    for k in ("ncols", "nrows", "cellsize"):
        if k not in head:
            raise MalformedInputError(str(path), "header", f"ESRI ASCII grid needs {k}")
    nc, nr, cs = int(head["ncols"]), int(head["nrows"]), head["cellsize"]
    x0 = head.get("xllcorner", head.get("xllcenter", 0.0) - cs / 2)
    y0 = head.get("yllcorner", head.get("yllcenter", 0.0) - cs / 2)
    try:
        vals = np.array(" ".join(lines[n:]).split(), dtype=np.float64)
    except ValueError as exc:
        raise MalformedInputError(str(path), "values", f"not a number: {exc}") from None
    if vals.size != nc * nr:
        raise MalformedInputError(str(path), "values",
                                  f"expected {nc * nr} values, got {vals.size}")
    v = vals.reshape(nr, nc)
    if "nodata_value" in head:
        v = np.where(v == head["nodata_value"], 0.0, v)
    v = np.where(np.isfinite(v) & (v > 0), v, 0.0)
    sub = 4
    rr, cc = np.nonzero(v)
    off = (np.arange(sub) + 0.5) / sub
    ox, oy = np.meshgrid(off, off, indexing="ij")
    lon = (x0 + (cc[:, None] + ox.ravel()[None, :]) * cs).ravel()
    lat = (y0 + (nr - rr[:, None] - oy.ravel()[None, :]) * cs).ravel()
    p = np.repeat(v[rr, cc] / (sub * sub), sub * sub)
    return lon, lat, p, p.copy()


def read_population(path, frame, grid, cell_m: float = 50.0) -> RiskLayer:
    """People per km² from a population file (CSV points or ESRI ASCII grid, see
    module docstring), counted into cells aligned with ``grid`` in ``frame``.

    Points outside the twin are left out (counted in ``notes["outside"]``).
    """
    p = Path(path)
    if p.suffix.lower() == ".asc":
        lon, lat, day, night = _read_ascii_grid(p)
    elif p.suffix.lower() == ".csv":
        lon, lat, day, night = _read_points(p)
    else:
        raise MalformedInputError(str(p), None, "population file must be .csv (points) "
                                  "or .asc (ESRI ASCII grid)")
    layer = _empty_layer(grid, cell_m, f"population file {p.name}")
    x, y = frame.to_local(lon, lat)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    nx, ny = layer.shape
    fi = np.floor((x - layer.x0_m) / layer.cell_m)
    fj = np.floor((y - layer.y0_m) / layer.cell_m)
    inside = (fi >= 0) & (fi < nx) & (fj >= 0) & (fj < ny)
    i, j = fi[inside].astype(np.int64), fj[inside].astype(np.int64)
    np.add.at(layer.density_day, (i, j), day[inside])
    np.add.at(layer.density_night, (i, j), night[inside])
    layer.notes = {"points": int(len(x)), "outside": int((~inside).sum()),
                   "people_in_file_day": round(float(day.sum()), 1)}
    return _finish(layer)
