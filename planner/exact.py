"""Exact clearance checks of straight 3D segments against building geometry.

The planner's voxels are conservative, so a path through free voxels is clear by
construction; this module is the second, geometric guard that every smoothed segment
must pass before a route is returned (DESIGN: "a route that fails the exact check is
never returned").

Protected volume
----------------
A point ``p`` is too close to building ``b`` (footprint ``F``, top ``T`` [m AMSL]) when

    horizontal_distance(p, F) < clearance_m   and   p.z < T + clearance_m

i.e. the footprint is inflated by the clearance horizontally and the roof is raised by
the clearance; the volume reaches down to the ground (overhangs are ignored). This is a
superset of the true 3D Minkowski sum of the building and a ball of radius
``clearance_m``, so keeping out of it keeps at least ``clearance_m`` from the building.
The rasterizer (:mod:`airspace.raster`) blocks every voxel that touches the same volume.

Segment test
------------
Along a segment ``p(t) = p0 + t (p1 - p0)``, ``t`` in ``[0, 1]``, the height is linear,
so ``{t : z(t) < T + c}`` is one interval; the segment violates the clearance of ``b``
iff the horizontal projection of that sub-segment comes closer than ``c`` to ``F``
(GEOS distance, exact up to floating point). Candidates come from the twin's STRtree
over footprints, queried with the segment's bounding box grown by the clearance.

Fast screen for smoothing
-------------------------
Smoothing tries many candidate segments (about 45 per route, most of them discarded)
and each GEOS test above costs ~0.1 ms of Python and GEOS calls. :meth:`ExactChecker.
segment_blocked_fast` decides the same rule in one numba kernel (:func:`_segment_status`):
candidates from a uniform grid of cells listing every footprint whose bounding box,
grown by the clearance, meets the cell (the cells a segment passes through), a
bounding-box rejection, then the footprint's own rings: the sub-segment below
``T + c`` is too close when its first point is inside the polygon (even-odd rule over
every ring, holes included) or it comes within ``c`` of an edge. It is conservative
by :data:`FAST_MARGIN_M` (too close means closer than ``c + FAST_MARGIN_M``), far more
than the rounding of either computation, so a segment it passes also passes
:meth:`~ExactChecker.segment_violation`; footprints that are not polygons or
multipolygons are left to GEOS. It is a screen, not the guard: the planner checks
every segment of the route it returns with :meth:`~ExactChecker.segment_violation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numba import njit
from shapely.geometry import LineString, Point

from skytwin.airspace._jit import JIT
from skytwin.airspace.geom2d import seg_seg_dist2

__all__ = ["FAST_MARGIN_M", "ExactChecker", "Violation"]

FAST_MARGIN_M = 1e-6
"""The fast screen counts a segment as too close up to this much beyond the clearance
[m] (float64 rounding at city coordinates is ~1e-12 m)."""

FAST_CELL_M = 32.0
"""Cell size of the fast screen's footprint grid [m]."""


@dataclass(frozen=True)
class Violation:
    """Where and why a segment breaks the clearance."""

    kind: str          # "building" or "zone" or "ground" or "ceiling"
    object_id: str
    segment: int       # index of the offending segment in the polyline
    distance_m: float  # horizontal distance found (for buildings)

    def __str__(self) -> str:
        return (f"segment {self.segment} comes within {self.distance_m:.2f} m of "
                f"{self.kind} {self.object_id}")


