"""No-fly volumes: the dynamic zone layer of the twin.

Design
------
Zones change at run time (a regulator adds an event zone, removes it an hour later)
while the buildings stay put, so they live in their own layer, never baked into the
obstacle field. A :class:`Zone` is a frozen WGS84 record (what a regulator writes, what
ED-269 carries); a :class:`ZoneLayer` owns one :class:`~airspace.frame.Frame` and
converts each zone to the local frame exactly once, when it is added
(:class:`LocalZone`).

Geometry
    A polygon (list of ``(lon_deg, lat_deg)``; its edges are straight lines *in the
    local frame*, which near the twin differs from a geodesic by far less than a
    centimetre for edges under a few km) or a circle (centre + ``radius_m``). Circles
    stay exact circles in the local frame: centre projected, radius kept in metres. The
    local frame is a transverse Mercator with ``k=1`` at the twin centre, so its scale
    error is about ``d**2 / (2 R**2)``: 1.2e-6 at 10 km from the centre, i.e. ~1 mm on a
    1 km radius.

Altitudes
    Each limit carries its own reference (:class:`Altitude`, ``"AGL"`` or ``"AMSL"``).
    AGL limits need the ground height; every query that depends on it takes it
    explicitly (a value, a per-column array or a ground-range function), never a hidden
    global. Limits are closed: a point at exactly the upper limit is inside.

Time
    ``window = (start_s, end_s)`` in Unix seconds, either end ``None`` (open); ``None``
    means always active. Windows are closed intervals and a flight spanning ``[t0, t1]``
    is affected when the two intervals overlap at all (:meth:`Zone.active_during`).

Exact checks and rasterization
    :func:`segment_intersects` decides exactly (for AMSL limits or a constant ground)
    whether a 3D segment comes within ``margin_m`` of a zone volume; with a varying
    ground it uses the min/max ground under the clipped piece, which can only enlarge
    the volume (conservative). :func:`zone_voxels` rasterizes one zone into the twin's
    voxel grid with a numba kernel (cell rectangle intersects the horizontal shape, not
    centre-in-cell; layers overlapping the band), tested against a per-cell shapely
    oracle in ``tests/naive/zones.py``. "Within ``margin_m``" means horizontal distance
    <= margin and vertical distance <= margin (a cylinder-shaped inflation, a superset
    of the Euclidean ball), the same inflation the rasterizer applies.

Index
    Queries go through a shapely ``STRtree`` over the local bounding boxes, rebuilt
    lazily on the first query after a change; exact tests then run on the few
    candidates.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from numba import njit
from shapely.geometry import LineString, Point, Polygon, box

from skytwin.airspace._jit import JIT
from skytwin.airspace.errors import AirspaceError, ZoneError
from skytwin.airspace.frame import Frame
from skytwin.airspace.geom2d import seg_seg_dist2
from skytwin.airspace.grid import GridSpec

__all__ = [
    "REFERENCES",
    "Altitude",
    "Authority",
    "Circle",
    "LocalZone",
    "Zone",
    "ZoneLayer",
    "ZoneNotFoundError",
    "ground_range_from_grid",
    "segment_intersects",
    "zone_voxels",
]

REFERENCES = ("AGL", "AMSL")
_EPS_M = 1e-9  # slack on metric comparisons so that rounding never loses a touch


class ZoneNotFoundError(AirspaceError, KeyError):
    """No zone with that id in the layer (a ``KeyError`` too)."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class Altitude:
    """A height limit with its reference.

    Parameters
    ----------
    value_m : float
        Height [m].
    reference : {"AGL", "AMSL"}
        Above ground level or above mean sea level.
    """

    value_m: float
    reference: str

    def __post_init__(self):
        if self.reference not in REFERENCES:
            raise ZoneError(
                f"reference must be one of {REFERENCES}, got {self.reference!r}"
            )
        try:
            v = float(self.value_m)
        except (TypeError, ValueError):
            raise ZoneError(f"value_m must be a number, got {self.value_m!r}") from None
        if not math.isfinite(v):
            raise ZoneError(f"value_m must be finite, got {self.value_m!r}")
        object.__setattr__(self, "value_m", v)

    def amsl_m(self, ground_m: float) -> float:
        """This limit as metres AMSL, given the ground height [m AMSL] under it."""
        return self.value_m + ground_m if self.reference == "AGL" else self.value_m


