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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point

__all__ = ["ExactChecker", "Violation"]


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
