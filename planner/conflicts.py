"""4D conflict detection between planned flights, bucketed in space and time (numba).

Definition
----------
Two flights are in *loss of separation* at a moment when, at that same moment, they are
closer than BOTH the horizontal minimum ``H`` (distance in the x-y plane) and the vertical
minimum ``V`` (difference of z), strictly. A *conflict* is a loss of separation lasting a
positive time (touching the minima exactly, e.g. parallel tracks exactly ``H`` apart, is
not a conflict; the minima are applied with a relative tolerance ``SEPARATION_RTOL`` of
1e-7 so that such touching cases stay out despite rounding).

Timing uncertainty (``time_buffer_s = b``): a drone may run early or late. Flights A and B
conflict under buffer ``b`` when there is a relative timing error ``tau`` in ``[-b, +b]``
such that A and B shifted by ``tau`` relative to each other lose separation. This is
implemented exactly, not by inflating the minima: for each pair of segments we compute the
set of relative shifts ``sigma`` (B's departure later than A's by ``sigma`` seconds) at
which the two segments lose separation. With both drones moving linearly, the region of
(time on A, time on B) where they lose separation is the intersection of a parallelogram
(the two segments' time spans), a slab (|dz| < V is linear) and an ellipse, strip or plane
(horizontal distance^2 < H^2 is a convex quadric); it is convex, so its projection onto
``sigma = t_A - t_B`` is one open interval ``(lo, hi)``. A segment pair conflicts under the
buffer when ``(lo, hi)`` meets ``[-b, b]``. The same intervals are what deconfliction needs:
departure delays act as relative shifts (see :mod:`planner.deconflict`).

Defaults (:class:`Separation`): 30 m horizontal, 10 m vertical, 5 s buffer. Basis: U-space
and UTM studies of small drones use horizontal minima of tens of metres (well-clear volumes
of 25-50 m around a multirotor at 10-15 m/s) and vertical separation of about 8-15 m, i.e.
a few times the GNSS vertical error plus the barometric drift; 30 m is 2.5 s of flight at
the 12 m/s cruise used in our fixtures, and 10 m equals one cruise layer spacing (so
adjacent layers are exactly separated, the boundary is not a conflict). 5 s covers the
take-off timing slack and wind-induced along-track error of a few per cent over a 10-minute
flight.

Algorithm
---------
1. Pack every segment into flat arrays (``p0, p1, t0, t1, owner``); zero-duration segments
   (a hover record with equal times) are dropped: their point is covered by neighbours.
2. Bucket: each segment is cut into pieces of at most half a cell; each piece's bounding
   box, inflated by ``H/2`` horizontally and ``V/2`` vertically, is entered in every bucket
   (horizontal cell of ``cell_m >= H`` x z-slice of ``V``) it touches, with the piece's time
   window (inflated by ``b/2``, and by the flight's delay range for deconfliction); entries
   of one segment in one bucket are merged. Two points closer than ``H`` and ``V`` have a
   midpoint within ``H/2`` and ``V/2`` of both, so they always share a bucket.
3. Candidate pairs: entries sorted by (cell, start time), swept per cell; pairs whose time
   windows and z ranges overlap, from different flights, deduplicated.
4. Exact test per candidate: the shift interval above (``_shift_interval``), then the
   closest-approach window at the reported shift (``tcpa_s``, ``dcpa_m``, ``t_in_s``,
   ``t_out_s``) computed in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from skytwin.airspace._jit import JIT
from skytwin.airspace.errors import AirspaceError
from skytwin.planner.trajectory import Trajectory

__all__ = [
    "SEPARATION_RTOL",
    "Conflict",
    "ConflictInputError",
    "SegmentTable",
    "Separation",
    "candidate_pairs",
    "detect",
    "pack_segments",
    "cross_pairs",
    "pairs_across",
    "shift_intervals",
]


SEPARATION_RTOL = 1e-7
"""The minima are tested as ``H (1 - 1e-7)`` and ``V (1 - 1e-7)`` (micrometres): flights
exactly at a minimum (adjacent layers, a descent starting exactly V below a cruise) touch
the boundary of the conflict region, and the shrink keeps rounding from reporting them."""


class ConflictInputError(AirspaceError, ValueError):
    """Bad input to conflict detection or deconfliction (separation, trajectories)."""


@dataclass(frozen=True)
class Separation:
    """Separation minima (see module docstring for the definition and basis).

    Attributes
    ----------
    horizontal_m : float
        Horizontal minimum [m], default 30.
    vertical_m : float
        Vertical minimum [m], default 10.
    time_buffer_s : float
        Timing uncertainty [s], default 5: relative timing errors up to this are assumed.
    """

    horizontal_m: float = 30.0
    vertical_m: float = 10.0
    time_buffer_s: float = 5.0

    def __post_init__(self):
        for name in ("horizontal_m", "vertical_m", "time_buffer_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise ConflictInputError(f"Separation.{name} must be a finite number, got {v!r}")
        if self.horizontal_m <= 0 or self.vertical_m <= 0:
            raise ConflictInputError(
                f"separation minima must be positive, got horizontal_m={self.horizontal_m}, "
                f"vertical_m={self.vertical_m}")
        if self.time_buffer_s < 0:
            raise ConflictInputError(
                f"Separation.time_buffer_s must be >= 0, got {self.time_buffer_s}")


@dataclass(frozen=True)
class Conflict:
    """A conflict between two flights.

    Attributes
    ----------
    flight_a, flight_b : str
        Flight ids (``flight_a`` comes first in the input list).
    t_start_s, t_end_s : float
        Window of the loss of separation on flight A's clock at shift ``shift_s``.
    min_h_m, min_v_m : float
        Smallest horizontal distance and smallest |dz| inside that window.
    shift_s : float
        Relative timing error (B later than A) at which they lose separation, the one
        nearest zero: 0 for a loss of separation as planned, otherwise within the buffer.
    """

    flight_a: str
    flight_b: str
    t_start_s: float
    t_end_s: float
    min_h_m: float
    min_v_m: float
    shift_s: float = 0.0


@dataclass
class SegmentTable:
    """All segments of a set of trajectories as flat arrays.

    Attributes
    ----------
    p0, p1 : (m, 3) float64 [m]
    t0, t1 : (m,) float64 [s], t1 > t0
    owner : (m,) int64, index of the trajectory in the input list
    """

    p0: np.ndarray
    p1: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    owner: np.ndarray


def pack_segments(trajectories) -> SegmentTable:
    """Pack trajectories into a :class:`SegmentTable` (zero-duration segments dropped)."""
    p0s, p1s, t0s, t1s, owners = [], [], [], [], []
    for k, tr in enumerate(trajectories):
        if not isinstance(tr, Trajectory):
            raise ConflictInputError(f"item {k} is a {type(tr).__name__}, not a Trajectory")
        keep = tr.t_s[1:] > tr.t_s[:-1]
        n = int(keep.sum())
        if n == keep.size:      # no hover: views (concatenated below), no masked copies
            keep = slice(None)
        p0s.append(tr.xyz_m[:-1][keep])
        p1s.append(tr.xyz_m[1:][keep])
        t0s.append(tr.t_s[:-1][keep])
        t1s.append(tr.t_s[1:][keep])
        owners.append(np.full(n, k, dtype=np.int64))
    if not p0s:
        z3 = np.zeros((0, 3))
        z1 = np.zeros(0)
        return SegmentTable(z3, z3.copy(), z1, z1.copy(), np.zeros(0, np.int64))
    return SegmentTable(np.concatenate(p0s), np.concatenate(p1s), np.concatenate(t0s),
                        np.concatenate(t1s), np.concatenate(owners))


# ----------------------------------------------------------------------------- kernels

@njit(**JIT)
def _piece_cells(x0, y0, z0, x1, y1, z1, cell_m, half_h_m, slice_m, half_v_m):
    """Cell and z-slice ranges touched by a piece's box inflated by (H/2, H/2, V/2)."""
    cx0 = int(math.floor((min(x0, x1) - half_h_m) / cell_m))
    cx1 = int(math.floor((max(x0, x1) + half_h_m) / cell_m))
    cy0 = int(math.floor((min(y0, y1) - half_h_m) / cell_m))
    cy1 = int(math.floor((max(y0, y1) + half_h_m) / cell_m))
    zs0 = min(max(int(math.floor((min(z0, z1) - half_v_m) / slice_m)) + 1024, 0), 2047)
    zs1 = min(max(int(math.floor((max(z0, z1) + half_v_m) / slice_m)) + 1024, 0), 2047)
    return cx0, cx1, cy0, cy1, zs0, zs1


