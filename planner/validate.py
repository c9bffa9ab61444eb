"""Independent route validator: re-checks a finished route with its own code path.

Used by the tests (thousands of random routes in every city) and available to the
service as a last guard. It shares no code with :mod:`planner.exact` or
:mod:`planner.route`: its own R-tree (the ``rtree`` package, not shapely's STRtree) over
building footprints, its own segment clipping, and ``shapely.dwithin`` (not
``distance``) for the horizontal test. The rules it checks are the product's promises:

* every airborne segment keeps ``clearance_m`` from every building, under the protected
  volume definition of :mod:`planner.exact` (horizontal distance < c while below
  roof + c is a violation);
* take-off and landing are vertical and start/end on the ground outside every
  footprint;
* waypoints are on the 1 cm lattice;
* times never decrease and no speed limit is exceeded;
* no segment enters an active no-fly volume during the time the drone flies it.

Threads. One validator may be shared by several threads (the service core's is used by
the bookings and by the live hub's resolver). libspatialindex is not safe even for
concurrent *queries* on one index (they share its node pool: wrong ids, numpy errors
such as "operands could not be broadcast together" in :meth:`RouteValidator._candidates`,
or a segfault), so every R-tree query holds the validator's own lock; the rest of a
check (shapely's read-only tests on immutable geometry) runs in parallel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import rtree
import shapely
from shapely.geometry import LineString, Point

__all__ = ["RouteValidator", "ValidationReport"]


@dataclass
class ValidationReport:
    """Every problem found (empty when the route is valid)."""

    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        return "valid" if self.ok else "; ".join(self.problems[:10])


class RouteValidator:
    """Validator for routes in one twin (buildings and clearance taken from it)."""

    #: horizontal length of the pieces a segment is cut into for the R-tree query
    PIECE_M = 50.0
    #: margins (m) added to the pieces' boxes and to the altitude filter; they only add
    #: candidates (far above float64 rounding of coordinates ~1e4 m, ~1e-12 m)
    _MARGIN_M = 1e-6

    def __init__(self, buildings, clearance_m: float, *, _whole_box: bool = False):
        self.clearance_m = float(clearance_m)
        # True: the old selection (the R-tree over the segment's whole box), kept for
        # the tests that compare both and for the benchmark
        self._whole_box = bool(_whole_box)
        self.geoms = [b.footprint for b in buildings]
        self.tops = np.array([b.top_m for b in buildings], dtype=np.float64)
        self.ids = [b.id for b in buildings]
        props = rtree.index.Property()
        props.dimension = 2

        def stream():
            for n, g in enumerate(self.geoms):
                yield (n, g.bounds, None)

        self.idx = rtree.index.Index(stream(), properties=props) if self.geoms else \
            rtree.index.Index(properties=props)
        # every query of ``idx`` holds this (module docstring, Threads)
        self._idx_lock = threading.Lock()

    def _query(self, coords) -> list:
        """Ids of the footprint boxes meeting ``coords`` (one R-tree query, locked)."""
        with self._idx_lock:
            return list(self.idx.intersection(coords))

    def _query_v(self, mins, maxs):
        """``idx.intersection_v(mins, maxs)`` (one bulk R-tree query, locked)."""
        with self._idx_lock:
            return self.idx.intersection_v(mins, maxs)

    def _candidates(self, p0, p1):
        """Indices (ascending) of the buildings the exact test must see for ``p0 -> p1``.

        The segment's horizontal projection is cut at ``k = ceil(L / PIECE_M)`` equally
        spaced parameters ``0 = f_0 < ... < f_k = 1`` (end points set exactly to ``p0``,
        ``p1``); piece ``q`` covers parameters ``[f_q, f_q+1]``. A building is kept when,
        for some piece ``q``, (a) its footprint's box meets piece ``q``'s xy box expanded
        by ``c + m`` (``m`` = ``_MARGIN_M``) and (b) ``top + c + m > min(z(f_q), z(f_q+1))``.

        Proof that no building the exact test would flag is dropped. The exact test
        flags building ``n`` only if (i) the part of the segment below ``top_n + c`` is
        not empty and (ii) that part comes within ``c (1 - 1e-9) < c`` of the footprint,
        i.e. some point ``P = P(t)`` of the segment has ``z(t) <= top_n + c`` and a
        footprint point ``Q`` with ``|P_xy - Q| < c``. ``t`` lies in some piece
        ``[f_q, f_q+1]``. (a) ``P_xy`` is in piece ``q``'s xy box (the box of its two
        end points contains the straight piece between them), so ``Q``, less than ``c``
        away in both x and y, is inside that box expanded by ``c``; ``Q`` is in the
        footprint's box, so the two boxes meet (the R-tree's test is inclusive).
        (b) ``z`` is linear in ``t``, so its minimum over the piece is at an end point:
        ``min(z(f_q), z(f_q+1)) <= z(t) <= top_n + c < top_n + c + m``. Both hold for
        piece ``q``, so ``n`` is kept. Float rounding of the piece end points and of the
        clip point (~1e-12 m at 1e4 m coordinates) is covered by ``m`` = 1e-6 m. The
        candidates then go through the unchanged exact test, so the verdicts and the
        violations are those of the whole-box selection (which, by (a) with the whole
        segment as one piece, also holds every building the exact test can flag).
        """
        c = self.clearance_m
        e = c + self._MARGIN_M
        d = p1 - p0
        L = float(np.hypot(d[0], d[1]))
        k = max(1, int(np.ceil(L / self.PIECE_M)))
        f = np.linspace(0.0, 1.0, k + 1)
        pts = p0[None, :] + f[:, None] * d[None, :]
        pts[0], pts[-1] = p0, p1
        a, b = pts[:-1], pts[1:]
        mins = np.minimum(a[:, :2], b[:, :2]) - e
        maxs = np.maximum(a[:, :2], b[:, :2]) + e
        zmin = np.minimum(a[:, 2], b[:, 2])
        ids, counts = self._query_v(mins, maxs)
        if len(ids) == 0:
            return []
        ids = np.asarray(ids, dtype=np.int64)
        zq = np.repeat(zmin, np.asarray(counts, dtype=np.int64))
        keep = ids[self.tops[ids] + e > zq]
        return np.unique(keep).tolist()

    def check(self, xyz_m, t_s=None, speeds=None, zones=(),
              ground_range=None, buildings=True) -> ValidationReport:
        """Validate a route polyline ``(n, 3)`` (and optionally its times and zones).

        ``zones`` are :class:`airspace.zones.LocalZone` objects; ``ground_range(x0, y0,
        x1, y1) -> (min_m, max_m)`` bounds the ground under a segment for AGL limits
        (default: ground at 0 m AMSL). ``buildings=False`` skips the take-off, landing
        and clearance tests against the footprints (for waypoints that already passed
        them: the footprints never change), keeping the shape, times, speeds and zones.
        """
        rep = ValidationReport()
        xyz = np.asarray(xyz_m, dtype=np.float64)
        if len(xyz) < 4:
            rep.problems.append(f"a route has take-off, cruise and landing: got {len(xyz)} "
                                "waypoints")
            return rep
        if np.any(np.abs(xyz * 100.0 - np.round(xyz * 100.0)) > 1e-6):
            rep.problems.append("waypoints are not on the 1 cm lattice")
        # take-off and landing: vertical, outside every footprint
        for a, b, name in ((0, 1, "take-off"), (-1, -2, "landing")) if buildings else ():
            if not _close2(xyz[a], xyz[b], 1e-9):
                rep.problems.append(f"{name} is not vertical")
            p = Point(xyz[a, 0], xyz[a, 1])
            for n in self._query(p.bounds):
                if self.geoms[n].intersects(p) and xyz[a, 2] < self.tops[n]:
                    rep.problems.append(f"{name} point is inside building {self.ids[n]}")
        c = self.clearance_m
        for s in range(1, len(xyz) - 2 if buildings else 1):
            p0, p1 = xyz[s], xyz[s + 1]
            if self._whole_box:
                box = (min(p0[0], p1[0]) - c, min(p0[1], p1[1]) - c,
                       max(p0[0], p1[0]) + c, max(p0[1], p1[1]) + c)
                cands = self._query(box)
            else:
                cands = self._candidates(p0, p1)
            for n in cands:
                part = _clip_below(p0, p1, self.tops[n] + c)
                if part is None:
                    continue
                g = LineString(part) if not _close2(part[0], part[1], 1e-8) else Point(part[0])
                # dwithin is "distance <= c"; equality is allowed by the promise, so
                # test a hair inside c to avoid flagging exact-boundary touches
                if shapely.dwithin(g, self.geoms[n], c * (1 - 1e-9)):
                    rep.problems.append(f"segment {s} within {c} m of building "
                                        f"{self.ids[n]} below its roof + {c} m")
        if t_s is not None:
            t = np.asarray(t_s, dtype=np.float64)
            dt = np.diff(t)
            if np.any(dt < 0):
                rep.problems.append("times decrease")
            if speeds is not None:
                d = np.diff(xyz, axis=0)
                h = np.hypot(d[:, 0], d[:, 1])
                # distance allowed in dt at the limit; times near 1.8e9 s carry ~2.4e-7 s
                # of float64 rounding, so allow 1 microsecond of slack per segment
                slack = dt + 1e-6
                if np.any(h > speeds.cruise_mps * slack):
                    rep.problems.append("horizontal speed limit exceeded")
                if np.any(d[:, 2] > speeds.climb_mps * slack) or \
                        np.any(-d[:, 2] > speeds.descent_mps * slack):
                    rep.problems.append("vertical speed limit exceeded")
            gr = ground_range or (lambda *a: (0.0, 0.0))
            for z in zones:
                hit = _zone_hit(z, xyz, t, gr)
                if hit is not None:
                    rep.problems.append(f"segment {hit} enters no-fly volume {z.id} while it "
                                        "is active")
        return rep


def _close2(p, q, atol):
    """``np.allclose(p[:2], q[:2], atol=atol)`` (rtol 1e-5) for two 2D points, without
    numpy's overhead on a 2-element array.

    >>> import numpy as np
    >>> pts = [(0.0, 0.0), (1e-9, 0.0), (2e-9, 0.0), (1e5, 3.0), (1e5 + 1.0, 3.0), (1e5 + 1.1, 3.0)]
    >>> all(_close2(a, b, 1e-9) == np.allclose(a, b, atol=1e-9) for a in pts for b in pts)
    True
    """
    return (abs(p[0] - q[0]) <= atol + 1e-5 * abs(q[0])
            and abs(p[1] - q[1]) <= atol + 1e-5 * abs(q[1]))


def _clip_below(p0, p1, lim):
    z0, z1 = p0[2], p1[2]
    if z0 >= lim and z1 >= lim:
        return None
    if z0 < lim and z1 < lim:
        return [tuple(p0[:2]), tuple(p1[:2])]
    f = (lim - z0) / (z1 - z0)
    m = (p0[0] + f * (p1[0] - p0[0]), p0[1] + f * (p1[1] - p0[1]))
    return [tuple(p0[:2]), m] if z0 < lim else [m, tuple(p1[:2])]


def _zone_hit(lz, xyz, t, ground_range):
    """Index of the first segment that meets local zone ``lz`` while it is active."""
    z = lz.zone
    # only segments whose 2D box meets the zone's box can meet the zone (every piece
    # tested below lies within its segment's box): a prefilter, closed intervals
    bx0, by0, bx1, by1 = lz.bounds_m
    x0, x1, y0, y1 = xyz[:-1, 0], xyz[1:, 0], xyz[:-1, 1], xyz[1:, 1]
    near = ((np.minimum(x0, x1) <= bx1) & (np.maximum(x0, x1) >= bx0)
            & (np.minimum(y0, y1) <= by1) & (np.maximum(y0, y1) >= by0))
    for s in np.flatnonzero(near).tolist():
        if not z.active_during(float(t[s]), float(t[s + 1])):
            continue
        p0, p1 = xyz[s], xyz[s + 1]
        g_lo, g_hi = ground_range(p0[0], p0[1], p1[0], p1[1])
        lo = z.lower.value_m + (g_lo if z.lower.reference == "AGL" else 0.0)
        hi = z.upper.value_m + (g_hi if z.upper.reference == "AGL" else 0.0)
        dz = p1[2] - p0[2]
        if dz == 0.0:
            if not (lo <= p0[2] <= hi):
                continue
            ta, tb = 0.0, 1.0
        else:
            ta, tb = sorted(((lo - p0[2]) / dz, (hi - p0[2]) / dz))
            ta, tb = max(ta, 0.0), min(tb, 1.0)
            if ta > tb:
                continue
        a = p0[:2] + ta * (p1[:2] - p0[:2])
        b = p0[:2] + tb * (p1[:2] - p0[:2])
        if lz.centre_m is not None:
            c = np.asarray(lz.centre_m, dtype=np.float64)
            ab = b - a
            L2 = float(ab @ ab)
            u = 0.0 if L2 == 0.0 else float(np.clip((c - a) @ ab / L2, 0.0, 1.0))
            if float(np.hypot(*(a + u * ab - c))) <= lz.radius_m:
                return s
        else:
            piece = Point(a) if np.array_equal(a, b) else LineString([a, b])
            if lz.shape.intersects(piece):
                return s
    return None