class ExactChecker:
    """Checks segments against the exact footprints and roof heights of a twin.

    Parameters
    ----------
    footprints : sequence of shapely geometries, local frame [m]
    tops_m : (n,) float [m AMSL]
    ids : sequence of str
    clearance_m : float
    """

    def __init__(self, footprints, tops_m, ids, clearance_m: float):
        self.footprints = np.asarray(list(footprints), dtype=object)
        self.tops_m = np.asarray(tops_m, dtype=np.float64)
        self.ids = list(ids)
        self.clearance_m = float(clearance_m)
        self.tree = shapely.STRtree(self.footprints)
        shapely.prepare(self.footprints)
        # Height bands: tree k holds only the buildings whose protected top (roof +
        # clearance) reaches at least _band_z[k]. A segment whose lowest point is z can
        # only enter buildings with top + c > z, all of which are in the tree of the
        # highest band at or below z; cruise segments then test far fewer footprints.
        lim = self.tops_m + self.clearance_m
        self._band_z = [-np.inf]
        self._band_idx = [np.arange(len(lim))]
        self._band_tree = [self.tree]
        if len(lim) >= 64:
            for q in (50, 75, 90, 97):
                z = float(np.percentile(lim, q))
                idx = np.flatnonzero(lim >= z)
                if z > self._band_z[-1] and len(idx) < len(self._band_idx[-1]):
                    self._band_z.append(z)
                    self._band_idx.append(idx)
                    self._band_tree.append(shapely.STRtree(self.footprints[idx]))
        self._fast = _FastIndex(self.footprints, lim, self.clearance_m)

    @classmethod
    def for_twin(cls, twin) -> ExactChecker:
        """The checker of a :class:`airspace.twin.Twin` (same clearance)."""
        return cls([b.footprint for b in twin.buildings], [b.top_m for b in twin.buildings],
                   [b.id for b in twin.buildings], twin.clearance_m)

    def segment_violation(self, p0, p1, segment: int = 0) -> Violation | None:
        """The first building whose protected volume the segment ``p0 -> p1`` enters."""
        c = self.clearance_m
        p0 = np.asarray(p0, dtype=np.float64)
        p1 = np.asarray(p1, dtype=np.float64)
        flat = p0[0] == p1[0] and p0[1] == p1[1]
        seg2d = Point(p0[:2]) if flat else LineString([p0[:2], p1[:2]])
        # candidates: footprints within c of the whole horizontal segment (GEOS dwithin
        # on the tree's bounding boxes, then on the geometries)
        zmin = min(p0[2], p1[2])
        k = int(np.searchsorted(self._band_z, zmin, side="right")) - 1
        cand = self._band_idx[k][self._band_tree[k].query(seg2d, predicate="dwithin",
                                                          distance=c)]
        if cand.size == 0:
            return None
        for b in cand[np.argsort(cand)]:
            lim = self.tops_m[b] + c
            if zmin >= lim:
                continue
            piece = _below(p0, p1, lim)
            if piece is None:
                continue
            a, e = piece
            same = a[0] == e[0] and a[1] == e[1]
            geom = Point(a) if same else LineString([a, e])
            d = float(shapely.distance(geom, self.footprints[b]))
            if d < c:
                return Violation("building", str(self.ids[b]), segment, d)
        return None

    def segment_blocked_fast(self, p0, p1) -> bool:
        """Whether ``p0 -> p1`` may come too close to a building: the numba screen of
        the module docstring (``False`` implies that :meth:`segment_violation` finds
        nothing; ``True`` may, within :data:`FAST_MARGIN_M` of the clearance, be a
        segment that it accepts). Footprints the kernel does not read are decided by
        :meth:`segment_violation`."""
        f = self._fast
        st = _segment_status(float(p0[0]), float(p0[1]), float(p0[2]), float(p1[0]),
                             float(p1[1]), float(p1[2]), self.clearance_m, FAST_MARGIN_M,
                             f.x0, f.y0, f.cell_m, f.ncx, f.ncy, f.cell_start,
                             f.cell_items, f.bbox, f.lim, f.edge_start, f.edges, f.kind)
        if st == 2:
            return self.segment_violation(p0, p1) is not None
        return st == 1

    def polyline_violation(self, xyz_m) -> Violation | None:
        """The first violation along a polyline ``(n, 3)``, or ``None`` when clear."""
        xyz = np.asarray(xyz_m, dtype=np.float64)
        for s in range(len(xyz) - 1):
            v = self.segment_violation(xyz[s], xyz[s + 1], s)
            if v is not None:
                return v
        return None

    def building_at(self, x_m: float, y_m: float, z_m: float | None = None,
                    clearance_m: float = 0.0) -> str | None:
        """Id of a building whose (inflated) footprint holds ``(x, y)`` below its roof."""
        p = Point(x_m, y_m)
        for b in self.tree.query(p, predicate="dwithin", distance=clearance_m) \
                if clearance_m > 0 else self.tree.query(p, predicate="intersects"):
            if z_m is None or z_m < self.tops_m[b] + clearance_m:
                return str(self.ids[b])
        return None


