"""Brute-force oracles for planner.conflicts: every flight pair, every segment pair.

Written differently from the detector on purpose: the region where two segments lose
separation is described in (u, w) = (time on A, time on B) coordinates, and its extreme
points are found by enumerating every intersection of its boundary curves (the four time
limits, the two |dz| = V lines, the |dh| = H conic) plus the conic's tangent points, keeping
those that satisfy every constraint. No bucketing, no clipping.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

TOL = 1e-7


def _segments(tr):
    out = []
    for k in range(len(tr.t_s) - 1):
        if tr.t_s[k + 1] > tr.t_s[k]:
            out.append((tr.xyz_m[k], tr.xyz_m[k + 1], tr.t_s[k], tr.t_s[k + 1]))
    return out


def shift_interval(a, b, h_m, v_m):
    """(lo, hi) of shifts sigma (B later than A) at which segments a, b lose separation,
    or None. a, b = (p0, p1, t0, t1)."""
    a0, a1, ta0, ta1 = a
    b0, b1, tb0, tb1 = b
    # work in times relative to the earlier start: the shift is a difference of times,
    # and TOL is absolute (below the spacing of doubles at Unix epoch seconds)
    ref = min(ta0, tb0)
    ta0, ta1, tb0, tb1 = ta0 - ref, ta1 - ref, tb0 - ref, tb1 - ref
    va = (np.asarray(a1) - a0) / (ta1 - ta0)
    vb = (np.asarray(b1) - b0) / (tb1 - tb0)
    # rel(u, w) = c + u*va - w*vb
    c = np.asarray(a0, float) - va * ta0 - (np.asarray(b0, float) - vb * tb0)
    # lines as (n, k): n . (u, w) = k
    lines = [((1.0, 0.0), ta0), ((1.0, 0.0), ta1), ((0.0, 1.0), tb0), ((0.0, 1.0), tb1)]
    gz = (va[2], -vb[2])
    if gz == (0.0, 0.0):
        if not abs(c[2]) < v_m:
            return None
    else:
        lines += [(gz, v_m - c[2]), (gz, -v_m - c[2])]
    mh = np.array([[va[0], -vb[0]], [va[1], -vb[1]]])
    ch = c[:2]
    if not mh.any():
        if not ch @ ch < h_m * h_m:
            return None
    elif abs(np.linalg.det(mh)) <= 1e-12 * max(1.0, np.abs(mh).max() ** 2):
        col = mh[:, 0] if np.linalg.norm(mh[:, 0]) >= np.linalg.norm(mh[:, 1]) else mh[:, 1]
        e = col / np.linalg.norm(col)
        if (ch[0] * e[1] - ch[1] * e[0]) ** 2 >= h_m * h_m:
            return None

    def feasible(x):
        u, w = x
        if not (ta0 - TOL <= u <= ta1 + TOL and tb0 - TOL <= w <= tb1 + TOL):
            return False
        rel = c + u * va - w * vb
        if abs(rel[2]) > v_m + TOL:
            return False
        return rel[0] ** 2 + rel[1] ** 2 <= h_m * h_m * (1 + 1e-9) + TOL

    cands = []
    for (n1, k1), (n2, k2) in itertools.combinations(lines, 2):
        m = np.array([n1, n2], float)
        if abs(np.linalg.det(m)) > 1e-12:
            cands.append(np.linalg.solve(m, [k1, k2]))
    for n, k in lines:
        n = np.asarray(n, float)
        p = n * k / (n @ n)            # a point on the line
        d = np.array([-n[1], n[0]])    # its direction
        # |ch + mh (p + l d)|^2 = H^2
        u0 = ch + mh @ p
        w0 = mh @ d
        qa, qb, qc = w0 @ w0, 2 * u0 @ w0, u0 @ u0 - h_m * h_m
        if qa > 1e-15:
            disc = qb * qb - 4 * qa * qc
            if disc >= 0:
                for lam in ((-qb - math.sqrt(disc)) / (2 * qa),
                            (-qb + math.sqrt(disc)) / (2 * qa)):
                    cands.append(p + lam * d)
        elif not mh.any() or qc <= 0:
            cands.append(p)  # whole line inside or outside: its intersections cover it
    if abs(np.linalg.det(mh)) > 1e-12 * max(1.0, np.abs(mh).max() ** 2):
        g = np.array([1.0, -1.0])
        y = np.linalg.solve(mh.T, g)
        for sgn in (-1, 1):
            target = sgn * h_m * y / np.linalg.norm(y)
            cands.append(np.linalg.solve(mh, target - ch))
    sig = [x[0] - x[1] for x in cands if feasible(x)]
    if not sig:
        return None
    lo, hi = min(sig), max(sig)
    return (lo, hi) if hi - lo > 1e-9 else None


RTOL = 1e-7  # the detector's SEPARATION_RTOL, restated


def detect_pairs(trajectories, h_m, v_m, buffer_s):
    """Set of (id_a, id_b) (input order) that conflict, by brute force."""
    h_m, v_m = h_m * (1 - RTOL), v_m * (1 - RTOL)
    out = set()
    trs = list(trajectories)
    for ia, ib in itertools.combinations(range(len(trs)), 2):
        for sa in _segments(trs[ia]):
            hit = False
            for sb in _segments(trs[ib]):
                iv = shift_interval(sa, sb, h_m, v_m)
                if iv is not None and iv[0] < buffer_s and iv[1] > -buffer_s:
                    hit = True
                    break
            if hit:
                out.add((trs[ia].flight_id, trs[ib].flight_id))
                break
    return out


def sampled_pairs(trajectories, h_m, v_m, dt_s=0.05, margin=0.02):
    """Dense-time second check without buffer: pairs closer than (1 - margin) x both minima
    at some sampled moment (sure conflicts), and pairs never closer than (1 + margin) x
    (sure non-conflicts). Returns (sure, possible)."""
    sure, possible = set(), set()
    trs = list(trajectories)
    for a, b in itertools.combinations(trs, 2):
        t0 = max(a.t_start_s, b.t_start_s)
        t1 = min(a.t_end_s, b.t_end_s)
        if t1 <= t0:
            continue
        ts = np.arange(t0, t1 + dt_s, dt_s)
        pa = np.stack([np.interp(ts, a.t_s, a.xyz_m[:, k]) for k in range(3)], 1)
        pb = np.stack([np.interp(ts, b.t_s, b.xyz_m[:, k]) for k in range(3)], 1)
        dh = np.hypot(pa[:, 0] - pb[:, 0], pa[:, 1] - pb[:, 1])
        dv = np.abs(pa[:, 2] - pb[:, 2])
        if np.any((dh < h_m * (1 - margin)) & (dv < v_m * (1 - margin))):
            sure.add((a.flight_id, b.flight_id))
        if np.any((dh < h_m * (1 + margin)) & (dv < v_m * (1 + margin))):
            possible.add((a.flight_id, b.flight_id))
    return sure, possible


def sampled_loss(a, b, h_m=30.0, v_m=10.0, buffer_s=5.0, dt_s=0.05, dtau_s=0.25) -> bool:
    """Loss of separation between trajectories ``a`` and ``b`` by dense sampling: some
    time at which, with ``b`` shifted by a relative timing ``tau`` within
    ``+-buffer_s`` (steps of ``dtau_s``), the two are closer than both minima (by a
    relative 1e-6). Positions outside a flight's time span do not exist."""
    def pos(tr, ts):
        out = np.stack([np.interp(ts, tr.t_s, tr.xyz_m[:, c]) for c in range(3)], axis=1)
        out[(ts < tr.t_s[0]) | (ts > tr.t_s[-1])] = np.nan
        return out
    lo, hi = max(a.t_s[0], b.t_s[0] - buffer_s), min(a.t_s[-1], b.t_s[-1] + buffer_s)
    if lo > hi:
        return False
    ts = np.arange(lo, hi + dt_s, dt_s)
    pa = pos(a, ts)
    for tau in np.arange(-buffer_s, buffer_s + 1e-9, dtau_s):
        pb = pos(b, ts + tau)
        h = np.hypot(pa[:, 0] - pb[:, 0], pa[:, 1] - pb[:, 1])
        v = np.abs(pa[:, 2] - pb[:, 2])
        if np.any((h < h_m * (1 - 1e-6)) & (v < v_m * (1 - 1e-6))):
            return True
    return False