@njit(**JIT)
def _count_entries(p0, p1, cell_m, half_h_m, slice_m, half_v_m):
    """Number of (bucket, piece) entries all segments make (see _fill_entries)."""
    m = p0.shape[0]
    total = 0
    for i in range(m):
        dx = p1[i, 0] - p0[i, 0]
        dy = p1[i, 1] - p0[i, 1]
        dz = p1[i, 2] - p0[i, 2]
        n_p = max(1, int(math.ceil(math.sqrt(dx * dx + dy * dy) / (0.5 * cell_m))))
        for k in range(n_p):
            s0 = k / n_p
            s1 = (k + 1) / n_p
            cx0, cx1, cy0, cy1, zs0, zs1 = _piece_cells(
                p0[i, 0] + s0 * dx, p0[i, 1] + s0 * dy, p0[i, 2] + s0 * dz,
                p0[i, 0] + s1 * dx, p0[i, 1] + s1 * dy, p0[i, 2] + s1 * dz,
                cell_m, half_h_m, slice_m, half_v_m)
            total += (cx1 - cx0 + 1) * (cy1 - cy0 + 1) * (zs1 - zs0 + 1)
    return total


@njit(**JIT)
def _fill_entries(p0, p1, t0, t1, pad_lo_s, pad_hi_s, cell_m, half_h_m, slice_m,
                  half_v_m, key, tlo, thi, zlo, zhi, seg):
    """Enter each segment piece into the buckets (cell x z-slice) its inflated box touches.

    p0, p1 : (m, 3) float64; t0, t1 : (m,) float64; pad_lo_s, pad_hi_s : (m,) float64,
    subtracted from / added to each piece's time window. Outputs (pre-sized by
    _count_entries): key (bucket id, int64), tlo, thi, zlo, zhi (float64), seg (int64).
    """
    m = p0.shape[0]
    e = 0
    for i in range(m):
        dx = p1[i, 0] - p0[i, 0]
        dy = p1[i, 1] - p0[i, 1]
        dz = p1[i, 2] - p0[i, 2]
        dt = t1[i] - t0[i]
        n_p = max(1, int(math.ceil(math.sqrt(dx * dx + dy * dy) / (0.5 * cell_m))))
        for k in range(n_p):
            s0 = k / n_p
            s1 = (k + 1) / n_p
            za = p0[i, 2] + s0 * dz
            zb = p0[i, 2] + s1 * dz
            ta = t0[i] + s0 * dt - pad_lo_s[i]
            tb = t0[i] + s1 * dt + pad_hi_s[i]
            cx0, cx1, cy0, cy1, zs0, zs1 = _piece_cells(
                p0[i, 0] + s0 * dx, p0[i, 1] + s0 * dy, za,
                p0[i, 0] + s1 * dx, p0[i, 1] + s1 * dy, zb,
                cell_m, half_h_m, slice_m, half_v_m)
            for cx in range(cx0, cx1 + 1):
                for cy in range(cy0, cy1 + 1):
                    for zs in range(zs0, zs1 + 1):
                        key[e] = ((cx + 1048576) * 2097152 + (cy + 1048576)) * 2048 + zs
                        tlo[e] = ta
                        thi[e] = tb
                        zlo[e] = min(za, zb) - half_v_m
                        zhi[e] = max(za, zb) + half_v_m
                        seg[e] = i
                        e += 1
    return e