def _below(p0: np.ndarray, p1: np.ndarray, lim: float):
    """The horizontal sub-segment of ``p0 -> p1`` where ``z < lim`` (or None)."""
    z0, z1 = p0[2], p1[2]
    if z0 < lim and z1 < lim:
        return p0[:2], p1[:2]
    if z0 >= lim and z1 >= lim:
        return None
    t = (lim - z0) / (z1 - z0)  # crossing parameter, z0 != z1 here
    mid = p0[:2] + t * (p1[:2] - p0[:2])
    return (p0[:2], mid) if z0 < lim else (mid, p1[:2])


# ------------------------------------------------------------------------ fast screen
class _FastIndex:
    """Flat arrays of the footprints for :func:`_segment_status` (read-only, shared by
    threads): rings as edges, bounding boxes, protected tops, and a uniform grid of
    :data:`FAST_CELL_M` cells listing the footprints whose box grown by the clearance
    (and the margin) meets each cell."""

    def __init__(self, footprints, lim, clearance_m: float):
        n = len(footprints)
        self.lim = np.asarray(lim, dtype=np.float64)
        self.kind = np.zeros(n, dtype=np.uint8)        # 1: rings read, 0: GEOS decides
        self.bbox = np.zeros((n, 4), dtype=np.float64)
        edges, starts = [], [0]
        for b, fp in enumerate(footprints):
            k0 = len(edges)
            polys = ([fp] if fp.geom_type == "Polygon" else list(fp.geoms)
                     if fp.geom_type == "MultiPolygon" else None)
            if polys is not None and not fp.is_empty and fp.is_valid:
                self.kind[b] = 1
                for poly in polys:
                    for ring in (poly.exterior, *poly.interiors):
                        xy = np.asarray(ring.coords, dtype=np.float64)[:, :2]
                        if len(xy) >= 2:
                            edges.append(np.hstack([xy[:-1], xy[1:]]))
            if not fp.is_empty:
                self.bbox[b] = fp.bounds
            starts.append(starts[-1] + sum(len(e) for e in edges[k0:]))
        self.edges = (np.ascontiguousarray(np.vstack(edges)) if edges
                      else np.zeros((0, 4), dtype=np.float64))
        self.edge_start = np.asarray(starts, dtype=np.int64)
        r = clearance_m + 2.0 * FAST_MARGIN_M
        self.cell_m = FAST_CELL_M
        if n:
            self.x0 = float(self.bbox[:, 0].min() - r - self.cell_m)
            self.y0 = float(self.bbox[:, 1].min() - r - self.cell_m)
            x1 = float(self.bbox[:, 2].max() + r + self.cell_m)
            y1 = float(self.bbox[:, 3].max() + r + self.cell_m)
        else:
            self.x0 = self.y0 = 0.0
            x1 = y1 = self.cell_m
        self.ncx = max(1, math.ceil((x1 - self.x0) / self.cell_m))
        self.ncy = max(1, math.ceil((y1 - self.y0) / self.cell_m))
        i0 = np.floor((self.bbox[:, 0] - r - self.x0) / self.cell_m).astype(np.int64)
        i1 = np.floor((self.bbox[:, 2] + r - self.x0) / self.cell_m).astype(np.int64)
        j0 = np.floor((self.bbox[:, 1] - r - self.y0) / self.cell_m).astype(np.int64)
        j1 = np.floor((self.bbox[:, 3] + r - self.y0) / self.cell_m).astype(np.int64)
        cells, items = [], []
        for b in range(n):
            ii, jj = np.meshgrid(np.arange(i0[b], i1[b] + 1), np.arange(j0[b], j1[b] + 1),
                                 indexing="ij")
            cells.append((ii * self.ncy + jj).ravel())
            items.append(np.full(ii.size, b, dtype=np.int64))
        cell = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
        item = np.concatenate(items) if items else np.zeros(0, dtype=np.int64)
        order = np.argsort(cell, kind="stable")
        self.cell_items = np.ascontiguousarray(item[order])
        self.cell_start = np.searchsorted(cell[order], np.arange(self.ncx * self.ncy + 1)
                                          ).astype(np.int64)


