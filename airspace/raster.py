"""Numba rasterization of building footprints into per-column obstacle heights.

Design
------
**2.5D, per column.** The twin stores, for every grid column ``(i, j)``, three heights
(``ground_m``, ``top_m``, ``clear_top_m``) and one layer index (``floor_k``) instead of a
dense 3D voxel array. At 10 km x 10 km and 2 m a column field is 25 million cells: a
float32 field is 100 MB, while a dense byte voxel array up to 120 m above ground at 2 m
layers would be 1.5 GB for *one* boolean (and 60 times more work to fill). Buildings are
extruded footprints (the readers keep footprint, base and top), so nothing is lost for
obstacle avoidance by keeping only the highest top per column; overhangs and passages
under bridges are deliberately treated as blocked from the ground up (conservative).
The planner asks for dense windows when it needs them (``Twin.blocked_dense``).

**Touched columns (exact, conservative).** A column is *touched* by a footprint when the
closed cell square intersects the closed polygon (holes and MultiPolygon parts included).
The kernel finds them in two passes per building:

1. *Edges*: for each ring edge, the columns of its x-range (closed) are visited and the
   edge is clipped to each column's x-strip; every cell of the clipped y-range is marked.
   This is exactly the set of cells whose closed square meets the edge (ties on cell
   boundaries are marked on both sides; the y-range is widened by ``EPS_M`` so
   floating-point round-off can only add cells, never lose one).
2. *Interior*: an even-odd scanline through the cell centres of each row marks cells whose
   centre lies inside the polygon (holes and parts handled by parity over all rings).

A cell that meets the polygon either meets its boundary (pass 1) or lies entirely inside
it, and then its centre is inside (pass 2). So ``touched = pass1 | pass2`` is exactly
``shapely.box(cell).intersects(polygon)`` up to boundary ties within ``EPS_M``, and it is
never smaller: every point of every building lies in a column whose ``top_m`` is at least
that building's top.

**Clearance (exact distance).** ``clear_top_m`` takes ``top + clearance`` of every building
whose footprint lies within horizontal distance ``clearance_m`` of *any* point of the
column's square. For cells not touched, the distance between the square and the polygon
is the minimum over edges of the distance between the edge and the square, and for a
segment disjoint from a convex square that is attained at an endpoint of the segment or at
a corner of the square: four point-to-segment and two point-to-box distances per
(cell, edge) pair, all exact. ``shapely.buffer`` would approximate the rounded corners of
the inflated footprint with chords, which lie *inside* the true disc and so under-block:
the exact distance is both cheaper here and never misses a cell. Each edge only visits
columns within ``clearance_m`` of its x-range and rows within ``clearance_m`` of its
clipped y-range, so the work is proportional to the inflated perimeter, not to the area.

**Protected volume.** A point ``p`` is too close to building ``b`` iff the horizontal
distance from ``p`` to ``b``'s footprint is ``<= clearance_m`` and
``p.z <= b.top_m + clearance_m`` (a superset of the 3D Minkowski sum of the building and a
ball; the exact checker in ``planner/`` uses the same rule). Any such point lies in a
column whose square is within ``clearance_m`` of the footprint, so that column's
``clear_top_m >= b.top_m + clearance_m >= p.z``, and the voxel holding ``p`` is below
``floor_k`` (see :func:`floor_layers`): the field is conservative. Heights are stored as
float32 (enough for centimetres up to 100 km) and rounded *up* when converted, so the
conversion never lowers an obstacle.

Everything runs single-threaded (``nogil``, so the caller may run builds in threads); the
kernels are called in chunks of buildings so a progress callback can report.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from numba import njit

from skytwin.airspace._jit import JIT

__all__ = [
    "EPS_M",
    "FlatFootprints",
    "flatten_footprints",
    "floor_layers",
    "rasterize_footprints",
]

EPS_M = 1e-7
"""Slack [m] added to clipped ranges and distance tests so round-off only adds cells."""


class FlatFootprints:
    """Footprints flattened into vertex and ring arrays for the kernels.

    Attributes
    ----------
    xy_m : (n_vertices, 2) float64
        Ring vertices in the local frame, each ring closed (first vertex repeated).
    ring_off : (n_rings + 1,) int64
        Ring ``r`` owns vertices ``ring_off[r]:ring_off[r + 1]``.
    bld_ring_off : (n_buildings + 1,) int64
        Building ``b`` owns rings ``bld_ring_off[b]:bld_ring_off[b + 1]`` (exteriors and
        holes of every part).
    bbox_m : (n_buildings, 4) float64
        ``minx, miny, maxx, maxy`` of each footprint.
    """

    __slots__ = ("bbox_m", "bld_ring_off", "ring_off", "xy_m")

    def __init__(self, xy_m, ring_off, bld_ring_off, bbox_m):
        self.xy_m = xy_m
        self.ring_off = ring_off
        self.bld_ring_off = bld_ring_off
        self.bbox_m = bbox_m

    @property
    def n_buildings(self) -> int:
        return len(self.bld_ring_off) - 1

    def max_edges(self) -> int:
        """Largest number of edges of one building (size of the scanline buffer)."""
        if self.n_buildings == 0:
            return 0
        edges_per_ring = np.diff(self.ring_off) - 1
        cum = np.concatenate([[0], np.cumsum(edges_per_ring)])
        return int(np.max(np.diff(cum[self.bld_ring_off])))


def flatten_footprints(footprints) -> FlatFootprints:
    """Flatten shapely Polygons / MultiPolygons into :class:`FlatFootprints`.

    Parameters
    ----------
    footprints : sequence of shapely Polygon or MultiPolygon
        Valid, non-empty footprints in the local frame [m].

    Returns
    -------
    FlatFootprints

    Raises
    ------
    ValueError
        When a footprint is empty, not polygonal or has non-finite coordinates.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> f = flatten_footprints([box(0, 0, 1, 1)])
    >>> f.ring_off.tolist(), f.bld_ring_off.tolist(), f.xy_m.shape
    ([0, 5], [0, 1], (5, 2))
    """
    geoms = np.asarray(list(footprints), dtype=object)
    n = len(geoms)
    if n == 0:
        return FlatFootprints(np.zeros((0, 2)), np.zeros(1, np.int64),
                              np.zeros(1, np.int64), np.zeros((0, 4)))
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(types, (3, 6)) | shapely.is_empty(geoms))
    if len(bad):
        raise ValueError(f"footprint {int(bad[0])} is not a non-empty Polygon or "
                         f"MultiPolygon (got {geoms[bad[0]].geom_type})")
    parts, part_bld = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, vert_ring = shapely.get_coordinates(rings, return_index=True)
    if not np.all(np.isfinite(xy)):
        raise ValueError("footprints hold non-finite coordinates")
    ring_bld = part_bld[ring_part]
    ring_off = np.zeros(len(rings) + 1, np.int64)
    ring_off[1:] = np.cumsum(np.bincount(vert_ring, minlength=len(rings)))
    bld_ring_off = np.zeros(n + 1, np.int64)
    bld_ring_off[1:] = np.cumsum(np.bincount(ring_bld, minlength=n))
    bbox = shapely.bounds(geoms)
    return FlatFootprints(np.ascontiguousarray(xy, dtype=np.float64), ring_off,
                          bld_ring_off, bbox)


# --------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------
@njit(**JIT)
def _seg_point_d2(ax, ay, bx, by, px, py):
    """Squared distance from point p to segment ab."""
    vx = bx - ax
    vy = by - ay
    wx = px - ax
    wy = py - ay
    vv = vx * vx + vy * vy
    t = 0.0
    if vv > 0.0:
        t = (wx * vx + wy * vy) / vv
        if t < 0.0:
            t = 0.0
        elif t > 1.0:
            t = 1.0
    dx = wx - t * vx
    dy = wy - t * vy
    return dx * dx + dy * dy


@njit(**JIT)
def _box_point_d2(x0, y0, x1, y1, px, py):
    """Squared distance from point p to the closed box [x0, x1] x [y0, y1]."""
    dx = 0.0
    if px < x0:
        dx = x0 - px
    elif px > x1:
        dx = px - x1
    dy = 0.0
    if py < y0:
        dy = y0 - py
    elif py > y1:
        dy = py - y1
    return dx * dx + dy * dy


@njit(**JIT)
def _seg_box_d2_disjoint(ax, ay, bx, by, x0, y0, x1, y1):
    """Squared distance between segment ab and a box, exact when they are disjoint.

    When the segment meets the box the true distance is 0 and the value returned may be
    larger; callers handle meeting cells through the touched pass.
    """
    d = _box_point_d2(x0, y0, x1, y1, ax, ay)
    e = _box_point_d2(x0, y0, x1, y1, bx, by)
    d = min(d, e)
    e = _seg_point_d2(ax, ay, bx, by, x0, y0)
    d = min(d, e)
    e = _seg_point_d2(ax, ay, bx, by, x1, y0)
    d = min(d, e)
    e = _seg_point_d2(ax, ay, bx, by, x0, y1)
    d = min(d, e)
    e = _seg_point_d2(ax, ay, bx, by, x1, y1)
    d = min(d, e)
    return d


@njit(**JIT)
def _clip_y(ax, ay, bx, by, xl, xr):
    """y-range of segment ab restricted to x in [xl, xr] (assumes overlap)."""
    if ax == bx:
        return min(ay, by), max(ay, by)
    lo = max(xl, min(ax, bx))
    hi = min(xr, max(ax, bx))
    if lo > hi:  # round-off: no overlap, use the nearest endpoint span
        lo = hi = min(max(lo, min(ax, bx)), max(ax, bx))
    s = (by - ay) / (bx - ax)
    y_lo = ay + (lo - ax) * s
    y_hi = ay + (hi - ax) * s
    if y_lo > y_hi:
        y_lo, y_hi = y_hi, y_lo
    return y_lo, y_hi


@njit(**JIT)
def _first_cell(v, origin, d, n):
    """First cell whose closed interval [origin + i d, origin + (i+1) d] reaches v."""
    i = math.ceil((v - origin) / d) - 1
    return max(i, 0)


@njit(**JIT)
def _last_cell(v, origin, d, n):
    """Last cell whose closed interval starts at or below v."""
    i = math.floor((v - origin) / d)
    return min(i, n - 1)


@njit(**JIT)
def _f32_up(v):
    """The smallest float32 not below float64 ``v`` (round up, never down)."""
    f = np.float32(v)
    if np.float64(f) < v:
        f = np.nextafter(f, np.float32(np.inf))
    return f


@njit(**JIT)
def _raise(field, i, j, value):
    field[i, j] = max(field[i, j], value)


@njit(**JIT)
def _rasterize_kernel(xy, ring_off, bld_ring_off, b_lo, b_hi, bld_top, bld_ground,
                      x0, y0, d, nx, ny, clearance, top, clear_top, gmax, xs_buf):
    """Rasterize buildings ``b_lo:b_hi`` into the column fields (in place).

    Parameters
    ----------
    xy : (nv, 2) float64
        Closed ring vertices, local frame [m].
    ring_off : (nr + 1,) int64
    bld_ring_off : (nb + 1,) int64
        See :class:`FlatFootprints`.
    b_lo, b_hi : int
        Range of buildings to process.
    bld_top, bld_ground : (nb,) float64 [m AMSL]
    x0, y0, d : float
        Grid origin and cell size [m].
    nx, ny : int
    clearance : float [m]
    top : (nx, ny) float32, in/out
        Raised to the building top on touched columns.
    clear_top : (nx, ny) float32, in/out
        Raised to ``top + clearance`` on columns within ``clearance`` of a footprint.
    gmax : (nx, ny) float32, in/out
        Raised to the building ground on touched columns (NaN-free, starts at -inf).
    xs_buf : (>= max edges,) float64
        Scratch buffer for scanline crossings, overwritten.
    """
    c2 = (clearance + EPS_M) * (clearance + EPS_M)
    far = clearance + EPS_M + 0.7072 * d   # clearance + half cell diagonal (rounded up)
    far2 = far * far
    for b in range(b_lo, b_hi):
        t = _f32_up(bld_top[b])  # float32 fields round heights up: conservative
        tc = _f32_up(bld_top[b] + clearance)
        g = np.float32(bld_ground[b])
        r0 = bld_ring_off[b]
        r1 = bld_ring_off[b + 1]
        # -- pass 1 and clearance: per edge ---------------------------------------
        for r in range(r0, r1):
            for v in range(ring_off[r], ring_off[r + 1] - 1):
                ax = xy[v, 0]
                ay = xy[v, 1]
                bx = xy[v + 1, 0]
                by = xy[v + 1, 1]
                exl = min(ax, bx)
                exr = max(ax, bx)
                # touched cells of the edge
                i_lo = _first_cell(exl - EPS_M, x0, d, nx)
                i_hi = _last_cell(exr + EPS_M, x0, d, nx)
                for i in range(i_lo, i_hi + 1):
                    sx0 = x0 + i * d
                    ylo, yhi = _clip_y(ax, ay, bx, by, sx0, sx0 + d)
                    j_lo = _first_cell(ylo - EPS_M, y0, d, ny)
                    j_hi = _last_cell(yhi + EPS_M, y0, d, ny)
                    for j in range(j_lo, j_hi + 1):
                        _raise(top, i, j, t)
                        _raise(clear_top, i, j, tc)
                        _raise(gmax, i, j, g)
                if clearance <= 0.0:
                    continue
                # cells within clearance of the edge (exact distance test)
                i_lo = _first_cell(exl - clearance - EPS_M, x0, d, nx)
                i_hi = _last_cell(exr + clearance + EPS_M, x0, d, nx)
                for i in range(i_lo, i_hi + 1):
                    sx0 = x0 + i * d
                    sx1 = sx0 + d
                    ylo, yhi = _clip_y(ax, ay, bx, by, sx0 - clearance, sx1 + clearance)
                    j_lo = _first_cell(ylo - clearance - EPS_M, y0, d, ny)
                    j_hi = _last_cell(yhi + clearance + EPS_M, y0, d, ny)
                    for j in range(j_lo, j_hi + 1):
                        if clear_top[i, j] >= tc:
                            continue
                        sy0 = y0 + j * d
                        # the cell centre decides most cells: the cell is at most as far
                        # as its centre, and at least that minus the half diagonal
                        dc2 = _seg_point_d2(ax, ay, bx, by, sx0 + 0.5 * d, sy0 + 0.5 * d)
                        if dc2 <= c2 or (dc2 <= far2 and _seg_box_d2_disjoint(
                                ax, ay, bx, by, sx0, sy0, sx1, sy0 + d) <= c2):
                            clear_top[i, j] = tc
        # -- pass 2: interior by even-odd scanline through cell centres --------------
        bminy = np.inf
        bmaxy = -np.inf
        for v in range(ring_off[r0], ring_off[r1]):
            bminy = min(bminy, xy[v, 1])
            bmaxy = max(bmaxy, xy[v, 1])
        j_lo = max(0, math.ceil((bminy - y0) / d - 0.5))
        j_hi = min(ny - 1, math.floor((bmaxy - y0) / d - 0.5))
        for j in range(j_lo, j_hi + 1):
            yc = y0 + (j + 0.5) * d
            m = 0
            for r in range(r0, r1):
                for v in range(ring_off[r], ring_off[r + 1] - 1):
                    ay = xy[v, 1]
                    by = xy[v + 1, 1]
                    if (ay <= yc) != (by <= yc):
                        ax = xy[v, 0]
                        bx = xy[v + 1, 0]
                        xs_buf[m] = ax + (yc - ay) * (bx - ax) / (by - ay)
                        m += 1
            # insertion sort (few crossings per row)
            for p in range(1, m):
                key = xs_buf[p]
                q = p - 1
                while q >= 0 and xs_buf[q] > key:
                    xs_buf[q + 1] = xs_buf[q]
                    q -= 1
                xs_buf[q + 1] = key
            for p in range(0, m - 1, 2):
                i_lo = max(0, math.ceil((xs_buf[p] - x0) / d - 0.5))
                i_hi = min(nx - 1, math.floor((xs_buf[p + 1] - x0) / d - 0.5))
                for i in range(i_lo, i_hi + 1):
                    _raise(top, i, j, t)
                    _raise(clear_top, i, j, tc)
                    _raise(gmax, i, j, g)


@njit(**JIT)
def _floor_kernel(clear_top, z0, dz, nz, out):
    """First layer whose bottom is strictly above ``clear_top`` (clipped to [0, nz])."""
    nx, ny = clear_top.shape
    for i in range(nx):
        for j in range(ny):
            k = math.floor((np.float64(clear_top[i, j]) - z0) / dz) + 1
            if k < 0:
                k = 0
            elif k > nz:
                k = nz
            out[i, j] = k


@njit(**JIT)
def _coarse_mean_kernel(field, f, out):
    """Mean of the finite cells of each ``f x f`` block of ``field`` (NaN if none)."""
    nx, ny = field.shape
    cx, cy = out.shape
    for a in range(cx):
        for b in range(cy):
            s = 0.0
            n = 0
            for i in range(a * f, min(nx, (a + 1) * f)):
                for j in range(b * f, min(ny, (b + 1) * f)):
                    v = field[i, j]
                    if np.isfinite(v):
                        s += v
                        n += 1
            out[a, b] = s / n if n > 0 else np.nan


@njit(**JIT)
def _fill_from_coarse_kernel(field, f, coarse):
    """Set the non-finite cells of ``field`` to their coarse block's value (in place)."""
    nx, ny = field.shape
    for i in range(nx):
        for j in range(ny):
            if not np.isfinite(field[i, j]):
                field[i, j] = coarse[i // f, j // f]


# --------------------------------------------------------------------------------------
# public front
# --------------------------------------------------------------------------------------
def rasterize_footprints(flat: FlatFootprints, top_m, ground_m, *, x0_m: float,
                         y0_m: float, dx_m: float, nx: int, ny: int, clearance_m: float,
                         top_out=None, clear_top_out=None, ground_out=None,
                         chunk: int = 4096, progress=None):
    """Rasterize footprints into per-column top, clearance-top and ground fields.

    Parameters
    ----------
    flat : FlatFootprints
        From :func:`flatten_footprints`.
    top_m, ground_m : (n_buildings,) array of float [m AMSL]
        Building tops and grounds.
    x0_m, y0_m, dx_m : float
        Grid origin (south-west corner) and cell size [m].
    nx, ny : int
        Grid size in columns.
    clearance_m : float
        Horizontal and vertical clearance [m], ``>= 0``.
    top_out, clear_top_out, ground_out : (nx, ny) float32, optional
        Fields to raise in place; by default new ones filled with ``-inf``.
    chunk : int
        Buildings per kernel call (progress granularity).
    progress : callable(done, total), optional
        Called after each chunk.

    Returns
    -------
    top, clear_top, ground : (nx, ny) float32
        ``-inf`` where no building reaches the column. ``top`` is the highest top of
        the buildings whose footprint touches the column, ``clear_top`` the highest
        ``top + clearance_m`` of the buildings within ``clearance_m``, ``ground`` the
        highest ground of the touching buildings.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> f = flatten_footprints([box(1.0, 1.0, 3.0, 2.5)])
    >>> top, ctop, g = rasterize_footprints(f, [10.0], [0.0], x0_m=0.0, y0_m=0.0,
    ...                                     dx_m=1.0, nx=5, ny=4, clearance_m=1.0)
    >>> (top[:, :3] > 0).astype(int).T.tolist()   # closed cells: ties on x=1, x=3, y=1
    [[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]]
    >>> float(ctop[4, 2]), bool(np.isinf(ctop[4, 3]))   # at distance 1.0 and 1.118
    (11.0, True)
    """
    if not (dx_m > 0 and np.isfinite(dx_m)):
        raise ValueError(f"dx_m must be positive and finite, got {dx_m}")
    if not (clearance_m >= 0 and np.isfinite(clearance_m)):
        raise ValueError(f"clearance_m must be >= 0 and finite, got {clearance_m}")
    nb = flat.n_buildings
    top_m = np.ascontiguousarray(top_m, dtype=np.float64)
    ground_m = np.ascontiguousarray(ground_m, dtype=np.float64)
    if top_m.shape != (nb,) or ground_m.shape != (nb,):
        raise ValueError(f"top_m and ground_m must have shape ({nb},), got "
                         f"{top_m.shape} and {ground_m.shape}")

    def _field(a):
        if a is None:
            return np.full((nx, ny), -np.inf, dtype=np.float32)
        if a.shape != (nx, ny) or a.dtype != np.float32:
            raise ValueError(f"output fields must be ({nx}, {ny}) float32")
        return a

    top = _field(top_out)
    clear_top = _field(clear_top_out)
    ground = _field(ground_out)
    xs_buf = np.empty(max(flat.max_edges(), 1), dtype=np.float64)
    chunk = max(1, int(chunk))
    for b_lo in range(0, nb, chunk):
        b_hi = min(nb, b_lo + chunk)
        _rasterize_kernel(flat.xy_m, flat.ring_off, flat.bld_ring_off, b_lo, b_hi,
                          top_m, ground_m, float(x0_m), float(y0_m), float(dx_m),
                          int(nx), int(ny), float(clearance_m), top, clear_top, ground,
                          xs_buf)
        if progress is not None:
            progress(b_hi, nb)
    return top, clear_top, ground


def floor_layers(clear_top_m, *, z0_m: float, dz_m: float, nz: int):
    """First free layer per column: ``floor_k[i, j]``.

    Layer ``k`` spans ``[z0_m + k dz_m, z0_m + (k + 1) dz_m)``; it is blocked when its
    bottom is at or below ``clear_top_m[i, j]`` (a voxel touching the obstacle, even
    exactly at its top, is blocked). Clipped to ``[0, nz]``.

    Examples
    --------
    >>> ct = np.array([[4.0, 3.9, -1.0, 100.0]], dtype=np.float32)
    >>> floor_layers(ct, z0_m=0.0, dz_m=2.0, nz=10).tolist()
    [[3, 2, 0, 10]]
    """
    clear_top_m = np.ascontiguousarray(clear_top_m, dtype=np.float32)
    out = np.empty(clear_top_m.shape, dtype=np.int16)
    if nz > np.iinfo(np.int16).max:
        raise ValueError(f"nz={nz} exceeds the int16 layer index range")
    _floor_kernel(clear_top_m, float(z0_m), float(dz_m), int(nz), out)
    return out