@njit(**JIT)
def _merge_entries(key, tlo, thi, zlo, zhi, seg):
    """Merge entries of the same (bucket, segment); input sorted by (key, seg). In place,
    returns the new length."""
    n = key.shape[0]
    m = 0
    for i in range(n):
        if m > 0 and key[m - 1] == key[i] and seg[m - 1] == seg[i]:
            tlo[m - 1] = min(tlo[m - 1], tlo[i])
            thi[m - 1] = max(thi[m - 1], thi[i])
            zlo[m - 1] = min(zlo[m - 1], zlo[i])
            zhi[m - 1] = max(zhi[m - 1], zhi[i])
        else:
            key[m] = key[i]
            tlo[m] = tlo[i]
            thi[m] = thi[i]
            zlo[m] = zlo[i]
            zhi[m] = zhi[i]
            seg[m] = seg[i]
            m += 1
    return m


@njit(**JIT)
def _sweep_pairs(key, tlo, thi, zlo, zhi, seg, group, ptr, out_j, mode):
    """Pairs of entries in the same bucket whose time windows and z ranges overlap.

    Entries must be sorted by (key, tlo). group : (m_seg,) int64, segments of the same
    group (flight) never pair. mode 0: count pairs per lower segment id into ``ptr[si+1]``;
    mode 1: write the higher id at ``out_j[ptr[si]]`` and advance ``ptr[si]`` (a cursor
    copy of the CSR offsets). Pairs found in several buckets appear several times.
    """
    n = key.shape[0]
    a = 0
    while a < n:
        b = a
        while b < n and key[b] == key[a]:
            b += 1
        for i in range(a, b):
            si = seg[i]
            for j in range(i + 1, b):
                if tlo[j] > thi[i]:
                    break
                sj = seg[j]
                if group[si] == group[sj]:
                    continue
                if zlo[j] > zhi[i] or zlo[i] > zhi[j]:
                    continue
                lo_s = min(si, sj)
                hi_s = max(si, sj)
                if mode == 0:
                    ptr[lo_s + 1] += 1
                else:
                    out_j[ptr[lo_s]] = hi_s
                    ptr[lo_s] += 1
        a = b


@njit(**JIT)
def _dedupe_csr(ptr, out_j, m, oi, oj, fill):
    """Unique (i, j) from the CSR lists (ptr, out_j) using a last-seen marker; returns the
    count, writes oi/oj when ``fill``."""
    seen = np.full(m, -1, np.int64)
    c = 0
    for i in range(m):
        for q in range(ptr[i], ptr[i + 1]):
            j = out_j[q]
            if seen[j] != i:
                seen[j] = i
                if fill:
                    oi[c] = i
                    oj[c] = j
                c += 1
    return c