@njit(**JIT)
def _meets_box(ax, ay, bx, by, x0, y0, x1, y1):
    """Whether segment a-b meets the closed box [x0, x1] x [y0, y1] (Liang-Barsky)."""
    t0 = 0.0
    t1 = 1.0
    vx = bx - ax
    vy = by - ay
    for k in range(4):
        if k == 0:
            p, q = -vx, ax - x0
        elif k == 1:
            p, q = vx, x1 - ax
        elif k == 2:
            p, q = -vy, ay - y0
        else:
            p, q = vy, y1 - ay
        if p == 0.0:
            if q < 0.0:
                return False
        else:
            t = q / p
            if p < 0.0:
                if t > t1:
                    return False
                t0 = max(t0, t)
            else:
                if t < t0:
                    return False
                t1 = min(t1, t)
    return True


@njit(**JIT)
def _segment_status(ax, ay, az, bx, by, bz, c, margin, x0, y0, cell_m, ncx, ncy,
                    cell_start, cell_items, bbox, lim, edge_start, edges, kind):
    """0: the segment a-b keeps ``c + margin`` from every protected volume; 1: it may
    not (some point closer than ``c + margin`` horizontally while below ``lim``);
    2: a candidate footprint is not in ``edges`` (the caller asks GEOS).

    cell_start : (ncx*ncy + 1,) int64 and cell_items : int64, the footprints listed in
    each grid cell (CSR); bbox : (n, 4) float64 footprint boxes; lim : (n,) float64,
    roof + clearance [m AMSL]; edge_start : (n + 1,) int64 and edges : (E, 4) float64,
    every ring edge of each footprint (x0, y0, x1, y1); kind : (n,) uint8, 1 where the
    footprint's rings are in ``edges``.
    """
    r = c + margin
    r2 = r * r
    zmin = min(az, bz)
    seen = np.zeros(lim.shape[0], dtype=np.uint8)
    unsure = False
    pad = 2.0 * margin
    xa = min(ax, bx)
    xb = max(ax, bx)
    ci0 = max(0, min(ncx - 1, np.int64(np.floor((xa - pad - x0) / cell_m))))
    ci1 = max(0, min(ncx - 1, np.int64(np.floor((xb + pad - x0) / cell_m))))
    for ci in range(ci0, ci1 + 1):
        # the part of the segment inside this column of cells (padded)
        sx0 = max(xa, x0 + ci * cell_m - pad)
        sx1 = min(xb, x0 + (ci + 1) * cell_m + pad)
        if bx != ax:
            ya = ay + (sx0 - ax) / (bx - ax) * (by - ay)
            yb = ay + (sx1 - ax) / (bx - ax) * (by - ay)
            ylo = min(ya, yb)
            yhi = max(ya, yb)
        else:
            ylo = min(ay, by)
            yhi = max(ay, by)
        cj0 = max(0, min(ncy - 1, np.int64(np.floor((ylo - pad - y0) / cell_m))))
        cj1 = max(0, min(ncy - 1, np.int64(np.floor((yhi + pad - y0) / cell_m))))
        for cj in range(cj0, cj1 + 1):
            cell = ci * ncy + cj
            for m in range(cell_start[cell], cell_start[cell + 1]):
                b = cell_items[m]
                if seen[b]:
                    continue
                seen[b] = 1
                top = lim[b]
                if zmin >= top:
                    continue
                # the horizontal sub-segment where z < top
                px, py, qx, qy = ax, ay, bx, by
                if az >= top or bz >= top:
                    t = (top - az) / (bz - az)
                    mx = ax + t * (bx - ax)
                    my = ay + t * (by - ay)
                    if az < top:
                        qx, qy = mx, my
                    else:
                        px, py = mx, my
                if not _meets_box(px, py, qx, qy, bbox[b, 0] - r, bbox[b, 1] - r,
                                  bbox[b, 2] + r, bbox[b, 3] + r):
                    continue
                if kind[b] != 1:
                    unsure = True
                    continue
                inside = False
                for e in range(edge_start[b], edge_start[b + 1]):
                    ex0 = edges[e, 0]
                    ey0 = edges[e, 1]
                    ex1 = edges[e, 2]
                    ey1 = edges[e, 3]
                    if (ey0 > py) != (ey1 > py):
                        if px < (ex1 - ex0) * (py - ey0) / (ey1 - ey0) + ex0:
                            inside = not inside
                if inside:
                    return 1
                for e in range(edge_start[b], edge_start[b + 1]):
                    if seg_seg_dist2(px, py, qx, qy, edges[e, 0], edges[e, 1], edges[e, 2],
                                   edges[e, 3]) < r2:
                        return 1
    return 2 if unsure else 0