@dataclass(frozen=True, slots=True)
class Authority:
    """Who owns a zone: a name and a free-text contact (email, phone or URL)."""

    name: str
    contact: str = ""


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle: centre in WGS84 degrees, radius in metres (> 0)."""

    lon_deg: float
    lat_deg: float
    radius_m: float


def _fail(zone_id, msg):
    raise ZoneError(f"zone {zone_id}: {msg}")


def _check_lonlat(zid, where, lon, lat):
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        _fail(zid, f"{where}: coordinates must be numbers, got ({lon!r}, {lat!r})")
    if not (math.isfinite(lon) and math.isfinite(lat)):
        _fail(zid, f"{where}: coordinates must be finite, got ({lon}, {lat})")
    if not (-180.0 <= lon <= 180.0):
        _fail(zid, f"{where}: longitude {lon} out of range [-180, 180]")
    if not (-90.0 <= lat <= 90.0):
        _fail(zid, f"{where}: latitude {lat} out of range [-90, 90]")
    return lon, lat


@dataclass(frozen=True, slots=True, kw_only=True)
class Zone:
    """One no-fly volume in WGS84 (immutable, validated on construction).

    Exactly one of ``polygon`` and ``circle`` is given. ``polygon`` is stored without
    the closing vertex. ``authority`` may be given as a plain name string.

    Raises
    ------
    ZoneError
        Naming the zone and the field, e.g.
        ``zone Z-17: upper.value_m must exceed lower.value_m (got 60 <= 80)``.

    Examples
    --------
    >>> z = Zone(id="Z-1", circle=Circle(24.94, 60.17, 200.0),
    ...          lower=Altitude(0, "AGL"), upper=Altitude(120, "AGL"))
    >>> z.active_during(0, 10), z.kind
    (True, 'circle')
    >>> Zone(id="Z-17", circle=Circle(24.94, 60.17, 200.0),
    ...      lower=Altitude(80, "AGL"), upper=Altitude(60, "AGL"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skytwin.airspace.errors.ZoneError: zone Z-17: upper.value_m must exceed lower.value_m ...
    """

    id: str
    lower: Altitude
    upper: Altitude
    polygon: tuple[tuple[float, float], ...] | None = None
    circle: Circle | None = None
    window: tuple[float | None, float | None] | None = None
    reason: str = ""
    authority: Authority = field(default_factory=lambda: Authority(""))
    name: str | None = None

    def __post_init__(self):
        zid = self.id
        if not isinstance(zid, str) or not zid.strip():
            raise ZoneError(f"zone {zid!r}: id must be a non-empty string")
        for nm in ("lower", "upper"):
            if not isinstance(getattr(self, nm), Altitude):
                _fail(zid, f"{nm} must be an Altitude, got {getattr(self, nm)!r}")
        if self.lower.reference == self.upper.reference and not (
            self.upper.value_m > self.lower.value_m
        ):
            _fail(
                zid,
                f"upper.value_m must exceed lower.value_m "
                f"(got {self.upper.value_m:g} <= {self.lower.value_m:g})",
            )
        if (self.polygon is None) == (self.circle is None):
            _fail(zid, "geometry: give exactly one of polygon and circle")
        if self.circle is not None:
            c = self.circle
            if not isinstance(c, Circle):
                _fail(zid, f"circle must be a Circle, got {c!r}")
            lon, lat = _check_lonlat(zid, "circle.centre", c.lon_deg, c.lat_deg)
            try:
                r = float(c.radius_m)
            except (TypeError, ValueError):
                _fail(zid, f"circle.radius_m must be a number, got {c.radius_m!r}")
            if not (math.isfinite(r) and r > 0):
                _fail(
                    zid, f"circle.radius_m must be > 0 and finite, got {c.radius_m!r}"
                )
            object.__setattr__(self, "circle", Circle(lon, lat, r))
        else:
            object.__setattr__(self, "polygon", _validated_ring(zid, self.polygon))
        if self.window is not None:
            w = self.window
            if len(w) != 2:
                _fail(zid, f"window must be (start_s, end_s), got {w!r}")
            vals = []
            for nm, v in zip(("start_s", "end_s"), w, strict=True):
                if v is not None:
                    try:
                        v = float(v)
                    except (TypeError, ValueError):
                        _fail(zid, f"window.{nm} must be a number or None, got {v!r}")
                    if not math.isfinite(v):
                        _fail(zid, f"window.{nm} must be finite, got {v}")
                vals.append(v)
            if vals[0] is not None and vals[1] is not None and not vals[1] > vals[0]:
                _fail(
                    zid,
                    f"window.end_s must exceed window.start_s "
                    f"(got {vals[1]:g} <= {vals[0]:g})",
                )
            object.__setattr__(
                self, "window", None if vals == [None, None] else tuple(vals)
            )
        if isinstance(self.authority, str):
            object.__setattr__(self, "authority", Authority(self.authority))
        if not isinstance(self.authority, Authority):
            _fail(
                zid, f"authority must be an Authority or a name, got {self.authority!r}"
            )
        if not isinstance(self.reason, str):
            _fail(zid, f"reason must be a string, got {self.reason!r}")

    @property
    def kind(self) -> str:
        """``"polygon"`` or ``"circle"``."""
        return "circle" if self.circle is not None else "polygon"

    def active_during(
        self, t0_s: float | None = None, t1_s: float | None = None
    ) -> bool:
        """Whether the zone's window overlaps ``[t0_s, t1_s]`` (closed; ``None`` =
        open).

        Examples
        --------
        >>> z = Zone(id="E", circle=Circle(0, 0, 1), lower=Altitude(0, "AGL"),
        ...          upper=Altitude(1, "AGL"), window=(36000, 43200))  # 10:00-12:00
        >>> z.active_during(39600, 39600), z.active_during(46800, 46800)  # 11:00, 13:00
        (True, False)
        >>> z.active_during(41400, 45000)  # 11:30-12:30 overlaps
        True
        """
        if self.window is None:
            return True
        start, end = self.window
        if start is not None and t1_s is not None and t1_s < start:
            return False
        return not (end is not None and t0_s is not None and t0_s > end)


def _validated_ring(zid, pts) -> tuple[tuple[float, float], ...]:
    try:
        raw = [tuple(p) for p in pts]
    except TypeError:
        _fail(zid, f"polygon must be a list of (lon, lat) pairs, got {pts!r}")
    ring = []
    for n, p in enumerate(raw):
        if len(p) != 2:
            _fail(zid, f"polygon[{n}] must be a (lon, lat) pair, got {p!r}")
        ring.append(_check_lonlat(zid, f"polygon[{n}]", *p))
    if len(ring) >= 2 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(set(ring)) < 3:
        _fail(zid, f"polygon needs at least 3 distinct vertices, got {len(set(ring))}")
    poly = Polygon(ring)
    if not poly.is_valid:
        _fail(zid, f"polygon is not simple: {shapely.is_valid_reason(poly)}")
    if not poly.area > 0:
        _fail(zid, "polygon has zero area")
    return tuple(ring)


# ------------------------------------------------------------------------ local zones
class LocalZone:
    """A zone converted once into a layer's local frame.

    Attributes
    ----------
    zone : Zone
        The WGS84 record.
    shape : shapely geometry
        Local horizontal shape (the polygon, or the circle's centre point; use
        :meth:`distance_2d`, which is exact for circles too).
    centre_m : tuple of float or None
        Circle centre ``(x_m, y_m)``; ``radius_m`` its radius.
    bounds_m : tuple
        ``(min_x, min_y, max_x, max_y)`` [m], local.
    """

    __slots__ = ("bounds_m", "centre_m", "poly_xy", "radius_m", "shape", "zone")

    def __init__(self, zone: Zone, frame: Frame):
        self.zone = zone
        if zone.circle is not None:
            x, y = frame.to_local(zone.circle.lon_deg, zone.circle.lat_deg)
            self.centre_m = (float(x), float(y))
            self.radius_m = zone.circle.radius_m
            self.shape = Point(self.centre_m)
            r = self.radius_m
            self.bounds_m = (
                self.centre_m[0] - r,
                self.centre_m[1] - r,
                self.centre_m[0] + r,
                self.centre_m[1] + r,
            )
            self.poly_xy = None
        else:
            lon, lat = np.array(zone.polygon, dtype=np.float64).T
            x, y = frame.to_local(lon, lat)
            self.poly_xy = np.ascontiguousarray(
                np.column_stack([x, y]), dtype=np.float64
            )
            self.shape = Polygon(self.poly_xy)
            self.centre_m = None
            self.radius_m = None
            self.bounds_m = tuple(float(v) for v in self.shape.bounds)

    @property
    def id(self) -> str:
        return self.zone.id

    def distance_2d(self, x_m: float, y_m: float) -> float:
        """Horizontal distance [m] from a local point to the shape (0 inside/on it)."""
        if self.centre_m is not None:
            d = (
                math.hypot(x_m - self.centre_m[0], y_m - self.centre_m[1])
                - self.radius_m
            )
            return max(d, 0.0)
        return float(shapely.distance(self.shape, Point(x_m, y_m)))

    local_distance_2d = distance_2d

    def contains_2d(self, x_m: float, y_m: float) -> bool:
        """Whether a local point is inside the horizontal shape (boundary included)."""
        return self.distance_2d(x_m, y_m) <= 0.0

    def distance_to_geom(self, geom) -> float:
        """Horizontal distance [m] from a local shapely geometry to the shape."""
        if self.centre_m is not None:
            return max(float(shapely.distance(self.shape, geom)) - self.radius_m, 0.0)
        return float(shapely.distance(self.shape, geom))

    def band_amsl(self, ground_lo_m: float, ground_hi_m: float | None = None):
        """The altitude band ``(lo_m, hi_m)`` [m AMSL] for ground in ``[lo, hi]``.

        AGL lower limits use the lowest ground and AGL upper limits the highest, so the
        band covers every point of the volume above that ground range.
        """
        if ground_hi_m is None:
            ground_hi_m = ground_lo_m
        return self.zone.lower.amsl_m(ground_lo_m), self.zone.upper.amsl_m(ground_hi_m)

    def __repr__(self):
        return f"LocalZone({self.zone.id!r}, {self.zone.kind})"


# ------------------------------------------------------------------------------ layer
class ZoneLayer:
    """A mutable set of zones in one local frame, with a lazily rebuilt STRtree.

    Thread-safe: mutations and index rebuilds hold a lock; queries see a consistent
    snapshot.

    Examples
    --------
    >>> layer = ZoneLayer(Frame(24.94, 60.17))
    >>> layer.add(Zone(id="H", circle=Circle(24.94, 60.17, 100),
    ...                lower=Altitude(0, "AGL"), upper=Altitude(120, "AGL")))
    >>> [z.id for z in layer.at_point(24.94, 60.17, 50, "AGL")]
    ['H']
    >>> layer.remove("nope")
    Traceback (most recent call last):
    ...
    skytwin.airspace.zones.ZoneNotFoundError: no zone with id 'nope'
    """

    def __init__(self, frame: Frame, zones: Iterable[Zone] = ()):
        self.frame = frame
        self._local: dict[str, LocalZone] = {}
        self._lock = threading.RLock()
        self._tree = None
        self._tree_ids: list[str] = []
        for z in zones:
            self.add(z)

    # -- mutation ---------------------------------------------------------------------
    def add(self, zone: Zone) -> None:
        """Add a zone; raises :class:`ZoneError` when its id is already present."""
        if not isinstance(zone, Zone):
            raise ZoneError(f"expected a Zone, got {type(zone).__name__}")
        lz = LocalZone(zone, self.frame)
        with self._lock:
            if zone.id in self._local:
                raise ZoneError(
                    f"zone {zone.id}: id already in the layer "
                    "(use replace() to change it)"
                )
            self._local[zone.id] = lz
            self._tree = None

    def replace(self, zone: Zone) -> None:
        """Insert or overwrite the zone with ``zone.id``."""
        if not isinstance(zone, Zone):
            raise ZoneError(f"expected a Zone, got {type(zone).__name__}")
        lz = LocalZone(zone, self.frame)
        with self._lock:
            self._local[zone.id] = lz
            self._tree = None

    update = replace

    def remove(self, zone_id: str) -> Zone:
        """Remove and return a zone; :class:`ZoneNotFoundError` when unknown."""
        with self._lock:
            try:
                lz = self._local.pop(zone_id)
            except KeyError:
                raise ZoneNotFoundError(f"no zone with id {zone_id!r}") from None
            self._tree = None
            return lz.zone

    def get(self, zone_id: str) -> Zone:
        """The zone with that id; :class:`ZoneNotFoundError` when unknown."""
        return self.local(zone_id).zone

    def local(self, zone_id: str) -> LocalZone:
        """The local-frame form of a zone (for the planner's exact checks)."""
        try:
            return self._local[zone_id]
        except KeyError:
            raise ZoneNotFoundError(f"no zone with id {zone_id!r}") from None

    def list(self) -> list[Zone]:
        """All zones, sorted by id."""
        with self._lock:
            return [self._local[k].zone for k in sorted(self._local)]

    def __len__(self):
        return len(self._local)

    def __contains__(self, zone_id):
        return zone_id in self._local

    def __iter__(self):
        return iter(self.list())

    # -- index ------------------------------------------------------------------------
    def _index(self):
        with self._lock:
            if self._tree is None:
                ids = sorted(self._local)
                boxes = [box(*self._local[i].bounds_m) for i in ids]
                self._tree = shapely.STRtree(boxes)
                self._tree_ids = ids
                self._tree_snapshot = {i: self._local[i] for i in ids}
            return self._tree, self._tree_ids, self._tree_snapshot

    def _candidates(self, geom) -> list[LocalZone]:
        tree, ids, snap = self._index()
        if not ids:
            return []
        hits = sorted(int(n) for n in tree.query(geom))
        return [snap[ids[n]] for n in hits]

    # -- queries ----------------------------------------------------------------------
    def at_point(
        self,
        lon_deg: float,
        lat_deg: float,
        alt_m: float,
        reference: str,
        t_s: float | None = None,
        ground_m: float = 0.0,
    ) -> list[Zone]:
        """Zones that contain a WGS84 point (boundary included), sorted by id.

        Parameters
        ----------
        alt_m, reference : float, {"AGL", "AMSL"}
            Height of the point and its reference.
        t_s : float, optional
            Unix time; ``None`` ignores the windows.
        ground_m : float
            Ground height [m AMSL] under the point, for AGL heights and limits.
        """
        if reference not in REFERENCES:
            raise ZoneError(f"reference must be one of {REFERENCES}, got {reference!r}")
        x, y = self.frame.to_local(lon_deg, lat_deg)
        x, y = float(x), float(y)
        z = alt_m + ground_m if reference == "AGL" else float(alt_m)
        out = []
        for lz in self._candidates(Point(x, y)):
            if t_s is not None and not lz.zone.active_during(t_s, t_s):
                continue
            lo, hi = lz.band_amsl(ground_m)
            if lo <= z <= hi and lz.contains_2d(x, y):
                out.append(lz.zone)
        return out

    def local_box(self, min_lon, min_lat, max_lon, max_lat):
        """A WGS84 box as a local polygon (edges densified: meridians and parallels
        are curves in the local frame)."""
        n = 16
        t = np.linspace(0.0, 1.0, n + 1)[:-1]
        lon = np.concatenate(
            [
                min_lon + (max_lon - min_lon) * t,
                np.full(n, max_lon),
                max_lon - (max_lon - min_lon) * t,
                np.full(n, min_lon),
            ]
        )
        lat = np.concatenate(
            [
                np.full(n, min_lat),
                min_lat + (max_lat - min_lat) * t,
                np.full(n, max_lat),
                max_lat - (max_lat - min_lat) * t,
            ]
        )
        x, y = self.frame.to_local(lon, lat)
        return Polygon(np.column_stack([x, y]))

    def in_box(
        self,
        min_lon: float,
        min_lat: float,
        max_lon: float,
        max_lat: float,
        z_lo_m: float | None = None,
        z_hi_m: float | None = None,
        t0_s: float | None = None,
        t1_s: float | None = None,
        ground_m: float = 0.0,
    ) -> list[Zone]:
        """Zones overlapping a WGS84 box, an AMSL band and a time span, sorted by id.

        Overlap semantics everywhere: a zone is returned when some part of it lies in
        the box, its band ``[lower, upper]`` meets ``[z_lo_m, z_hi_m]`` [m AMSL] and its
        window meets ``[t0_s, t1_s]``. ``None`` leaves that side open. AGL limits are
        converted with ``ground_m``.
        """
        if not (min_lon <= max_lon and min_lat <= max_lat):
            raise ZoneError(
                f"box: min must not exceed max, got lon [{min_lon}, {max_lon}]"
                f", lat [{min_lat}, {max_lat}]"
            )
        geom = self.local_box(min_lon, min_lat, max_lon, max_lat)
        out = []
        for lz in self._candidates(geom):
            if not lz.zone.active_during(t0_s, t1_s):
                continue
            lo, hi = lz.band_amsl(ground_m)
            if z_hi_m is not None and lo > z_hi_m:
                continue
            if z_lo_m is not None and hi < z_lo_m:
                continue
            if lz.distance_to_geom(geom) <= 0.0:
                out.append(lz.zone)
        return out

    def active(
        self, t0_s: float | None = None, t1_s: float | None = None
    ) -> list[Zone]:
        """Zones whose window overlaps ``[t0_s, t1_s]`` (no window = always), by id."""
        return [z for z in self.list() if z.active_during(t0_s, t1_s)]

    def local_zones(
        self, t0_s: float | None = None, t1_s: float | None = None
    ) -> list[LocalZone]:
        """Local forms of the zones active during ``[t0_s, t1_s]``, sorted by id."""
        with self._lock:
            return [
                self._local[k]
                for k in sorted(self._local)
                if self._local[k].zone.active_during(t0_s, t1_s)
            ]


# ------------------------------------------------------------------ exact segment test
GroundArg = float | Callable[[float, float, float, float], tuple[float, float]]


GROUND_BLOCK = 16
"""Side [cells] of the blocks whose ground min/max :func:`ground_range_from_grid` keeps."""


@njit(**JIT)
def _rect_min_max(g, bmin, bmax, blk, i0, i1, j0, j1):
    """Exact min and max of ``g[i0:i1+1, j0:j1+1]``: blocks lying wholly inside the
    rectangle give their precomputed min/max, the cells of the others are scanned."""
    lo = np.inf
    hi = -np.inf
    for bi in range(i0 // blk, i1 // blk + 1):
        a0 = max(i0, bi * blk)
        a1 = min(i1, bi * blk + blk - 1)
        full_i = a0 == bi * blk and a1 == bi * blk + blk - 1
        for bj in range(j0 // blk, j1 // blk + 1):
            c0 = max(j0, bj * blk)
            c1 = min(j1, bj * blk + blk - 1)
            if full_i and c0 == bj * blk and c1 == bj * blk + blk - 1:
                if bmin[bi, bj] < lo:
                    lo = bmin[bi, bj]
                if bmax[bi, bj] > hi:
                    hi = bmax[bi, bj]
                continue
            for i in range(a0, a1 + 1):
                for j in range(c0, c1 + 1):
                    v = g[i, j]
                    if v < lo:
                        lo = v
                    if v > hi:
                        hi = v
    return lo, hi


def ground_range_from_grid(grid: GridSpec, ground_m: np.ndarray):
    """A ground-range function for :func:`segment_intersects` from per-column ground.

    Returns ``f(x0, y0, x1, y1) -> (min_m, max_m)``: the min and max of ``ground_m``
    over every column of the segment's bounding box (a superset of the columns it
    crosses; points outside the grid are clamped to the edge columns).

    Exact, and fast for long segments: the min and max of every
    :data:`GROUND_BLOCK`-square block are kept, so a box of a km side reads its inner
    blocks and scans only the cells of the blocks cut by its edges. A ground with a
    NaN (no value) keeps the plain scan, whose NaN result fails every comparison of a
    caller the same way as before.
    """
    g = np.asarray(ground_m, dtype=np.float64)
    if g.shape != (grid.nx, grid.ny):
        raise ZoneError(
            f"ground_m must have shape ({grid.nx}, {grid.ny}), got {g.shape}"
        )
    nx, ny, x0_m, y0_m, dx = grid.nx, grid.ny, grid.x0_m, grid.y0_m, grid.dx_m
    blk = GROUND_BLOCK
    fast = bool(np.isfinite(g).all())
    if fast:
        # whole blocks only: a block cut by the grid's edge is never wholly inside a
        # box (boxes are clamped to the grid), so its cells are always scanned
        g = np.ascontiguousarray(g)
        nbx, nby = nx // blk, ny // blk
        tiles = g[: nbx * blk, : nby * blk].reshape(nbx, blk, nby, blk)
        bmin = np.ascontiguousarray(tiles.min(axis=(1, 3)))
        bmax = np.ascontiguousarray(tiles.max(axis=(1, 3)))

    def rng(x0, y0, x1, y1):
        i0 = min(max(math.floor((min(x0, x1) - x0_m) / dx), 0), nx - 1)
        i1 = min(max(math.floor((max(x0, x1) - x0_m) / dx), 0), nx - 1)
        j0 = min(max(math.floor((min(y0, y1) - y0_m) / dx), 0), ny - 1)
        j1 = min(max(math.floor((max(y0, y1) - y0_m) / dx), 0), ny - 1)
        if fast:
            lo, hi = _rect_min_max(g, bmin, bmax, blk, i0, i1, j0, j1)
            return float(lo), float(hi)
        sub = g[i0 : i1 + 1, j0 : j1 + 1]
        return float(sub.min()), float(sub.max())

    return rng


def _clip_t(p0, p1, lo, hi, t0, t1):
    """Restrict ``t in [t0, t1]`` to where ``lo <= p0 + t (p1 - p0) <= hi``."""
    d = p1 - p0
    if d == 0.0:
        return (t0, t1) if lo <= p0 <= hi else (1.0, 0.0)
    a, b = (lo - p0) / d, (hi - p0) / d
    if a > b:
        a, b = b, a
    return max(t0, a), min(t1, b)


def segment_intersects(
    zone: LocalZone, p0, p1, ground_m: GroundArg = 0.0, margin_m: float = 0.0
) -> bool:
    """Whether the 3D segment ``p0 -> p1`` passes within ``margin_m`` of a zone volume.

    Parameters
    ----------
    zone : LocalZone
        From :meth:`ZoneLayer.local`.
    p0, p1 : sequence of 3 floats
        Local ``(x_m, y_m, z_m)``, ``z`` in m AMSL.
    ground_m : float or callable
        Ground height [m AMSL] for AGL limits: a constant, or ``f(x0, y0, x1, y1) ->
        (min_m, max_m)`` bounding the ground under a horizontal segment (see
        :func:`ground_range_from_grid`).
    margin_m : float
        Required clearance: horizontal distance <= margin and vertical distance <=
        margin count as touching.

    Notes
    -----
    The segment is first clipped to the zone's bounding box grown by ``margin_m``; the
    ground range is taken over that piece, giving the band ``[lower(min ground) -
    margin, upper(max ground) + margin]``; the piece is clipped again to the heights
    inside the band; the answer is whether that sub-piece's horizontal distance to the
    shape is <= ``margin_m`` (shapely for polygons, exact point-segment distance for
    circles). Exact for AMSL limits or a constant ground; conservative otherwise.

    Examples
    --------
    >>> f = Frame(24.94, 60.17)
    >>> lz = LocalZone(Zone(id="C", circle=Circle(24.94, 60.17, 50.0),
    ...                     lower=Altitude(0, "AMSL"), upper=Altitude(100, "AMSL")), f)
    >>> segment_intersects(lz, (-200, 0, 150), (200, 0, 50))   # enters the band at x=0
    True
    >>> segment_intersects(lz, (-200, 0, 150), (200, 0, 110))  # stays above
    False
    >>> segment_intersects(lz, (-200, 0, 150), (200, 0, 110), margin_m=30.0)
    True
    """
    x0, y0, z0 = (float(v) for v in p0)
    x1, y1, z1 = (float(v) for v in p1)
    m = float(margin_m)
    if not (m >= 0.0 and math.isfinite(m)):
        raise ZoneError(f"margin_m must be >= 0, got {margin_m!r}")
    bx0, by0, bx1, by1 = zone.bounds_m
    ta, tb = _clip_t(x0, x1, bx0 - m - _EPS_M, bx1 + m + _EPS_M, 0.0, 1.0)
    ta, tb = _clip_t(y0, y1, by0 - m - _EPS_M, by1 + m + _EPS_M, ta, tb)
    if ta > tb:
        return False
    if callable(ground_m):
        xa, ya = x0 + ta * (x1 - x0), y0 + ta * (y1 - y0)
        xb, yb = x0 + tb * (x1 - x0), y0 + tb * (y1 - y0)
        g_lo, g_hi = ground_m(xa, ya, xb, yb)
    else:
        g_lo = g_hi = float(ground_m)
    lo, hi = zone.band_amsl(g_lo, g_hi)
    ta, tb = _clip_t(z0, z1, lo - m - _EPS_M, hi + m + _EPS_M, ta, tb)
    if ta > tb:
        return False
    xa, ya = x0 + ta * (x1 - x0), y0 + ta * (y1 - y0)
    xb, yb = x0 + tb * (x1 - x0), y0 + tb * (y1 - y0)
    if zone.centre_m is not None:
        d = _point_segment_distance(zone.centre_m[0], zone.centre_m[1], xa, ya, xb, yb)
        return d <= zone.radius_m + m + _EPS_M
    piece = (
        Point(xa, ya) if (xa == xb and ya == yb) else LineString([(xa, ya), (xb, yb)])
    )
    return float(shapely.distance(zone.shape, piece)) <= m + _EPS_M


def _point_segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    L2 = dx * dx + dy * dy
    t = 0.0 if L2 == 0.0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / L2))
    return math.hypot(ax + t * dx - px, ay + t * dy - py)


# ------------------------------------------------------------------------ rasterizing
def zone_voxels(
    zone: LocalZone,
    grid: GridSpec,
    ground_m: np.ndarray,
    margin_m: float = 0.0,
    ground_hi_m: np.ndarray | None = None,
):
    """Voxels of ``grid`` that a zone volume (grown by ``margin_m``) touches.

    Conservative: column ``(i, j)`` is touched when its closed cell rectangle comes
    within ``margin_m`` of the horizontal shape (overlap, not centre-in-cell); in that
    column the layers ``k`` holding any height of ``[lower - margin, upper + margin]``
    (AGL limits converted with that column's ground) are touched, following the grid's
    half-open layer convention (height ``z`` lies in layer ``floor((z - z0) / dz)``).

    Parameters
    ----------
    zone : LocalZone
    grid : GridSpec
    ground_m : (nx, ny) float array
        Ground height per column [m AMSL].
    margin_m : float, optional
    ground_hi_m : (nx, ny) float array, optional
        Ground for the upper AGL limit when a cell spans varying ground (a coarse search
        cell: ``ground_m`` its lowest ground, ``ground_hi_m`` its highest), so that the
        touched band is ``[lower(min ground), upper(max ground)]``. Default ``ground_m``.

    Returns
    -------
    i0, i1, j0, j1 : int
        The touched columns lie in ``[i0, i1) x [j0, j1)`` (empty when ``i0 == i1`` or
        ``j0 == j1``).
    k_lo, k_hi : (i1 - i0, j1 - j0) int16
        Touched layers ``k_lo[a, b] <= k <= k_hi[a, b]`` of column ``(i0 + a, j0 + b)``;
        ``k_lo > k_hi`` marks an untouched column.
    """
    m = float(margin_m)
    if not (m >= 0.0 and math.isfinite(m)):
        raise ZoneError(f"margin_m must be >= 0, got {margin_m!r}")
    g = np.asarray(ground_m)
    g_hi = g if ground_hi_m is None else np.asarray(ground_hi_m)
    if g.shape != (grid.nx, grid.ny) or g_hi.shape != g.shape:
        raise ZoneError(
            f"ground_m must have shape ({grid.nx}, {grid.ny}), got {g.shape}"
        )
    if grid.nz > 32767:
        raise ZoneError(f"grid.nz={grid.nz} does not fit the int16 layer indices")
    bx0, by0, bx1, by1 = zone.bounds_m
    i0 = max(0, math.floor((bx0 - m - grid.x0_m) / grid.dx_m) - 1)
    j0 = max(0, math.floor((by0 - m - grid.y0_m) / grid.dx_m) - 1)
    i1 = min(grid.nx, math.floor((bx1 + m - grid.x0_m) / grid.dx_m) + 2)
    j1 = min(grid.ny, math.floor((by1 + m - grid.y0_m) / grid.dx_m) + 2)
    if i1 <= i0 or j1 <= j0:
        return 0, 0, 0, 0, np.zeros((0, 0), np.int16), np.zeros((0, 0), np.int16)
    z = zone.zone
    if zone.centre_m is not None:
        poly = np.zeros((0, 2), np.float64)
        cx, cy, r = zone.centre_m[0], zone.centre_m[1], zone.radius_m
    else:
        poly = zone.poly_xy
        cx = cy = r = 0.0
    k_lo, k_hi = _zone_columns(
        poly,
        zone.centre_m is not None,
        cx,
        cy,
        r,
        m,
        grid.x0_m,
        grid.y0_m,
        grid.z0_m,
        grid.dx_m,
        grid.dz_m,
        grid.nz,
        i0,
        i1,
        j0,
        j1,
        np.ascontiguousarray(g[i0:i1, j0:j1], dtype=np.float64),
        np.ascontiguousarray(g_hi[i0:i1, j0:j1], dtype=np.float64),
        z.lower.value_m,
        z.lower.reference == "AGL",
        z.upper.value_m,
        z.upper.reference == "AGL",
    )
    return i0, i1, j0, j1, k_lo, k_hi


@njit(**JIT)
def _seg_rect_dist2(ax, ay, bx, by, x0, y0, x1, y1):
    """Squared distance between segment AB and the closed rectangle (0 on overlap)."""
    if x0 <= ax <= x1 and y0 <= ay <= y1:
        return 0.0
    if x0 <= bx <= x1 and y0 <= by <= y1:
        return 0.0
    best = seg_seg_dist2(ax, ay, bx, by, x0, y0, x1, y0)
    best = min(best, seg_seg_dist2(ax, ay, bx, by, x1, y0, x1, y1))
    best = min(best, seg_seg_dist2(ax, ay, bx, by, x1, y1, x0, y1))
    best = min(best, seg_seg_dist2(ax, ay, bx, by, x0, y1, x0, y0))
    return best


@njit(**JIT)
def _poly_touched(poly, margin, gx0, gy0, dx, i0, i1, j0, j1):
    """Columns whose closed cell rectangle lies within ``margin`` of a polygon.

    poly : (n, 2) float64 local ring, not closed. Returns touched : (i1-i0, j1-j0) bool.

    Two passes, each exact: (1) for every edge and every column strip its x-range
    (grown by ``margin``) meets, the candidate cells are those whose y-range meets the
    edge piece's y-range grown by ``margin`` (plus one cell of slack); each is tested
    with the exact segment-rectangle distance. (2) A scanline through each strip's
    centre marks cells whose centre is inside (even-odd). A cell that meets the polygon
    either meets its boundary (pass 1) or lies wholly inside it (pass 2).
    """
    ni = i1 - i0
    nj = j1 - j0
    touched = np.zeros((ni, nj), np.bool_)
    n = poly.shape[0]
    m2 = margin * margin + 1e-9
    for e in range(n):
        ax, ay = poly[e, 0], poly[e, 1]
        f = e + 1 if e + 1 < n else 0
        bx, by = poly[f, 0], poly[f, 1]
        xmin = min(ax, bx) - margin
        xmax = max(ax, bx) + margin
        ia = max(i0, int(np.floor((xmin - gx0) / dx)) - 1)
        ib = min(i1 - 1, int(np.floor((xmax - gx0) / dx)) + 1)
        for i in range(ia, ib + 1):
            sx0 = gx0 + i * dx
            sx1 = sx0 + dx
            if ax == bx:
                ylo = min(ay, by)
                yhi = max(ay, by)
            else:
                ta = (sx0 - margin - ax) / (bx - ax)
                tb = (sx1 + margin - ax) / (bx - ax)
                if ta > tb:
                    ta, tb = tb, ta
                ta = max(ta, 0.0)
                tb = min(tb, 1.0)
                if ta > tb:
                    continue
                ya = ay + ta * (by - ay)
                yb = ay + tb * (by - ay)
                ylo = min(ya, yb)
                yhi = max(ya, yb)
            ja = max(j0, int(np.floor((ylo - margin - gy0) / dx)) - 1)
            jb = min(j1 - 1, int(np.floor((yhi + margin - gy0) / dx)) + 1)
            for j in range(ja, jb + 1):
                if touched[i - i0, j - j0]:
                    continue
                sy0 = gy0 + j * dx
                if _seg_rect_dist2(ax, ay, bx, by, sx0, sy0, sx1, sy0 + dx) <= m2:
                    touched[i - i0, j - j0] = True
    ys = np.empty(n, np.float64)
    for i in range(i0, i1):
        xc = gx0 + (i + 0.5) * dx
        c = 0
        for e in range(n):
            ax, ay = poly[e, 0], poly[e, 1]
            f = e + 1 if e + 1 < n else 0
            bx, by = poly[f, 0], poly[f, 1]
            if (ax > xc) != (bx > xc):
                ys[c] = ay + (xc - ax) * (by - ay) / (bx - ax)
                c += 1
        if c < 2:
            continue
        yy = np.sort(ys[:c])
        for p in range(0, c - 1, 2):
            # cells with centre y in [yy[p], yy[p+1])
            ja = max(j0, int(np.ceil((yy[p] - gy0) / dx - 0.5)))
            jb = min(j1 - 1, int(np.ceil((yy[p + 1] - gy0) / dx - 0.5)) - 1)
            for j in range(ja, jb + 1):
                touched[i - i0, j - j0] = True
    return touched


@njit(**JIT)
def _zone_columns(
    poly,
    is_circle,
    cx,
    cy,
    r,
    margin,
    gx0,
    gy0,
    gz0,
    dx,
    dz,
    nz,
    i0,
    i1,
    j0,
    j1,
    ground,
    ground_hi,
    lo_v,
    lo_agl,
    hi_v,
    hi_agl,
):
    """Per-column touched layer range of one zone.

    poly : (n, 2) float64 local polygon (unused for circles); cx, cy, r : circle [m];
    ground, ground_hi : (i1-i0, j1-j0) float64 [m AMSL], the ground used for the lower
    and for the upper AGL limit (equal for a plain grid; the min and max ground under a
    coarse cell). Returns k_lo, k_hi : int16 arrays of the same shape, ``k_lo > k_hi``
    for untouched columns.
    """
    ni = i1 - i0
    nj = j1 - j0
    k_lo = np.zeros((ni, nj), np.int16)
    k_hi = np.full((ni, nj), -1, np.int16)
    reach = r + margin
    reach2 = reach * reach + 1e-9
    touched = np.zeros((0, 0), np.bool_)
    if not is_circle:
        touched = _poly_touched(poly, margin, gx0, gy0, dx, i0, i1, j0, j1)
    for a in range(ni):
        x0 = gx0 + (i0 + a) * dx
        x1 = x0 + dx
        for b in range(nj):
            y0 = gy0 + (j0 + b) * dx
            y1 = y0 + dx
            if is_circle:
                qx = min(max(cx, x0), x1) - cx
                qy = min(max(cy, y0), y1) - cy
                if qx * qx + qy * qy > reach2:
                    continue
            elif not touched[a, b]:
                continue
            lo = lo_v + ground[a, b] if lo_agl else lo_v
            hi = hi_v + ground_hi[a, b] if hi_agl else hi_v
            klo = int(np.floor((lo - margin - gz0) / dz))
            khi = int(np.floor((hi + margin - gz0) / dz))
            if klo < 0:
                klo = 0
            if khi > nz - 1:
                khi = nz - 1
            if klo <= khi:
                k_lo[a, b] = klo
                k_hi[a, b] = khi
    return k_lo, k_hi