@njit(**JIT)
def _across(p0, p1, t0, t1, pad_lo_s, pad_hi_s, n_first, half_h_m, half_v_m, oi, oj):
    """Pairs (i < n_first <= j) whose boxes grown by (H/2, H/2, V/2) and time windows
    grown by the pads meet, in (i, j) order; returns their count (see
    :func:`pairs_across`)."""
    m = p0.shape[0]
    c = 0
    for i in range(n_first):
        ax0 = min(p0[i, 0], p1[i, 0]) - half_h_m
        ax1 = max(p0[i, 0], p1[i, 0]) + half_h_m
        ay0 = min(p0[i, 1], p1[i, 1]) - half_h_m
        ay1 = max(p0[i, 1], p1[i, 1]) + half_h_m
        az0 = min(p0[i, 2], p1[i, 2]) - half_v_m
        az1 = max(p0[i, 2], p1[i, 2]) + half_v_m
        ta = t0[i] - pad_lo_s[i]
        tb = t1[i] + pad_hi_s[i]
        for j in range(n_first, m):
            if t0[j] - pad_lo_s[j] > tb or t1[j] + pad_hi_s[j] < ta:
                continue
            if (min(p0[j, 0], p1[j, 0]) - half_h_m > ax1
                    or max(p0[j, 0], p1[j, 0]) + half_h_m < ax0
                    or min(p0[j, 1], p1[j, 1]) - half_h_m > ay1
                    or max(p0[j, 1], p1[j, 1]) + half_h_m < ay0
                    or min(p0[j, 2], p1[j, 2]) - half_v_m > az1
                    or max(p0[j, 2], p1[j, 2]) + half_v_m < az0):
                continue
            oi[c] = i
            oj[c] = j
            c += 1
    return c


@njit(**JIT)
def _clip(ps, pr, n, a, b, c, qs, qr):
    """Clip convex polygon (ps, pr)[:n] by the half-plane a*s + b*r <= c into (qs, qr)."""
    m = 0
    for k in range(n):
        k2 = (k + 1) % n
        f1 = a * ps[k] + b * pr[k] - c
        f2 = a * ps[k2] + b * pr[k2] - c
        if f1 <= 0.0:
            qs[m] = ps[k]
            qr[m] = pr[k]
            m += 1
        if (f1 < 0.0 < f2) or (f2 < 0.0 < f1):
            lam = f1 / (f1 - f2)
            qs[m] = ps[k] + lam * (ps[k2] - ps[k])
            qr[m] = pr[k] + lam * (pr[k2] - pr[k])
            m += 1
    return m


