"""Independent verifier of deconfliction results (numpy + scipy, and a numba copy of
its focus check in :mod:`planner.verify_jit`; no detector code).

Design
------
It shares no code with :mod:`planner.conflicts` and uses a different method, so that a
bug in one is unlikely to hide in the other:

1. Screen by dense sampling. Every flight's position is sampled on a common clock every
   ``dt_s`` (numpy interpolation) and all samples go into one k-d tree (scipy) with
   coordinates ``(x, y, z * Hs / Vs, k * big)``; a Chebyshev-radius ``Hs`` pair query returns
   the samples at the same tick within ``Hs`` horizontally and ``Vs`` vertically, where
   ``Hs = H + v_h * (dt + b)`` and ``Vs = V + v_v * (dt + b)`` with the fleet's largest
   horizontal and vertical speeds. This screen is provably conservative: if A at time T
   and B at time T - tau (|tau| <= b) are closer than H and V, the tick nearest T is
   within dt/2 of T, A moved at most ``v dt/2`` and B at most ``v (dt/2 + b)`` since.
2. Exact check of every screened flight pair: for each pair of their segments, the set of
   relative timing errors at which they lose separation is the projection of a convex
   region of (time on A, time on B); it is found by enumerating all intersections of the
   region's boundary lines and conic plus the conic's tangent points (vectorised over all
   segment pairs), keeping the feasible ones. A pair is a residual conflict when that set
   meets ``[-b, b]``.

Cost follows the overlap of flights in time, not their durations: a flight is sampled
only while at least one possible partner is airborne (padded by ``b + dt``): the set of
times covered by two or more padded spans, computed once by a sweep over the span ends
(:func:`_windows`). With ``focus`` (the flights being checked, e.g. one new booking)
the other flights are sampled only while a focus flight is airborne and only pairs
with a focus flight are reported, so a check against a flight that lasts for years
costs what the new flight's own duration costs. The sampled tick pairs are exactly
those of sampling every flight over its whole padded span, so the screen finds the
same pairs.

Focus prefilter (:func:`_near_focus`): with ``focus``, a non-focus flight is sampled
only around the moments it can be near a focus flight, so a flight that crosses the
new one's path costs a few seconds of samples, not the whole overlap of their spans,
and a flight that never comes near costs none. Each focus segment is cut into pieces
of at most :data:`PIECE_S` seconds (a piece's box is the box of its two end points:
the motion is linear). For every segment ``s`` of another flight and every focus
piece ``f`` whose time span, grown by ``b``, meets ``s``'s, ``s`` is clipped to the
common times ``[ca, cb] = [max(s.t0, f.ta - b), min(s.t1, f.tb + b)]`` and kept when
the box of the clipped part comes within ``H`` (per horizontal axis) and ``V`` of
``f``'s box; the flight is then sampled on ``[ca - pad, cb + pad]`` (``pad = b +
2 dt``, as for whole spans). *Conservative*: if the focus flight at ``u`` and the
other flight at ``w``, ``|u - w| < b``, are closer than ``H`` and ``V``, then ``u``
lies in some piece ``f`` and ``w`` in some segment ``s`` with ``w`` in ``[ca, cb]``;
the two points lie in the two boxes, which are therefore within ``H`` on each
horizontal axis and ``V`` vertically, so the pair ``(s, f)`` is kept; the tick
nearest ``u`` is within ``dt / 2`` of ``u``, hence within ``b + dt / 2 <= pad`` of
``w``, so the other flight is sampled at that tick, and the focus flight is (its
sampling is unchanged): the screen's argument above holds as before. Times and
distances are widened by ``EPS_T`` / ``EPS_M`` against rounding at Unix epoch times.
The exact check of screened pairs does not depend on the sampling at all, so the
result equals the unfiltered verifier's (tested on random fleets at both time
origins, against the oracle).

Limits are checked too: each delay within ``0..max_delay_s`` and every cruise waypoint
(all but the first and last) inside the allowed altitude band.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["Report", "ResidualConflict", "verify"]

RTOL = 1e-7  # minima shrunk by this relative amount: touching them is no conflict
PIECE_S = 8.0       # focus prefilter: longest piece of a focus segment [s]
MAX_PIECES = 256    # ... and at most this many pieces per segment (very long flights)
EPS_T = 1e-3        # focus prefilter: time widening [s] (rounding at epoch times)
EPS_M = 1e-3        # focus prefilter: distance widening [m]


@dataclass(frozen=True)
class ResidualConflict:
    """A pair still in conflict: shifts (B later than A) in ``(shift_lo_s, shift_hi_s)``
    lose separation; ``near_t_s`` is a sampled moment where they were close."""

    flight_a: str
    flight_b: str
    near_t_s: float
    shift_lo_s: float
    shift_hi_s: float


@dataclass
class Report:
    """Verifier result. ``ok`` when there is no residual conflict and no violation."""

    residual_conflicts: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    screened_pairs: int = 0
    samples: int = 0     # positions sampled by the screen (its cost)

    @property
    def ok(self) -> bool:
        return not self.residual_conflicts and not self.violations


_PAIR_I, _PAIR_J = (np.array(ix) for ix in zip(*combinations(range(6), 2)))


def _segment_pairs_exact(sa, sb, h_m, v_m, buf_s):
    """Vectorised exact test. sa, sb: dicts of arrays p0 (k,3), p1, t0, t1.

    Returns (hit (k,) bool, lo (k,), hi (k,)).

    Times are re-based on each pair's earlier start first: the shifts are differences
    of times, so they do not change, but the tolerances below are absolute and must
    not fall under the spacing of doubles (2.4e-7 s at Unix times near 1.8e9, where
    boundary points computed from epoch seconds missed their own segment's limits
    and real conflicts were lost). Subtracting two times within a factor two of each
    other is exact (Sterbenz), so the re-based times carry no rounding error.
    """
    ref = np.minimum(sa["t0"], sb["t0"])
    sa = dict(sa, t0=sa["t0"] - ref, t1=sa["t1"] - ref)
    sb = dict(sb, t0=sb["t0"] - ref, t1=sb["t1"] - ref)
    k = sa["t0"].shape[0]
    va = (sa["p1"] - sa["p0"]) / (sa["t1"] - sa["t0"])[:, None]
    vb = (sb["p1"] - sb["p0"]) / (sb["t1"] - sb["t0"])[:, None]
    c = sa["p0"] - va * sa["t0"][:, None] - (sb["p0"] - vb * sb["t0"][:, None])
    # rel(u, w) = c + u va - w vb ; lines n . (u, w) = q
    one, zero = np.ones(k), np.zeros(k)
    lines = [(one, zero, sa["t0"]), (one, zero, sa["t1"]),
             (zero, one, sb["t0"]), (zero, one, sb["t1"])]
    zconst = (va[:, 2] == 0) & (vb[:, 2] == 0)
    gu, gw = va[:, 2], -vb[:, 2]
    lines += [(gu, gw, v_m - c[:, 2]), (gu, gw, -v_m - c[:, 2])]
    line_ok = [np.ones(k, bool)] * 4 + [~zconst, ~zconst]
    m11, m12, m21, m22 = va[:, 0], -vb[:, 0], va[:, 1], -vb[:, 1]
    chx, chy = c[:, 0], c[:, 1]
    det = m11 * m22 - m12 * m21
    scale = np.maximum(1.0, np.maximum.reduce([abs(m11), abs(m12), abs(m21), abs(m22)]) ** 2)
    rank2 = np.abs(det) > 1e-12 * scale
    rank0 = (m11 == 0) & (m12 == 0) & (m21 == 0) & (m22 == 0)
    # strict degenerate cases (touching is not a conflict)
    alive = ~(zconst & ~(np.abs(c[:, 2]) < v_m))
    alive &= ~(rank0 & ~(chx * chx + chy * chy < h_m * h_m))
    rank1 = ~rank2 & ~rank0
    na = np.hypot(m11, m21)
    nb = np.hypot(m12, m22)
    ex = np.where(na >= nb, m11, m12)
    ey = np.where(na >= nb, m21, m22)
    nn = np.hypot(ex, ey)
    nn = np.where(nn > 0, nn, 1.0)
    cperp = (chx * ey - chy * ex) / nn
    alive &= ~(rank1 & (cperp * cperp >= h_m * h_m))

    # the six lines as (6, k) rows, so each step below is one array operation over
    # all lines (or all 15 line pairs) at once: the same element-wise arithmetic as
    # one line (pair) at a time, hence the same numbers
    LU = np.stack([np.broadcast_to(ln[0], (k,)) for ln in lines])
    LW = np.stack([np.broadcast_to(ln[1], (k,)) for ln in lines])
    LQ = np.stack([np.broadcast_to(ln[2], (k,)) for ln in lines])
    LOK = np.stack(line_ok)
    pi_, pj_ = _PAIR_I, _PAIR_J
    au, aw, qa, bu, bw, qb = LU[pi_], LW[pi_], LQ[pi_], LU[pj_], LW[pj_], LQ[pj_]
    d = au * bw - aw * bu
    good = LOK[pi_] & LOK[pj_] & (np.abs(d) > 1e-12)
    dd = np.where(good, d, 1.0)
    us, ws, oks = [(qa * bw - aw * qb) / dd], [(au * qb - qa * bu) / dd], [good]
    nu, nw, q = LU, LW, LQ
    nrm2 = nu * nu + nw * nw
    nrm2 = np.where(nrm2 > 0, nrm2, 1.0)
    pu, pw = nu * q / nrm2, nw * q / nrm2
    du, dw = -nw, nu
    ux = chx + m11 * pu + m12 * pw
    uy = chy + m21 * pu + m22 * pw
    wx = m11 * du + m12 * dw
    wy = m21 * du + m22 * dw
    a2 = wx * wx + wy * wy
    b2 = 2 * (ux * wx + uy * wy)
    c2 = ux * ux + uy * uy - h_m * h_m
    disc = b2 * b2 - 4 * a2 * c2
    good = LOK & (a2 > 1e-15) & (disc >= 0)
    sq = np.sqrt(np.where(good, disc, 0.0))
    a2s = np.where(good, a2, 1.0)
    for sgn in (-1.0, 1.0):
        lam = (-b2 + sgn * sq) / (2 * a2s)
        us.append(pu + lam * du)
        ws.append(pw + lam * dw)
        oks.append(good)
    # tangent points of the conic for sigma = u - w: M x = H y/|y| - ch, M^T y = (1, -1)
    dets = np.where(rank2, det, 1.0)
    yx = (m22 * 1.0 - m21 * -1.0) / dets
    yy = (-m12 * 1.0 + m11 * -1.0) / dets
    ny = np.hypot(yx, yy)
    ny = np.where(ny > 0, ny, 1.0)
    for sgn in (-1.0, 1.0):
        rx = sgn * h_m * yx / ny - chx
        ry = sgn * h_m * yy / ny - chy
        us.append(((m22 * rx - m12 * ry) / dets)[None])
        ws.append(((-m21 * rx + m11 * ry) / dets)[None])
        oks.append(rank2[None])
    U = np.concatenate(us)
    W = np.concatenate(ws)
    OK = np.concatenate(oks)
    tol = 1e-7
    feas = OK & (U >= sa["t0"] - tol) & (U <= sa["t1"] + tol)
    feas &= (W >= sb["t0"] - tol) & (W <= sb["t1"] + tol)
    rx = c[:, 0] + U * va[:, 0] - W * vb[:, 0]
    ry = c[:, 1] + U * va[:, 1] - W * vb[:, 1]
    rz = c[:, 2] + U * va[:, 2] - W * vb[:, 2]
    feas &= np.abs(rz) <= v_m + tol
    feas &= rx * rx + ry * ry <= h_m * h_m * (1 + 1e-9) + tol
    sig = U - W
    lo = np.where(feas, sig, np.inf).min(axis=0)
    hi = np.where(feas, sig, -np.inf).max(axis=0)
    hit = alive & (hi - lo > 1e-9) & (lo < buf_s) & (hi > -buf_s)
    return hit, lo, hi


def _segments(tr):
    keep = tr.t_s[1:] > tr.t_s[:-1]
    if keep.all():         # the usual case: views, no copies
        return tr.xyz_m[:-1], tr.xyz_m[1:], tr.t_s[:-1], tr.t_s[1:]
    return tr.xyz_m[:-1][keep], tr.xyz_m[1:][keep], tr.t_s[:-1][keep], tr.t_s[1:][keep]


def _merge(iv):
    """Union of closed intervals ``(k, 2)`` as sorted disjoint intervals."""
    if len(iv) == 0:
        return np.empty((0, 2))
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    ends = np.maximum.accumulate(iv[:, 1])
    start_new = np.ones(len(iv), bool)
    start_new[1:] = iv[1:, 0] > ends[:-1]
    first = np.flatnonzero(start_new)
    last = np.append(first[1:] - 1, len(iv) - 1)
    return np.column_stack([iv[first, 0], ends[last]])


def _covered_twice(iv):
    """Times covered by at least two of the closed intervals ``(k, 2)`` (merged)."""
    if len(iv) < 2:
        return np.empty((0, 2))
    t = np.concatenate([iv[:, 0], iv[:, 1]])
    d = np.repeat(np.array([1, -1], np.int64), len(iv))
    order = np.lexsort((-d, t))            # at equal times, starts before ends (closed)
    t, c = t[order], np.cumsum(d[order])
    two = c >= 2
    prev = np.empty_like(two)              # c >= 2 just before (False before the first)
    prev[0] = False
    prev[1:] = two[:-1]
    up = np.flatnonzero(two & ~prev)
    down = np.flatnonzero(~two & prev)
    return np.column_stack([t[up], t[down]])


def _windows(span, others):
    """Parts of ``span`` (t0, t1) inside the merged intervals ``others``."""
    lo = np.maximum(others[:, 0], span[0])
    hi = np.minimum(others[:, 1], span[1])
    keep = hi >= lo
    return np.column_stack([lo[keep], hi[keep]])


def _pieces(seg, piece_s):
    """A flight's segments ``(p0, p1, t0, t1)`` cut into pieces of at most ``piece_s``
    seconds (at most :data:`MAX_PIECES` per segment): ``(a, b, ta, tb)``, in time
    order."""
    p0, p1, t0, t1 = seg
    dur = t1 - t0
    n = np.clip(np.ceil(dur / piece_s), 1, MAX_PIECES).astype(np.int64)
    idx = np.repeat(np.arange(t0.size), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    fa, fb = k / n[idx], (k + 1) / n[idx]
    d = (p1 - p0)[idx]
    return (p0[idx] + fa[:, None] * d, p0[idx] + fb[:, None] * d,
            t0[idx] + fa * dur[idx], t0[idx] + fb * dur[idx])


def _near_focus(segs, in_focus, h_m, v_m, b, pad, chunk=1_000_000):
    """Sampling windows of the non-focus flights (module docstring, focus prefilter):
    ``{flight index: (k, 2) merged windows}``; a flight missing is never near."""
    others = np.flatnonzero(~in_focus)
    if others.size == 0:
        return {}
    parts = [segs[i] for i in others.tolist()]
    own = np.repeat(others, [p[2].size for p in parts])
    if own.size == 0:
        return {}
    p0 = np.concatenate([p[0] for p in parts])
    p1 = np.concatenate([p[1] for p in parts])
    t0 = np.concatenate([p[2] for p in parts])
    t1 = np.concatenate([p[3] for p in parts])
    wins = []
    for f in np.flatnonzero(in_focus).tolist():
        if segs[f][2].size == 0:
            continue
        a, bb, ta, tb = _pieces(segs[f], PIECE_S)
        lo_box = np.minimum(a, bb) - [h_m + EPS_M, h_m + EPS_M, v_m + EPS_M]
        hi_box = np.maximum(a, bb) + [h_m + EPS_M, h_m + EPS_M, v_m + EPS_M]
        ta_w, tb_w = ta - (b + EPS_T), tb + (b + EPS_T)     # both non-decreasing
        first = np.searchsorted(tb_w, t0, "left")            # first piece with tb_w >= t0
        last = np.searchsorted(ta_w, t1, "right")            # pieces with ta_w <= t1
        cnt = np.maximum(last - first, 0)
        ends = np.cumsum(cnt)
        s0 = 0
        while s0 < own.size:       # chunks of about ``chunk`` (segment, piece) pairs
            s1 = int(np.searchsorted(ends, (ends[s0 - 1] if s0 else 0) + chunk, "right"))
            s1 = max(s1, s0 + 1)
            c = cnt[s0:s1]
            si = np.repeat(np.arange(s0, s1), c)
            if si.size:
                pi = first[si] + (np.arange(si.size) - np.repeat(np.cumsum(c) - c, c))
                ca = np.maximum(t0[si], ta_w[pi])
                cb = np.minimum(t1[si], tb_w[pi])
                ok = ca <= cb
                si, pi, ca, cb = si[ok], pi[ok], ca[ok], cb[ok]
                dur = t1[si] - t0[si]
                d = p1[si] - p0[si]
                qa = p0[si] + ((ca - t0[si]) / dur)[:, None] * d
                qb = p0[si] + ((cb - t0[si]) / dur)[:, None] * d
                near = np.all((np.minimum(qa, qb) <= hi_box[pi])
                              & (np.maximum(qa, qb) >= lo_box[pi]), axis=1)
                wins.append(np.column_stack([own[si[near]], ca[near] - pad,
                                             cb[near] + pad]))
            s0 = s1
    if not wins:
        return {}
    w = np.concatenate(wins)
    if w.shape[0] == 0:
        return {}
    w = w[np.lexsort((w[:, 1], w[:, 0]))]
    cut = np.flatnonzero(np.diff(w[:, 0])) + 1
    return {int(g[0, 0]): _merge(g[:, 1:]) for g in np.split(w, cut)}


def _clip_windows(wins, span):
    """Sorted disjoint windows ``(k, 2)`` clipped to ``span`` (t0, t1)."""
    lo = np.maximum(wins[:, 0], span[0])
    hi = np.minimum(wins[:, 1], span[1])
    keep = hi >= lo
    return np.column_stack([lo[keep], hi[keep]])


def verify(trajectories, sep=None, *, delays_s=None, max_delay_s=None,
           cruise_band_m=None, dt_s: float = 1.0, focus=None,
           prefilter: bool = True, jit: bool = True) -> Report:
    """Re-check a deconfliction result independently.

    Parameters
    ----------
    trajectories : sequence of Trajectory
        The flights as they will fly (delays and layers applied).
    sep : planner.conflicts.Separation-like, optional
        Anything with ``horizontal_m``, ``vertical_m``, ``time_buffer_s`` (default 30, 10, 5).
    delays_s, max_delay_s : dict flight_id -> float, optional
        Chosen delays and their limits (a violation when outside ``0..max``).
    cruise_band_m : (float, float), optional
        Allowed cruise altitudes; cruise waypoints outside are violations.
    dt_s : float
        Sampling step of the screen.
    focus : iterable of str, optional
        Check only pairs involving these flight ids (e.g. the flight being booked);
        the others are then sampled only while a focus flight flies. Default: all pairs.
    prefilter : bool
        With ``focus``: sample the others only around the moments they can be near a
        focus flight (module docstring; conservative, same result). ``False`` samples
        them whenever a focus flight flies (the reference in the tests).
    jit : bool
        With ``focus`` and ``prefilter``: run the compiled copy of this method
        (:mod:`planner.verify_jit`: the same steps and results, one call instead of a
        few hundred array operations). ``False`` runs the numpy code below (the
        reference it is tested against).

    Returns
    -------
    Report

    Examples
    --------
    >>> from skytwin.planner.trajectory import Trajectory
    >>> a = Trajectory("a", [[0, 0, 50], [1200, 0, 50]], [0, 100])
    >>> b = Trajectory("b", [[1200, 0, 50], [0, 0, 50]], [0, 100])
    >>> r = verify([a, b])
    >>> r.ok, [(c.flight_a, c.flight_b) for c in r.residual_conflicts]
    (False, [('a', 'b')])
    >>> verify([a, b], delays_s={"a": 700}, max_delay_s={"a": 600}).violations[0]
    'a: delay 700 s outside 0..600 s'
    """
    h_m = getattr(sep, "horizontal_m", 30.0)
    v_m = getattr(sep, "vertical_m", 10.0)
    b = getattr(sep, "time_buffer_s", 5.0)
    trs = list(trajectories)
    rep = Report()
    for fid, d in (delays_s or {}).items():
        mx = (max_delay_s or {}).get(fid)
        if d < 0 or (mx is not None and d > mx + 1e-9):
            rep.violations.append(f"{fid}: delay {d:g} s outside 0..{mx:g} s")
    if cruise_band_m is not None:
        lo_m, hi_m = cruise_band_m
        for tr in trs:
            z = tr.xyz_m[1:-1, 2]
            if z.size and (z.min() < lo_m - 1e-9 or z.max() > hi_m + 1e-9):
                rep.violations.append(f"{tr.flight_id}: cruise altitude {z.min():g}.."
                                      f"{z.max():g} m outside {lo_m:g}..{hi_m:g} m")
    if len(trs) < 2:
        return rep
    if focus is not None and prefilter and jit:
        return _verify_focus_jit(trs, set(focus), rep, h_m, v_m, b, dt_s)
    # --- screen
    segs = [_segments(tr) for tr in trs]
    vh = vv = 0.0
    d = np.concatenate([sg[1] for sg in segs]) - np.concatenate([sg[0] for sg in segs])
    dt = np.concatenate([sg[3] for sg in segs]) - np.concatenate([sg[2] for sg in segs])
    if dt.size:               # the fleet's largest speeds (max of all flights' maxima)
        vh = max(vh, float((np.hypot(d[:, 0], d[:, 1]) / dt).max()))
        vv = max(vv, float((np.abs(d[:, 2]) / dt).max()))
    hs = h_m + vh * (dt_s + b)
    vs = v_m + vv * (dt_s + b)
    t_ref = min(tr.t_start_s for tr in trs)
    # a partner may be up to b seconds off: sample b + dt beyond each end (clamped),
    # but only while a possible partner is airborne too (module docstring)
    pad = b + 2.0 * dt_s
    spans = np.array([[tr.t_start_s - pad, tr.t_end_s + pad] for tr in trs])
    in_focus = np.ones(len(trs), bool)
    if focus is not None:
        fset = set(focus)
        in_focus = np.array([tr.flight_id in fset for tr in trs])
    both = _covered_twice(spans)
    near_win = None
    if focus is not None:
        focus_time = _merge(spans[in_focus])
        near_win = (_near_focus(segs, in_focus, h_m, v_m, b, pad) if prefilter
                    else None)
    pts, owner, ticks = [], [], []
    for i, tr in enumerate(trs):
        if in_focus[i]:
            wins = _windows(spans[i], both)
        elif near_win is not None:
            if i not in near_win:
                continue            # never near a focus flight (focus prefilter)
            wins = _clip_windows(near_win[i], spans[i])
        else:
            wins = _windows(spans[i], focus_time)
        for w0, w1 in wins:
            k = np.arange(int(np.floor((w0 - t_ref) / dt_s)),
                          int(np.ceil((w1 - t_ref) / dt_s)) + 1)
            t = t_ref + k * dt_s
            pts.append(np.stack([np.interp(t, tr.t_s, tr.xyz_m[:, c]) for c in range(3)],
                                1))
            owner.append(np.full(k.size, i))
            ticks.append(k)
    if not pts:
        return rep
    p = np.concatenate(pts)
    rep.samples = int(p.shape[0])
    own = np.concatenate(owner)
    tk = np.concatenate(ticks)
    span = max(np.ptp(p[:, 0]), np.ptp(p[:, 1]), np.ptp(p[:, 2]) * hs / vs, 1.0)
    coords = np.column_stack([p[:, 0], p[:, 1], p[:, 2] * (hs / vs),
                              (tk - tk.min()) * (10.0 * (span + hs))])
    pairs = cKDTree(coords).query_pairs(hs, p=np.inf, output_type="ndarray")
    if pairs.size == 0:
        return rep
    fa, fb = own[pairs[:, 0]], own[pairs[:, 1]]
    keep = (fa != fb) & (in_focus[fa] | in_focus[fb])
    fa, fb, tks = fa[keep], fb[keep], tk[pairs[keep, 0]]
    lo_f, hi_f = np.minimum(fa, fb), np.maximum(fa, fb)
    code, first = np.unique(lo_f * len(trs) + hi_f, return_index=True)
    ia, ib = code // len(trs), code % len(trs)
    near_t = t_ref + tks[first] * dt_s
    rep.screened_pairs = int(code.size)
    # --- exact check of screened pairs, all their segment pairs at once
    rows_a, rows_b, pair_of = [], [], []
    for k, (x, y) in enumerate(zip(ia.tolist(), ib.tolist())):
        sa, sb = segs[x], segs[y]
        na, nb = sa[2].size, sb[2].size
        ii, jj = np.repeat(np.arange(na), nb), np.tile(np.arange(nb), na)
        ov = (sa[2][ii] <= sb[3][jj] + b) & (sb[2][jj] <= sa[3][ii] + b)
        rows_a.append((x, ii[ov]))
        rows_b.append((y, jj[ov]))
        pair_of.append(np.full(int(ov.sum()), k))
    if not pair_of:
        return rep
    pk = np.concatenate(pair_of)

    def gather(rows):
        parts = [[segs[f][q][idx] for f, idx in rows] for q in range(4)]
        return {"p0": np.concatenate(parts[0]), "p1": np.concatenate(parts[1]),
                "t0": np.concatenate(parts[2]), "t1": np.concatenate(parts[3])}

    sa, sb = gather(rows_a), gather(rows_b)
    hit = np.zeros(pk.size, bool)
    lo = np.zeros(pk.size)
    hi = np.zeros(pk.size)
    chunk = 200_000
    for s in range(0, pk.size, chunk):
        sl = slice(s, s + chunk)
        h_, l_, u_ = _segment_pairs_exact({k: v[sl] for k, v in sa.items()},
                                          {k: v[sl] for k, v in sb.items()},
                                          h_m * (1 - RTOL), v_m * (1 - RTOL), b)
        hit[sl], lo[sl], hi[sl] = h_, l_, u_
    for k in np.unique(pk[hit]).tolist():
        m = hit & (pk == k)
        rep.residual_conflicts.append(ResidualConflict(
            trs[ia[k]].flight_id, trs[ib[k]].flight_id, float(near_t[k]),
            float(lo[m].min()), float(hi[m].max())))
    return rep


def _verify_focus_jit(trs, fset, rep, h_m, v_m, b, dt_s):
    """:func:`verify` with ``focus`` and the prefilter, by :func:`planner.verify_jit.
    focus_verify` (the same method compiled)."""
    from skytwin.planner.verify_jit import focus_verify
    off = np.zeros(len(trs) + 1, np.int64)
    np.cumsum([tr.t_s.size for tr in trs], out=off[1:])
    xyz = np.concatenate([tr.xyz_m for tr in trs])
    ts = np.concatenate([tr.t_s for tr in trs])
    in_focus = np.array([tr.flight_id in fset for tr in trs])
    samples, pa, pb, near_t, hit, lo, hi = focus_verify(
        xyz, ts, off, in_focus, float(h_m), float(v_m), h_m * (1 - RTOL),
        v_m * (1 - RTOL), float(b), float(dt_s), PIECE_S, MAX_PIECES, EPS_T, EPS_M)
    rep.samples = int(samples)
    rep.screened_pairs = int(pa.size)
    for q in np.flatnonzero(hit).tolist():
        rep.residual_conflicts.append(ResidualConflict(
            trs[pa[q]].flight_id, trs[pb[q]].flight_id, float(near_t[q]),
            float(lo[q]), float(hi[q])))
    return rep