@njit(**JIT)
def _shift_interval(a0, a1, ta0, ta1, b0, b1, tb0, tb1, h_m, v_m):
    """Open interval (lo, hi) of shifts sigma = t_A - t_B at which two segments lose
    separation (A at time t_A, B at time t_B, same clock moment after shifting B by sigma).

    a0, a1, b0, b1 : (3,) float64 segment end points [m]; ta0 < ta1, tb0 < tb1 [s].
    Returns (lo, hi, found). Parameters s, r in [0, 1] run along A and B; the region
    {(s, r): |dz| < V, |dh| < H} is convex and sigma is linear in (s, r), so the extremes
    are among: polygon (square clipped by the |dz| slab) vertices inside the quadric,
    polygon-edge / quadric-boundary intersections, and the quadric's tangent points.
    """
    das = ta1 - ta0
    dbs = tb1 - tb0
    sig0 = ta0 - tb0
    cx = a0[0] - b0[0]
    cy = a0[1] - b0[1]
    cz = a0[2] - b0[2]
    ax = a1[0] - a0[0]
    ay = a1[1] - a0[1]
    az = a1[2] - a0[2]
    bx = b1[0] - b0[0]
    by = b1[1] - b0[1]
    bz = b1[2] - b0[2]
    h2 = h_m * h_m
    ps = np.empty(8)
    pr = np.empty(8)
    qs = np.empty(8)
    qr = np.empty(8)
    ps[0] = 0.0; pr[0] = 0.0
    ps[1] = 1.0; pr[1] = 0.0
    ps[2] = 1.0; pr[2] = 1.0
    ps[3] = 0.0; pr[3] = 1.0
    n = 4
    # vertical slab: -V <= cz + s*az - r*bz <= V
    if az == 0.0 and bz == 0.0:
        if not abs(cz) < v_m:
            return 0.0, 0.0, False
    else:
        n = _clip(ps, pr, n, az, -bz, v_m - cz, qs, qr)
        if n == 0:
            return 0.0, 0.0, False
        n = _clip(qs, qr, n, -az, bz, v_m + cz, ps, pr)
        if n == 0:
            return 0.0, 0.0, False
    # horizontal quadric f(s, r) = |c + s*A - r*B|^2 - H^2 (strictly < 0 inside)
    lo = np.inf
    hi = -np.inf
    na = ax * ax + ay * ay
    nb = bx * bx + by * by
    cross = ax * by - ay * bx
    if na == 0.0 and nb == 0.0:
        if not (cx * cx + cy * cy < h2):
            return 0.0, 0.0, False
        for k in range(n):
            sg = sig0 + ps[k] * das - pr[k] * dbs
            lo = min(lo, sg)
            hi = max(hi, sg)
        if hi - lo > 1e-9:
            return lo, hi, True
        return 0.0, 0.0, False
    scale2 = max(na, nb)
    if abs(cross) <= 1e-12 * scale2:
        # rank one: both moves parallel (or one static); the part of c across the motion
        # direction is fixed, and |c_perp| >= H means never strictly closer than H
        if na >= nb:
            ex = ax / math.sqrt(na)
            ey = ay / math.sqrt(na)
        else:
            ex = bx / math.sqrt(nb)
            ey = by / math.sqrt(nb)
        cperp = cx * ey - cy * ex
        if cperp * cperp >= h2:
            return 0.0, 0.0, False
    tol = 1e-9 * h2
    for k in range(n):
        fx = cx + ps[k] * ax - pr[k] * bx
        fy = cy + ps[k] * ay - pr[k] * by
        if fx * fx + fy * fy - h2 <= tol:
            sg = sig0 + ps[k] * das - pr[k] * dbs
            lo = min(lo, sg)
            hi = max(hi, sg)
    for k in range(n):
        k2 = (k + 1) % n
        # point(l) = P_k + l*(P_k2 - P_k); rel(l) = u + l*w
        ux = cx + ps[k] * ax - pr[k] * bx
        uy = cy + ps[k] * ay - pr[k] * by
        ds = ps[k2] - ps[k]
        dr = pr[k2] - pr[k]
        wx = ds * ax - dr * bx
        wy = ds * ay - dr * by
        qa = wx * wx + wy * wy
        qb = 2.0 * (ux * wx + uy * wy)
        qc = ux * ux + uy * uy - h2
        if qa <= 1e-15 * scale2:
            continue
        disc = qb * qb - 4.0 * qa * qc
        if disc < 0.0:
            continue
        sq = math.sqrt(disc)
        for root in ((-qb - sq) / (2.0 * qa), (-qb + sq) / (2.0 * qa)):
            if 0.0 <= root <= 1.0:
                s = ps[k] + root * ds
                r = pr[k] + root * dr
                sg = sig0 + s * das - r * dbs
                lo = min(lo, sg)
                hi = max(hi, sg)
    det = -ax * by + ay * bx  # det of M = [[ax, -bx], [ay, -by]]
    if abs(det) > 1e-12 * scale2:
        # x = M^-1 (H u - c), sigma = sig0 + g.x with g = (das, -dbs); extreme at
        # u = +- M^-T g / |M^-T g|
        # M^-1 = 1/det [[-by, bx], [-ay, ax]]
        gs = das
        gr = -dbs
        vx = (-by * gs - ay * gr) / det  # M^-T g
        vy = (bx * gs + ax * gr) / det
        nv = math.sqrt(vx * vx + vy * vy)
        if nv > 0.0:
            for sgn in (-1.0, 1.0):
                ux = sgn * h_m * vx / nv - cx
                uy = sgn * h_m * vy / nv - cy
                s = (-by * ux + bx * uy) / det
                r = (-ay * ux + ax * uy) / det
                inside = True
                for k in range(n):
                    k2 = (k + 1) % n
                    # polygon is counter-clockwise: inside is left of every edge
                    crs = (ps[k2] - ps[k]) * (r - pr[k]) - (pr[k2] - pr[k]) * (s - ps[k])
                    if crs < -1e-12:
                        inside = False
                        break
                if inside:
                    sg = sig0 + s * das - r * dbs
                    lo = min(lo, sg)
                    hi = max(hi, sg)
    if hi - lo > 1e-9:
        return lo, hi, True
    return 0.0, 0.0, False


@njit(**JIT)
def _window(a0, a1, ta0, ta1, b0, b1, tb0, tb1, shift_s, h_m, v_m):
    """Loss-of-separation window when B runs ``shift_s`` later (t on A's clock).

    Closed form: relative horizontal position p + q*t gives tcpa_s = -p.q/|q|^2 and
    dcpa_m; |dh| < H on (tcpa_s -+ half); |dz| < V is linear. Returns
    (t_in_s, t_out_s, min_h_m, min_v_m, found).
    """
    lo = max(ta0, tb0 + shift_s)
    hi = min(ta1, tb1 + shift_s)
    if not hi > lo:
        return 0.0, 0.0, 0.0, 0.0, False
    va = (a1 - a0) / (ta1 - ta0)
    vb = (b1 - b0) / (tb1 - tb0)
    pa = a0 + va * (lo - ta0)
    pb = b0 + vb * (lo - shift_s - tb0)
    px = pa[0] - pb[0]
    py = pa[1] - pb[1]
    pz = pa[2] - pb[2]
    qx = va[0] - vb[0]
    qy = va[1] - vb[1]
    qz = va[2] - vb[2]
    dur = hi - lo
    t_in = 0.0
    t_out = dur
    q2 = qx * qx + qy * qy
    if q2 == 0.0:
        tcpa_s = 0.0
        if not (px * px + py * py < h_m * h_m):
            return 0.0, 0.0, 0.0, 0.0, False
    else:
        tcpa_s = -(px * qx + py * qy) / q2
        dx = px + qx * tcpa_s
        dy = py + qy * tcpa_s
        dcpa2 = dx * dx + dy * dy
        if dcpa2 >= h_m * h_m:
            return 0.0, 0.0, 0.0, 0.0, False
        half = math.sqrt((h_m * h_m - dcpa2) / q2)
        t_in = max(t_in, tcpa_s - half)
        t_out = min(t_out, tcpa_s + half)
    if qz == 0.0:
        if not abs(pz) < v_m:
            return 0.0, 0.0, 0.0, 0.0, False
    else:
        z1 = (-v_m - pz) / qz
        z2 = (v_m - pz) / qz
        t_in = max(t_in, min(z1, z2))
        t_out = min(t_out, max(z1, z2))
    if not t_out > t_in:
        return 0.0, 0.0, 0.0, 0.0, False
    tc = min(max(tcpa_s, t_in), t_out)
    dx = px + qx * tc
    dy = py + qy * tc
    min_h = math.sqrt(dx * dx + dy * dy)
    za = pz + qz * t_in
    zb = pz + qz * t_out
    if za * zb <= 0.0:
        min_v = 0.0
    else:
        min_v = min(abs(za), abs(zb))
    return lo + t_in, lo + t_out, min_h, min_v, True


@njit(**JIT)
def _intervals(p0, p1, t0, t1, pi, pj, h_m, v_m, lo_out, hi_out, ok_out):
    """Shift interval for each candidate pair (pi[k], pj[k]); see _shift_interval."""
    for k in range(pi.shape[0]):
        i = pi[k]
        j = pj[k]
        lo, hi, ok = _shift_interval(p0[i], p1[i], t0[i], t1[i], p0[j], p1[j], t0[j], t1[j],
                                     h_m, v_m)
        lo_out[k] = lo
        hi_out[k] = hi
        ok_out[k] = ok


@njit(**JIT)
def _windows(p0, p1, t0, t1, pi, pj, shift, h_m, v_m, out):
    """Closest-approach window for each pair at its shift; out : (k, 5) float64."""
    for k in range(pi.shape[0]):
        i = pi[k]
        j = pj[k]
        a, b, c, d, ok = _window(p0[i], p1[i], t0[i], t1[i], p0[j], p1[j], t0[j], t1[j],
                                 shift[k], h_m, v_m)
        out[k, 0] = a
        out[k, 1] = b
        out[k, 2] = c
        out[k, 3] = d
        out[k, 4] = 1.0 if ok else 0.0


# ----------------------------------------------------------------------------- public

def candidate_pairs(segs: SegmentTable, group: np.ndarray, sep: Separation,
                    pad_lo_s: np.ndarray, pad_hi_s: np.ndarray,
                    cell_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Segment pairs (i < j) that may lose separation, from the space-time buckets.

    Parameters
    ----------
    segs : SegmentTable
    group : (m_traj,) int64
        Group of each trajectory; segments of trajectories in the same group never pair
        (options of one flight).
    sep : Separation
    pad_lo_s, pad_hi_s : (m_seg,) float64 [s]
        Widening of each segment's time windows (buffer/2, plus the delay range on the
        late side for deconfliction).
    cell_m : float, optional
        Bucket size, default ``max(4 H, 100 m)``; must be >= H.
    """
    cell = float(cell_m) if cell_m is not None else max(4.0 * sep.horizontal_m, 100.0)
    if cell < sep.horizontal_m:
        raise ConflictInputError(f"cell_m ({cell}) must be >= horizontal_m "
                                 f"({sep.horizontal_m})")
    m = segs.t0.shape[0]
    if m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    half_h = 0.5 * sep.horizontal_m
    half_v = 0.5 * sep.vertical_m
    slice_m = float(sep.vertical_m)
    n = _count_entries(segs.p0, segs.p1, cell, half_h, slice_m, half_v)
    key = np.empty(n, np.int64)
    tlo = np.empty(n)
    thi = np.empty(n)
    zlo = np.empty(n)
    zhi = np.empty(n)
    seg = np.empty(n, np.int64)
    _fill_entries(segs.p0, segs.p1, segs.t0, segs.t1, np.asarray(pad_lo_s, np.float64),
                  np.asarray(pad_hi_s, np.float64), cell, half_h, slice_m, half_v,
                  key, tlo, thi, zlo, zhi, seg)
    order = np.lexsort((seg, key))
    key, tlo, thi, zlo, zhi, seg = (a[order] for a in (key, tlo, thi, zlo, zhi, seg))
    n = _merge_entries(key, tlo, thi, zlo, zhi, seg)
    key, tlo, thi, zlo, zhi, seg = (a[:n] for a in (key, tlo, thi, zlo, zhi, seg))
    order = np.lexsort((tlo, key))
    key, tlo, thi, zlo, zhi, seg = (a[order] for a in (key, tlo, thi, zlo, zhi, seg))
    seg_group = np.asarray(group, np.int64)[segs.owner]
    # two sweeps into a CSR of partners per lower segment id, then dedupe in O(pairs)
    ptr = np.zeros(m + 1, np.int64)
    dummy = np.empty(0, np.int32)
    _sweep_pairs(key, tlo, thi, zlo, zhi, seg, seg_group, ptr, dummy, 0)
    ptr = np.cumsum(ptr)
    out_j = np.empty(ptr[-1], np.int32 if m < 2**31 else np.int64)
    cursor = ptr.copy()
    _sweep_pairs(key, tlo, thi, zlo, zhi, seg, seg_group, cursor, out_j, 1)
    e = np.empty(0, np.int64)
    c = _dedupe_csr(ptr, out_j, m, e, e, False)
    oi = np.empty(c, np.int64)
    oj = np.empty(c, np.int64)
    _dedupe_csr(ptr, out_j, m, oi, oj, True)
    return oi, oj


ACROSS_MAX_TESTS = 1 << 18
"""Largest ``n_first x (m - n_first)`` :func:`pairs_across` tests one by one (beyond it
:func:`candidate_pairs`' buckets are cheaper)."""


def pairs_across(segs: SegmentTable, n_first: int, sep: Separation,
                 pad_lo_s: np.ndarray, pad_hi_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment pairs ``(i, j)``, ``i < n_first <= j``, that may lose separation: the
    pairs between two groups (segments ``[0, n_first)`` and the rest; no pair within a
    group), tested one by one. For :func:`planner.deconflict.place`: a few option
    segments against the accepted segments near them, where sorting every segment into
    buckets (:func:`candidate_pairs`) costs more than testing each pair.

    A pair is returned when the segments' bounding boxes, each grown by ``H/2``
    horizontally and ``V/2`` vertically, meet and their time windows, grown by the
    pads as in :func:`candidate_pairs`, overlap. Conservative, like the buckets: two
    points of the segments less than ``H`` apart horizontally are less than ``H``
    apart in x and in y, so the grown boxes meet in x and y (likewise ``V`` in z), at
    times inside both grown windows. It may return more pairs than the buckets (a long
    diagonal segment's box is large); :func:`shift_intervals` decides each one exactly,
    so the exclusion rows built from either are the same. Sorted by ``(i, j)``.
    Memory: 16 bytes per pair tested (``n_first x (m - n_first)``; :func:`cross_pairs`
    bounds it with :data:`ACROSS_MAX_TESTS`).
    """
    m = segs.t0.shape[0]
    n_first = int(n_first)
    if not 0 <= n_first <= m:
        raise ConflictInputError(f"n_first must be within 0..{m}, got {n_first}")
    size = n_first * (m - n_first)
    oi = np.empty(size, np.int64)
    oj = np.empty(size, np.int64)
    c = _across(segs.p0, segs.p1, segs.t0, segs.t1, np.asarray(pad_lo_s, np.float64),
                np.asarray(pad_hi_s, np.float64), n_first, 0.5 * sep.horizontal_m,
                0.5 * sep.vertical_m, oi, oj)
    return oi[:c], oj[:c]


def cross_pairs(segs: SegmentTable, n_first: int, sep: Separation, pad_lo_s: np.ndarray,
                pad_hi_s: np.ndarray, cell_m: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs between segments ``[0, n_first)`` and the rest, never within
    either (one flight's options or route against the traffic near it:
    :func:`planner.deconflict.place`, the live resolver): :func:`pairs_across` when it
    tests at most :data:`ACROSS_MAX_TESTS` pairs, else :func:`candidate_pairs` with
    those two groups. Both conservative, sorted by ``(i, j)``. The first ``n_first``
    segments must be all those of their trajectories (as :func:`pack_segments` lays
    them out)."""
    m = segs.t0.shape[0]
    if n_first * (m - n_first) <= ACROSS_MAX_TESTS:
        return pairs_across(segs, n_first, sep, pad_lo_s, pad_hi_s)
    group = np.ones(int(segs.owner.max()) + 1, np.int64)
    group[segs.owner[:n_first]] = 0
    return candidate_pairs(segs, group, sep, pad_lo_s, pad_hi_s, cell_m=cell_m)


def shift_intervals(segs: SegmentTable, pi: np.ndarray, pj: np.ndarray,
                    sep: Separation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact shift intervals (lo, hi) [s] of segment pairs (B = pj later than A = pi).

    Returns ``lo, hi, found``; a pair loses separation when B runs ``sigma`` seconds later
    than planned relative to A, for every ``sigma`` in the open interval ``(lo, hi)``.
    """
    k = pi.shape[0]
    lo = np.empty(k)
    hi = np.empty(k)
    ok = np.empty(k, np.bool_)
    if k:
        _intervals(segs.p0, segs.p1, segs.t0, segs.t1, pi, pj,
                   float(sep.horizontal_m) * (1.0 - SEPARATION_RTOL),
                   float(sep.vertical_m) * (1.0 - SEPARATION_RTOL), lo, hi, ok)
    return lo, hi, ok


def detect(trajectories, sep: Separation | None = None) -> list[Conflict]:
    """All conflicting flight pairs (see module docstring for the definition).

    Parameters
    ----------
    trajectories : sequence of Trajectory
        Flight ids must be unique.
    sep : Separation, optional
        Defaults to ``Separation()`` (30 m, 10 m, 5 s).

    Returns
    -------
    list of Conflict
        One per conflicting pair, sorted by (index of A, index of B), A before B in the
        input.

    Raises
    ------
    ConflictInputError
        An item is not a Trajectory, ids repeat, or the separation is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from skytwin.planner.trajectory import Trajectory
    >>> a = Trajectory("a", [[0, 0, 50], [1200, 0, 50]], [0, 100])
    >>> b = Trajectory("b", [[1200, 0, 50], [0, 0, 50]], [0, 100])
    >>> c = detect([a, b], Separation(30, 10, 0))[0]
    >>> (c.flight_a, c.flight_b, round(c.t_start_s, 3), round(c.t_end_s, 3))
    ('a', 'b', 48.75, 51.25)
    >>> b60 = Trajectory("b60", [[1200, 0, 60], [0, 0, 60]], [0, 100])
    >>> detect([a, b60], Separation(30, 10, 0))  # exactly 10 m apart: no conflict
    []
    """
    sep = Separation() if sep is None else sep
    if not isinstance(sep, Separation):
        raise ConflictInputError(f"sep must be a Separation, got {type(sep).__name__}")
    trajectories = list(trajectories)
    ids = [getattr(t, "flight_id", None) for t in trajectories]
    if len(set(ids)) != len(ids):
        raise ConflictInputError("flight ids must be unique")
    segs = pack_segments(trajectories)
    m = segs.t0.shape[0]
    pad = np.full(m, 0.5 * sep.time_buffer_s)
    pi, pj = candidate_pairs(segs, np.arange(len(trajectories)), sep, pad, pad)
    lo, hi, ok = shift_intervals(segs, pi, pj, sep)
    b = sep.time_buffer_s
    # sigma here = t_A - t_B; a relative timing error tau in [-b, b] meets (lo, hi)
    hit = ok & (lo < b) & (hi > -b)
    pi, pj, lo, hi = pi[hit], pj[hit], lo[hit], hi[hit]
    if pi.size == 0:
        return []
    # shift nearest zero, nudged strictly inside the open interval
    eps = np.minimum(1e-6, 0.25 * (hi - lo))
    shift = np.clip(0.0, lo + eps, hi - eps)
    out = np.empty((pi.size, 5))
    # shift = B's lateness: A at t, B at t - shift on its own clock
    _windows(segs.p0, segs.p1, segs.t0, segs.t1, pi, pj, shift, float(sep.horizontal_m),
             float(sep.vertical_m), out)
    fa = segs.owner[pi]
    fb = segs.owner[pj]
    result: dict[tuple[int, int], list] = {}
    for k in range(pi.size):
        key = (int(fa[k]), int(fb[k]))
        t_in, t_out, mh, mv = out[k, 0], out[k, 1], out[k, 2], out[k, 3]
        if key[0] > key[1]:
            key = (key[1], key[0])
        cur = result.get(key)
        sh = float(shift[k]) if abs(shift[k]) > 1e-6 else 0.0
        if cur is None:
            result[key] = [t_in, t_out, mh, mv, sh]
        else:
            if abs(sh) < abs(cur[4]):
                cur[:] = [t_in, t_out, mh, mv, sh]
            elif abs(sh) == abs(cur[4]):
                cur[0] = min(cur[0], t_in)
                cur[1] = max(cur[1], t_out)
                cur[2] = min(cur[2], mh)
                cur[3] = min(cur[3], mv)
    return [Conflict(ids[a], ids[b2], float(v[0]), float(v[1]), float(v[2]), float(v[3]),
                     float(v[4]))
            for (a, b2), v in sorted(result.items())]
